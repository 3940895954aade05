"""Checkpoint loading by any name, clear errors, and atomic writes under SIGKILL."""
import signal
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest
import tutorial_reference
from helpers import REPO

from mindgan.checkpoint import CheckpointError, atomic_save, load_generator
from mindgan.models import Discriminator, Generator, ModelSpec


def test_tutorial_checkpoint_loads_and_matches(tmp_path):
    """Weights saved by the tutorial's own code (names like 'optim_ggeneratormodel.0.weight')."""
    path = tmp_path / "Generator199.ckpt"
    tut_g = tutorial_reference.save_generator(path)
    names = list(ms.load_checkpoint(str(path)))
    assert "optim_ggeneratormodel.0.weight" in names  # really the tutorial's naming
    ours = load_generator(path)
    assert not ours.training
    tut_g.set_train(False)
    z = ms.Tensor(np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32))
    np.testing.assert_allclose(ours(z).asnumpy(), tut_g(z).asnumpy(), rtol=1e-6, atol=1e-6)


def test_own_generator_round_trip(tmp_path):
    g = Generator()
    # Non-trivial BatchNorm statistics, so that loading them is really tested.
    for p in g.get_parameters():
        if "moving" in p.name:
            p.set_data(ms.Tensor(np.random.default_rng(1).uniform(0.5, 2, p.shape).astype(np.float32)))
    atomic_save(g, tmp_path / "g.ckpt")
    loaded = load_generator(tmp_path / "g.ckpt")
    for a, b in zip(g.get_parameters(), loaded.get_parameters()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_checkpoints_are_ordinary_files_not_read_only(tmp_path):
    """MindSpore writes 0400; a user must be able to overwrite, move or delete them."""
    import stat

    path = atomic_save(Generator(), tmp_path / "g.ckpt")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    atomic_save(Generator(), path)  # and again over it


@pytest.mark.parametrize("case", ["missing", "png", "truncated", "discriminator", "latent"])
def test_bad_checkpoints_give_one_clear_error(tmp_path, case):
    path = tmp_path / f"{case}.ckpt"
    kwargs = {}
    if case == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
        expected = "not a readable MindSpore checkpoint"
    elif case == "truncated":
        atomic_save(Generator(), path)
        path.write_bytes(path.read_bytes()[:100_000])
        expected = "not a readable MindSpore checkpoint"
    elif case == "discriminator":
        atomic_save(Discriminator(), path)
        expected = "discriminator checkpoint"
    elif case == "latent":
        atomic_save(Generator(ModelSpec(latent_size=64)), path)
        kwargs = {"latent_size": 100}
        expected = "latent size 64"
    else:
        expected = "no such file"
    with pytest.raises(CheckpointError) as info:
        load_generator(path, **kwargs)
    assert str(path) in str(info.value) and expected in str(info.value)
    assert "\n" not in str(info.value)


WRITER = """
import os, sys
os.environ["GLOG_v"] = "3"
from mindgan.checkpoint import atomic_save
from mindgan.models import Generator
g = Generator()
path = sys.argv[1]
atomic_save(g, path)
print("first", flush=True)
while True:
    atomic_save(g, path)
"""


def test_kill_during_checkpoint_write_leaves_loadable_file(tmp_path):
    path = tmp_path / "generator.ckpt"
    rng = np.random.default_rng(0)
    for delay in rng.uniform(0.0, 0.3, 4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "first"
        time.sleep(delay)  # somewhere in the middle of later writes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert load_generator(path).latent_size == 100
