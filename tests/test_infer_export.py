"""Inference and export: the Python API, the CLIs in subprocesses, bad input, MINDIR/ONNX."""
import hashlib
import os
import subprocess
import sys

import imageio.v2 as imageio
import mindspore as ms
import numpy as np
import pytest
import tutorial_reference
from helpers import REPO, SHIPPED_MNIST
from mindspore import nn

from mindgan.checkpoint import atomic_save, load_generator
from mindgan.data import load_mnist
from mindgan.export import export_generator
from mindgan.infer import generate, interpolate, slerp
from mindgan.models import Discriminator, Generator, ModelSpec
from mindgan.training import TrainConfig, train

ENV = {**os.environ, "GLOG_v": "3"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real (tiny) training run: its generator.ckpt and last.ckpt."""
    images = load_mnist("train", SHIPPED_MNIST)[0][:512]
    out = tmp_path_factory.mktemp("infer") / "run"
    return train(TrainConfig(epochs=1, batch_size=64, seed=11, output_dir=str(out)),
                 images=images, progress=False)


def run_cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_generate_shapes_range_and_seed(run_dir):
    ckpt = run_dir / "checkpoints" / "generator.ckpt"
    a = generate(ckpt, 30, seed=3)
    assert a.shape == (30, 1, 28, 28) and a.dtype == np.float32
    assert a.min() >= -1 and a.max() <= 1
    # Same noise whatever the batch size (matmul rounding may differ in the last bits).
    np.testing.assert_allclose(a, generate(ckpt, 30, seed=3, batch_size=7), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a, generate(ckpt, 30, seed=3))  # same seed, same bits
    assert not np.array_equal(a, generate(ckpt, 30, seed=4))


def test_resume_state_gives_the_same_generator(run_dir):
    a = generate(run_dir / "checkpoints" / "generator.ckpt", 8, seed=1)
    b = generate(run_dir / "checkpoints" / "last.ckpt", 8, seed=1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("was_training", [True, False])
def test_generation_and_export_give_the_callers_generator_back_in_its_mode(run_dir, tmp_path,
                                                                          was_training):
    net = load_generator(run_dir / "checkpoints" / "generator.ckpt")
    net.set_train(was_training)
    generate(net, 3, seed=0)
    assert net.training == was_training
    interpolate(net, 2, seed=0, steps=2)
    assert net.training == was_training
    export_generator(net, tmp_path / "g.mindir")
    assert net.training == was_training


def test_infer_writes_the_default_grid_only_when_nothing_else_is_asked_and_says_so(run_dir, tmp_path):
    ckpt = run_dir / "checkpoints" / "generator.ckpt"
    (tmp_path / "samples.png").write_bytes(b"mine")
    proc = subprocess.run([sys.executable, "-m", "mindgan.infer", "--ckpt", str(ckpt), "--npy", "x.npy"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "samples.png").read_bytes() == b"mine"  # not asked for: untouched
    proc = subprocess.run([sys.executable, "-m", "mindgan.infer", "--ckpt", str(ckpt)],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "note: overwriting ./samples.png" in proc.stderr
    assert imageio.imread(tmp_path / "samples.png").ndim == 2  # the default grid, announced
    (tmp_path / "samples.png").write_bytes(b"mine")
    (tmp_path / "g.onnx").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "mindgan.infer", "--ckpt", "g.onnx"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    # An exported model is named as one, and nothing is announced or overwritten before a load.
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "g.onnx: an exported model in ONNX (run it with onnxruntime), not a MindSpore checkpoint" in proc.stderr
    assert (tmp_path / "samples.png").read_bytes() == b"mine"


def test_slerp_keeps_the_ends_and_the_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100), rng.standard_normal(100)
    path = slerp(a, b, np.linspace(0, 1, 9))
    np.testing.assert_allclose(path[0], a, rtol=1e-5)
    np.testing.assert_allclose(path[-1], b, rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(path, axis=1)
    assert norms.min() > 0.9 * min(np.linalg.norm(a), np.linalg.norm(b))  # no dip through 0


def test_cli_outputs_are_byte_identical_for_a_seed(run_dir, tmp_path):
    ckpt = run_dir / "checkpoints" / "generator.ckpt"
    outs = []
    for tag in ("a", "b"):
        d = tmp_path / tag
        proc = run_cli("mindgan.infer", "--ckpt", ckpt, "--num", 12, "--seed", 5,
                       "--out", d / "grid.png", "--npy", d / "x.npy", "--save_individual", d / "ind",
                       "--batch_size", 5)
        assert proc.returncode == 0, proc.stderr
        outs.append(d)
    for rel in ("grid.png", "x.npy", "ind/00000.png", "ind/00011.png"):
        assert digest(outs[0] / rel) == digest(outs[1] / rel), rel
    x = np.load(outs[0] / "x.npy")
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x, generate(ckpt, 12, seed=5), rtol=0, atol=1e-6)
    assert x.min() >= -1.0 and x.max() <= 1.0  # exactly, though Tanh on CPU overshoots by ~1e-5
    assert len(list((outs[0] / "ind").iterdir())) == 12
    single = imageio.imread(outs[0] / "ind" / "00003.png")
    assert single.shape == (28, 28) and single.dtype == np.uint8
    assert imageio.imread(outs[0] / "grid.png").shape == (3 * (3 * 30 + 2), 3 * (4 * 30 + 2))


def test_cli_interpolation_gif(run_dir, tmp_path):
    gif = tmp_path / "walk.gif"
    proc = run_cli("mindgan.infer", "--ckpt", run_dir / "checkpoints" / "generator.ckpt",
                   "--interpolate", 3, "--seed", 2, "--gif", gif)
    assert proc.returncode == 0, proc.stderr
    frames = imageio.mimread(gif)
    assert len(frames) == 3 * 16
    from PIL import Image, ImageSequence

    with Image.open(gif) as g:
        assert {frame.info["duration"] for frame in ImageSequence.Iterator(g)} == {80}  # a loop: no hold


@pytest.mark.parametrize("noise", ["normal", "uniform"])
def test_a_walk_starts_where_generate_starts_and_draws_the_noise_trained_on(tmp_path, noise):
    from mindgan.checkpoint import save_generator
    from mindgan.models import ModelSpec, build_generator

    save_generator(build_generator(ModelSpec("mlp", latent_size=8, channels=1, image_size=8, noise=noise)),
                   tmp_path / "g.ckpt")
    net = load_generator(tmp_path / "g.ckpt")
    frames = interpolate(net, 3, seed=5, steps=4)
    np.testing.assert_allclose(frames[0, 0], generate(net, 1, seed=5)[0], atol=1e-5)
    np.testing.assert_allclose(frames[4, 0], generate(net, 2, seed=5)[1], atol=1e-5)  # the second anchor


def test_interpolation_is_continuous(run_dir):
    frames = interpolate(run_dir / "checkpoints" / "generator.ckpt", 2, seed=0, steps=32)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3, 4))
    ends = np.abs(frames[0] - frames[32]).mean()
    assert steps.max() < ends  # neighbouring frames are closer than the two end points


def test_tutorial_checkpoint_generates(tmp_path):
    path = tmp_path / "Generator9.ckpt"
    tutorial_reference.save_generator(path)
    proc = run_cli("mindgan.infer", "--ckpt", path, "--num", 4, "--out", tmp_path / "g.png")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file"),
    ("png", "not a readable MindSpore checkpoint"),
    ("truncated", "not a readable MindSpore checkpoint"),
    ("discriminator", "discriminator checkpoint"),
    ("latent64", "latent size 64"),
])
def test_cli_bad_checkpoints(tmp_path, case, expected):
    path = tmp_path / f"{case}.ckpt"
    if case == "png":
        imageio.imwrite(path.with_suffix(".png"), np.zeros((8, 8), np.uint8))
        path = path.with_suffix(".png")
    elif case == "truncated":
        atomic_save(Generator(), path)
        path.write_bytes(path.read_bytes()[:50_000])
    elif case == "discriminator":
        atomic_save(Discriminator(), path)
    elif case == "latent64":
        atomic_save(Generator(ModelSpec(latent_size=64)), path)
    args = ["--ckpt", path, "--out", tmp_path / "o.png"]
    proc = run_cli("mindgan.infer", *args)
    if case == "latent64":  # a generator of another size is usable: it says which size it has
        assert proc.returncode == 0, proc.stderr
        proc = run_cli("mindgan.export", "--ckpt", path, "--out", tmp_path / "g.mindir")
        assert proc.returncode == 0
        net = load_generator(path)
        assert net.latent_size == 64
        with pytest.raises(ValueError, match=expected):
            load_generator(path, latent_size=100)
        return
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(path.name) in lines[0], proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_mindir_matches_checkpoint(run_dir, tmp_path):
    ckpt = run_dir / "checkpoints" / "generator.ckpt"
    tmp_path.chmod(0o755)
    proc = run_cli("mindgan.export", "--ckpt", ckpt, "--format", "MINDIR", "--out",
                   tmp_path / "g.mindir")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("g.mindir")
    # MindSpore's exporter chmods its folder to 0700 and the file to 0400: not the user's.
    assert (tmp_path.stat().st_mode & 0o777, (tmp_path / "g.mindir").stat().st_mode & 0o777) == (0o755, 0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["g.mindir"]  # no staging folder left
    graph = nn.GraphCell(ms.load(str(tmp_path / "g.mindir")))
    net = load_generator(ckpt)
    for n in (1, 9):  # the batch dimension is free
        z = ms.Tensor(np.random.default_rng(n).standard_normal((n, 100)).astype(np.float32))
        np.testing.assert_allclose(graph(z).asnumpy(), net(z).asnumpy(), rtol=1e-5, atol=1e-6)


def test_onnx_matches_checkpoint(run_dir, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    ckpt = run_dir / "checkpoints" / "generator.ckpt"
    tmp_path.chmod(0o755)
    path = export_generator(ckpt, tmp_path / "g.onnx", "ONNX", batch_size=4)
    assert (tmp_path.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o755, 0o644)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    (out,) = session.run(None, {session.get_inputs()[0].name: z})
    expected = load_generator(ckpt)(ms.Tensor(z)).asnumpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_export_bad_format_is_one_line(run_dir):
    proc = run_cli("mindgan.export", "--ckpt", run_dir / "checkpoints" / "generator.ckpt",
                   "--format", "TFLITE")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "invalid choice" in proc.stderr


def test_shipped_pretrained_generator_draws_all_ten_digits(tmp_path):
    """The README's command on pretrained/generator_mnist.ckpt, then the shipped classifier
    on its .npy: every digit present, drawn confidently (its README: 10/10, confidence 0.985)."""
    from mindgan.classifier import load_classifier, predict

    ckpt = REPO / "pretrained" / "generator_mnist.ckpt"
    result = run_cli("mindgan.infer", "--ckpt", ckpt, "--num", 500, "--seed", 0,
                     "--out", tmp_path / "grid.png", "--npy", tmp_path / "samples.npy")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "grid.png").stat().st_size > 0
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (500, 1, 28, 28)
    _, probs = predict(load_classifier(), samples)
    assert len(set(probs.argmax(axis=1))) == 10
    assert probs.max(axis=1).mean() > 0.95


def test_shipped_conditional_generator_draws_the_digit_asked_for(tmp_path):
    """pretrained/README.md's `--label all` command, then the shipped classifier on its .npy:
    each row reads as its digit (the file's conditional accuracy over 10,000 samples: 99.51 %)."""
    from mindgan.classifier import load_classifier, predict

    ckpt = REPO / "pretrained" / "generator_mnist_conditional.ckpt"
    result = run_cli("mindgan.infer", "--ckpt", ckpt, "--label", "all", "--num", 30, "--seed", 0,
                     "--out", tmp_path / "grid.png", "--npy", tmp_path / "samples.npy")
    assert result.returncode == 0, result.stderr
    assert "rows: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in result.stdout
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (300, 1, 28, 28)
    _, probs = predict(load_classifier(), samples)
    assert (probs.argmax(axis=1) == np.repeat(np.arange(10), 30)).mean() >= 0.97


def test_shipped_pretrained_generator_samples_are_unchanged_by_the_refactor():
    """Byte-identical samples for the same seed as before the package knew several families
    (tests/data/mlp_reference.json; a new shipped file needs a new reference)."""
    from test_training import mlp_reference

    reference = mlp_reference()["pretrained"]
    ckpt = REPO / "pretrained" / "generator_mnist.ckpt"
    if digest(ckpt) != reference["file_sha256"]:
        pytest.fail("pretrained/generator_mnist.ckpt changed: record its samples' digest anew")
    fake = generate(ckpt, 16, seed=0)
    assert hashlib.sha256(fake.tobytes()).hexdigest() == reference["generate_16_seed0_sha256"]
