"""The tutorial's networks: parameter counts, layer order, names, shapes, tutorial checkpoints."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

import tutorial_reference
from mindgan.models import Discriminator, Generator, count_params


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
    g = Generator(latent_size=16)
    g.set_train(False)
    assert g(ms.Tensor(np.zeros((2, 16), np.float32))).shape == (2, 1, 28, 28)
