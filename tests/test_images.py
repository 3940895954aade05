"""Image-folder datasets: decoding every mode and format Pillow writes, transparency, EXIF,
resizing, bad files, zips, the cache; then training and inference on folders through the CLIs."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import REPO
from PIL import Image

from mindgan import images as imgs
from mindgan.images import ImageSetError, Preprocess, load_images

ENV = {**os.environ, "GLOG_v": "3"}


def solid(mode, size=(20, 20), colour=None):
    """A one-colour Pillow image of `mode`."""
    defaults = {"L": 90, "LA": (90, 255), "RGB": (200, 30, 60), "RGBA": (200, 30, 60, 255),
                "CMYK": (0, 255, 255, 0), "I;16": 40000, "1": 1}
    return Image.new(mode, size, defaults[mode] if colour is None else colour)


def decode_file(path, **prep):
    return imgs.decode(path.read_bytes(), Preprocess(**{"image_size": 8, **prep}))


@pytest.mark.parametrize("mode, fmt, expected_rgb", [
    ("L", "PNG", (90, 90, 90)),
    ("LA", "PNG", (90, 90, 90)),
    ("RGB", "PNG", (200, 30, 60)),
    ("RGBA", "PNG", (200, 30, 60)),
    ("RGB", "JPEG", (200, 30, 60)),
    ("CMYK", "JPEG", (255, 0, 0)),
    ("RGB", "BMP", (200, 30, 60)),
    ("RGB", "WEBP", (200, 30, 60)),
    ("I;16", "PNG", (156, 156, 156)),   # 40000 / 257: scaled to 8 bits, not clipped at 255
    ("1", "PNG", (255, 255, 255)),
])
def test_each_mode_and_format_decodes_to_its_colour(tmp_path, mode, fmt, expected_rgb):
    path = tmp_path / f"x.{fmt.lower()}"
    solid(mode).save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    rgb = decode_file(path)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == np.uint8
    tolerance = 6 if fmt in ("JPEG", "WEBP") else 1
    np.testing.assert_allclose(rgb.reshape(3, -1).mean(1), expected_rgb, atol=tolerance)
    gray = decode_file(path, channels=1)
    assert gray.shape == (1, 8, 8)


def test_palette_images_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 20, 200, 20] + [0] * 762)
    pal.save(tmp_path / "opaque.png")
    pal.save(tmp_path / "clear.png", transparency=1)  # the tRNS chunk: index 1 is transparent
    np.testing.assert_array_equal(decode_file(tmp_path / "opaque.png")[:, 0, 0], [20, 200, 20])
    np.testing.assert_array_equal(decode_file(tmp_path / "clear.png")[:, 0, 0], [255, 255, 255])
    black = decode_file(tmp_path / "clear.png", background=(0, 0, 0))
    assert black.max() == 0  # on a black background, never dropped to black by accident otherwise


def test_transparency_is_composited_on_the_background(tmp_path):
    im = Image.new("RGBA", (16, 16), (0, 0, 255, 0))   # fully transparent blue
    im.paste((255, 0, 0, 128), (0, 0, 16, 8))           # half-transparent red on the top half
    im.save(tmp_path / "a.png")
    out = decode_file(tmp_path / "a.png", image_size=16, background=(255, 255, 255))
    np.testing.assert_array_equal(out[:, 12, 8], [255, 255, 255])   # transparent: background
    np.testing.assert_allclose(out[:, 2, 8], [255, 127, 127], atol=2)  # 50 % red over white


def test_gif_first_frame(tmp_path):
    frames = [solid("RGB", colour=(255, 0, 0)), solid("RGB", colour=(0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    np.testing.assert_allclose(decode_file(tmp_path / "anim.gif").reshape(3, -1).mean(1),
                               [255, 0, 0], atol=2)


def two_tone(size=(40, 20)):
    """Left half black, right half white."""
    im = Image.new("L", size, 0)
    im.paste(255, (size[0] // 2, 0, size[0], size[1]))
    return im


def test_exif_orientation_is_respected(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the black left half ends up on top
    two_tone().save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    two_tone().save(tmp_path / "plain.jpg", quality=95)
    rotated = decode_file(tmp_path / "rotated.jpg", image_size=16, channels=1)[0]
    plain = decode_file(tmp_path / "plain.jpg", image_size=16, channels=1)[0]
    assert rotated[:6].mean() < 40 and rotated[-6:].mean() > 215
    assert plain[:, :6].mean() < 40 and plain[:, -6:].mean() > 215


def test_short_side_resize_then_centre_crop_and_the_crop_option(tmp_path):
    im = Image.new("L", (60, 30), 0)
    im.paste(255, (15, 0, 45, 30))  # the centre square of the 60x30 picture is white
    im.save(tmp_path / "wide.png")
    out = decode_file(tmp_path / "wide.png", image_size=10, channels=1)[0]
    # resized to 20x10, then the centre 10x10; squashed instead of cropped, the sides would be black
    assert out.shape == (10, 10) and out[:, 1:-1].min() == 255 and out.min() > 200
    im = Image.new("L", (100, 100), 0)
    im.paste(255, (40, 40, 60, 60))   # a 20x20 white centre
    im.save(tmp_path / "big.png")
    assert decode_file(tmp_path / "big.png", image_size=10, channels=1, crop=20)[0, 1:-1, 1:-1].min() > 240
    assert decode_file(tmp_path / "big.png", image_size=10, channels=1).mean() < 60


def write_set(folder, n=6):
    """n RGB PNGs in a nested folder, and files that are not images."""
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(sub / f"{i:02d}.png")
    (folder / "README.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / ".hidden.png").write_bytes(b"ignored: a hidden file")


def test_folder_is_searched_recursively_in_sorted_order_and_non_images_ignored(tmp_path, capsys):
    write_set(tmp_path / "set")
    names, _ = imgs.list_images(tmp_path / "set")
    assert names == ["a/01.png", "a/03.png", "a/05.png", "b/00.png", "b/02.png", "b/04.png"]
    out = load_images(tmp_path / "set", Preprocess(12), cache=False, progress=False)
    assert out.shape == (6, 3, 12, 12)
    np.testing.assert_array_equal(out[0].transpose(1, 2, 0),
                                  np.asarray(Image.open(tmp_path / "set" / "a" / "01.png")))
    assert capsys.readouterr().err == ""  # no word about README.txt or .DS_Store


def test_undecodable_files_are_skipped_with_one_line_each_and_counted(tmp_path):
    write_set(tmp_path / "set", n=4)
    good = (tmp_path / "set" / "b" / "00.png").read_bytes()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "full.jpg", quality=90)
    (tmp_path / "set" / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    (tmp_path / "set" / "text.png").write_text("this is not a PNG")
    (tmp_path / "set" / "empty.png").write_bytes(b"")
    lines = []
    out = load_images(tmp_path / "set", Preprocess(12), cache=False, progress=False, log=lines.append)
    assert len(out) == 4
    assert len(lines) == 4 and lines[-1].startswith("3 of 7 files")
    for name in ("cut.jpg", "text.png", "empty.png"):
        assert sum(name in line and line.startswith("warning: skipped") for line in lines) == 1
    assert all("\n" not in line for line in lines) and good


def test_a_folder_without_decodable_images_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageSetError, match="empty: no image files in it"):
        load_images(tmp_path / "empty", Preprocess(8), cache=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("no")
    with pytest.raises(ImageSetError, match="bad: none of its 1 image files could be decoded"):
        load_images(tmp_path / "bad", Preprocess(8), cache=False, log=lambda m: None)


def test_a_zip_gives_what_its_folder_gives(tmp_path):
    write_set(tmp_path / "set")
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as z:
        for path in sorted((tmp_path / "set").rglob("*")):
            z.write(path, "faces/" + path.relative_to(tmp_path / "set").as_posix())
        z.writestr("__MACOSX/faces/._00.png", b"resource fork")
    from_zip = load_images(tmp_path / "set.zip", Preprocess(12), cache=False, progress=False)
    from_dir = load_images(tmp_path / "set", Preprocess(12), cache=False, progress=False)
    np.testing.assert_array_equal(from_zip, from_dir)


def test_parallel_decoding_gives_the_serial_result(tmp_path, monkeypatch):
    write_set(tmp_path / "set", n=10)
    monkeypatch.setattr(imgs, "PARALLEL_FROM", 4)
    serial = load_images(tmp_path / "set", Preprocess(12), cache=False, workers=1, progress=False)
    parallel = load_images(tmp_path / "set", Preprocess(12), cache=False, workers=2, progress=False)
    np.testing.assert_array_equal(serial, parallel)


def test_the_cache_is_used_without_opening_an_image_and_rebuilt_on_any_change(tmp_path, monkeypatch):
    write_set(tmp_path / "set")
    cache = tmp_path / "cache"
    first = load_images(tmp_path / "set", Preprocess(12), cache_dir=cache, progress=False)
    # the decoded rows, and which files they are (a conditional run's labels come from the names)
    assert len(list(cache.glob("*.npy"))) == 1 and len(list(cache.glob("*.names.json"))) == 1

    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    again = load_images(tmp_path / "set", Preprocess(12), cache_dir=cache, progress=False)
    np.testing.assert_array_equal(first, again)
    again, names = load_images(tmp_path / "set", Preprocess(12), cache_dir=cache, progress=False, with_names=True)
    np.testing.assert_array_equal(first, again)
    assert len(names) == len(first) and names == sorted(names)
    assert opened == []  # a cache hit decodes nothing

    load_images(tmp_path / "set", Preprocess(12, background=(0, 0, 0)), cache_dir=cache, progress=False)
    assert len(opened) == 6  # another setting: decoded again
    opened.clear()
    target = tmp_path / "set" / "a" / "01.png"
    Image.new("RGB", (12, 12), (1, 2, 3)).save(target)
    os.utime(target, ns=(1, 1))  # a changed file, even with an older time stamp
    changed = load_images(tmp_path / "set", Preprocess(12), cache_dir=cache, progress=False)
    assert len(opened) == 6 and changed[0, :, 0, 0].tolist() == [1, 2, 3]


# ------------------------------------------------------------------ end to end through the CLIs

@pytest.mark.parametrize("channels", [3, 1])
def test_train_and_infer_on_an_image_folder(tmp_path, channels):
    """RGB from a folder; grayscale straight from a zip of the same images."""
    write_set(tmp_path / "set", n=16)
    source = tmp_path / "set"
    if channels == 1:
        with zipfile.ZipFile(tmp_path / "set.zip", "w") as z:
            for path in sorted(source.rglob("*.png")):
                z.write(path, path.relative_to(source).as_posix())
        source = tmp_path / "set.zip"
    env = {**ENV, "MINDGAN_CACHE": str(tmp_path / "cache")}
    run = tmp_path / "run"
    train = subprocess.run(
        [sys.executable, "-m", "mindgan.train", "--model", "dcgan", "--data_dir", str(source),
         "--image_size", "16", "--channels", str(channels), "--ngf", "4", "--ndf", "4",
         "--batch_size", "8", "--epochs", "1", "--num_samples", "4", "--output_dir", str(run),
         "--device_target", "CPU", "--no_progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-2000:]
    assert f"16 images from {source}" in train.stdout
    grid = np.asarray(Image.open(run / "samples" / "epoch_001.png"))
    assert grid.shape == ((2 * 18 + 2) * 6, (2 * 18 + 2) * 6) + ((3,) if channels == 3 else ())
    infer = subprocess.run([sys.executable, "-m", "mindgan.infer", "--ckpt",
                            str(run / "checkpoints" / "generator.ckpt"), "--num", "3",
                            "--save_individual", str(tmp_path / "ind")],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert infer.returncode == 0, infer.stderr
    one = np.asarray(Image.open(tmp_path / "ind" / "00000.png"))
    assert one.shape == ((16, 16, 3) if channels == 3 else (16, 16))


def test_decoding_progress_in_a_log_is_plain_lines(tmp_path, capfd):
    """Where stderr is not a terminal (a log file, CI) the decoding progress is a line every
    tenth of the images, not a bar of carriage returns."""
    write_set(tmp_path / "set", n=20)
    load_images(tmp_path / "set", Preprocess(8), cache=False, workers=1, progress=True)
    err = capfd.readouterr().err
    assert "\r" not in err
    assert [line.strip() for line in err.splitlines()][:2] == ["decoding set  img 2/20", "decoding set  img 4/20"]


def test_the_data_command_describes_an_image_folder_before_training(tmp_path):
    """`python -m mindgan.data --data_dir FOLDER`: counts, sizes and modes, undecodable files,
    images that become one flat colour (a white X on a transparent ground, on white), a --crop
    larger than the images, and a contact sheet of what the model sees."""
    write_set(tmp_path / "set", n=6)
    x = np.zeros((12, 12, 4), np.uint8)
    x[..., :3] = 255
    x[np.arange(12), np.arange(12), 3] = x[np.arange(12), 11 - np.arange(12), 3] = 255  # a white X
    Image.fromarray(x, "RGBA").save(tmp_path / "set" / "x.png")
    (tmp_path / "set" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    sheet = tmp_path / "sheet.png"
    proc = subprocess.run([sys.executable, "-m", "mindgan.data", "--data_dir", str(tmp_path / "set"),
                           "--image_size", "8", "--crop", "20", "--sheet", str(sheet)],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"{tmp_path / 'set'}: 8 image files; sizes 12x12 (7)" in out and "RGB (6), RGBA (1)" in out
    assert "as the model sees them: 7 images of 3x8x8" in out
    assert "warning: cannot decode broken.png" in out
    assert "warning: 1 images become one flat colour (e.g. x.png)" in out
    assert "warning: 7 images are smaller than --crop 20" in out
    assert "warning: 7 images: GANs usually need thousands" in out
    assert "classes: none (for --conditional" in out  # x.png and broken.png sit outside a class folder
    assert Image.open(sheet).mode == "RGB"  # the contact sheet, in colour
