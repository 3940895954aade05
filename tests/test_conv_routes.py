"""The CPU convolution routes of models.layers, native oneDNN (cpu.onednn_conv) and gather +
MatMul (cpu.matmul_conv): the same outputs and gradients as MindSpore's own cells with the
same weights, layer by layer and through whole networks, and export still writes standard
Conv nodes."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mindgan.cpu import STANDARD, Kernels, convolution_route
from mindgan.cpu.native import library_status
from mindgan.models import ModelSpec, build
from mindgan.models.layers import (
    Conv2d,
    Conv2dTranspose,
    WholeInputConv2d,
    WholeInputConv2dTranspose,
)

# (ours, stock, constructor arguments, input side): every configuration the families use, with
# narrow (< matmul_conv.NARROW) and wide inputs of the convolution, whose gradients differ.
CASES = [
    (Conv2d, nn.Conv2d,
     dict(in_channels=3, out_channels=5, kernel_size=5, stride=2, pad_mode="same", has_bias=True), 14),
    (Conv2d, nn.Conv2d,
     dict(in_channels=3, out_channels=5, kernel_size=5, stride=2, pad_mode="same", has_bias=True), 13),
    (Conv2d, nn.Conv2d,
     dict(in_channels=3, out_channels=5, kernel_size=4, stride=2, pad_mode="pad", padding=1, has_bias=False), 16),
    (Conv2d, nn.Conv2d,
     dict(in_channels=2, out_channels=3, kernel_size=3, stride=1, pad_mode="valid", has_bias=True), 6),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=6, out_channels=4, kernel_size=5, stride=1, pad_mode="same", has_bias=False), 7),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=6, out_channels=4, kernel_size=5, stride=2, pad_mode="same", has_bias=True), 7),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=6, out_channels=4, kernel_size=4, stride=2, pad_mode="pad", padding=1, has_bias=False), 8),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=6, out_channels=4, kernel_size=4, stride=1, pad_mode="valid", has_bias=False), 3),
    (Conv2d, nn.Conv2d,
     dict(in_channels=32, out_channels=8, kernel_size=5, stride=2, pad_mode="same", has_bias=True), 9),
    (Conv2d, nn.Conv2d,
     dict(in_channels=32, out_channels=8, kernel_size=4, stride=2, pad_mode="pad", padding=1, has_bias=False), 8),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=8, out_channels=32, kernel_size=5, stride=1, pad_mode="same", has_bias=False), 5),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=8, out_channels=32, kernel_size=5, stride=2, pad_mode="same", has_bias=True), 5),
    (Conv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=8, out_channels=32, kernel_size=4, stride=2, pad_mode="pad", padding=1, has_bias=False), 4),
    (WholeInputConv2dTranspose, nn.Conv2dTranspose,
     dict(in_channels=6, out_channels=4, kernel_size=4, stride=1, pad_mode="valid", has_bias=False), 1),
    (WholeInputConv2d, nn.Conv2d,
     dict(in_channels=6, out_channels=1, kernel_size=4, stride=1, pad_mode="valid", has_bias=False), 4),
]


@pytest.fixture(params=["onednn", "matmul"])
def route(request):
    """Layers built in the test take this route (native oneDNN, or gather + MatMul), on any
    x86 CPU: `Kernels(route)`."""
    if request.param == "onednn" and library_status()[0] is None:
        pytest.skip(f"native kernel not built here: {library_status()[1]}")
    return request.param


def outputs_and_gradients(layer, x, weights):
    def loss(t):
        return (layer(t) * weights).sum()

    _, (gx, gparams) = ms.value_and_grad(loss, 0, layer.trainable_params())(x)
    return [layer(x).asnumpy(), gx.asnumpy()] + [g.asnumpy() for g in gparams]


@pytest.mark.parametrize("ours_cls, stock_cls, kwargs, side", CASES,
                         ids=[f"{c[0].__name__}-k{c[2]['kernel_size']}s{c[2]['stride']}-{c[2]['pad_mode']}-{c[3]}"
                              for c in CASES])
def test_layer_equals_the_stock_cell(route, ours_cls, stock_cls, kwargs, side):
    rng = np.random.default_rng(0)
    extra = {"input_size": side} if ours_cls in (Conv2d, Conv2dTranspose) else {}
    ours, stock = ours_cls(**kwargs, **extra, kernels=Kernels(route)), stock_cls(**kwargs)
    if ours_cls in (Conv2d, Conv2dTranspose):
        assert ours.route == route and not ours.stock
    for mine, theirs in zip(ours.trainable_params(), stock.trainable_params()):
        assert mine.shape == theirs.shape and mine.name == theirs.name
        value = rng.standard_normal(mine.shape).astype(np.float32)
        mine.set_data(ms.Tensor(value))
        theirs.set_data(ms.Tensor(value))
    x = ms.Tensor(rng.standard_normal((3, kwargs["in_channels"], side, side)).astype(np.float32))
    expected_shape = stock(x).shape
    weights = ms.Tensor(rng.standard_normal(expected_shape).astype(np.float32))
    got, want = outputs_and_gradients(ours, x, weights), outputs_and_gradients(stock, x, weights)
    assert got[0].shape == expected_shape
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_route_follows_the_override_and_the_native_kernel(monkeypatch):
    built = library_status()[0] is not None    # wherever a C++ compiler is
    for forced in ("stock", "matmul") + (("onednn",) if built else ()):
        monkeypatch.setenv("MINDGAN_CPU_CONVOLUTIONS", forced)
        assert convolution_route() == forced
    monkeypatch.setenv("MINDGAN_CPU_CONVOLUTIONS", "auto")
    if built:   # (test_runtime checks the choice where it cannot be built)
        assert convolution_route() == "onednn"


@pytest.mark.parametrize("spec", [ModelSpec("dcgan", latent_size=8, channels=3, image_size=16, ngf=4, ndf=4),
                                  ModelSpec("dcgan-mnist", latent_size=8, channels=1, image_size=12, ngf=4, ndf=4)],
                         ids=["dcgan", "dcgan-mnist"])
def test_whole_networks_train_as_with_the_stock_cells(route, spec):
    """G and D built on the MatMul route and on the stock cells from the same seed: the same
    images, D outputs, gradients of every parameter and BatchNorm statistics, compiled."""
    results = []
    for kernels in (Kernels(route), STANDARD):
        ms.set_seed(3)
        net_g, net_d = build(spec, kernels)
        z = ms.Tensor(np.random.default_rng(1).standard_normal((6, spec.latent_size)).astype(np.float32))
        (value, images), grads = compiled_loss_and_grads(net_g, net_d)(z)
        stats = [p.asnumpy() for p in net_g.get_parameters() if "moving" in p.name]
        results.append([images.asnumpy(), value.asnumpy()] + [g.asnumpy() for g in grads] + stats)
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def compiled_loss_and_grads(net_g, net_d):
    def loss(z):
        images = net_g(z)
        return (net_d(images) * 3.0).sum() + (images * images).sum(), images

    grad_fn = ms.value_and_grad(loss, None, net_g.trainable_params() + net_d.trainable_params(),
                                has_aux=True)

    @ms.jit
    def step(z):
        return grad_fn(z)

    return step


@pytest.mark.parametrize("spec", [ModelSpec("dcgan", latent_size=8, channels=3, image_size=16, ngf=4, ndf=4),
                                  ModelSpec("dcgan-mnist", latent_size=8, channels=1, image_size=12, ngf=4, ndf=4)],
                         ids=["dcgan", "dcgan-mnist"])
def test_export_writes_standard_nodes(route, spec, tmp_path):
    """The generator computes on the route, its ONNX file holds ConvTranspose nodes (no
    Gather, no custom op: the native layers compute as graph ops in inference), and the
    caller's generator keeps its route."""
    onnx = pytest.importorskip("onnx")
    from mindgan.export import export_generator

    ms.set_seed(0)
    net_g, _ = build(spec, Kernels(route))
    routes = [cell.stock for _, cell in net_g.cells_and_names() if hasattr(cell, "stock")]
    assert routes and not any(routes)
    path = export_generator(net_g, tmp_path / "g.onnx", "ONNX", batch_size=2)
    kinds = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "ConvTranspose" in kinds and not kinds & {"Gather", "Custom"}
    assert [cell.stock for _, cell in net_g.cells_and_names() if hasattr(cell, "stock")] == routes


def test_one_compiled_step_sees_the_discriminators_update(route):
    """make_train_step's single graph (D update, then G update through the updated D) gives
    the same generator as the two updates compiled apart: the convolutions read their weights
    after the optimizer has written them."""
    from mindgan.config import TrainConfig
    from mindgan.gan import build_gan, make_train_step, make_updates, steps_noise

    config = TrainConfig(model="dcgan", image_size=16, ngf=4, ndf=4, batch_size=8, channels=3)
    images = np.random.default_rng(0).integers(0, 256, (8, 3, 16, 16), dtype=np.uint8)
    z = steps_noise(0, 0, 1, 8, config.latent_size)
    generators = []
    for one_graph in (True, False):
        net_g, net_d, opt_g, opt_d = build_gan(config, Kernels(route))
        if one_graph:
            step = make_train_step(net_g, net_d, opt_g, opt_d, steps=1)
            step(ms.Tensor(images), ms.Tensor(np.arange(8, dtype=np.int32).reshape(1, 8)), ms.Tensor(z))
        else:
            d_update, g_update = make_updates(net_g, net_d, opt_g, opt_d)
            ms.jit(d_update)(ms.Tensor(images.astype(np.float32) / 127.5 - 1.0), ms.Tensor(z[0]))
            ms.jit(g_update)(ms.Tensor(z[0]))
        generators.append([p.asnumpy() for p in net_g.trainable_params()])
    for a, b in zip(*generators):
        np.testing.assert_allclose(a, b, atol=1e-6)  # Adam's first step moves every weight by ±lr
