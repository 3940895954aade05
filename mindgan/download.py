"""HTTP downloads with a progress bar, and the one-line reason when one fails."""
from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["fetch", "fetch_verified", "reason"]


def fetch(url: str, dest: Path, timeout: float) -> None:
    """Stream `url` into `dest`, with a progress bar; raises OSError on any failure."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                          desc=url.rsplit("/", 1)[-1], leave=False) as bar:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and dest.stat().st_size != total:
            raise OSError(f"connection closed after {dest.stat().st_size} of {total} bytes")


def fetch_verified(url: str, dest: Path, check, timeout: float) -> Path:
    """Download `url` to a temporary name beside `dest`, and give it `dest`'s name only if
    `check(path)` (the reason the file is unusable, or None) passes. OSError with one line,
    "URL: reason", on any failure; nothing is left behind, not even a folder this call made."""
    from .fileio import atomic_output

    dest = Path(dest)
    created = not dest.parent.exists()
    try:
        with atomic_output(dest) as tmp:
            try:
                fetch(url, tmp, timeout)
            except OSError as exc:
                raise OSError(f"{url}: {reason(exc)}") from None
            problem = check(tmp)
            if problem:
                raise OSError(f"{url}: {problem}")
    except BaseException:
        if created and dest.parent.is_dir() and not any(dest.parent.iterdir()):
            dest.parent.rmdir()
        raise
    return dest


def reason(exc: BaseException) -> str:
    """The useful part of a download error: urllib wraps the cause ("<urlopen error [Errno 111]
    Connection refused>" -> "[Errno 111] Connection refused"); an HTTP error keeps its status."""
    if isinstance(exc, urllib.error.HTTPError):
        return str(exc)
    cause = getattr(exc, "reason", None)
    return str(cause if cause is not None else exc)
