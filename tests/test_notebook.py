"""The notebooks (the day-22 MLP lesson, the DCGAN lesson) run end to end, headless, on CPU with a tiny setting."""
import base64

import nbformat
import numpy as np
from helpers import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "gan_mnist.ipynb"


def execute_with_parameters(path, source):
    """Run the notebook at `path` headless with its one parameter cell (at the top) replaced by
    `source`; returns the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and nb.cells.index(params[0]) <= 1, "one parameter cell, at the top"
    params[0].source = source
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def test_notebook_executes_and_draws(tmp_path):
    out = tmp_path / "run"
    nb = execute_with_parameters(NOTEBOOK, f'EPOCHS = 2\nBATCH_SIZE = 64\nDEVICE = "CPU"\n'
                                           f'OUTPUT_DIR = r"{out}"\nSUBSET = 256\nSEED = 0\n')

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    pictures = [o["data"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if "data" in o and ("image/png" in o["data"] or "image/gif" in o["data"])]
    # real digits, samples by epoch, loss curve, training GIF, generated digits
    assert len(pictures) >= 5
    gif = [p for p in pictures if "image/gif" in p]
    assert gif and base64.b64decode(gif[0]["image/gif"])[:6] in (b"GIF89a", b"GIF87a")
    for rel in ("samples/epoch_001.png", "samples/epoch_002.png", "loss_curve.png",
                "training.gif", "checkpoints/generator.ckpt"):
        assert (out / rel).is_file(), rel


def test_committed_notebook_carries_a_real_run():
    """A reader on a code host sees real results: outputs of at least 10 epochs."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    epochs = int(params.source.split("EPOCHS =")[1].split()[0])
    assert epochs >= 10
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert f"epoch  {epochs:2d}/{epochs}" in text or f"epoch {epochs:3d}/{epochs}" in text


DCGAN_NOTEBOOK = REPO / "notebooks" / "dcgan_faces.ipynb"


def test_dcgan_notebook_executes_on_an_image_folder(tmp_path):
    """The DCGAN lesson, headless, on a folder of images the test writes (tiny widths)."""
    from PIL import Image

    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(data / f"{i}.png")
    out = tmp_path / "run"
    nb = execute_with_parameters(
        DCGAN_NOTEBOOK, f'DATA = r"{data}"\nIMAGE_SIZE = 16\nNGF = 4\nNDF = 4\nEPOCHS = 2\n'
                        f'BATCH_SIZE = 8\nSUBSET = None\nDEVICE = "CPU"\nOUTPUT_DIR = r"{out}"\nSEED = 0\n')
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "24 images from" in text and "(32, 3, 16, 16) float32" in text
    pictures = [o["data"] for o in outputs if "data" in o and ("image/png" in o["data"] or "image/gif" in o["data"])]
    assert len(pictures) >= 5  # real images, samples by epoch, loss curve, GIF, generated images
    for rel in ("samples/epoch_002.png", "training.gif", "checkpoints/generator.ckpt"):
        assert (out / rel).is_file(), rel


CONDITIONAL_NOTEBOOK = REPO / "notebooks" / "conditional_mnist.ipynb"


def test_conditional_notebook_executes_draws_and_evaluates(tmp_path):
    out = tmp_path / "run"
    nb = execute_with_parameters(CONDITIONAL_NOTEBOOK,
                                 f'EPOCHS = 1\nBATCH_SIZE = 64\nCONDITION = "projection"\nDEVICE = "CPU"\n'
                                 f'OUTPUT_DIR = r"{out}"\nSUBSET = 256\nEVAL_SAMPLES = 200\nSEED = 0\n')
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "sevens: (10, 1, 28, 28) grid: (100, 1, 28, 28)" in text and "conditional accuracy" in text
    assert "frames: (48, 10, 1, 28, 28)" in text
    pictures = [o["data"] for o in outputs if "data" in o and ("image/png" in o["data"] or "image/gif" in o["data"])]
    assert len(pictures) >= 5  # real digits by class, grids by epoch, loss curve, labelled samples, walk
    for rel in ("samples/epoch_001.png", "checkpoints/generator.ckpt", "walk.gif"):
        assert (out / rel).is_file(), rel


def test_committed_conditional_notebook_carries_a_real_run():
    nb = nbformat.read(CONDITIONAL_NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert int(params.source.split("EPOCHS =")[1].split()[0]) >= 10
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "conditional accuracy" in text
