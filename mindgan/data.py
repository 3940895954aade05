"""The data layer: MNIST (an IDX parser, the dataset search path, a verified downloader), batch
order and scaling, and `load_training_images`, which gives a run its images from MNIST or from
a folder or zip of image files (`mindgan.images`).

The IDX parser is written here rather than taken from a framework so that a malformed file
gets one clear error naming the file, and so that the package reads all three layouts
MindSpore users have on disk.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from .download import fetch, reason
from .fileio import atomic_output, cache_dir

__all__ = [
    "IdxFormatError", "read_idx", "load_mnist", "find_mnist", "download_mnist",
    "to_model_range", "batch_indices", "is_mnist_dir", "load_training_images", "load_training_data", "MIRRORS",
    "PROJECT_DATA_DIR",
    "default_cache_dir",
]

# IDX type code -> big-endian numpy dtype (the format stores everything big-endian).
IDX_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}

SPLIT_PREFIX = {"train": "train", "test": "t10k"}
FILE_KINDS = {"images": "idx3", "labels": "idx1"}

# SHA-256 of the *uncompressed* files: mirrors gzip the same bytes differently.
RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Well-known public mirrors serving the four original .gz files, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The repository ships MNIST here; absent when the package is installed without the repo.
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"

# Fewer training images than this get a warning at the start: the few-shot regime of the GAN
# literature (DiffAugment's and ADA's small sets, 100-2,000 images), where plain BCE training
# is known to collapse or memorise.
FEW_IMAGES = 1000


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (or not the MNIST content expected of it)."""


# --------------------------------------------------------------------------- IDX format

def _decompress(raw: bytes, path: Path) -> bytes:
    # Detect gzip from the content: users rename files, and MindSpore wants them unzipped.
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise IdxFormatError(f"{path}: truncated gzip stream (the file ends before the "
                             f"end-of-stream marker)") from None
    except (OSError, zlib.error) as exc:
        raise IdxFormatError(f"{path}: corrupt gzip stream ({exc})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file, raw or gzip-compressed (detected from its first bytes).

    Returns a native-endian, writable array with the dtype and shape the header declares.
    Raises `IdxFormatError` naming the file on any malformed input.
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw:
        raise IdxFormatError(f"{path}: empty file")
    data = _decompress(raw, path)
    if len(data) < 4:
        raise IdxFormatError(f"{path}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise IdxFormatError(f"{path}: bad magic: expected two zero bytes, found "
                             f"0x{data[0]:02x} 0x{data[1]:02x} (not an IDX file)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise IdxFormatError(f"{path}: unknown type code 0x{code:02x} "
                             f"(known: {', '.join(f'0x{c:02X}' for c in IDX_DTYPES)})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{path}: header declares {ndim} dimensions but the file ends "
                             f"after {len(data)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "shorter" if found < expected else "longer"
        raise IdxFormatError(f"{path}: payload {what} than the header declares: expected "
                             f"{expected} bytes for shape {shape}, found {found}")
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # copies: native order, writable


# ---------------------------------------------------------------------- finding MNIST

def _candidate_names(split: str, kind: str) -> list[str]:
    """File names one MNIST file goes by: original and dotted, each raw or .gz."""
    prefix, idx = SPLIT_PREFIX[split], FILE_KINDS[kind]
    names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find_in(root: Path, split: str) -> dict[str, Path] | None:
    """The images and labels file of `split` under `root` in any known layout, or None."""
    # Flat (original or dotted names), then the tutorial's MNIST_Data/{train,test}/ folders,
    # whether `root` is the folder holding MNIST_Data or MNIST_Data itself.
    folders = [root, root / split, root / "MNIST_Data" / split]
    for folder in folders:
        found = {}
        for kind in FILE_KINDS:
            hit = next((folder / n for n in _candidate_names(split, kind)
                        if (folder / n).is_file()), None)
            if hit is not None:
                found[kind] = hit
        if len(found) == len(FILE_KINDS):
            return found
    return None


def default_cache_dir() -> Path:
    """Where downloads go: `$MINDGAN_CACHE`, else `$XDG_CACHE_HOME/mindgan/mnist` (~/.cache)."""
    if os.environ.get("MINDGAN_CACHE"):   # the downloads themselves, not a subfolder
        return Path(os.environ["MINDGAN_CACHE"])
    return cache_dir("mnist")


def find_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, mirrors: Sequence[str] | None = None) -> dict[str, Path]:
    """Locate the images and labels files of `split`, downloading them as a last resort.

    Order: `data_dir`; `$MINDGAN_DATA`; the repository's `data/mnist`; the download cache
    (`default_cache_dir()`); a download into that cache. A place named explicitly
    (`data_dir`, or `MINDGAN_DATA`) is searched alone: a typo there must not silently fall
    back to other data. Returns `{"images": Path, "labels": Path}`.
    """
    if split not in SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    explicit = [(p, why) for p, why in ((data_dir, "data_dir argument"),
                                        (os.environ.get("MINDGAN_DATA") or None, "MINDGAN_DATA"))
                if p is not None]
    if explicit:
        places = [(Path(explicit[0][0]).expanduser(), explicit[0][1])]
    else:
        places = [(PROJECT_DATA_DIR, "the repository's data/mnist"),
                  (default_cache_dir(), "the download cache")]
    for place, _ in places:
        found = _find_in(place, split)
        if found:
            return found

    errors: list[str] = []
    if download and not explicit:
        try:
            download_mnist(default_cache_dir(), mirrors=mirrors, splits=(split,))
            found = _find_in(default_cache_dir(), split)
            if found:
                return found
        except OSError as exc:
            errors.append(str(exc))
    searched = "; ".join(f"{p} ({why})" for p, why in places)
    fix = ("pass data_dir= (or --data_dir) pointing at a folder with the IDX files "
           "(train-images-idx3-ubyte[.gz], train-images.idx3-ubyte or MNIST_Data/train/...), "
           "set MINDGAN_DATA, or run `python -m mindgan.data --download DIR` on a machine "
           "with internet access")
    tried = f" Download failed: {errors[0]}" if errors else ""
    raise FileNotFoundError(f"MNIST {split} files not found. Searched: {searched}.{tried} "
                            f"To fix: {fix}.")


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, mirrors: Sequence[str] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split.

    Returns `images` uint8 `[N, 28, 28]` in 0..255 and `labels` uint8 `[N]` in 0..9
    (N = 60000 for "train", 10000 for "test"). See `find_mnist` for where it looks.
    """
    files = find_mnist(split, data_dir, download=download, mirrors=mirrors)
    images, labels = read_idx(files["images"]), read_idx(files["labels"])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IdxFormatError(f"{files['images']}: expected 3-D uint8 images, found "
                             f"{images.ndim}-D {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IdxFormatError(f"{files['labels']}: expected 1-D uint8 labels, found "
                             f"{labels.ndim}-D {labels.dtype}")
    if len(images) != len(labels):
        raise IdxFormatError(f"{files['images']}: {len(images)} images but "
                             f"{files['labels']} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"{files['labels']}: label {int(labels.max())} outside 0-9")
    return images, labels


# --------------------------------------------------------------------------- download

def download_mnist(dest_dir: str | os.PathLike, mirrors: Sequence[str] | None = None,
                   splits: Sequence[str] = ("train", "test"), timeout: float = 30.0) -> list[Path]:
    """Download the MNIST .gz files of `splits` into `dest_dir`, verified.

    Each file is fetched into a temporary file in `dest_dir` and renamed into place only
    when the SHA-256 of its uncompressed content matches the known value, so an
    interrupted or corrupted download never leaves a file that passes as valid. A mirror
    that fails or serves wrong bytes is skipped with a warning naming it. Files already
    present and valid are kept. Raises OSError when no mirror serves a valid copy; a
    `dest_dir` this call created is removed again if nothing was written into it.
    """
    dest_dir = Path(dest_dir)
    created = not dest_dir.exists()
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _download_into(dest_dir, list(MIRRORS if mirrors is None else mirrors), splits, timeout)
    except BaseException:
        if created and not any(dest_dir.iterdir()):
            dest_dir.rmdir()
        raise


def _download_into(dest_dir: Path, mirrors: list[str], splits: Sequence[str],
                   timeout: float) -> list[Path]:
    written = []
    for split in splits:
        for kind, idx in FILE_KINDS.items():
            name = f"{SPLIT_PREFIX[split]}-{kind}-{idx}-ubyte"
            final = dest_dir / f"{name}.gz"
            if final.is_file() and _raw_sha256(final) == RAW_SHA256[name]:
                written.append(final)
                continue
            problems = []
            for mirror in mirrors:
                url = mirror.rstrip("/") + "/" + final.name
                try:
                    with atomic_output(final) as tmp:  # renamed into place only if verified
                        fetch(url, tmp, timeout)
                        digest = _raw_sha256(tmp)
                        if digest != RAW_SHA256[name]:
                            raise OSError(f"content SHA-256 {digest[:12]}… does not match the "
                                          f"known {RAW_SHA256[name][:12]}…")
                    written.append(final)
                    break
                except (OSError, IdxFormatError, ValueError) as exc:
                    problems.append(f"{url}: {reason(exc)}")
                    warnings.warn(f"skipping mirror {mirror} for {final.name}: {exc}",
                                  stacklevel=3)
            else:
                raise OSError(f"no mirror served a valid {final.name} "
                              f"({'; '.join(problems) or 'no mirrors given'})")
    return written


def _raw_sha256(path: Path) -> str:
    """SHA-256 of a file's content after gunzip (if it is gzip)."""
    data = _decompress(path.read_bytes(), path)
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- batches

def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 `[N, H, W]` (grayscale) or `[N, C, H, W]` in 0..255 -> float32 `[N, C, H, W]` in
    [-1, 1] (tanh's range); float32 input is taken as already scaled."""
    if images.dtype == np.float32 and images.ndim == 4:
        return images
    x = images.astype(np.float32)
    if x.ndim == 3:
        x = x.reshape(len(images), 1, *images.shape[1:])
    return x / np.float32(127.5) - np.float32(1.0)


def batch_indices(n: int, batch_size: int, seed: int, epoch: int,
                  drop_remainder: bool = True) -> np.ndarray:
    """The shuffled sample indices of one epoch, int32 `[num_batches, batch_size]`.

    A pure function of (seed, epoch): resuming mid-epoch replays the same order without
    saving any RNG state. With `drop_remainder` the last partial batch is dropped (60000
    images, batch 128: 468 batches); without it the result is a list of arrays.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    order = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)
    full = n // batch_size
    batches = order[: full * batch_size].reshape(full, batch_size)
    if drop_remainder or full * batch_size == n:
        return batches
    return list(batches) + [order[full * batch_size:]]


def is_mnist_dir(path: str | os.PathLike) -> bool:
    """Whether `path` holds MNIST's training IDX files (in any of the three layouts)."""
    return Path(path).is_dir() and _find_in(Path(path), "train") is not None


def load_training_images(config, progress: bool = True, resumed: bool = False) -> np.ndarray:
    """The training images of a run: uint8 `[N, C, H, W]` (`load_training_data`'s first item)."""
    return load_training_data(config, progress, resumed)[0]


def load_training_data(config, progress: bool = True, resumed: bool = False):
    """The training set of a run: (images uint8 `[N, C, H, W]`, labels int32 `[N]` or None,
    class names or None).

    `config.data_dir` (a TrainConfig's) is an MNIST IDX folder (recognised by its files; None
    is the usual MNIST search: labels 0-9, always given) or a folder or .zip of images, decoded
    by `mindgan.images` to `config.image_size` pixels and `config.channels` (default 3),
    transparency on `config.background`, after a `config.crop` centre crop; for
    `config.conditional`, labelled by their class sub-folder (`images.classes_of`), otherwise
    unlabelled. `config.channels` 3 on images that are all grayscale is refused
    (ImageSetError, one line), unless `resumed` (a run whose saved config says 3 goes on as it
    began).
    """
    if config.data_dir is None or is_mnist_dir(config.data_dir):
        images, labels = load_mnist("train", config.data_dir)
        return images[:, None], labels.astype(np.int32), tuple(str(d) for d in range(10))
    from .images import Preprocess, classes_of, list_images, load_images, parse_colour

    if config.conditional:  # before decoding anything: are there classes at all?
        from .config import check_classes

        check_classes(config.data_dir, classes_of(list_images(config.data_dir)[0], config.data_dir)[1])
    prep = Preprocess(config.image_size, config.channels or 3, parse_colour(config.background),
                      config.crop)
    found = load_images(config.data_dir, prep, progress=progress, require_colour=config.channels == 3 and not resumed,
                        with_names=config.conditional)
    if not config.conditional:
        return found, None, None
    labels, classes = classes_of(found[1], config.data_dir)
    return found[0], labels, classes


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mindgan.data`: check the data (print shapes) or download it."""
    import time

    from .cli import Parser

    parser = Parser(
        prog="python -m mindgan.data",
        description="Check the training data before training: MNIST (shapes, label counts, where the "
                    "files are), or a folder or zip of images (count, sizes, modes, undecodable files, "
                    "what they become at --image_size/--channels/--background/--crop, and a contact "
                    "sheet of the first 64 as the model sees them); or download a data set: MNIST, or "
                    "the anime faces of MindSpore's DCGAN tutorial.",
        epilog="examples:\n"
               "  python -m mindgan.data                                   # check MNIST\n"
               "  python -m mindgan.data --data_dir faces.zip --image_size 64  # check an image set\n"
               "  python -m mindgan.data --download ~/mnist                # MNIST into ~/mnist\n"
               "  python -m mindgan.data --download faces --dest data/faces  # the tutorial's faces.zip",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="folder holding the MNIST IDX files (default: $MINDGAN_DATA, "
                        "then the repository's data/mnist, then the cache), or a folder or .zip of images")
    parser.add_argument("--image_size", type=int, default=64,
                        help="image sets: the side they are decoded to, as --image_size in training (default 64)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3,
                        help="image sets: 1 (grayscale) or 3 (RGB) (default 3)")
    parser.add_argument("--background", default="white",
                        help="image sets: colour under transparent pixels (default white)")
    parser.add_argument("--crop", type=int, default=None, help="image sets: centre-crop N x N pixels first")
    parser.add_argument("--sheet", default="runs/data_check.png",
                        help="image sets: where the contact sheet goes (default runs/data_check.png)")
    parser.add_argument("--download", metavar="WHAT",
                        help="'faces' (the DCGAN tutorial's faces.zip, 275 MB, into --dest), "
                             "'mnist' (into --dest), or a folder to download MNIST into")
    parser.add_argument("--dest", metavar="DIR", help="where --download faces|mnist writes")
    parser.add_argument("--url", default=None, help="where --download faces fetches from "
                        "(default: mindgan.images.FACES_URL, MindSpore's own download server)")
    parser.add_argument("--mirror", action="append", metavar="URL",
                        help="base URL to download MNIST from instead of the public mirrors (repeatable)")
    args = parser.parse_args(argv)
    if args.download in ("faces", "mnist") and not args.dest:
        parser.error(f"--download {args.download} needs --dest DIR")
    if args.download == "faces":
        from .images import FACES_URL, download_faces

        url = args.url or FACES_URL
        try:
            print(download_faces(args.dest, url))
        except OSError as exc:
            parser.exit(1, f"python -m mindgan.data: error: download failed: {exc}. To get it by "
                           f"hand, fetch {url} on a machine with internet access and put it in "
                           f"{args.dest}; train with --data_dir {Path(args.dest) / 'faces.zip'}\n")
        return 0
    if args.download:
        dest = args.dest if args.download == "mnist" else args.download
        warnings.simplefilter("ignore")  # each skipped mirror is named in the one error line
        try:
            paths = download_mnist(dest, mirrors=args.mirror)
        except OSError as exc:
            parser.exit(1, f"python -m mindgan.data: error: download failed: {exc}. To get the "
                           f"files by hand, fetch train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                           f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
                           f"{(args.mirror or MIRRORS)[0]} on a machine with internet access into "
                           f"{dest}, then run python -m mindgan.data --data_dir {dest}\n")
        for path in paths:
            print(path)
        return 0
    if args.data_dir is not None and not is_mnist_dir(args.data_dir) and Path(args.data_dir).exists():
        return _describe_image_set(parser, args)
    for split in ("train", "test"):
        start = time.perf_counter()
        try:
            images, labels = load_mnist(split, args.data_dir)
        except (FileNotFoundError, IdxFormatError) as exc:
            print(f"error: {exc}")
            return 1
        where = find_mnist(split, args.data_dir, download=False)["images"].parent
        print(f"{split:5s}: images {images.shape} {images.dtype}, labels {labels.shape} "
              f"{labels.dtype}, counts {np.bincount(labels, minlength=10).tolist()}, "
              f"{time.perf_counter() - start:.2f} s, from {where}")
    return 0


def _describe_image_set(parser, args) -> int:
    """`python -m mindgan.data --data_dir FOLDER_OR_ZIP`: the report of `images.describe_images`."""
    from .images import ImageSetError, Preprocess, describe_images, parse_colour

    try:
        prep = Preprocess(args.image_size, args.channels, parse_colour(args.background), args.crop)
        r = describe_images(args.data_dir, prep, sheet=args.sheet)
    except (ImageSetError, ValueError) as exc:
        parser.error(str(exc))
    top = ", ".join(f"{size} ({n})" for size, n in list(r["sizes"].items())[:5])
    print(f"{r['source']}: {r['files']} image files; sizes {top}"
          + (f" and {len(r['sizes']) - 5} more" if len(r["sizes"]) > 5 else "")
          + f"; modes {', '.join(f'{m} ({n})' for m, n in r['modes'].items())}")
    print(f"as the model sees them: {r['decoded']} images of {'x'.join(map(str, r['shape']))} "
          f"(--image_size {args.image_size} --channels {args.channels} --background {args.background}"
          + (f" --crop {args.crop}" if args.crop else "") + f"); contact sheet: {r['sheet']}")
    for name, error in r["undecodable"][:10]:
        print(f"warning: cannot decode {name} ({error})")
    if r["undecodable"]:
        print(f"warning: {len(r['undecodable'])} of {r['files']} files cannot be decoded: training skips them")
    if r["uniform"]:
        print(f"warning: {len(r['uniform'])} images become one flat colour (e.g. {r['uniform'][0]}): a drawing "
              f"on a transparent ground in the --background colour? try --background black or gray")
    if r["smaller_than_crop"]:
        print(f"warning: {r['smaller_than_crop']} images are smaller than --crop {args.crop}: they are cropped "
              f"to their short side here, and training refuses them: give a smaller --crop")
    if r["decoded"] < FEW_IMAGES:
        print(f"warning: {r['decoded']} images: GANs usually need thousands (below {FEW_IMAGES} the "
              f"discriminator tends to memorise them)")
    print(_classes_line(args.data_dir))
    return 0


def _classes_line(source) -> str:
    """What --conditional would take as classes from `source`, in one line."""
    from .images import ImageSetError, classes_of, list_images

    try:
        labels, classes = classes_of(list_images(source)[0], source)
    except ImageSetError:
        return "classes: none (for --conditional, put each class's images in a sub-folder of its own)"
    counts = np.bincount(labels, minlength=len(classes))
    shown = ", ".join(f"{c} {n}" for c, n in list(zip(classes, counts))[:20])
    return (f"classes for --conditional (first-level sub-folders): {len(classes)}: {shown}"
            + (", ..." if len(classes) > 20 else ""))


if __name__ == "__main__":
    raise SystemExit(main())
