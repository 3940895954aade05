"""`--model dcgan-carpedm20`: carpedm20/DCGAN-tensorflow's networks at any size, checked against
its source's numbers, against numpy for TensorFlow's "same" transposed convolution, and end to
end (training, resume, inference, export, the command line's refusals). The forward pass
against TensorFlow itself is benchmarks/carpedm20_vs_tensorflow.py (TensorFlow needs NumPy 2,
MindSpore NumPy < 2: two environments)."""
import json
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from helpers import REPO
from mindspore import nn

from mindgan.checkpoint import load_generator
from mindgan.config import TrainConfig
from mindgan.cpu import Kernels
from mindgan.cpu.native import library_status
from mindgan.models import ModelSpec, build, count_params
from mindgan.models.dcgan_carpedm20 import sizes
from mindgan.models.layers import Conv2dTranspose

ENV = {**os.environ, "GLOG_v": "3"}


def spec(size, **kw):
    return ModelSpec("dcgan-carpedm20", channels=3, image_size=size, **kw)


# ------------------------------------------------------------------ the networks

@pytest.mark.parametrize("size, g_params, d_params", [(64, 5_135_363, 4_316_545), (48, 4_773_379, 4_312_961)])
def test_parameter_counts_are_the_ones_computed_from_carpedm20s_source(size, g_params, d_params):
    net_g, net_d = build(spec(size))
    assert (count_params(net_g), count_params(net_d)) == (g_params, d_params)


@pytest.mark.parametrize("size, expected", [(48, [48, 24, 12, 6, 3]), (50, [50, 25, 13, 7, 4]),
                                            (64, [64, 32, 16, 8, 4]), (16, [16, 8, 4, 2, 1])])
def test_feature_map_sizes_are_conv_out_size_same(size, expected):
    assert sizes(size) == expected
    net_g, net_d = build(spec(size, ngf=4, ndf=4))
    net_g.set_train(False)
    x = ms.Tensor(np.zeros((2, 100), np.float32))
    seen = []
    for cell in net_g.model.cells():
        x = cell(x)
        if isinstance(cell, nn.Conv2dTranspose):
            seen.append(x.shape[-1])
    assert seen == expected[3::-1] and x.shape == (2, 3, size, size)
    net_d.set_train(False)
    assert net_d(x).shape == (2, 1)


def test_initialisation_is_carpedm20s():
    ms.set_seed(0)
    net_g, net_d = build(spec(48))
    g = {p.name: p.asnumpy() for p in net_g.get_parameters()}
    d = {p.name: p.asnumpy() for p in net_d.get_parameters()}
    d_convs = [v for k, v in d.items() if k.endswith("weight") and v.ndim == 4]
    assert len(d_convs) == 4
    for w in d_convs:  # truncated normal at 2 sigma: std 0.02 * 0.880
        assert np.abs(w).max() <= 0.04 + 1e-7
    assert np.concatenate([w.ravel() for w in d_convs]).std() == pytest.approx(0.0176, rel=0.02)
    g_weights = [v for k, v in g.items() if k.endswith("weight") and v.ndim in (2, 4)]
    assert len(g_weights) == 5  # the linear layer and four transposed convolutions: normal
    assert np.concatenate([w.ravel() for w in g_weights]).std() == pytest.approx(0.02, rel=0.02)
    assert np.abs(np.concatenate([w.ravel() for w in g_weights])).max() > 0.06
    biases = [v for k, v in {**g, **d}.items() if k.endswith("bias")]
    assert len(biases) == 10 and all((b == 0).all() for b in biases)
    gammas = [v for k, v in {**g, **d}.items() if k.endswith("gamma")]
    assert len(gammas) == 7 and all((v == 1).all() for v in gammas)
    bns = [c for c in net_g.cells_and_names() if isinstance(c[1], nn.BatchNorm2d)]
    assert all(abs(c.momentum - 0.1) < 1e-7 and c.eps == 1e-5 for _, c in bns)  # TF decay 0.9


# ------------------------------------------------------------------ TensorFlow's transposed convolution

def tf_conv2d_transpose(x, w, stride, out):
    """numpy: TensorFlow's `conv2d_transpose(output_shape=out, padding="SAME")`, the adjoint of
    the "same" convolution from `out` pixels (padding (k - 1 + ... ) split with the extra after).
    x `[N, C_in, I, I]`, w `[C_in, C_out, k, k]` (MindSpore's transposed layout)."""
    n, c_in, i, _ = x.shape
    k = w.shape[2]
    assert -(-out // stride) == i
    total = max((i - 1) * stride + k - out, 0)
    top = total // 2
    full = np.zeros((n, w.shape[1], out + total, out + total))
    for a in range(i):
        for b in range(i):
            full[:, :, a * stride:a * stride + k, b * stride:b * stride + k] += np.einsum(
                "nc,cokl->nokl", x[:, :, a, b], w)
    return full[:, :, top:top + out, top:top + out]


ROUTES = ["stock", "matmul"] + (["onednn"] if library_status()[0] is not None else [])


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("side, out", [(13, 25), (7, 13), (4, 7), (3, 6), (25, 50)])
def test_transposed_convolution_makes_tensorflows_output_sizes(route, side, out):
    rng = np.random.default_rng(side)
    layer = Conv2dTranspose(6, 4, 5, stride=2, pad_mode="same", has_bias=True, input_size=side,
                            output_size=out, kernels=Kernels(route))
    w = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    layer.weight.set_data(ms.Tensor(w))
    layer.bias.set_data(ms.Tensor(b))
    x = rng.standard_normal((2, 6, side, side)).astype(np.float32)
    expected = tf_conv2d_transpose(x.astype(np.float64), w.astype(np.float64), 2, out) + b[None, :, None, None]
    np.testing.assert_allclose(layer(ms.Tensor(x)).asnumpy(), expected, rtol=1e-4, atol=1e-4)
    # and its gradients are the stock kernel's, on every route
    stock = Conv2dTranspose(6, 4, 5, stride=2, pad_mode="same", has_bias=True, input_size=side,
                            output_size=out, kernels=Kernels("stock"))
    stock.weight.set_data(ms.Tensor(w))
    stock.bias.set_data(ms.Tensor(b))
    probe = ms.Tensor(rng.standard_normal((2, 4, out, out)).astype(np.float32))
    grads = [ms.value_and_grad(lambda t, net=net: (net(t) * probe).sum(), 0, net.trainable_params())(ms.Tensor(x))[1]
             for net in (layer, stock)]
    for a, b_ in zip([grads[0][0], *grads[0][1]], [grads[1][0], *grads[1][1]]):
        np.testing.assert_allclose(a.asnumpy(), b_.asnumpy(), rtol=1e-4, atol=1e-4)


def test_an_output_size_the_input_cannot_make_is_refused():
    with pytest.raises(ValueError, match="cannot come from"):
        Conv2dTranspose(6, 4, 5, stride=2, pad_mode="same", input_size=13, output_size=27)


# ------------------------------------------------------------------ end to end

def faces(n=64, size=20, seed=0):
    """uint8 `[n, 3, size, size]`: a skin-coloured disc with two dark eyes, hair on top."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = np.empty((n, 3, size, size), np.uint8)
    for i in range(n):
        hair = rng.integers(0, 256, 3)
        img = np.where(yy[None] < 0.3, hair[:, None, None], np.array([250, 220, 200])[:, None, None])
        for ex in (0.35, 0.65):
            eye = (yy - 0.55) ** 2 + (xx - ex) ** 2 < 0.01
            img[:, eye] = rng.integers(0, 120, 3)[:, None]
        out[i] = img
    return out


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """carpedm20's family at 18 px (sizes 18, 9, 5, 3, 2: every transposed convolution has an
    output other than input x 2), tiny widths, 2 epochs straight and 1 + 1 resumed."""
    from test_training import straight_and_resumed

    common = dict(model="dcgan-carpedm20", image_size=18, ngf=4, ndf=4, batch_size=16, num_samples=16, seed=2)
    return straight_and_resumed(tmp_path_factory.mktemp("carpedm20"), faces(size=18), **common)


def test_carpedm20_defaults_are_its_main_py():
    c = TrainConfig(model="dcgan-carpedm20")
    assert (c.epochs, c.batch_size, c.lr, c.beta1, c.image_size, c.num_samples, c.noise, c.g_steps, c.crop) == (
        25, 64, 2e-4, 0.5, 64, 64, "uniform", 2, 108)
    assert c.spec.d_output == "" and TrainConfig().noise == "normal" and TrainConfig().g_steps == 1


def test_carpedm20_resumes_exactly_and_its_checkpoint_carries_the_spec(odd_run):
    from test_training import assert_same_run

    straight, split = odd_run
    assert_same_run(straight, split, steps=8)
    config = json.loads((straight / "config.json").read_text())
    assert (config["noise"], config["g_steps"]) == ("uniform", 2)
    net = load_generator(straight / "checkpoints" / "generator.ckpt")
    assert net.spec == ModelSpec("dcgan-carpedm20", 100, 3, 18, 4, 4, noise="uniform")  # sampling draws it too


def test_carpedm20_generator_exports_to_mindir_and_onnx_at_an_odd_size(odd_run, tmp_path):
    from mindgan.export import export_generator

    ort = pytest.importorskip("onnxruntime")
    net = load_generator(odd_run[0] / "checkpoints" / "generator.ckpt")
    z = np.random.default_rng(0).uniform(-1, 1, (2, 100)).astype(np.float32)
    expected = net(ms.Tensor(z)).asnumpy()
    assert expected.shape == (2, 3, 18, 18)
    graph = nn.GraphCell(ms.load(str(export_generator(net, tmp_path / "g.mindir"))))
    np.testing.assert_allclose(graph(ms.Tensor(z)).asnumpy(), expected, rtol=1e-4, atol=1e-5)
    session = ort.InferenceSession(str(export_generator(net, tmp_path / "g.onnx", "ONNX", batch_size=2)),
                                   providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: z})
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def write_faces(folder, n=40, size=24, gray=False):
    from PIL import Image

    folder.mkdir(parents=True)
    for i, img in enumerate(faces(n, size)):
        im = Image.fromarray(img.transpose(1, 2, 0))
        (im.convert("L") if gray else im).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.parametrize("case, flags, message", [
    ("crop", ["--crop", "200"], "--crop 200 is larger than 40 of the 40 images in"),
    ("gray", ["--channels", "3", "--crop", "24"], "--channels 3, but every image in"),
    ("default_crop", [], "--crop 108 is larger than 40 of the 40 images"),
])
def test_carpedm20_bad_image_input_is_one_line_and_writes_nothing(tmp_path, case, flags, message):
    data = write_faces(tmp_path / "faces", gray=case == "gray")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "mindgan.train", "--model", "dcgan-carpedm20", "--data_dir",
                           str(data), "--image_size", "16", "--output_dir", str(out), *flags],
                          cwd=REPO, env={**ENV, "MINDGAN_CACHE": str(tmp_path / "cache")},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()
