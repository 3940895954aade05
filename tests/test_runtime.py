"""The CPU-kernel choice made before MindSpore loads, in fresh interpreters."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import REPO

from mindgan.runtime import HostSync

PROBE = """
import os, sys
from mindgan.cpu import choose_cpu_kernels
if sys.argv[3] == "loaded":
    import mindspore
flags = set(sys.argv[2].split(",")) - {""}
print(choose_cpu_kernels(sys.argv[1] if sys.argv[1] not in ("True", "False") else sys.argv[1] == "True", flags))
print(os.environ.get("OMP_WAIT_POLICY", "unset"))
print(os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"))
"""


@pytest.fixture(scope="module")
def no_compiler(tmp_path_factory):
    """Environment of a machine where the native kernel cannot be built: no C++ compiler, and
    nothing built before in its (empty) cache."""
    return {"CXX": "no-such-compiler", "MINDGAN_CACHE": str(tmp_path_factory.mktemp("empty_cache"))}


def choose(what, flags, env_value=None, loaded="fresh", route=None, extra_env=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONEDNN_MAX_CPU_ISA", "MINDGAN_CPU_CONVOLUTIONS", "OMP_WAIT_POLICY")}
    env.update(extra_env or {})
    env["GLOG_v"] = "3"
    if env_value:
        env["ONEDNN_MAX_CPU_ISA"] = env_value
    if route:
        env["MINDGAN_CPU_CONVOLUTIONS"] = route
    out = subprocess.run([sys.executable, "-c", PROBE, what, flags, loaded], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.parametrize("what, expected", [
    ("dcgan-mnist", "unset"),   # native oneDNN convolutions: no reference kernel to avoid
    ("dcgan", "unset"),
    ("True", "AVX2"),           # inference commands (the FID classifier has stock convolutions)
    ("mlp", "unset"),
])
def test_with_the_native_kernel_only_stock_convolutions_take_the_isa_cap(what, expected):
    said, omp_wait, value = choose(what, "avx2,avx512f")
    assert value == expected
    if what.startswith("dcgan"):   # their OpenMP threads sleep between kernels
        assert "native oneDNN kernel" in said and omp_wait == "PASSIVE"
    else:
        assert omp_wait == "unset"


@pytest.mark.parametrize("what, flags, expected", [
    ("dcgan-mnist", "avx2,avx512f", "AVX2"),    # its stock convolutions on AVX-512: capped
    ("dcgan", "avx2,avx512f", "unset"),         # gather + MatMul convolutions: not capped
    ("True", "avx2,avx512f", "AVX2"),           # inference commands
    ("mlp", "avx2,avx512f", "unset"),           # MLP training keeps oneDNN's choice
    ("dcgan-mnist", "avx2", "unset"),           # no AVX-512: nothing to avoid
])
def test_without_a_compiler_the_isa_cap_is_set_only_for_stock_convolutions_on_avx512(
        no_compiler, what, flags, expected):
    said, _, value = choose(what, flags, extra_env=no_compiler)
    assert value == expected
    if what.startswith("dcgan"):   # --verbose says why
        assert said.endswith("(native kernels not built: no C++ compiler (no-such-compiler) on PATH)")


@pytest.mark.parametrize("route, what, expected", [("stock", "dcgan", "AVX2"), ("matmul", "dcgan-mnist", "unset")])
def test_a_forced_convolution_route_brings_its_instruction_set(route, what, expected):
    # MINDGAN_CPU_CONVOLUTIONS=stock: the stock kernels need the cap on AVX-512; =matmul: MatMul must not have it
    assert choose(what, "avx2,avx512f", route=route)[-1] == expected


def test_a_users_setting_is_kept_and_a_late_choice_changes_nothing(no_compiler):
    said, _, value = choose("dcgan-mnist", "avx512f", env_value="AVX512_CORE")
    assert value == "AVX512_CORE" and "set by the user" in said
    said, _, value = choose("dcgan-mnist", "avx512f", loaded="loaded", extra_env=no_compiler)
    assert value == "unset" and "MindSpore was loaded before" in said


def test_a_bad_convolution_route_is_one_line_before_mindspore_loads():
    env = {**os.environ, "GLOG_v": "3", "MINDGAN_CPU_CONVOLUTIONS": "fast"}
    out = subprocess.run([sys.executable, "-m", "mindgan.train", "--model", "dcgan", "--epochs", "1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].endswith("error: MINDGAN_CPU_CONVOLUTIONS=fast: choose onednn, matmul, stock or auto")
    assert "Traceback" not in out.stderr


def test_forcing_the_native_kernel_where_it_cannot_be_built_is_one_line(no_compiler):
    env = {**os.environ, "GLOG_v": "3", "MINDGAN_CPU_CONVOLUTIONS": "onednn", **no_compiler}
    out = subprocess.run([sys.executable, "-m", "mindgan.train", "--model", "dcgan", "--epochs", "1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith(
        "error: MINDGAN_CPU_CONVOLUTIONS=onednn: no C++ compiler (no-such-compiler) on PATH")
    assert "Traceback" not in out.stderr


class _Pending:
    """Stands in for a step's result tensor: ready `duration` s after it was launched."""

    def __init__(self, duration):
        self.ready = time.perf_counter() + duration

    def asnumpy(self):
        while time.perf_counter() < self.ready:   # MindSpore's wait spins too
            pass
        return np.zeros(1)


def test_host_sync_learns_to_sleep_through_most_of_a_long_step():
    """With 0.4-s calls it sleeps through most of each within a few calls (a 1-s cap once left
    2-s dcgan steps spinning for their last second), and never longer than a call took."""
    sync = HostSync(enabled=True)
    for _ in range(6):
        sync.fetch(_Pending(0.4))
    assert 0.3 < sync.sleep <= 0.4
    for _ in range(3):   # steps become shorter: the sleep follows them down
        sync.fetch(_Pending(0.1))
    assert sync.sleep <= 0.4 * 0.9 ** 2


def test_an_accelerator_target_chooses_no_cpu_kernels(tmp_path):
    """--device_target GPU: no CPU kernel choice, no native build (this machine then says it
    has no GPU, in one line)."""
    env = {**os.environ, "GLOG_v": "3", "MINDGAN_CACHE": str(tmp_path), "MINDGAN_CPU_CONVOLUTIONS": "auto"}
    out = subprocess.run([sys.executable, "-m", "mindgan.train", "--model", "dcgan", "--device_target", "GPU",
                          "--verbose", "--epochs", "1"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert "CPU kernels: not chosen (--device_target GPU)" in out.stderr
    assert not (tmp_path / "kernels").exists()
