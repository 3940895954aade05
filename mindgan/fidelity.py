"""FID and KID on Inception features (`inception`), for images of any size and colour: generated
by a checkpoint, or given as a file (`.npy`), a folder or a zip; against a real set given the
same ways, or the saved statistics of one (`.npz` with mu and sigma, pytorch-fid's format).

What an image set becomes before Inception: uint8 `[N, 3, H, W]`. Generated images in [-1, 1]
are quantised as a PNG would store them, round((x + 1) * 127.5); grayscale is repeated into three
channels. Real images are brought to the generated images' size first (short side resized,
centre crop: what training does to them), so that both sets reach Inception through the same
resize to 299. Features of a real set are cached by its content (file names, sizes, times),
the size, the protocol and the weights file, as decoded image sets are.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .fileio import atomic_output, cache_dir
from .metrics import fid, gaussian_stats, kid

__all__ = ["ImageSourceError", "to_uint8", "load_image_set", "inception_features", "real_features",
           "inception_scores", "save_statistics", "STATS_SUFFIX"]

STATS_SUFFIX = ".npz"


class ImageSourceError(ValueError):
    """An image set cannot be read as what it was given for."""


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float images `[N, C, H, W]` in [-1, 1] -> uint8 in [0, 255], as a PNG would store them."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def check_range(a: np.ndarray, source) -> np.ndarray:
    """`a` itself if its values lie in [-1, 1] (to float rounding); ImageSourceError naming
    `source` otherwise."""
    if a.size:
        low, high = float(a.min()), float(a.max())
        if low < -1.001 or high > 1.001:
            raise ImageSourceError(f"{source}: float images must be in [-1, 1], these span [{low:.3g}, {high:.3g}]")
    return a


def _as_rgb(images: np.ndarray, source) -> np.ndarray:
    """`[N, C, H, W]` (or `[N, H, W, C]`, or `[N, H, W]`), float in [-1, 1] or uint8 -> uint8 `[N, 3, H, W]`."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ImageSourceError(f"{source}: images must be [N, C, H, W], not of shape {list(a.shape)}")
    if a.shape[1] not in (1, 3) and a.shape[3] in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if a.shape[1] not in (1, 3):
        raise ImageSourceError(f"{source}: images must have 1 or 3 channels, not shape {list(a.shape)}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ImageSourceError(f"{source}: images must be uint8, or float in [-1, 1], not {a.dtype}")
        a = to_uint8(check_range(a, source))
    return np.repeat(a, 3, axis=1) if a.shape[1] == 1 else a


def _native_size(source: Path) -> int:
    """The short side of the first image of a folder or zip."""
    import io

    from PIL import Image

    from .images import _read, list_images

    names, _ = list_images(source)
    if not names:
        raise ImageSourceError(f"{source}: no image files in it")
    with Image.open(io.BytesIO(_read(str(source), names[0]))) as im:
        return min(im.size)


def load_image_set(source: str | os.PathLike, size: int | None = None, channels: int = 3,
                   progress: bool = True) -> np.ndarray:
    """The images of `.npy` file, a folder or a zip as uint8 `[N, channels, S, S]` (an `.npy`
    keeps its own shape: `[N, C, H, W]` or `[N, H, W, C]`, uint8 or float in [-1, 1]).
    Folder and zip images are resized to `size` (short side, then centre crop); default the
    first image's own size."""
    from .images import ImageSetError, Preprocess, load_images

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if source.suffix == ".npy":
        try:
            images = np.load(source, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ImageSourceError(f"{source}: not a readable .npy file ({exc})") from None
        rgb = _as_rgb(images, source)
        return rgb if channels == 3 else rgb[:, :1]
    try:
        return load_images(source, Preprocess(image_size=size or _native_size(source), channels=channels),
                           progress=progress)
    except ImageSetError as exc:
        raise ImageSourceError(str(exc)) from None


def inception_features(images: np.ndarray, net, batch_size: int = 50, progress: bool = True,
                       desc: str = "Inception features") -> np.ndarray:
    """Pool features float32 `[N, 2048]` of uint8 images `[N, 3, H, W]` (the size `net` was built
    for). Every call has the same batch shape (the last batch padded), so the graph compiles once."""
    import mindspore as ms

    from .progress import Bar

    n = len(images)
    out = np.empty((n, 2048), np.float32)
    bar = Bar(n, desc, enabled=progress, unit="img")
    for start in range(0, n, batch_size):
        batch = np.ascontiguousarray(images[start:start + batch_size])
        k = len(batch)
        if k < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - k,) + batch.shape[1:], batch.dtype)])
        out[start:start + k] = net(ms.Tensor(batch)).asnumpy()[:k]
        bar.update(k)
    bar.close()
    return out


def _content_key(source: Path, size, protocol: str, weights: str) -> str:
    if source.suffix == ".npy":
        st = source.stat()
        ids = [str(source.resolve()), st.st_size, st.st_mtime_ns]
    else:
        from .images import list_images

        ids = [str(source.resolve()), list_images(source)[1]]
    text = json.dumps({"ids": ids, "size": size, "protocol": protocol, "weights": weights}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def real_features(source: str | os.PathLike, net, weights: str, batch_size: int = 50,
                  cache: bool = True, progress: bool = True, log=None) -> np.ndarray:
    """Inception features `[N, 2048]` of the real set `source` (`.npy`, folder or zip) at the
    size `net` was built for, from the cache when this set, size, protocol and weights file
    (`weights`: its SHA-256) were measured before."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    source = Path(source)
    size = net.input_size
    if not source.exists():
        raise FileNotFoundError(f"--real {source}: no such file or folder")
    cached = cache_dir("fid") / f"{source.stem}-{_content_key(source, size, net.protocol, weights)}.npy"
    if cache and cached.is_file():
        try:
            return np.load(cached)
        except (OSError, ValueError):
            log(f"warning: {cached}: unreadable cache, measuring again")
    images = load_image_set(source, size[0], progress=progress)
    if images.shape[2:] != tuple(size):
        raise ImageSourceError(f"--real {source}: images are {images.shape[3]}x{images.shape[2]}, the generated "
                               f"ones {size[1]}x{size[0]}; give real images of that size in a .npy, or a folder")
    feats = inception_features(images, net, batch_size, progress, desc="real images")
    if cache:
        with atomic_output(cached) as tmp:
            np.save(tmp, feats)
    return feats


def save_statistics(path: str | os.PathLike, features: np.ndarray) -> Path:
    """Write mu and sigma (pytorch-fid's `.npz` keys) and the features themselves (for KID)."""
    mu, sigma = gaussian_stats(features)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, features=np.asarray(features, np.float32))
    return Path(path)


def _load_statistics(path: Path):
    """(mu, sigma, features or None) from an `.npz`."""
    try:
        with np.load(path) as z:
            mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
            feats = np.asarray(z["features"], np.float32) if "features" in z.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise ImageSourceError(f"--real {path}: not a statistics file with mu and sigma ({exc})") from None
    if mu.shape != (2048,) or sigma.shape != (2048, 2048):
        raise ImageSourceError(f"--real {path}: mu {list(mu.shape)} and sigma {list(sigma.shape)} are not "
                               f"Inception's 2048 features")
    return mu, sigma, feats


def inception_scores(fake: np.ndarray, real: str | os.PathLike, inception: str | os.PathLike | None = None,
                     protocol: str = "torch-fidelity", kid_subsets: int = 100, kid_subset_size: int = 1000,
                     batch_size: int = 50, cache: bool = True, progress: bool = True,
                     url: str | None = None, save_stats: str | os.PathLike | None = None, log=None) -> dict:
    """FID and KID of images `fake` (uint8 or float in [-1, 1], `[N, C, H, W]`) against `real`
    (`.npy`, folder, zip, or `.npz` statistics: FID only unless it holds features). `inception`:
    the weights file (default: found or downloaded, `inception.load_inception`). `save_stats`:
    also write the real set's statistics and features there (`save_statistics`)."""
    from .inception import WEIGHTS_SHA256, WEIGHTS_URL, load_inception

    t0 = time.perf_counter()
    fake = _as_rgb(fake, "generated images")
    real = Path(real)
    net, digest = load_inception(inception, protocol, fake.shape[2:], url or WEIGHTS_URL, log)
    feats_fake = inception_features(fake, net, batch_size, progress, desc="generated images")
    result = {"num_samples": len(fake), "image_size": list(fake.shape[2:]), "protocol": protocol,
              "inception_weights": "published" if digest == WEIGHTS_SHA256 else f"sha256:{digest}"}
    if real.suffix == STATS_SUFFIX:
        mu, sigma, feats_real = _load_statistics(real)
    else:
        feats_real = real_features(real, net, digest, batch_size, cache, progress, log)
        mu, sigma = gaussian_stats(feats_real)
        if save_stats:
            save_statistics(save_stats, feats_real)
    result["num_real"] = None if feats_real is None else len(feats_real)
    result["fid"] = fid(gaussian_stats(feats_fake), (mu, sigma))
    if feats_real is not None:
        result["kid_mean"], result["kid_std"] = kid(feats_fake, feats_real, kid_subsets, kid_subset_size)
        result["kid_subsets"] = kid_subsets
        result["kid_subset_size"] = min(kid_subset_size, len(feats_fake), len(feats_real))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
