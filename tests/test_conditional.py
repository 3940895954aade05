"""Conditional generation (`--conditional`): labels from MNIST and from class sub-folders,
G(z, y) and D(x, y) in every family, per-class sample grids, `infer --label`, export with the
label as a second input, exact resume, and the one-line refusals."""
import json
import os
import re
import subprocess
import sys
import zipfile

import imageio.v2 as imageio
import mindspore as ms
import numpy as np
import pytest
from helpers import REPO
from mindspore import nn

from mindgan.checkpoint import load_generator
from mindgan.config import TrainConfig
from mindgan.images import ImageSetError, classes_of
from mindgan.infer import LabelError, generate, interpolate, label_grid
from mindgan.models import ModelSpec, build, count_params
from mindgan.training import train

ENV = {**os.environ, "GLOG_v": "3"}
TINY = {
    "mlp": ModelSpec("mlp", latent_size=8, channels=3, image_size=8),
    "dcgan": ModelSpec("dcgan", latent_size=8, channels=3, image_size=16, ngf=4, ndf=4),
    "dcgan-mnist": ModelSpec("dcgan-mnist", latent_size=8, channels=1, image_size=12, ngf=4, ndf=4),
    "dcgan-carpedm20": ModelSpec("dcgan-carpedm20", latent_size=8, channels=3, image_size=17, ngf=4, ndf=4),
}


def with_classes(spec, k=3):
    import dataclasses

    return dataclasses.replace(spec, num_classes=k, class_names=tuple(f"c{i}" for i in range(k)))


@pytest.mark.parametrize("condition", ["concat", "projection"])
@pytest.mark.parametrize("name", sorted(TINY))
def test_every_family_builds_a_conditional_pair_that_reads_the_label(name, condition):
    import dataclasses

    spec = dataclasses.replace(with_classes(TINY[name]), condition=condition)
    ms.set_seed(0)
    net_g, net_d = build(spec)
    plain_g, plain_d = build(TINY[name])
    # the label joins z (one input per class more in G's first layer) and D's input, or D's
    # last features through an embedding
    assert count_params(net_g) > count_params(plain_g) and count_params(net_d) > count_params(plain_d)
    names = [p.name for net in (net_g, net_d) for p in net.get_parameters()]
    assert len(names) == len(set(names)) and (condition == "projection") == any("embedding" in n for n in names)
    net_g.set_train(False)
    net_d.set_train(False)
    z = ms.Tensor(np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32))
    a = net_g(z, ms.Tensor(np.array([0, 0], np.int32)))
    b = net_g(z, ms.Tensor(np.array([2, 2], np.int32)))
    a, b = a.asnumpy(), b.asnumpy()  # (carpedm20's sigma-0.02 weights make outputs near 1e-5)
    assert a.shape == (2, *spec.image_shape) and np.abs(a - b).max() > 1e-2 * np.abs(a).max()
    x = ms.Tensor(np.random.default_rng(1).uniform(-1, 1, a.shape).astype(np.float32))
    d0 = net_d(x, ms.Tensor(np.array([0, 0], np.int32))).asnumpy()
    d1 = net_d(x, ms.Tensor(np.array([1, 1], np.int32))).asnumpy()
    assert d0.shape == (2, 1) and np.abs(d0 - d1).max() > 1e-6  # the same image, another label


# ------------------------------------------------------------------ labels from folders

def test_classes_are_first_level_sub_folders_sorted_by_name():
    labels, classes = classes_of(["dog/1.png", "cat/a/2.png", "cat/3.png", "emu/4.png"], "pets")
    assert classes == ("cat", "dog", "emu") and labels.tolist() == [1, 0, 0, 2]
    # a zip that wraps everything in one top folder counts from inside it
    labels, classes = classes_of(["pets/dog/1.png", "pets/cat/2.png"], "pets.zip")
    assert classes == ("cat", "dog") and labels.tolist() == [1, 0]
    with pytest.raises(ImageSetError, match=r"1 images in pets are not in a class sub-folder \(e.g. x.png\)"):
        classes_of(["dog/1.png", "x.png"], "pets")


def test_the_data_check_names_the_classes_conditional_training_would_take(tmp_path):
    from mindgan.data import _classes_line

    folder = write_classes(tmp_path / "discs", {"red": blobs(2, (230, 30, 20)), "blue": blobs(3, (20, 40, 230))})
    assert _classes_line(folder).endswith("sub-folders): 2: blue 3, red 2")


def blobs(n, colour, size=8, seed=0):
    """uint8 `[n, 3, size, size]`: a disc of `colour` on grey, random place and radius."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.full((n, 3, size, size), 128, np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(2, size - 2, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(2, 3) ** 2
        out[i][:, disc] = np.array(colour, np.uint8)[:, None]
    return out


def write_classes(root, classes: dict, zip_path=None):
    """PNG files root/<class>/<i>.png from {class: uint8 [n, 3, H, W]} (or a zip of them)."""
    from PIL import Image

    for name, images in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(img.transpose(1, 2, 0)).save(root / name / f"{i:03d}.png")
    if zip_path:
        with zipfile.ZipFile(zip_path, "w") as z:
            for path in sorted(root.rglob("*.png")):
                z.write(path, path.relative_to(root.parent).as_posix())
        return zip_path
    return root


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A conditional MLP on a folder of red and blue discs (class sub-folders), 8x8, trained
    from the command line, and the folder."""
    tmp = tmp_path_factory.mktemp("cond")
    data = write_classes(tmp / "discs", {"blue": blobs(256, (20, 40, 230), seed=1),
                                         "red": blobs(256, (230, 30, 20), seed=2)})
    out = tmp / "run"
    proc = subprocess.run([sys.executable, "-m", "mindgan.train", "--conditional", "--data_dir", str(data),
                           "--image_size", "8", "--epochs", "12", "--batch_size", "64", "--ema", "0",
                           "--eval_every", "0", "--num_samples", "16", "--output_dir", str(out), "--no_progress"],
                          cwd=REPO, env={**ENV, "MINDGAN_CACHE": str(tmp / "cache")},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, data


def test_a_folder_with_class_sub_folders_trains_a_generator_that_draws_the_class_asked_for(colour_run):
    out, _ = colour_run
    config = json.loads((out / "config.json").read_text())
    assert config["conditional"] and config["class_names"] == ["blue", "red"]
    net = load_generator(out / "checkpoints" / "generator.ckpt")
    assert (net.spec.num_classes, net.spec.class_names) == (2, ("blue", "red"))
    red = generate(net, 64, seed=0, labels="red")
    blue = generate(net, 64, seed=0, labels=0)
    # red minus blue channel, averaged over the images: positive for "red", negative for "blue"
    assert (red[:, 0] - red[:, 2]).mean() > 0.05 > -0.05 > (blue[:, 0] - blue[:, 2]).mean()
    # one grid row per class, four columns (16 samples), the same noise down each column
    grid = imageio.imread(out / "samples" / "epoch_012.png")
    assert grid.shape[0] * 42 == grid.shape[1] * 22  # (2 x 10 + 2) by (4 x 10 + 2) pixels, scaled


def test_generate_and_label_grid_take_labels_by_index_or_name(colour_run):
    net = load_generator(colour_run[0] / "checkpoints" / "generator.ckpt")
    by_name, by_index = generate(net, 5, seed=3, labels="red"), generate(net, 5, seed=3, labels=[1] * 5)
    np.testing.assert_array_equal(by_name, by_index)
    mixed = generate(net, 2, seed=3, labels=["blue", 1])
    np.testing.assert_allclose(mixed[1], by_name[1], atol=1e-5)  # the same z stream, label for label
    images, rows = label_grid(net, "all", per_label=3, seed=0)
    assert images.shape == (6, 3, 8, 8) and rows == ["blue", "red"]
    np.testing.assert_allclose(images[3:], generate(net, 3, seed=0, labels="red"), atol=1e-5)  # batch 6 vs 3
    for bad, message in ((2, "has 2 classes, 0-1 (blue, red)"), ("green", "not a class of this generator")):
        with pytest.raises(LabelError, match=re.escape(message)):
            generate(net, 1, labels=bad)


def test_a_conditional_walk_holds_each_column_to_its_class(colour_run):
    net = load_generator(colour_run[0] / "checkpoints" / "generator.ckpt")
    frames = interpolate(net, 2, seed=4, steps=4, labels=["red", "blue"])
    assert frames.shape == (8, 2, 3, 8, 8)
    # the walk starts at the first latent of the seed's stream, drawn once per class
    start, _ = label_grid(net, ["red", "blue"], per_label=1, seed=4)
    np.testing.assert_allclose(frames[0], start, atol=1e-5)
    redness = (frames[:, :, 0] - frames[:, :, 2]).mean(axis=(2, 3))  # [frames, columns]
    assert (redness[:, 0] > redness[:, 1]).all()
    assert interpolate(net, 2, seed=4, steps=2).shape == (4, 2, 3, 8, 8)  # default: every class
    with pytest.raises(LabelError, match="not a class of this generator"):
        interpolate(net, 2, labels=["green"])


def run_infer(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mindgan.infer", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_infer_cli_draws_labels_and_refuses_ones_the_generator_lacks(colour_run, tmp_path):
    ckpt = colour_run[0] / "checkpoints" / "generator.ckpt"
    proc = run_infer("--ckpt", ckpt, "--label", "red,blue", "--num", "4", "--out", "g.png", "--npy", "x.npy",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "x.npy").shape == (8, 3, 8, 8) and "rows: red, blue" in proc.stdout
    assert imageio.imread(tmp_path / "g.png").ndim == 3
    proc = run_infer("--ckpt", ckpt, "--interpolate", "2", "--label", "red,blue", "--gif", "w.gif", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    frames = imageio.mimread(tmp_path / "w.gif")
    assert len(frames) == 2 * 16 and frames[0].shape[1] > 1.5 * frames[0].shape[0]  # two columns side by side
    assert "columns: red, blue" in proc.stdout
    for label, message in (("12", "--label 12: the generator has 2 classes"),
                           ("cow", "--label cow: not a class of this generator (its classes: blue, red)")):
        out = tmp_path / label
        out.mkdir()
        proc = run_infer("--ckpt", ckpt, "--label", label, cwd=out)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert message in proc.stderr and not any(out.iterdir())


def test_label_for_an_unconditional_generator_is_one_line(tmp_path):
    from mindgan.checkpoint import save_generator
    from mindgan.models import build_generator

    save_generator(build_generator(TINY["mlp"]), tmp_path / "g.ckpt")
    proc = run_infer("--ckpt", tmp_path / "g.ckpt", "--label", "3", cwd=tmp_path)
    assert proc.returncode == 2 and "--label 3: this is an unconditional generator" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "samples.png").exists()


def test_conditional_generator_exports_with_the_label_as_second_input(colour_run, tmp_path):
    from mindgan.export import export_generator

    ort = pytest.importorskip("onnxruntime")
    net = load_generator(colour_run[0] / "checkpoints" / "generator.ckpt")
    z = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    y = np.array([1, 0], np.int32)
    net.set_train(False)
    expected = net(ms.Tensor(z), ms.Tensor(y)).asnumpy()
    graph = nn.GraphCell(ms.load(str(export_generator(net, tmp_path / "g.mindir"))))
    np.testing.assert_allclose(graph(ms.Tensor(z), ms.Tensor(y)).asnumpy(), expected, rtol=1e-4, atol=1e-5)
    session = ort.InferenceSession(str(export_generator(net, tmp_path / "g.onnx", "ONNX", batch_size=2)),
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert len(names) == 2
    (out,) = session.run(None, {names[0]: z, names[1]: y})
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout, message", [
    ("flat", "images in {data} are not in a class sub-folder"),
    ("one", "has one class only ('only')"),
])
def test_conditional_without_classes_is_one_line_and_writes_nothing(tmp_path, layout, message):
    from PIL import Image

    data = tmp_path / "data"
    folder = data / ("only" if layout == "one" else "")
    folder.mkdir(parents=True)
    for i, img in enumerate(blobs(8, (200, 0, 0))):
        Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "mindgan.train", "--conditional", "--data_dir", str(data),
                           "--image_size", "8", "--output_dir", str(out)], cwd=REPO,
                          env={**ENV, "MINDGAN_CACHE": str(tmp_path / "cache")}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(data=data) in lines[0], proc.stderr
    assert not out.exists()


def test_conditional_mlp_on_labelled_arrays_resumes_exactly(tmp_path):
    from test_training import assert_same_run

    images = np.concatenate([blobs(32, (20, 40, 230), seed=1), blobs(32, (230, 30, 20), seed=2)])
    labels = np.repeat([0, 1], 32)
    common = dict(conditional=True, image_size=8, batch_size=16, seed=4, num_samples=4)
    straight = train(TrainConfig(epochs=2, output_dir=str(tmp_path / "a"), **common),
                     images=images, labels=labels, progress=False)
    split = train(TrainConfig(epochs=1, output_dir=str(tmp_path / "b"), **common),
                  images=images, labels=labels, progress=False)
    train(TrainConfig(epochs=2, **common), resume=split, images=images, labels=labels, progress=False)
    assert_same_run(straight, split, steps=8)
    assert json.loads((straight / "config.json").read_text())["class_names"] == ["0", "1"]


def test_conditional_figures_read_the_digit_asked_for_and_compare_each_digit_to_its_own():
    from mindgan.evaluate import _conditional_figures, fid, gaussian_stats

    rng = np.random.default_rng(0)
    test_labels = np.repeat(np.arange(10), 300)
    centres = rng.normal(0, 3, (10, 6))
    feats_test = centres[test_labels] + rng.normal(0, 1, (3000, 6))
    labels = np.repeat(np.arange(10), 200).astype(np.int32)
    feats_fake = centres[labels] + rng.normal(0, 1, (2000, 6))
    read = labels.copy()
    read[:200] = 1  # every requested 0 is read as a 1: 90 % right
    probs_fake, probs_test = np.eye(10)[read], np.eye(10)[test_labels]
    r = _conditional_figures(feats_fake, probs_fake, labels, feats_test, probs_test, test_labels)
    assert r["conditional_accuracy"] == pytest.approx(0.9) and r["classifier_test_accuracy"] == 1.0
    assert len(r["intra_fid"]) == 10 and max(r["intra_fid"]) < 0.5  # same distribution per digit
    shifted = feats_fake + (labels == 3)[:, None] * 2.0  # digit 3's samples off by 2 in 6 dims: FID ~24
    r = _conditional_figures(shifted, probs_fake, labels, feats_test, probs_test, test_labels)
    expected = fid(gaussian_stats(shifted[labels == 3]), gaussian_stats(feats_test[test_labels == 3]))
    assert r["intra_fid"][3] == pytest.approx(expected, abs=1e-3) and 20 < expected < 30
    assert r["intra_fid_mean"] == pytest.approx(np.mean(r["intra_fid"]), abs=1e-2)


@pytest.mark.parametrize("model, condition, size", [("dcgan-carpedm20", "projection", 16),
                                                    ("dcgan-mnist", "concat", 8)])
def test_convolutional_families_train_conditionally(tmp_path, model, condition, size):
    images = np.concatenate([blobs(32, (20, 40, 230), size=size, seed=1), blobs(32, (230, 30, 20), size=size, seed=2)])
    if model == "dcgan-mnist":
        images = images[:, :1]
    config = TrainConfig(model=model, conditional=True, condition=condition, class_names=("blue", "red"),
                         image_size=size, ngf=4, ndf=4, batch_size=16, epochs=1, num_samples=4,
                         output_dir=str(tmp_path / "run"))
    run = train(config, images=images, labels=np.repeat([0, 1], 32), progress=False)
    net = load_generator(run / "checkpoints" / "generator.ckpt")
    assert (net.spec.num_classes, net.spec.condition, net.spec.class_names) == (2, condition, ("blue", "red"))
    assert imageio.imread(run / "samples" / "epoch_001.png").shape[0] > 0
    assert generate(net, 3, seed=0, labels="red").shape == (3, images.shape[1], size, size)


def test_the_command_line_uses_projection_only_for_conditional_runs():
    from mindgan.config import resolve_config

    assert resolve_config({"conditional": True}).condition == "projection"  # measured better (README)
    assert resolve_config({"conditional": True}, tutorial=True).condition == "concat"  # the cGAN paper's
    assert resolve_config({}).condition == "concat"  # nothing to condition on: unconditional runs as before
    assert resolve_config({"model": "dcgan", "conditional": True}).condition == "projection"  # measured too
    assert resolve_config({"model": "dcgan", "conditional": True}, tutorial=True).condition == "concat"
