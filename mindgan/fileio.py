"""Atomic file output (write beside the target, then rename over it), and where caches live."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder; on success rename it onto `path`.

    The temporary name keeps `path`'s suffix (MindSpore appends ".ckpt" to names without
    it). Killed at any moment, the process leaves the old `path` intact; on an exception the
    temporary file is removed and the old `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a small text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def cache_dir(name: str) -> Path:
    """The cache folder `name` (decoded image sets, built kernels): `$MINDGAN_CACHE/name`,
    else `$XDG_CACHE_HOME/mindgan/name`, else `~/.cache/mindgan/name`. Not created here."""
    if os.environ.get("MINDGAN_CACHE"):
        return Path(os.environ["MINDGAN_CACHE"]) / name
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mindgan" / name
