"""FID's Inception in MindSpore, its weights file, KID, and `mindgan.evaluate --real`.

The oracles: .pth files written by torch.save (tests/data/pth/, made with torch 2.14), and
features of three images computed by torch-fidelity and pytorch-fid themselves with the
weights `inception.random_state(0)` (tests/data/inception_reference.npz, written by
`benchmarks/fid_vs_reference.py --fixture`)."""
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
from helpers import REPO, serve, write_pth

from mindgan.metrics import kid, mmd2_unbiased, polynomial_kernel
from mindgan.pth import PthError, read_pth

DATA = REPO / "tests" / "data"


# ------------------------------------------------------------------ .pth files

@pytest.mark.parametrize("name", ["state_zip", "state_legacy", "wrapped"])
def test_pth_reader_gives_what_torch_saved(name):
    state = read_pth(DATA / "pth" / f"{name}.pth")
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    full = np.arange(6, dtype=np.float64)
    expected = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 8,
                "bn.bias": np.array([0.5, -1.25]), "bn.num_batches_tracked": np.array(7, np.int64),
                "transposed": base.T, "offset_view": full[2:5], "full": full,
                "half": np.array([1.5, -2.0, 65504.0], np.float16), "mask": np.array([True, False, True]),
                "bytes": np.array([[0, 255], [7, 128]], np.uint8)}
    assert list(state) == list(expected)
    for key, want in expected.items():
        assert state[key].dtype == want.dtype and state[key].shape == want.shape, key
        np.testing.assert_array_equal(state[key], want, err_msg=key)


def test_pth_reader_runs_no_code_and_names_what_it_refuses(tmp_path):
    with pytest.raises(PthError, match="holds torch.nn.modules.linear.Linear") as info:
        read_pth(DATA / "pth" / "module.pth")   # a pickled module: its classes are not loaded
    assert "\n" not in str(info.value)
    with pytest.raises(PthError, match="README.md: not a"):
        read_pth(REPO / "README.md")
    with pytest.raises(FileNotFoundError):
        read_pth(tmp_path / "none.pth")


def test_the_test_writer_round_trips_through_the_reader(tmp_path):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, np.int64)}
    got = read_pth(write_pth(tmp_path / "w.pth", state))
    assert got["w"].tolist() == state["w"].tolist() and got["n"].shape == () and int(got["n"]) == 3


# ------------------------------------------------------------------ the network

def test_resize_matrices_are_each_libraries_bilinear():
    from mindgan.inception import resize_matrix

    # 2 -> 4 pixels. TensorFlow 1: sources 0, 0.5, 1, 1.5 (clamped); PyTorch: half-pixel centres
    # -0.25 (clamped to 0), 0.25, 0.75, 1.25.
    np.testing.assert_allclose(resize_matrix(2, 4, "torch-fidelity"), [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])
    np.testing.assert_allclose(resize_matrix(2, 4, "pytorch-fid"), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    for protocol in ("torch-fidelity", "pytorch-fid"):
        np.testing.assert_array_equal(resize_matrix(299, 299, protocol), np.eye(299))
        m = resize_matrix(96, 299, protocol)
        np.testing.assert_allclose(m.sum(axis=1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="unknown protocol"):
        resize_matrix(2, 4, "tf2")


def _fast_kernels():
    from mindgan.cpu import Kernels
    from mindgan.cpu.native import library_status

    return Kernels("onednn") if library_status()[0] is not None else Kernels("stock")


@pytest.mark.parametrize("protocol", ["torch-fidelity", "pytorch-fid"])
def test_features_equal_the_reference_implementations(protocol):
    """Same weights, same three images: features within 1e-4 of torch-fidelity's (pytorch-fid's),
    while the two protocols' features differ by ~1e-2, so the comparison can tell them apart."""
    import mindspore as ms

    from mindgan.inception import FIDInception, random_state

    ref = np.load(DATA / "inception_reference.npz")
    # The native convolutions where they build (tests/conftest.py makes stock the default;
    # MindSpore's own take ~35 s for these 96 layers at 299 px, test_conv_routes checks each
    # route against them).
    net = FIDInception(random_state(0), protocol, 48, kernels=_fast_kernels())
    mine = net(ms.Tensor(ref["images"])).asnumpy()
    key = protocol.replace("-", "_")
    other = "pytorch_fid" if key == "torch_fidelity" else "torch_fidelity"
    scale = np.abs(ref[key]).max()
    assert np.abs(mine - ref[key]).max() / scale < 1e-4
    assert np.abs(mine - ref[other]).max() / scale > 1e-3
    assert ref[key].std(axis=0).mean() > 0.03 * np.abs(ref[key]).mean()   # features that vary with the image


def test_weights_are_checked_by_name_and_shape(tmp_path):
    from mindgan.inception import InceptionWeightsError, load_inception, random_state

    state = random_state(0)
    del state["Mixed_6b.branch7x7_2.conv.weight"]
    state["Mixed_5b.branch1x1.bn.bias"] = np.zeros(3, np.float32)
    write_pth(tmp_path / "broken.pth", state)
    with pytest.raises(InceptionWeightsError, match=r"no tensor Mixed_6b.branch7x7_2.conv.weight|"
                                                    r"Mixed_5b.branch1x1.bn.bias is \(3,\)"):
        load_inception(tmp_path / "broken.pth", log=lambda m: None)
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(InceptionWeightsError, match="not a readable PyTorch state dict"):
        load_inception(tmp_path / "text.pth", log=lambda m: None)


# ------------------------------------------------------------------ downloading the weights

class WeightsHandler(BaseHTTPRequestHandler):
    BODY = b"not really the weights, but bytes with a known digest" * 100

    def do_GET(self):
        body = self.BODY if self.path != "/cut" else self.BODY[:100]
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def weights_server():
    yield from serve(WeightsHandler)


def test_weights_download_is_verified_before_it_takes_its_name(tmp_path, weights_server, closed_port_url):
    import hashlib

    from mindgan.inception import WEIGHTS_NAME, download_inception_weights

    digest = hashlib.sha256(WeightsHandler.BODY).hexdigest()
    got = download_inception_weights(f"{weights_server}/w", tmp_path, sha256=digest)
    assert got == tmp_path / WEIGHTS_NAME and got.read_bytes() == WeightsHandler.BODY
    for url, sha, why in [(f"{weights_server}/w", "0" * 64, "sha-256"),
                          (f"{weights_server}/cut", digest, "connection closed"),
                          (closed_port_url + "w", digest, "refused")]:
        with pytest.raises(OSError) as info:
            download_inception_weights(url, tmp_path / "new", sha256=sha)
        assert why in str(info.value).lower() and url in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / "new").exists()   # not even the folder it would have made


# ------------------------------------------------------------------ KID

def test_kid_is_the_unbiased_mmd_of_a_cubic_kernel():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)), rng.normal(0.5, 1.0, size=(7, 5))

    def k(x, y):
        return (x @ y / 5 + 1) ** 3
    m = len(a)
    within = sum(k(a[i], a[j]) + k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    direct = within - 2 * cross
    assert mmd2_unbiased(polynomial_kernel(a, a), polynomial_kernel(a, b), polynomial_kernel(b, b)) == \
        pytest.approx(direct, rel=1e-12)
    # Subsets as large as the sets: every draw is a permutation, the estimate the same.
    mean, std = kid(a, b, subsets=4, subset_size=7, seed=1)
    assert mean == pytest.approx(direct, rel=1e-12) and std < 1e-12
    assert kid(a, b, subsets=4, subset_size=100)[0] == pytest.approx(direct, rel=1e-12)  # capped at the set
    assert kid(a, a[::-1], subsets=1, subset_size=7)[0] < kid(a, b, subsets=1, subset_size=7)[0]


# ------------------------------------------------------------------ the command line

def _evaluate(args, tmp_path, **env):
    from mindgan.fileio import cache_dir

    # A cache of the test's own, but the native kernels already built (else each run builds them).
    kernels = tmp_path / "cache" / "kernels"
    if not kernels.exists() and cache_dir("kernels").is_dir():
        kernels.parent.mkdir(parents=True, exist_ok=True)
        kernels.symlink_to(cache_dir("kernels"), target_is_directory=True)
    return subprocess.run([sys.executable, "-m", "mindgan.evaluate", *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "MINDGAN_CACHE": str(tmp_path / "cache"),
                               "MINDGAN_CPU_CONVOLUTIONS": "auto", **env})  # the command's own choice


def test_evaluate_real_scores_images_against_a_folder_and_saved_statistics(tmp_path, closed_port_url, capsys):
    from PIL import Image

    from mindgan.inception import random_state

    weights = write_pth(tmp_path / "w.pth", random_state(0))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    real = np.stack([np.stack([np.sin(6 * xx + k), np.cos(5 * yy - k), xx * yy], 0) for k in range(12)])
    real = np.clip((real * 0.5 + 0.5) * 255 + rng.normal(0, 10, real.shape), 0, 255).astype(np.uint8)
    (tmp_path / "real").mkdir()
    for i, im in enumerate(real):
        Image.fromarray(im.transpose(1, 2, 0)).save(tmp_path / "real" / f"{i:02d}.png")
    np.save(tmp_path / "same.npy", real.astype(np.float32) / 127.5 - 1.0)   # the same images, as floats
    np.save(tmp_path / "noise.npy", rng.integers(0, 256, real.shape).astype(np.uint8))

    proc = _evaluate(["--samples", "same.npy", "--real", "real", "--inception", weights, "--kid_subsets", "3",
                      "--kid_subset_size", "12", "--save_stats", "real_stats.npz", "--device_target", "CPU"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    same = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "not the published" in proc.stderr and same["inception_weights"].startswith("sha256:")
    assert same["num_samples"] == same["num_real"] == 12 and same["kid_subset_size"] == 12
    assert abs(same["fid"]) < 1e-3 and "Inception FID" in proc.stdout   # rounding from 0
    assert list((tmp_path / "cache" / "fid").glob("real-*.npy")) and (tmp_path / "real_stats.npz").is_file()

    proc = _evaluate(["--samples", "noise.npy", "--real", "real_stats.npz", "--inception", weights,
                      "--kid_subsets", "3", "--device_target", "CPU"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    noise = json.loads(proc.stdout.strip().splitlines()[-1])
    assert noise["fid"] > 100 * max(abs(same["fid"]), 1e-3) and noise["kid_mean"] > 10 * abs(same["kid_mean"])

    # No weights anywhere and no way to download them: one line that says what to do.
    proc = _evaluate(["--samples", "noise.npy", "--real", "real", "--inception_url", closed_port_url + "w.pth",
                      "--device_target", "CPU"], tmp_path, TORCH_HOME=str(tmp_path / "torch"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "--inception PATH" in lines[0] and "refused" in lines[0]
    proc = _evaluate(["--samples", "none.npy", "--real", "real", "--inception", weights], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "none.npy: no such" in lines[0], proc.stderr[-2000:]
    # Flags refused while parsing, before anything starts: the same main() in this process.
    from mindgan.evaluate import main

    for args, why in [(["--samples", "noise.npy", "--real", "real", "--save_stats", "x.txt"], "ending in .npz"),
                      (["--samples", "noise.npy", "--real", "real", "--protocol", "tf2"], "invalid choice"),
                      (["--samples", "noise.npy", "--ckpt", "g.ckpt"], "not allowed with")]:
        with pytest.raises(SystemExit) as exit_:
            main(args + ["--inception", str(weights)])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 1 and why in lines[0], (args, lines)


def test_evaluate_samples_scores_digits_made_elsewhere(tmp_path):
    """MNIST's own metrics for an .npy of digits: the command gives what `evaluate_images`
    gives for the same array, and real training digits look like digits to it."""
    from helpers import SHIPPED_MNIST

    from mindgan.data import load_mnist, to_model_range
    from mindgan.evaluate import evaluate_images

    digits = to_model_range(load_mnist("train", SHIPPED_MNIST)[0][:500])
    np.save(tmp_path / "digits.npy", digits)
    proc = _evaluate(["--samples", "digits.npy", "--device_target", "CPU"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["num_samples"] == 500 and result["classes_present"] == 10
    direct = evaluate_images(digits, with_reference=False, progress=lambda m: None)
    assert result["fid"] == pytest.approx(direct["fid"], rel=1e-5)   # the classifier on another ISA: rounding
    assert result["parzen_ll"] == pytest.approx(direct["parzen_ll"], rel=1e-12)
