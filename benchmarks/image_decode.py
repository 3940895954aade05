"""Benchmark: decoding an image folder, cold and cached, and the data's share of an epoch.

    python benchmarks/image_decode.py                                   # ../shared/twemoji/72x72 at 64x64
    python benchmarks/image_decode.py --source faces.zip --size 64 --epoch_seconds 120

Cold: every file decoded (no cache), with 1 worker and with one per core. Cached: the second
load of the same set. Per epoch, once cached, the loop's own data work is a shuffled index
array and, inside the compiled step, a gather of each uint8 batch and its scaling to [-1, 1];
both are timed here and set against `--epoch_seconds` (an epoch's time from a real run).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--source", default=str(REPO.parent / "shared" / "twemoji" / "72x72"))
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3, help="runs of each timing; the best is shown")
    p.add_argument("--epoch_seconds", type=float, default=None,
                   help="an epoch's time in a real run, for the data's share")
    args = p.parse_args()

    from mindgan.images import Preprocess, load_images

    prep = Preprocess(args.size)
    cores = os.cpu_count() or 1
    rows = []
    for workers in sorted({1, cores}):
        seconds = best_of(lambda w=workers: load_images(args.source, prep, cache=False, workers=w,
                                                  progress=False), args.repeat)
        images = load_images(args.source, prep, cache=False, workers=1, progress=False)
        rows.append((f"decode, {workers} worker{'s' * (workers > 1)}", f"{seconds:.2f} s",
                     f"{len(images) / seconds:.0f} images/s"))
    with tempfile.TemporaryDirectory() as cache:
        load_images(args.source, prep, cache_dir=cache, progress=False)
        seconds = best_of(lambda: load_images(args.source, prep, cache_dir=cache, progress=False),
                          args.repeat)
    rows.append(("cached load", f"{seconds:.3f} s", f"{len(images) / seconds:.0f} images/s"))


    import mindspore as ms

    from mindgan.data import batch_indices

    ms.set_device("CPU")
    steps = len(images) // args.batch_size
    index_s = best_of(lambda: batch_indices(len(images), args.batch_size, 0, 1), args.repeat)
    dataset = ms.Tensor(images)

    @ms.jit
    def batch(data, idx):
        return ms.ops.gather(data, idx, 0).astype(ms.float32) / 127.5 - 1.0

    order = batch_indices(len(images), args.batch_size, 0, 0)
    batch(dataset, ms.Tensor(order[0])).asnumpy()  # compile
    gather = statistics.median(best_of(lambda i=i: batch(dataset, ms.Tensor(order[i])).asnumpy(), 1)
                               for i in range(min(steps, 20)))
    per_epoch = index_s + steps * gather
    rows.append(("shuffle indices, per epoch", f"{index_s * 1e3:.2f} ms", ""))
    rows.append((f"gather + scale a uint8 batch of {args.batch_size}", f"{gather * 1e3:.2f} ms",
                 f"x {steps} steps = {steps * gather:.3f} s an epoch"))
    if args.epoch_seconds:
        rows.append(("data share of an epoch", f"{100 * per_epoch / args.epoch_seconds:.2f} %",
                     f"of {args.epoch_seconds:.0f} s"))

    print(f"{len(images)} images from {args.source} at {args.size}x{args.size}, {cores} cores\n")
    print("| what | time | rate |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
