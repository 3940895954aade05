"""Split the Twemoji PNGs into class sub-folders (symbolic links, nothing copied) for a
conditional run on real images:

    python benchmarks/twemoji_classes.py ../shared/twemoji/72x72 runs/twemoji_classes
    python -m mindgan.train --model dcgan --conditional --data_dir runs/twemoji_classes --image_size 32

The rule, from the file names (Unicode code points): "flags" are the pairs of regional
indicator symbols (1f1e6-1f1ff, e.g. 1f1eb-1f1f7.png, France); "people" carry a skin-tone
modifier (1f3fb-1f3ff: hands, faces and figures in five tones); "other" is the rest (smileys,
animals, food, objects, symbols). On the 3,838 files: 258 flags, 1,905 people, 1,675 other.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

FLAG = re.compile(r"^1f1(e[6-9a-f]|f[0-9a-f])-1f1(e[6-9a-f]|f[0-9a-f])\.png$")
SKIN = re.compile(r"1f3f[b-f]")


def twemoji_class(name: str) -> str:
    """"flags", "people" or "other" for a Twemoji file name such as 1f44d-1f3fd.png."""
    if FLAG.match(name):
        return "flags"
    return "people" if SKIN.search(name) else "other"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="the folder of Twemoji PNGs (72x72/)")
    p.add_argument("dest", help="folder to create, with flags/, people/ and other/ of links")
    args = p.parse_args(argv)
    source, dest = Path(args.source).resolve(), Path(args.dest)
    if dest.exists():
        p.error(f"{dest} exists: choose a new folder")
    counts = {}
    for path in sorted(source.glob("*.png")):
        cls = twemoji_class(path.name)
        (dest / cls).mkdir(parents=True, exist_ok=True)
        os.symlink(path, dest / cls / path.name)
        counts[cls] = counts.get(cls, 0) + 1
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
