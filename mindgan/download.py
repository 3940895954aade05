"""HTTP downloads with a progress bar, and the one-line reason when one fails."""
from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["fetch", "reason"]


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


def reason(exc: BaseException) -> str:
    """The useful part of a download error: urllib wraps the cause ("<urlopen error [Errno 111]
    Connection refused>" -> "[Errno 111] Connection refused"); an HTTP error keeps its status."""
    if isinstance(exc, urllib.error.HTTPError):
        return str(exc)
    cause = getattr(exc, "reason", None)
    return str(cause if cause is not None else exc)
