"""A run's config resolved once (mindgan.config): presets, recommended settings, explicit
values, frozen; the library refuses what the command line refuses, with the same line, before
anything is compiled."""
import dataclasses
import json

import numpy as np
import pytest

from mindgan.config import RECOMMENDED, TrainConfig, check_data, resolve_config
from mindgan.training import train


def test_resolved_config_has_the_recommended_settings_unless_the_tutorial_is_asked_for():
    recommended = resolve_config({"seed": 3})
    assert (recommended.ema, recommended.eval_every, recommended.epochs, recommended.seed) == (0.999, 10, 50, 3)
    assert dataclasses.asdict(resolve_config({"seed": 3}, tutorial=True)) == dataclasses.asdict(TrainConfig(seed=3))
    assert resolve_config({"epochs": 7, "ema": None}).epochs == 7  # None is "not given"
    assert resolve_config({"model": "dcgan"}) == TrainConfig(model="dcgan")  # only --conditional's form there
    assert set(RECOMMENDED) == {"mlp", "dcgan", "dcgan-mnist", "dcgan-carpedm20"}


def test_config_is_frozen_and_checked_when_made():
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    with pytest.raises(ValueError, match="--image_size 48: the dcgan family needs 16·2\\^k"):
        TrainConfig(model="dcgan", image_size=48)
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        resolve_config({"epoch": 3})


def test_data_checks_name_the_flag():
    config = TrainConfig(batch_size=100)
    with pytest.raises(ValueError, match=r"^--batch_size 100 is larger than the dataset \(50 images\): give "
                                         r"--batch_size 50 or less$"):
        check_data(config, (50, 1, 28, 28))
    with pytest.raises(ValueError, match="must split evenly over the 3 msrun workers"):
        check_data(config, (500, 1, 28, 28), workers=3)
    with pytest.raises(ValueError, match="makes 1x28x28 images but the data is 1x32x32; give --image_size 32"):
        check_data(config, (500, 1, 32, 32), source="the data")
    assert check_data(config, (500, 3, 28, 28)).channels == 3


def test_train_refuses_what_the_command_line_refuses_before_compiling(tmp_path):
    digits = np.zeros((50, 28, 28), np.uint8)
    with pytest.raises(ValueError, match=r"^--batch_size 64 is larger than the dataset \(50 images\): give "
                                         r"--batch_size 50 or less$"):
        train(TrainConfig(batch_size=64, output_dir=str(tmp_path / "a")), images=digits, progress=False)
    assert not (tmp_path / "a").exists()  # nothing written
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(TrainConfig(batch_size=10))))
    with pytest.raises(ValueError, match="--lr 0.001 differs from the resumed run's 0.0002"):
        train(TrainConfig(batch_size=10, lr=1e-3), resume=run, images=digits, progress=False)
    with pytest.raises(ValueError, match="--lr 0.001 differs from the resumed run's 0.0002"):
        (run / "checkpoints" / "last.ckpt").write_bytes(b"")
        resolve_config({"lr": 1e-3}, resume=run)


def test_long_runs_keep_about_twenty_snapshots_and_fifty_grids():
    assert [TrainConfig(epochs=e).snapshot_interval for e in (5, 20, 21, 50, 200)] == [1, 1, 2, 3, 10]
    assert TrainConfig(epochs=200, snapshot_every=1).snapshot_interval == 1
    assert TrainConfig(epochs=10, save_every=3).snapshot_interval == 3  # snapshots go with the checkpoints
    assert [TrainConfig(epochs=e).grid_interval for e in (10, 50, 51, 200)] == [1, 1, 2, 4]


def test_the_training_gif_is_capped_in_frames_and_size(tmp_path):
    from PIL import Image

    from mindgan.rundir import RunLog

    (tmp_path / "samples").mkdir()
    for i in range(120):
        Image.fromarray(np.full((600, 600), i * 2, np.uint8)).save(tmp_path / "samples" / f"epoch_{i + 1:03d}.png")
    RunLog(tmp_path, 0).write_gif()
    gif = Image.open(tmp_path / "training.gif")
    assert gif.n_frames == 50 and max(gif.size) == 480
    gif.seek(49)
    assert np.asarray(gif.convert("L"))[0, 0] == 238  # the last grid is the last frame
