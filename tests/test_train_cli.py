"""`python -m mindgan.train` in real subprocesses: artifacts, bad flags, Ctrl-C and resume."""
import csv
import json
import os
import signal
import subprocess
import sys

import imageio.v2 as imageio
import pytest
from helpers import REPO

ENV = {**os.environ, "GLOG_v": "3", "PYTHONUNBUFFERED": "1"}


def run_train(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "mindgan.train", *map(str, args)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def test_smoke_run_writes_every_artifact(tmp_path):
    out = tmp_path / "run"
    proc = run_train("--device_target", "CPU", "--epochs", "1", "--max_steps", "20",
                     "--output_dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for rel in ("checkpoints/generator.ckpt", "checkpoints/discriminator.ckpt",
                "checkpoints/last.ckpt", "samples/epoch_001.png", "losses.csv",
                "loss_curve.png", "training.gif", "config.json"):
        assert (out / rel).is_file(), rel
    assert imageio.imread(out / "samples" / "epoch_001.png").shape == (456, 456)  # 5x5 of 28px, x3
    curve = imageio.imread(out / "loss_curve.png")
    assert curve.shape[:2] == (450, 800)
    with open(out / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "step", "loss_d", "loss_g", "d_real", "d_fake"]
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == 128 and config["lr"] == 2e-4 and config["max_steps"] == 20
    assert config["versions"]["device"] == "CPU"
    assert {"mindgan", "mindspore", "numpy", "python"} <= config["versions"].keys()
    assert "epoch   1/1  step     20" in proc.stdout
    assert config["eval_every"] == 10 and not (out / "metrics.csv").exists()  # never measured: no empty log
    # The MindSpore log flood stays out unless --verbose.
    assert "[WARNING]" not in proc.stderr and "[INFO]" not in proc.stderr


def test_gif_has_one_frame_per_sampled_epoch(tmp_path):
    out = tmp_path / "run"
    proc = run_train("--device_target", "CPU", "--epochs", "3", "--subset", "256",
                     "--batch_size", "64", "--output_dir", out, "--no_progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "epoch_001.png", "epoch_002.png", "epoch_003.png"]
    assert len(imageio.mimread(out / "training.gif")) == 3
    from PIL import Image, ImageSequence  # frame delays as a GIF viewer reads them

    with Image.open(out / "training.gif") as gif:
        delays = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
        assert gif.info.get("loop") == 0  # loops forever
    assert delays == [250, 250, 1000]  # a quarter second an epoch, the result held a second
    assert sorted(p.name for p in (out / "checkpoints").glob("generator_epoch_*.ckpt")) == [
        "generator_epoch_001.ckpt", "generator_epoch_002.ckpt", "generator_epoch_003.ckpt"]


@pytest.mark.parametrize("args, message", [
    (["--batch_size", "0"], "--batch_size must be positive"),
    (["--batch_size", "60001"], "larger than the dataset (60000 images): give --batch_size 60000 or less"),
    (["--steps", "5"], "unrecognized arguments: --steps 5 (did you mean --steps_per_call or --g_steps?)"),
    (["--max", "5"], "unrecognized arguments: --max 5 (did you mean --max_steps"),
    (["--epochs", "-1"], "--epochs must be positive"),
    (["--epochs", "ten"], "--epochs must be an integer"),
    (["--lr", "-0.1"], "--lr must be positive"),
    (["--beta1", "1.5"], "--beta1 must be in [0, 1)"),
    (["--device_target", "TPU"], "invalid choice: 'TPU'"),
    (["--device_target", "GPU"], "no usable GPU backend"),
    (["--device_target", "Ascend"], "no usable Ascend backend"),
    (["--resume", "/nonexistent/run"], "no checkpoints/last.ckpt there"),
    (["--data_dir", "/nonexistent/mnist"], "/nonexistent/mnist: no such folder or file"),
    (["--background", "mauve", "--data_dir", "mindgan"], "--background 'mauve': give white"),
    (["--model", "gan"], "invalid choice: 'gan'"),
    (["--model", "dcgan"], "makes 1x64x64 images but MNIST is 1x28x28; and the dcgan family needs 16·2^k"),
    (["--model", "mlp", "--image_size", "32"], "MNIST is 1x28x28; give --image_size 28 --channels 1"),
    (["--model", "dcgan", "--image_size", "48"],
     "--image_size 48: the dcgan family needs 16·2^k pixels (16, 32, 64, 128, ...); --model dcgan-carpedm20 "),
    (["--model", "dcgan-carpedm20", "--image_size", "12"], "--image_size 12: the dcgan-carpedm20 family needs 16"),
    (["--model", "dcgan-carpedm20"], "is carpedm20's conditional MNIST model"),
    (["--channels", "2"], "invalid choice: 2"),
    (["--g_steps", "0"], "--g_steps must be positive"),
    (["--noise", "cauchy"], "invalid choice: 'cauchy'"),
])
def test_bad_flags_exit_2_with_one_line(args, message):
    proc = run_train(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_existing_output_dir_is_not_overwritten(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    proc = run_train("--output_dir", tmp_path, "--device_target", "CPU")
    assert proc.returncode == 2 and "exists and is not empty" in proc.stderr
    assert (tmp_path / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_help_explains_flags():
    proc = run_train("--help")
    assert proc.returncode == 0
    for flag in ("--device_target", "--epochs", "--batch_size", "--latent_size", "--lr",
                 "--beta1", "--beta2", "--seed", "--data_dir", "--output_dir", "--resume",
                 "--save_every", "--max_steps", "--log_every", "--verbose", "--mode", "--model",
                 "--ngf", "--ndf", "--image_size", "--channels", "--noise", "--g_steps",
                 "--num_samples", "--no_progress", "--ema", "--background", "--crop", "--eval_every", "--eval_samples",
                 "dcgan-mnist"):
        assert flag in proc.stdout


def test_sigint_saves_state_that_resumes(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mindgan.train", "--device_target", "CPU", "--epochs", "1000",
         "--subset", "512", "--batch_size", "64", "--output_dir", str(out), "--no_progress"],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until training is under way (one epoch done)
        if line.startswith("epoch   1/1000"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert f"Resume with: python -m mindgan.train --resume {out}" in stdout
    assert "Traceback" not in stderr

    with open(out / "losses.csv", newline="") as f:
        saved_steps = int(list(csv.DictReader(f))[-1]["step"])
    epochs = saved_steps // 8 + 2  # 8 steps per epoch: finish the current one and one more
    resumed = run_train("--resume", out, "--epochs", epochs, "--no_progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with open(out / "losses.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, epochs * 8 + 1))  # no gap, no repeat across the interruption


def test_resume_refuses_changed_hyperparameters_and_a_damaged_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert run_train("--device_target", "CPU", "--epochs", "1", "--subset", "128",
                     "--batch_size", "64", "--output_dir", out, "--no_progress").returncode == 0
    proc = run_train("--resume", out, "--lr", "0.1")
    assert proc.returncode == 2 and "--lr 0.1 differs from the resumed run's 0.0002" in proc.stderr
    proc = run_train("--resume", out, "--model", "dcgan-mnist")
    assert proc.returncode == 2 and "--model dcgan-mnist differs from the resumed run's mlp" in proc.stderr
    proc = run_train("--resume", out, "--output_dir", tmp_path / "elsewhere")
    assert proc.returncode == 2 and "continues in its own folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "elsewhere").exists()
    last = out / "checkpoints" / "last.ckpt"  # damaged: one line, and the folder as it was
    last.write_bytes(last.read_bytes()[:5000])
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = run_train("--resume", out, "--epochs", "2")
    assert proc.returncode == 2 and "last.ckpt: not a readable MindSpore checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_says_where_it_continues_and_logs_plain_progress_lines(tmp_path):
    """Resuming prints one line (from which step and epoch, to what end); with stderr a pipe
    (a log file, CI) progress comes as plain lines, not a carriage-return bar."""
    out = tmp_path / "run"
    assert run_train("--device_target", "CPU", "--epochs", "1", "--subset", "640",
                     "--batch_size", "64", "--output_dir", out, "--no_progress").returncode == 0
    proc = run_train("--resume", out, "--epochs", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"resuming {out} from step 10 (epoch 2, step 0 of 10) to epoch 2" in proc.stdout
    assert "\r" not in proc.stderr
    progress = [line for line in proc.stderr.splitlines() if "epoch 2/2  step" in line]
    assert len(progress) == 9 and "loss_d" in progress[-1], proc.stderr  # steps 1..9 of 10
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    proc = run_train("--resume", out, "--epochs", "1")  # already past it: nothing to do, said so
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.strip().endswith(f"--epochs 1: {out} is already at step 20 (epoch 2); nothing to do. "
                                        f"To continue it, give --epochs 3 or more")
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before


def test_the_command_line_adds_the_measured_recipe_unless_told_tutorial(tmp_path):
    """mlp runs get --ema 0.999 --eval_every 10 --epochs 50 by default (docs/RESULTS.md); --tutorial, an
    explicit flag or another family keeps the tutorial's values; a resumed run keeps its own."""
    from mindgan.train import build_parser, resolve_config

    def config(*flags):
        return resolve_config(build_parser().parse_args(list(flags)))

    assert (config().ema, config().eval_every, config().epochs) == (0.999, 10, 50)
    tutorial = config("--tutorial")
    assert (tutorial.ema, tutorial.eval_every, tutorial.epochs) == (0.0, 0, 200)
    assert config("--ema", "0").ema == 0.0 and config("--ema", "0").eval_every == 10
    assert config("--model", "dcgan-mnist").ema == 0.0
    with pytest.raises(ValueError, match="--tutorial with --resume"):
        config("--tutorial", "--resume", str(tmp_path))


def test_python_m_mindgan_lists_the_commands_and_runs_one():
    listed = subprocess.run([sys.executable, "-m", "mindgan"], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and "No module named" not in listed.stderr
    for command in ("train", "infer", "export", "evaluate", "data", "classifier"):
        assert f"  {command} " in listed.stdout
    unknown = subprocess.run([sys.executable, "-m", "mindgan", "trian"], cwd=REPO, env=ENV, capture_output=True,
                             text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown command 'trian' (choose from train," in unknown.stderr
    helped = subprocess.run([sys.executable, "-m", "mindgan", "train", "--help"], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--steps_per_call" in helped.stdout
