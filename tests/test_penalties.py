"""Gradient penalties (`mindgan.penalties`: R1, WGAN-GP's): the penalties and their gradients
with respect to D's weights (a double backward) against a NumPy restatement of the MLP
discriminator in float64, the native CPU route against MindSpore's own kernels on the
convolutional families, the interpolation draws, an exact resume, and the CLI's checks."""
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from helpers import REPO, SHIPPED_MNIST
from test_training import assert_same_run

from mindgan.config import TrainConfig
from mindgan.cpu import Kernels
from mindgan.data import load_mnist
from mindgan.gan import build_gan, second_order
from mindgan.penalties import Interpolation, gp_penalty, input_gradient, penalty_for, r1_penalty, r1_steps
from mindgan.training import train

GAMMA = 10.0


def _mlp_d(loss="bce", r1=GAMMA):
    """An MLP D of 8x8 images (64 inputs) built as training builds it, with float64 copies of its
    weights: (net_d, [(W, b) per Dense])."""
    config = TrainConfig(loss=loss, r1=r1, image_size=8, seed=3)
    _, net_d, _, _ = build_gan(config)
    dense = [(c.weight.asnumpy().astype(np.float64), c.bias.asnumpy().astype(np.float64))
             for _, c in net_d.cells_and_names() if isinstance(c, ms.nn.Dense)]
    return net_d, dense


def _scores_and_gradients(dense, x):
    """The MLP D in NumPy: raw scores `[N]` and their input gradients `[N, 64]`."""
    h, masks = x, []
    for w, b in dense[:-1]:
        a = h @ w.T + b
        masks.append(np.where(a > 0, 1.0, 0.2))
        h = a * masks[-1]
    w, b = dense[-1]
    s = (h @ w.T + b)[:, 0]
    g = np.tile(w, (len(x), 1))
    for (w, _), m in zip(reversed(dense[:-1]), reversed(masks)):
        g = (g * m) @ w
    return s, g


def _numpy_r1(dense, x):
    return 0.5 * GAMMA * (_scores_and_gradients(dense, x)[1] ** 2).sum(1).mean()


def _numpy_gp(dense, x, weight=10.0):
    norms = np.sqrt((_scores_and_gradients(dense, x)[1] ** 2).sum(1) + 1e-12)
    return weight * ((norms - 1.0) ** 2).mean()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("which", ["r1", "gp"])
def test_the_penalties_and_their_weight_gradients_are_numpys(which, images):
    net_d, dense = _mlp_d()
    gradient = input_gradient(net_d)
    x = ms.Tensor(images)

    def penalty(x):
        scores, g = gradient(x, None)
        return r1_penalty(g, GAMMA) if which == "r1" else gp_penalty(g, 10.0)

    oracle = _numpy_r1 if which == "r1" else _numpy_gp
    flat = images.reshape(len(images), -1).astype(np.float64)
    value, grads = ms.jit(ms.value_and_grad(penalty, None, net_d.trainable_params()))(x)
    np.testing.assert_allclose(float(value), oracle(dense, flat), rtol=1e-4)

    # The weights' gradients (through D's input gradient: a double backward) against central
    # differences of the float64 oracle, on a few entries of each weight matrix.
    rng = np.random.default_rng(1)
    weights = [g.asnumpy() for g, p in zip(grads, net_d.trainable_params()) if p.name.endswith("weight")]
    assert len(weights) == 3
    for k, ad in enumerate(weights):
        for _ in range(4):
            i, j = rng.integers(ad.shape[0]), rng.integers(ad.shape[1])
            plus = [(w.copy(), b) for w, b in dense]
            minus = [(w.copy(), b) for w, b in dense]
            plus[k][0][i, j] += 1e-5
            minus[k][0][i, j] -= 1e-5
            fd = (oracle(plus, flat) - oracle(minus, flat)) / 2e-5
            assert abs(ad[i, j] - fd) <= 2e-3 * max(1.0, abs(fd)), (k, i, j, ad[i, j], fd)


def test_a_penalty_gives_d_raw_scores_and_the_step_adds_it_to_the_loss(images):
    from mindgan.gan import make_updates

    config = TrainConfig(r1=GAMMA, image_size=8, seed=3)
    assert config.spec.d_output == "logit" and config.spec.r1 == GAMMA
    net_g, net_d, opt_g, opt_d = build_gan(config)
    assert not any(isinstance(c, ms.nn.Sigmoid) for _, c in net_d.cells_and_names())
    dense = [(c.weight.asnumpy().astype(np.float64), c.bias.asnumpy().astype(np.float64))
             for _, c in net_d.cells_and_names() if isinstance(c, ms.nn.Dense)]
    z = np.random.default_rng(2).standard_normal((6, 100)).astype(np.float32)
    fake = net_g(ms.Tensor(z)).asnumpy().reshape(6, -1).astype(np.float64)
    d_update, _ = make_updates(net_g, net_d, opt_g, opt_d, penalty=penalty_for(config.spec))
    loss_d, _, _ = ms.jit(d_update)(ms.Tensor(images), ms.Tensor(z))
    flat = images.reshape(6, -1).astype(np.float64)
    real_s, fake_s = _scores_and_gradients(dense, flat)[0], _scores_and_gradients(dense, fake)[0]
    bce = np.mean(np.logaddexp(0, -real_s)) + np.mean(np.logaddexp(0, fake_s))
    np.testing.assert_allclose(float(loss_d), bce + _numpy_r1(dense, flat), rtol=1e-4)


def test_interpolation_draws_a_fresh_weight_per_image_and_call_from_its_counter():
    ones, zeros = ms.Tensor(np.ones((5, 1, 2, 2), np.float32)), ms.Tensor(np.zeros((5, 1, 2, 2), np.float32))
    cell = Interpolation(7)
    first, second = cell(ones, zeros).asnumpy(), cell(ones, zeros).asnumpy()
    e = first[:, 0, 0, 0]
    assert ((first == e[:, None, None, None]).all() and (e >= 0).all() and (e < 1).all()
            and len(set(e.tolist())) == 5)
    assert not np.allclose(first, second) and float(cell.calls.asnumpy()) == 2
    np.testing.assert_array_equal(Interpolation(7)(ones, zeros).asnumpy(), first)
    assert not np.allclose(Interpolation(8)(ones, zeros).asnumpy(), first)


def test_second_order_kernels_keep_the_native_route_and_leave_the_matmul_one():
    assert second_order(Kernels("onednn")) == Kernels("onednn", second_order=True)
    assert not Kernels("onednn", second_order=True).native_batch_norm and Kernels("onednn").native_batch_norm
    # MindSpore 2.10 cannot differentiate the gather + MatMul convolutions twice.
    assert second_order(Kernels("matmul")).conv == "stock"


def _penalised(net_d):
    """x -> mean D(x) + R1 penalty."""
    gradient = input_gradient(net_d)

    def loss(x):
        scores, g = gradient(x, None)
        return scores.mean() + r1_penalty(g, GAMMA)
    return loss


def _native():
    from mindgan.cpu.native import library_status

    return pytest.mark.skipif(library_status()[0] is None, reason="the native CPU library does not build here")


@_native()
@pytest.mark.parametrize("family, shape", [("dcgan-mnist", (1, 28)), ("dcgan", (3, 16))])
def test_penalised_gradients_through_the_native_kernels_are_mindspores_own(family, shape):
    """R1's weight gradients through the native kernels (convolutions, dropout, leaky ReLU;
    batch norms leave them) equal those through MindSpore's own kernels."""
    config = TrainConfig(model=family, channels=shape[0], image_size=shape[1], ngf=8, ndf=8, r1=GAMMA, seed=4)
    x = ms.Tensor(np.random.default_rng(5).uniform(-1, 1, (4, *config.spec.image_shape)).astype(np.float32))
    results = []
    for kernels in (Kernels("stock"), Kernels("onednn")):
        _, net_d, _, opt_d = build_gan(config, kernels)
        value, grads = ms.jit(ms.value_and_grad(_penalised(net_d), None, opt_d.parameters))(x)
        results.append((float(value), [g.asnumpy() for g in grads]))
    (v0, g0), (v1, g1) = results
    np.testing.assert_allclose(v1, v0, rtol=1e-5)
    for a, b in zip(g0, g1):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * np.abs(a).max())


def test_a_run_with_every_regulariser_resumes_exactly_and_records_them(tmp_path):
    """WGAN-GP, R1, spectral norm and DiffAugment at once (one run for all: each brings state
    that a resume must carry on)."""
    digits = load_mnist("train", SHIPPED_MNIST)[0][:384]
    common = dict(batch_size=64, subset=384, seed=9, device_target="CPU", loss="wgan-gp", r1=1.0,
                  spectral_norm=True, diffaugment="translation,color,cutout")
    straight = train(TrainConfig(epochs=2, output_dir=str(tmp_path / "a"), **common), images=digits, progress=False)
    split = train(TrainConfig(epochs=1, output_dir=str(tmp_path / "b"), **common), images=digits, progress=False)
    train(TrainConfig(epochs=2, **common), resume=split, images=digits, progress=False)
    state = assert_same_run(straight, split, steps=12)
    assert float(state["penalty.calls"].asnumpy()) == 12  # one interpolation per D update
    # Three calls of D's input per step (real, fake for D; fake for G): 12 steps.
    assert float(state["augment.calls"].asnumpy()) == 36
    assert sum(name.endswith("sn.u") for name in state) == 3
    import json

    from mindgan.checkpoint import load_generator

    spec = load_generator(straight / "checkpoints" / "generator.ckpt").spec
    assert (spec.loss, spec.r1, spec.d_output, spec.spectral_norm) == ("wgan-gp", 1.0, "logit", True)
    assert spec.diffaugment == "color,translation,cutout"
    saved = json.loads((straight / "config.json").read_text())
    assert (saved["diffaugment"], saved["r1"], saved["loss"]) == ("color,translation,cutout", 1.0, "wgan-gp")
    with pytest.raises(ValueError, match=r"--r1 2.0 differs from the resumed run's 1.0"):
        train(TrainConfig(epochs=3, **{**common, "r1": 2.0}), resume=split, images=digits, progress=False)


def test_lazy_r1_picks_every_kth_step_of_the_run_and_scales_gamma():
    assert r1_steps(0, 5, 2) == (True, False, True, False, True)
    assert r1_steps(3, 3, 2) == (False, True, False) and r1_steps(7, 4, 1) is None
    config = TrainConfig(r1=GAMMA, r1_every=4)
    assert penalty_for(config.spec, r1_every=4).r1 == 4 * GAMMA
    with pytest.raises(ValueError, match="--r1_every 2: a positive number of steps, with --r1 GAMMA"):
        TrainConfig(r1_every=2)


def test_a_lazy_r1_run_is_the_same_however_its_steps_are_grouped_into_calls(tmp_path):
    """Steps 1, 3, 5 ... carry the penalty whether a compiled call holds 3 steps, 1 or 2 (each
    grouping compiles its own patterns), and the run resumes exactly."""
    digits = load_mnist("train", SHIPPED_MNIST)[0][:384]
    common = dict(batch_size=64, subset=384, seed=2, device_target="CPU", r1=1.0, r1_every=2)
    straight = train(TrainConfig(epochs=2, steps_per_call=3, output_dir=str(tmp_path / "a"), **common),
                     images=digits, progress=False)
    split = train(TrainConfig(epochs=1, steps_per_call=1, output_dir=str(tmp_path / "b"), **common),
                  images=digits, progress=False)
    train(TrainConfig(epochs=2, steps_per_call=2, **common), resume=split, images=digits, progress=False)
    assert_same_run(straight, split, steps=12)


@pytest.mark.parametrize("flags, message", [
    (["--r1", "-1"], "--r1 must be zero or more, not -1"),
    (["--loss", "wgan"], "--loss wgan: choose from bce, hinge, lsgan, wgan-gp"),
    (["--r1_every", "2"], "--r1_every 2: a positive number of steps, with --r1 GAMMA"),
])
def test_cli_refuses_bad_penalties_in_one_line(tmp_path, flags, message):
    proc = subprocess.run([sys.executable, "-m", "mindgan.train", *flags, "--output_dir", str(tmp_path / "run")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and message in lines[-1], proc.stderr
    assert not (tmp_path / "run").exists()


def test_the_sum_of_scores_has_each_images_own_gradient(images):
    """`input_gradient` takes the gradient of the summed scores: row n is D(x_n)'s own, as the
    per-image penalties need (the MLP mixes no images)."""
    net_d, dense = _mlp_d()
    _, g = ms.jit(input_gradient(net_d))(ms.Tensor(images), None)
    expected = _scores_and_gradients(dense, images.reshape(6, -1).astype(np.float64))[1]
    np.testing.assert_allclose(g.asnumpy().reshape(6, -1), expected, rtol=1e-4, atol=1e-6)
