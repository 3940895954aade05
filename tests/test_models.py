"""The tutorial's networks: parameter counts, layer order, names, shapes, tutorial checkpoints."""
import mindspore as ms
import numpy as np
import tutorial_reference
from mindspore import nn

from mindgan.models import Discriminator, Generator, ModelSpec, count_params


def layer_kinds(net):
    return [type(c).__name__ for c in net.model.cells()]


def test_generator_architecture():
    g = Generator()
    assert count_params(g) == 1_510_032
    assert layer_kinds(g) == ["Dense", "ReLU",
                              "Dense", "BatchNorm1d", "ReLU",
                              "Dense", "BatchNorm1d", "ReLU",
                              "Dense", "BatchNorm1d", "ReLU",
                              "Dense", "Tanh"]
    dense = [c for c in g.model.cells() if isinstance(c, nn.Dense)]
    assert [(c.in_channels, c.out_channels) for c in dense] == [
        (100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]


def test_discriminator_architecture():
    d = Discriminator()
    assert count_params(d) == 533_505
    assert layer_kinds(d) == ["Dense", "LeakyReLU", "Dense", "LeakyReLU", "Dense", "Sigmoid"]
    dense = [c for c in d.model.cells() if isinstance(c, nn.Dense)]
    assert [(c.in_channels, c.out_channels) for c in dense] == [(784, 512), (512, 256), (256, 1)]
    assert [c.alpha for c in d.model.cells() if isinstance(c, nn.LeakyReLU)] == [0.2, 0.2]


def test_same_architecture_as_tutorial():
    tut_g, tut_d, *_ = tutorial_reference.build()
    assert layer_kinds(Generator()) == layer_kinds(tut_g)
    assert layer_kinds(Discriminator()) == layer_kinds(tut_d)
    assert count_params(Generator()) == count_params(tut_g)
    assert count_params(Discriminator()) == count_params(tut_d)


def test_parameter_names_unique_across_nets():
    names = [p.name for net in (Generator(), Discriminator()) for p in net.get_parameters()]
    assert len(names) == len(set(names))


def test_shapes_and_ranges():
    g, d = Generator(), Discriminator()
    g.set_train(False)
    z = ms.Tensor(np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32))
    images = g(z)
    assert images.shape == (6, 1, 28, 28)
    x = images.asnumpy()
    assert x.min() >= -1 and x.max() <= 1
    p4 = d(images).asnumpy()
    p2 = d(ms.Tensor(x.reshape(6, 784))).asnumpy()
    assert p4.shape == (6, 1)
    np.testing.assert_allclose(p4, p2, rtol=1e-6)
    assert ((p4 > 0) & (p4 < 1)).all()


def test_other_latent_size():
    g = Generator(ModelSpec(latent_size=16))
    g.set_train(False)
    assert g(ms.Tensor(np.zeros((2, 16), np.float32))).shape == (2, 1, 28, 28)


def test_fast_layers_compute_what_the_stock_layers_compute():
    """models.LeakyReLU is bit-identical to nn.LeakyReLU, values and gradients; models.BatchNorm1d
    matches nn.BatchNorm1d in training mode (output, gradients, running statistics) and is the
    stock kernel in inference mode."""
    from mindgan.models import BatchNorm1d, LeakyReLU

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32)).astype(np.float32)  # no exact 0: there the two pick
    # different subgradients (0 and 1), which a Dense layer's output never hits in practice
    w = ms.Tensor(rng.standard_normal((64, 32)).astype(np.float32))
    for ours, stock, exact in ((LeakyReLU(0.2), nn.LeakyReLU(0.2), True),
                               (BatchNorm1d(32), nn.BatchNorm1d(32), False)):
        results = []
        for layer in (ours, stock):
            layer.set_train(True)
            value, grad = ms.value_and_grad(lambda t, layer=layer: (layer(t) * w).sum())(ms.Tensor(x))
            stats = [p.asnumpy() for p in layer.get_parameters() if not p.requires_grad]
            layer.set_train(False)
            results.append([layer(ms.Tensor(x)).asnumpy(), grad.asnumpy(), *stats])
        for a, b in zip(*results):
            if exact:
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_whole_input_conv_is_the_stock_convolution_as_a_matmul():
    """models.layers.WholeInputConv2d (DCGAN's last D layer): the same output and the same
    gradients, for the input and the weight, as nn.Conv2d with the same weight."""
    from mindgan.models.layers import WholeInputConv2d

    rng = np.random.default_rng(1)
    x = ms.Tensor(rng.standard_normal((6, 16, 4, 4)).astype(np.float32))
    ours = WholeInputConv2d(16, 1, 4, pad_mode="valid", has_bias=False)
    stock = nn.Conv2d(16, 1, 4, pad_mode="valid", has_bias=False)
    stock.weight.set_data(ms.Tensor(ours.weight.asnumpy()))
    results = []
    for layer in (ours, stock):
        def loss(t, layer=layer):
            return (layer(t) * ms.Tensor(np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1))).sum()

        value, (gx, gw) = ms.value_and_grad(loss, 0, layer.trainable_params())(x)
        results.append((layer(x).asnumpy(), gx.asnumpy(), gw[0].asnumpy()))
    assert results[0][0].shape == (6, 1, 1, 1)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_grids_are_full_rectangles_and_loss_plots_count_whole_steps():
    from mindgan.viz import grid_columns, grid_image, loss_figure

    assert {n: grid_columns(n) for n in (16, 25, 32, 24, 64, 7)} == {16: 4, 25: 5, 32: 8, 24: 6, 64: 8, 7: 3}
    grid = grid_image(np.zeros((32, 1, 4, 4), np.float32), pad=1, scale=1)
    assert grid.shape[:2] == (4 * 5 + 1, 8 * 5 + 1)  # 8 x 4, no empty cells
    ticks = loss_figure([1, 2, 3, 4, 5], [1.0] * 5, [0.5] * 5).axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)
