"""Image-folder datasets: any folder (searched recursively) or .zip of images, as uint8 arrays.

Decoding is Pillow's (JPEG, PNG, BMP, GIF's first frame, WebP, TIFF; modes L, LA, P with or
without transparency, RGB, RGBA, CMYK, 16-bit), EXIF orientation respected, transparency
composited on a background colour. Each image is optionally centre-cropped to `crop` pixels
(carpedm20's 108 on 178x218 faces), its short side resized to `image_size` (antialiased
bilinear), then centre-cropped square: the tutorial's Resize + CenterCrop.

The first load decodes with a process pool (one process per core) and writes a uint8 cache `[N, C, H, W]` keyed by
the file list (names, sizes, modification times) and the settings; later loads with the same
key read the cache and open no image. Files that cannot be decoded are skipped with one warning
line each and a count; non-image files (by suffix) and hidden ones are ignored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .download import fetch_verified
from .fileio import atomic_output, cache_dir

__all__ = ["Preprocess", "ImageSetError", "list_images", "decode", "load_images", "classes_of", "describe_images",
           "image_cache_dir", "parse_colour", "download_faces", "FACES_URL", "IMAGE_SUFFIXES"]

# MindSpore's DCGAN tutorial's data: 70,171 anime faces, 96x96 JPEGs under faces/ (274.6 MB).
FACES_URL = "https://download.mindspore.cn/dataset/Faces/faces.zip"

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
CACHE_VERSION = 1  # part of the key: bump when decoding changes


class ImageSetError(ValueError):
    """A folder or zip holds no usable image (or is not a folder or zip at all)."""


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """What every image becomes: `channels` (1 or 3) x `image_size` x `image_size` uint8."""
    image_size: int = 64
    channels: int = 3
    background: tuple = (255, 255, 255)  # transparency is composited on this colour
    crop: int | None = None              # centre-crop this many pixels first


COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128),
           "grey": (128, 128, 128)}


def parse_colour(text: str) -> tuple[int, int, int]:
    """"white", "black", "gray", "#rrggbb" or "r,g,b" -> (r, g, b); ValueError otherwise."""
    text = str(text).strip().lower()
    if text in COLOURS:
        return COLOURS[text]
    try:
        if text.startswith("#") and len(text) == 7:
            return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
        parts = tuple(int(p) for p in text.split(","))
        if len(parts) == 3 and all(0 <= p <= 255 for p in parts):
            return parts
    except ValueError:
        pass
    raise ValueError(f"--background {text!r}: give white, black, gray, #rrggbb or r,g,b (0-255)")


def image_cache_dir() -> Path:
    """Where decoded sets are cached: `$MINDGAN_CACHE/images`, else ~/.cache/mindgan/images."""
    return cache_dir("images")


def _is_image_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts if p):
        return False
    return name.lower().endswith(IMAGE_SUFFIXES)


def list_images(source: str | os.PathLike) -> tuple[list[str], list]:
    """The image files of a folder (recursive) or a .zip, in sorted order, and what identifies
    each (size and modification time, or size and CRC in a zip) for the cache key."""
    source = Path(source)
    if source.is_dir():
        names, ids = [], []
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = path.relative_to(source).as_posix()
            if _is_image_name(rel):
                st = path.stat()
                names.append(rel)
                ids.append([rel, st.st_size, st.st_mtime_ns])
        return names, ids
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as z:
            infos = sorted((i for i in z.infolist() if not i.is_dir() and _is_image_name(i.filename)),
                           key=lambda i: i.filename)
        return [i.filename for i in infos], [[i.filename, i.file_size, i.CRC] for i in infos]
    if source.is_file():
        raise ImageSetError(f"{source}: not a folder or a .zip of images")
    raise ImageSetError(f"{source}: no such folder or file")


def decode(data: bytes, prep: Preprocess) -> np.ndarray:
    """One encoded image -> uint8 `[C, S, S]` (see the module doc). Raises what Pillow raises
    for a file it cannot read (OSError, SyntaxError, ValueError, ...)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im.seek(0)  # the first frame of an animation
        im.load()   # decode now: a truncated file fails here
        im = ImageOps.exif_transpose(im)
        im = _to_8bit(im)
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            rgba = im.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, tuple(prep.background) + (255,))
            im = Image.alpha_composite(canvas, rgba)
        im = im.convert("RGB" if prep.channels == 3 else "L")
        if prep.crop:
            im = _centre_crop(im, min(prep.crop, *im.size))
        w, h = im.size
        scale = prep.image_size / min(w, h)
        size = (max(prep.image_size, round(w * scale)), max(prep.image_size, round(h * scale)))
        if size != im.size:
            im = im.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
        im = _centre_crop(im, prep.image_size)
        array = np.asarray(im, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _to_8bit(im):
    """16-bit and 32-bit grayscale scaled to 8 bits (Pillow's own conversion clips at 255)."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return Image.fromarray((np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8), "L")
    if im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return im


def _centre_crop(im, side: int):
    w, h = im.size
    left, top = (w - side) // 2, (h - side) // 2
    return im.crop((left, top, left + side, top + side))


# ------------------------------------------------------------------ decoding many, in parallel

_ZIPS: dict = {}  # per process: open ZipFiles (reading a 70k-entry directory once)
PARALLEL_FROM = 2000  # images; below this a pool's start-up costs more than it saves


def _read(source: str, name: str) -> bytes:
    if os.path.isdir(source):
        with open(os.path.join(source, name), "rb") as f:
            return f.read()
    if source not in _ZIPS:
        _ZIPS[source] = zipfile.ZipFile(source)
    return _ZIPS[source].read(name)


def _pool_context():
    """fork while MindSpore is not loaded (fast, and a script needs no __main__ guard); spawn
    once it is, since forking a process that runs MindSpore's threads can deadlock the child.
    (Threads were measured too: slower than one process, 2,600 vs 3,900 images/s on emoji,
    since for small images Python's own work under the GIL dominates.)"""
    return get_context("spawn" if "mindspore" in sys.modules else "fork")


def _decode_entry(task) -> tuple[str, np.ndarray | None, str]:
    source, name, prep = task
    try:
        return name, decode(_read(source, name), prep), ""
    except Exception as exc:  # any unreadable file is skipped, whatever Pillow raised
        return name, None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _decode_all(source: Path, names: list[str], prep: Preprocess, workers: int,
                progress: bool) -> tuple[np.ndarray, list[tuple[str, str]]]:
    from .progress import Bar

    tasks = [(str(source), name, prep) for name in names]
    out = np.empty((len(names), prep.channels, prep.image_size, prep.image_size), np.uint8)
    kept, failed = 0, []
    bar = Bar(len(tasks), f"decoding {source.name}", progress, "img")
    if workers > 1 and len(tasks) >= PARALLEL_FROM:
        with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
            chunk = max(1, min(256, len(tasks) // (8 * workers)))
            for name, array, error in pool.map(_decode_entry, tasks, chunksize=chunk):
                kept, failed = _collect(out, kept, failed, name, array, error)
                bar.update()
    else:
        for task in tasks:
            kept, failed = _collect(out, kept, failed, *_decode_entry(task))
            bar.update()
    bar.close()
    return out[:kept], failed


def _collect(out, kept, failed, name, array, error):
    if array is None:
        failed.append((name, error))
    else:
        out[kept] = array
        kept += 1
    return kept, failed


def load_images(source: str | os.PathLike, prep: Preprocess, cache: bool = True,
                cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                progress: bool = True, log=None, require_colour: bool = False, with_names: bool = False):
    """Every image of the folder or zip `source`: uint8 `[N, C, S, S]`, in sorted file order.

    With `cache`, a set decoded before with the same files and settings is read from
    `cache_dir` (default `image_cache_dir()`) without opening any image. Undecodable files are
    skipped, each named in one warning line, and counted in a last line (`log`, default
    stderr). ImageSetError with one line if `source` holds no decodable image, if an image is
    smaller than `prep.crop`, or, with `require_colour` (RGB asked for explicitly), if every
    image is grayscale. With `with_names`, returns (images, the file name of each, relative to
    `source`).
    """
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    source = Path(source)
    names, ids = list_images(source)
    if not names:
        raise ImageSetError(f"{source}: no image files in it (looked for "
                            f"{', '.join(IMAGE_SUFFIXES)} in sub-folders too, and MNIST IDX files)")
    key = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "source": str(source.resolve()),
                                     "files": ids, "prep": dataclasses.asdict(prep)},
                                    sort_keys=True).encode()).hexdigest()[:24]
    cached = Path(cache_dir or image_cache_dir()) / f"{source.stem}-{key}.npy"
    listing = cached.with_suffix(".names.json")  # which files the cached rows are
    if cache and cached.is_file() and (listing.is_file() or not with_names):
        try:
            images = np.load(cached)
            if not with_names:
                return images
            kept = json.loads(listing.read_text())
            if len(kept) == len(images):
                return images, kept
        except (OSError, ValueError):
            pass
        log(f"warning: {cached}: unreadable cache, decoding again")
    if prep.crop or require_colour:
        _check_headers(source, names, prep.crop, require_colour)
    images, failed = _decode_all(source, names, prep, workers or os.cpu_count() or 1, progress)
    for name, error in failed:
        log(f"warning: skipped {source / name}: cannot decode ({error})")
    if failed:
        log(f"{len(failed)} of {len(names)} files in {source} could not be decoded and were skipped")
    if not len(images):
        raise ImageSetError(f"{source}: none of its {len(names)} image files could be decoded")
    skipped = {name for name, _ in failed}
    kept = [name for name in names if name not in skipped]
    if cache:
        with atomic_output(listing) as tmp:
            Path(tmp).write_text(json.dumps(kept))
        with atomic_output(cached) as tmp:
            np.save(tmp, images)
    return (images, kept) if with_names else images


def classes_of(names: list[str], source) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class labels from file names (torchvision's ImageFolder convention): the class of
    "cat/001.png" is "cat", classes sorted by name. Returns (labels int32 `[N]`, class names).
    A zip whose files all sit under one top folder ("pets/cat/001.png") counts from inside it.
    ImageSetError with one line if an image is not in a class sub-folder."""
    parts = [n.split("/") for n in names]
    if parts and len({p[0] for p in parts}) == 1 and all(len(p) >= 3 for p in parts):
        parts = [p[1:] for p in parts]
    loose = [n for n, p in zip(names, parts) if len(p) < 2]
    if loose:
        raise ImageSetError(f"--conditional: {len(loose)} images in {source} are not in a class sub-folder "
                            f"(e.g. {loose[0]}); put each class's images in a sub-folder of its own "
                            f"({source}/cat/..., {source}/dog/...)")
    classes = tuple(sorted({p[0] for p in parts}))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[p[0]] for p in parts], np.int32), classes


def _short_sides(source: Path, names: list[str]):
    """(name, short side in pixels) of each readable image, from its header alone."""
    from PIL import Image

    for name in names:
        try:
            with Image.open(io.BytesIO(_read(str(source), name))) as im:
                yield name, min(im.size), im
        except Exception:  # the decoder names it, with its own message
            continue


GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _check_headers(source: Path, names: list[str], crop: int | None, require_colour: bool) -> None:
    """ImageSetError with one line if any image of `source` is smaller than `crop` pixels (a
    centre crop larger than the image is not the crop asked for), or, with `require_colour`,
    if every image is grayscale. Reads the headers only."""
    small, colour = [], False
    for name, side, im in _short_sides(source, names):
        colour = colour or im.mode not in GRAYSCALE_MODES
        if crop and side < crop:
            small.append((name, side))
    if require_colour and not colour:
        raise ImageSetError(f"--channels 3, but every image in {source} is grayscale: give --channels 1")
    if small:
        name, side = min(small, key=lambda t: t[1])
        raise ImageSetError(f"--crop {crop} is larger than {len(small)} of the {len(names)} images in {source} "
                            f"(e.g. {name}, {side} pixels on its short side): give --crop {side} or less")


def describe_images(source: str | os.PathLike, prep: Preprocess, sheet: str | os.PathLike | None = None,
                    progress: bool = True) -> dict:
    """What a folder or zip of images holds and what training would make of it, without
    training: {"source", "files", "sizes" (WxH -> count), "modes" (Pillow mode -> count),
    "undecodable" [(name, error)], "shape" [C, S, S], "decoded", "uniform" [names of images
    that become one flat colour, e.g. a white X on a transparent ground composited on white],
    "smaller_than_crop" (how many are smaller than `prep.crop`: training refuses them; here
    they are cropped to their short side), "sheet" (the contact sheet written: the first 64 as the model sees them)}.
    ImageSetError with one line if it holds no image file."""
    from collections import Counter


    source = Path(source)
    names, _ = list_images(source)
    if not names:
        raise ImageSetError(f"{source}: no image files in it (looked for {', '.join(IMAGE_SUFFIXES)} in "
                            f"sub-folders too, and MNIST IDX files)")
    sizes, modes, short_sides = Counter(), Counter(), []
    for _, side, im in _short_sides(source, names):
        sizes[f"{im.width}x{im.height}"] += 1
        modes[im.mode] += 1
        short_sides.append(side)
    images, failed = _decode_all(source, names, prep, os.cpu_count() or 1, progress)
    decoded = [n for n in names if n not in {f for f, _ in failed}]
    flat = images.reshape(len(images), -1)
    uniform = [decoded[i] for i in np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))] if len(images) else []
    report = {"source": str(source), "files": len(names), "sizes": dict(sizes.most_common()),
              "modes": dict(modes.most_common()), "undecodable": failed, "decoded": len(images),
              "shape": [prep.channels, prep.image_size, prep.image_size], "uniform": uniform,
              "smaller_than_crop": sum(s < prep.crop for s in short_sides) if prep.crop else 0, "sheet": None}
    if sheet is not None and len(images):
        from .viz import save_grid

        report["sheet"] = str(save_grid(images[:64].astype(np.float32) / 127.5 - 1.0, sheet))
    return report


def download_faces(dest_dir: str | os.PathLike, url: str = FACES_URL, timeout: float = 60.0) -> Path:
    """Download the DCGAN tutorial's faces.zip into `dest_dir`; returns the zip's path.

    Fetched to a temporary name with a progress bar, then checked (a complete zip whose entries'
    CRCs match, holding JPEGs) and only then renamed to faces.zip, so an interrupted or broken
    download leaves nothing that passes for the data set. A valid faces.zip already there is
    kept. OSError with one line on any failure; a `dest_dir` this call created is removed again.
    """
    dest_dir = Path(dest_dir)
    final = dest_dir / "faces.zip"
    if final.is_file() and _check_faces_zip(final) is None:
        return final
    return fetch_verified(url, final, _check_faces_zip, timeout)


def _check_faces_zip(path: Path) -> str | None:
    """Why `path` is not a usable zip of JPEGs, or None if it is."""
    if not zipfile.is_zipfile(path):
        return "not a complete zip file (cut off, or not a zip at all)"
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            jpegs = sum(n.lower().endswith((".jpg", ".jpeg")) for n in z.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"a damaged zip ({exc})"
    if bad is not None:
        return f"a damaged zip (entry {bad} fails its CRC check)"
    if not jpegs:
        return "a zip without any JPEG in it"
    return None
