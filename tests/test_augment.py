"""DiffAugment (`mindgan.augment`): each transform against a NumPy version of the paper's
definition fed the same random numbers, gradients through each, the identity leaving the step
alone (an augmented run's exact resume: test_penalties, with the other regularisers)."""
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from helpers import REPO, SHIPPED_MNIST

from mindgan.augment import POLICIES, DiffAugment, parse_policy
from mindgan.data import load_mnist
from mindgan.gan import build_gan, make_train_step
from mindgan.training import TrainConfig

SIZE = 16


def oracle(x: np.ndarray, r: np.ndarray, policy) -> np.ndarray:
    """The paper's transforms (DiffAugment's reference code, restated in NumPy) on `x`
    `[N, C, S, S]` with the random numbers `r` `[N, 8]` that DiffAugment drew."""
    x = x.astype(np.float64).copy()
    n, _, s, _ = x.shape
    if "color" in policy:
        x = x + (r[:, 0] - 0.5)[:, None, None, None]
        m = x.mean(axis=1, keepdims=True)
        x = (x - m) * (2 * r[:, 1])[:, None, None, None] + m
        m = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - m) * (r[:, 2] + 0.5)[:, None, None, None] + m
    if "translation" in policy:
        shift = int(s * 0.125 + 0.5)
        out = np.zeros_like(x)
        for b in range(n):
            ty = int(np.floor(r[b, 3] * (2 * shift + 1))) - shift
            tx = int(np.floor(r[b, 4] * (2 * shift + 1))) - shift
            for i in range(s):
                for j in range(s):
                    if 0 <= i + ty < s and 0 <= j + tx < s:
                        out[b, :, i, j] = x[b, :, i + ty, j + tx]
        x = out
    if "cutout" in policy:
        cut = int(s * 0.5 + 0.5)
        for b in range(n):
            y0 = int(np.floor(r[b, 5] * (s + 1 - cut % 2))) - cut // 2
            x0 = int(np.floor(r[b, 6] * (s + 1 - cut % 2))) - cut // 2
            x[b, :, max(y0, 0):max(y0 + cut, 0), max(x0, 0):max(x0 + cut, 0)] = 0
    return x


def test_policies_parse_in_order_and_bad_names_are_one_line():
    assert parse_policy("cutout, color") == ("color", "cutout") and parse_policy("") == () == parse_policy(None)
    assert parse_policy(",".join(POLICIES)) == POLICIES
    with pytest.raises(ValueError, match=r"--diffaugment blur: 'blur' is not a transform \(choose any of "
                                         r"color, translation, cutout"):
        parse_policy("blur")


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), POLICIES])
def test_each_transform_is_the_papers_and_passes_gradients(policy):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 3, SIZE, SIZE)).astype(np.float32)
    aug = DiffAugment(policy, SIZE, salt=3)
    aug.set_train(True)
    r = DiffAugment(policy, SIZE, salt=3).uniform(6).asnumpy()  # the first call's numbers
    got = aug(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(got, oracle(x, r, policy), rtol=1e-5, atol=1e-5)
    assert float(aug.calls.asnumpy()) == 1  # one draw per call...
    again = aug(ms.Tensor(x)).asnumpy()
    assert not np.allclose(again, got)        # ...and the next call draws anew
    # The gradient of sum(w * aug(x)) is what the oracle's linear map gives: (aug's Jacobian)^T w.
    w = rng.normal(size=x.shape).astype(np.float32)
    aug2 = DiffAugment(policy, SIZE, salt=3)
    aug2.set_train(True)
    grad = ms.grad(lambda t: (aug2(t) * ms.Tensor(w)).sum())(ms.Tensor(x)).asnumpy()
    eps = 1e-3
    k = (0, 1, SIZE // 2, SIZE // 2 - 1)
    bumped = x.copy()
    bumped[k] += eps
    numeric = ((oracle(bumped, r, policy) - oracle(x, r, policy)) * w).sum() / eps
    assert np.isfinite(grad).all() and abs(grad).sum() > 0
    assert grad[k] == pytest.approx(numeric, rel=1e-3, abs=1e-4)


def test_no_transform_leaves_images_and_the_step_unchanged():
    x = ms.Tensor(np.random.default_rng(1).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32))
    empty = DiffAugment((), 28)
    empty.set_train(True)
    assert (empty(x).asnumpy() == x.asnumpy()).all()
    inference = DiffAugment(POLICIES, 28)
    inference.set_train(False)
    assert (inference(x).asnumpy() == x.asnumpy()).all()

    images = ms.Tensor(load_mnist("train", SHIPPED_MNIST)[0][:256, None])
    idx = ms.Tensor(np.arange(64, dtype=np.int32))
    z = ms.Tensor(np.random.default_rng(2).standard_normal((64, 100), dtype=np.float32))
    after = []
    for augment in (None, empty):
        nets = build_gan(TrainConfig(seed=3))
        values = make_train_step(*nets, jit=False, augment=augment)(images, idx, z).asnumpy()
        after.append((values, [p.asnumpy().copy() for p in nets[0].trainable_params() + nets[1].trainable_params()]))
    np.testing.assert_array_equal(after[0][0], after[1][0])
    for a, b in zip(after[0][1], after[1][1]):
        np.testing.assert_array_equal(a, b)


def test_cli_refuses_an_unknown_transform(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mindgan.train", "--diffaugment", "color,blur",
                           "--output_dir", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "'blur' is not a transform" in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()


def test_draws_follow_the_calls_of_d_and_the_simultaneous_update_runs_one_step_a_call():
    """Three D inputs a step when alternating (real, fake; fake), two when simultaneous; several
    simultaneous steps in one graph are refused: MindSpore 2.10 runs the side effects inside
    `ms.vjp`'s function again there (16 draws for 3 steps), so masks and draws would drift."""
    images = ms.Tensor(load_mnist("train", SHIPPED_MNIST)[0][:192, None])
    for update, k, draws in (("alternating", 3, 9), ("simultaneous", 1, 2)):
        augment = DiffAugment(("color",), 28)
        augment.set_train(True)
        step = make_train_step(*build_gan(TrainConfig(seed=3, update=update)), update=update, augment=augment,
                               steps=k)
        z = np.random.default_rng(0).standard_normal((k, 64, 100), dtype=np.float32)
        step(images, ms.Tensor(np.arange(64 * k, dtype=np.int32).reshape(k, 64)), ms.Tensor(z)).asnumpy()
        assert float(augment.calls.asnumpy()) == draws, update
    with pytest.raises(ValueError, match="one step per compiled call"):
        make_train_step(*build_gan(TrainConfig(seed=3)), update="simultaneous", steps=3)
    with pytest.raises(ValueError, match="--steps_per_call 4: the simultaneous update"):
        TrainConfig(update="simultaneous", steps_per_call=4)
