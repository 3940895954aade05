"""Spectral normalisation of D (`--spectral_norm`, `models.layers.SpectralNorm`): the largest
singular value against NumPy's SVD, the layers on each convolution route against the stock
layer fed the normalised weight, and every family (its exact resume: test_penalties, with the other regularisers)."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mindgan.cpu import Kernels
from mindgan.models import ModelSpec, build
from mindgan.models.layers import Conv2d, Dense, SpectralNorm


@pytest.mark.parametrize("shape", [(64, 3, 4, 4), (1, 256), (10, 20), (128, 64, 5, 5)])
def test_the_normalised_weight_has_largest_singular_value_one(shape):
    rng = np.random.default_rng(0)
    w = ms.Tensor(rng.normal(0, 0.02, shape).astype(np.float32))
    ms.set_seed(0)   # u's start
    sn = SpectralNorm(shape[0])
    sn.set_train(True)
    # Power iterations, one per training-mode call. Gaussian 128 x 1600 weights have sigma_2 /
    # sigma_1 = 0.99, so the estimate converges slowly there: 60 calls left it 2e-3 to 4e-3 off
    # for some starts of u, 150 calls 2e-4 at worst.
    for _ in range(150):
        normalised = sn(w).asnumpy()
    sigma = np.linalg.svd(normalised.reshape(shape[0], -1), compute_uv=False)[0]
    assert sigma == pytest.approx(1.0, abs=1e-3)
    u = sn.u.asnumpy().copy()
    sn.set_train(False)   # inference: the same sigma, u left as it is
    np.testing.assert_allclose(sn(w).asnumpy(), normalised, rtol=1e-4, atol=1e-7)
    assert (sn.u.asnumpy() == u).all()
    grad = ms.grad(lambda t: (sn(t) * t).sum())(w).asnumpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def _routes():
    from mindgan.cpu.native import library_status

    return ["stock", "matmul"] + (["onednn"] if library_status()[0] is not None else [])


@pytest.mark.parametrize("route", _routes())
def test_a_normalised_convolution_is_the_stock_one_with_the_normalised_weight(route):
    rng = np.random.default_rng(1)
    x = ms.Tensor(rng.normal(size=(2, 3, 16, 16)).astype(np.float32))
    conv = Conv2d(3, 8, 5, stride=2, pad_mode="same", has_bias=True, input_size=16, kernels=Kernels(route),
                  spectral_norm=True)
    conv.set_train(False)   # u stays: the normalised weight is the same in both computations
    w = conv.sn(conv.weight).asnumpy()
    ref = nn.Conv2d(3, 8, 5, stride=2, pad_mode="same", has_bias=True)
    ref.weight.set_data(ms.Tensor(w))
    ref.bias.set_data(conv.bias.value())
    np.testing.assert_allclose(conv(x).asnumpy(), ref(x).asnumpy(), rtol=1e-4, atol=1e-5)
    dense = Dense(12, 4, spectral_norm=True)
    dense.set_train(False)
    x2 = ms.Tensor(rng.normal(size=(5, 12)).astype(np.float32))
    np.testing.assert_allclose(dense(x2).asnumpy(), x2.asnumpy() @ dense.sn(dense.weight).asnumpy().T
                               + dense.bias.asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family, shape", [("mlp", (1, 28)), ("dcgan", (3, 32)), ("dcgan-mnist", (1, 28)),
                                           ("dcgan-carpedm20", (3, 24))])
def test_every_family_normalises_every_weight_of_its_discriminator(family, shape):
    spec = ModelSpec(family, channels=shape[0], image_size=shape[1], ngf=8, ndf=8, spectral_norm=True)
    _, net_d = build(spec)
    names = [p.name for p in net_d.get_parameters()]
    vectors = [n for n in names if n.endswith("sn.u")]
    weights = [p for p in net_d.trainable_params() if p.name.endswith("weight") and len(p.shape) >= 2]
    assert len(vectors) == len(weights) >= 3   # one per convolution or dense layer
    assert len(set(names)) == len(names) and not any(p.requires_grad for p in net_d.get_parameters()
                                                       if p.name.endswith("sn.u"))
    plain = build(ModelSpec(family, channels=shape[0], image_size=shape[1], ngf=8, ndf=8))[1]
    assert sum(p.size for p in plain.trainable_params()) == sum(p.size for p in net_d.trainable_params())
