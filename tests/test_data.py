"""load_mnist on the shipped files, the three layouts, the search order, and batches."""
import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, SHIPPED_MNIST, write_fake_mnist, write_idx

import mindgan.data as data
from mindgan.data import IdxFormatError, load_mnist


@pytest.fixture(scope="module")
def train():
    return load_mnist("train", SHIPPED_MNIST)


def test_real_training_set(train):
    images, labels = train
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert images.mean() == pytest.approx(33.3184, abs=5e-5)


def test_real_test_set():
    images, labels = load_mnist("test", SHIPPED_MNIST)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)


def test_matches_mindspore_mnist_dataset(train, tmp_path):
    """Independent oracle: MindSpore's own MNIST reader over the uncompressed files."""
    import mindspore.dataset as ds

    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        with gzip.open(SHIPPED_MNIST / f"{name}.gz") as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    dataset = ds.MnistDataset(str(tmp_path), usage="train", num_samples=1000, shuffle=False)
    theirs = list(dataset.create_tuple_iterator(output_numpy=True))
    assert len(theirs) == 1000
    images, labels = train
    np.testing.assert_array_equal(np.stack([t[0][..., 0] for t in theirs]), images[:1000])
    np.testing.assert_array_equal(np.array([t[1] for t in theirs]), labels[:1000])


@pytest.mark.parametrize("layout", ["original", "dotted", "tutorial"])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_layouts(tmp_path, layout, gz, split):
    images, labels = write_fake_mnist(tmp_path, split, layout=layout, gz=gz)
    got_images, got_labels = load_mnist(split, tmp_path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_tutorial_folder_itself_as_data_dir(tmp_path):
    images, _ = write_fake_mnist(tmp_path, "test", layout="tutorial")
    np.testing.assert_array_equal(load_mnist("test", tmp_path / "MNIST_Data")[0], images)


def test_search_order(tmp_path, monkeypatch):
    env_images, _ = write_fake_mnist(tmp_path / "env", n=5, seed=1)
    arg_images, _ = write_fake_mnist(tmp_path / "arg", n=7, seed=2)
    monkeypatch.delenv("MINDGAN_DATA", raising=False)
    # Nothing named: the repository's data/mnist.
    assert len(load_mnist("test", download=False)[0]) == 10000
    # MINDGAN_DATA beats the repository's copy ...
    monkeypatch.setenv("MINDGAN_DATA", str(tmp_path / "env"))
    np.testing.assert_array_equal(load_mnist("train", download=False)[0], env_images)
    # ... and the data_dir argument beats MINDGAN_DATA.
    np.testing.assert_array_equal(load_mnist("train", tmp_path / "arg")[0], arg_images)


def test_explicit_place_without_files_does_not_fall_back(tmp_path, monkeypatch):
    monkeypatch.delenv("MINDGAN_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="data_dir argument"):
        load_mnist("train", tmp_path / "typo")
    monkeypatch.setenv("MINDGAN_DATA", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="MINDGAN_DATA"):
        load_mnist("train")


def test_offline_error_lists_places_and_fixes(tmp_path, monkeypatch, closed_port_url):
    monkeypatch.delenv("MINDGAN_DATA", raising=False)
    monkeypatch.setattr(data, "PROJECT_DATA_DIR", tmp_path / "no-repo")
    monkeypatch.setenv("MINDGAN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as info, pytest.warns(UserWarning, match="skipping"):
        load_mnist("train", mirrors=[closed_port_url])
    message = str(info.value)
    for expected in (str(tmp_path / "no-repo"), str(tmp_path / "cache"), "MINDGAN_DATA",
                     "data_dir", "--download", "Download failed"):
        assert expected in message
    assert not (tmp_path / "cache").exists()  # no partial file, not even an empty folder


def test_mismatched_counts(tmp_path):
    write_fake_mnist(tmp_path, n=6)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(IdxFormatError, match="6 images but .* has 5 labels"):
        load_mnist("train", tmp_path)


@pytest.mark.parametrize("bad", ["labels_range", "labels_dtype", "images_rank"])
def test_content_checks(tmp_path, bad):
    write_fake_mnist(tmp_path, n=4)
    if bad == "labels_range":
        write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2, 10, 3], np.uint8))
        match = "label 10 outside 0-9"
    elif bad == "labels_dtype":
        write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(4, dtype=np.int32))
        match = "labels-idx1-ubyte: expected 1-D uint8 labels"
    else:
        write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 784), np.uint8))
        match = "images-idx3-ubyte: expected 3-D uint8 images, found 2-D"
    with pytest.raises(IdxFormatError, match=match):
        load_mnist("train", tmp_path)


def test_batches(train):
    images = data.to_model_range(train[0])
    batches = [images[idx] for idx in data.batch_indices(len(images), 128, seed=3, epoch=0)]
    assert len(batches) == 468
    assert all(b.shape == (128, 1, 28, 28) and b.dtype == np.float32 for b in batches)
    assert min(b.min() for b in batches) == -1.0 and max(b.max() for b in batches) == 1.0
    # Seeded and per-epoch: the same (seed, epoch) replays, another epoch reshuffles.
    again = data.batch_indices(len(images), 128, seed=3, epoch=0)
    np.testing.assert_array_equal(images[again[0]], batches[0])
    other = data.batch_indices(len(images), 128, seed=3, epoch=1)
    assert not np.array_equal(images[other[0]], batches[0])
    # Each image at most once per epoch; without drop_remainder every image exactly once.
    idx = data.batch_indices(60000, 128, seed=3, epoch=0)
    assert len(np.unique(idx)) == idx.size == 468 * 128
    tail = data.batch_indices(60000, 128, seed=3, epoch=0, drop_remainder=False)
    assert len(tail) == 469 and len(tail[-1]) == 60000 - 468 * 128
    assert sorted(np.concatenate(tail).tolist()) == list(range(60000))


def test_to_model_range_values():
    out = data.to_model_range(np.array([[[0, 255], [51, 204]]], np.uint8))
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), [-1.0, 1.0, -0.6, 0.6], atol=1e-6)
    rgb = data.to_model_range(np.full((2, 3, 4, 5), 255, np.uint8))  # channels kept
    assert rgb.shape == (2, 3, 4, 5) and np.all(rgb == 1.0)


def test_data_check_cli():
    proc = subprocess.run([sys.executable, "-m", "mindgan.data"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "(60000, 28, 28)" in proc.stdout and "(10000, 28, 28)" in proc.stdout
