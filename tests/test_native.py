"""The native CPU kernels (mindgan.cpu.native, cpu/csrc/): built once and cached, a clear reason where
they cannot be built, and the elementwise layers bit for bit equal to their graph-op twins."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from helpers import REPO
from mindspore import nn

from mindgan.cpu.native import library_status
from mindgan.models.layers import BatchNorm2d, Dropout, LeakyReLU, ReLU

pytestmark = pytest.mark.skipif(library_status()[0] is None,
                                reason=f"native kernels not built here: {library_status()[1]}")


BUILD = "from mindgan.cpu.native import library_status; print(library_status())"


def test_the_library_is_built_once_into_the_cache_and_reused(tmp_path):
    env = {**os.environ, "MINDGAN_CACHE": str(tmp_path)}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", BUILD], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert str(tmp_path / "kernels") in out.stdout and "built" in out.stdout
    assert sorted(p.suffix for p in (tmp_path / "kernels").iterdir()) == [".sha256", ".so"]  # no temporary


def test_a_damaged_cached_library_is_built_again_not_loaded(tmp_path):
    """A truncated shared library would kill the process with a bus error when loaded."""
    env = {**os.environ, "MINDGAN_CACHE": str(tmp_path)}
    build = [sys.executable, "-c", BUILD]
    assert subprocess.run(build, cwd=REPO, env=env, capture_output=True, timeout=300).returncode == 0
    library = next((tmp_path / "kernels").glob("*.so"))
    whole = library.read_bytes()
    library.write_bytes(whole[:5000])
    out = subprocess.run(build, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "built" in out.stdout, out.stderr
    assert library.stat().st_size > 5000


def test_a_compiler_that_fails_is_a_one_line_reason(tmp_path):
    env = {**os.environ, "MINDGAN_CACHE": str(tmp_path), "CXX": "false"}
    out = subprocess.run([sys.executable, "-c", BUILD], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(None, 'false could not build mindgan/cpu/csrc (exit 1): no message')"
    assert list((tmp_path / "kernels").iterdir()) == []


class _Loss(nn.Cell):
    def __init__(self, layer, weights):
        super().__init__()
        self.layer, self.weights = layer, weights

    def construct(self, x):
        return (self.layer(x) * self.weights).sum()


def test_native_leaky_relu_equals_the_graph_ops_bit_for_bit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 5, 5)).astype(np.float32)
    x[0, 0, 0, :3] = 0.0   # the subgradient at 0 is 0 both ways
    x, weights = ms.Tensor(x), ms.Tensor(rng.standard_normal((4, 8, 5, 5)).astype(np.float32))
    native, graph = LeakyReLU(0.3, native=True), LeakyReLU(0.3)
    assert native.native and not graph.native
    native.set_train(True)
    results = [(layer(x).asnumpy(), ms.grad(_Loss(layer, weights))(x).asnumpy()) for layer in (native, graph)]
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_native_relu_equals_the_stock_op():
    rng = np.random.default_rng(3)
    x, weights = (ms.Tensor(rng.standard_normal((4, 8, 5, 5)).astype(np.float32)) for _ in range(2))
    results = []
    for layer in (ReLU(native=True), nn.ReLU()):
        layer.set_train(True)
        results.append((layer(x).asnumpy(), ms.grad(_Loss(layer, weights))(x).asnumpy()))
    for a, b in zip(*results):
        assert np.array_equal(a, b) and not np.signbit(results[0][0]).any()   # no -0 outputs


def test_native_dropout_equals_the_graph_hash_bit_for_bit():
    x = ms.Tensor(np.ones((64, 16, 7, 7), np.float32))   # the outputs are the masks
    native, graph = Dropout(0.3, salt=5, native=True), Dropout(0.3, salt=5)
    assert native.native and not graph.native
    masks = {True: [], False: []}
    for layer in (native, graph):
        layer.set_train(True)
        for rank in (0, 0, 3):   # two calls, then a data-parallel worker's slice
            layer.use_workers(rank, 4)
            masks[layer.native].append(layer(x).asnumpy())
    for a, b in zip(masks[True], masks[False]):
        assert np.array_equal(a, b)
    first, second, _ = masks[True]
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.7)}
    assert abs((first != 0).mean() - 0.7) < 0.01
    assert 0.35 < (first != second).mean() < 0.5   # independent calls: 2 * 0.3 * 0.7 = 0.42


def test_native_dropout_gradient_is_the_same_mask():
    rng = np.random.default_rng(1)
    x, weights = (ms.Tensor(rng.standard_normal((8, 4, 6, 6)).astype(np.float32)) for _ in range(2))
    grads = []
    for native in (True, False):
        layer = Dropout(0.4, salt=2, native=native)
        layer.set_train(True)
        grads.append(ms.grad(_Loss(layer, weights))(x).asnumpy())
    assert np.array_equal(*grads)
    assert (grads[0] == 0).mean() > 0.3


def test_native_batch_norm_trains_as_the_stock_kernel():
    """Outputs, gradients (input, gamma, beta) and running statistics after two calls, against
    nn.BatchNorm2d with the same parameters; inference mode is the stock kernel itself."""
    rng = np.random.default_rng(2)
    x = ms.Tensor((rng.standard_normal((6, 5, 4, 3)) * 2 + 0.7).astype(np.float32))
    weights = ms.Tensor(rng.standard_normal((6, 5, 4, 3)).astype(np.float32))
    gamma_beta = [ms.Tensor(rng.standard_normal(5).astype(np.float32)) for _ in range(2)]
    results = []
    for cls, extra in ((BatchNorm2d, {"native": True}), (nn.BatchNorm2d, {})):
        bn = cls(5, momentum=0.8, eps=1e-3, **extra)
        for p, value in zip(bn.trainable_params(), gamma_beta):
            p.set_data(value)
        bn.set_train(True)
        assert getattr(bn, "native", True)
        y = bn(x).asnumpy()
        dx, dparams = ms.value_and_grad(_Loss(bn, weights), 0, bn.trainable_params())(x)[1]
        bn.set_train(False)
        results.append([y, dx.asnumpy(), *(g.asnumpy() for g in dparams),
                        bn.moving_mean.asnumpy(), bn.moving_variance.asnumpy(), bn(x).asnumpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
