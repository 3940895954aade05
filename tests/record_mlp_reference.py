"""Record tests/data/mlp_reference.json's entry for this machine's CPU class: the MLP's losses
and generator digest for the bit-identity test, and the pretrained generator's sample digest.

MindSpore's CPU kernels (oneDNN's) sum in an order that depends on the instruction set, so the
same run gives different last digits on an AVX-512 and an AVX2-only CPU; each class has its own
entry (`cpu_class()`). Run it on code known to train as the package did before a change, e.g.
a checkout of the commit before it:

    git worktree add /tmp/before <commit> && cd /tmp/before && \\
        PYTHONPATH=. python <repo>/tests/record_mlp_reference.py --write <repo>/tests/data/mlp_reference.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")
os.environ.setdefault("MINDGAN_CPU_CONVOLUTIONS", "stock")  # as the test suite runs (conftest.py)


def cpu_class(path: str = "/proc/cpuinfo") -> str:
    """"avx512" or "avx2": which of oneDNN's kernel families the MLP's MatMuls run here."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in open(path) if line.startswith("flags")), [])
    except OSError:
        flags = []
    return "avx512" if "avx512f" in flags else "avx2"


def tensor_digest(path) -> str:
    from mindgan.checkpoint import read_checkpoint

    params = read_checkpoint(path)
    h = hashlib.sha256()
    for name in sorted(k for k in params if hasattr(params[k], "asnumpy")):
        h.update(name.encode())
        h.update(params[name].asnumpy().tobytes())
    return h.hexdigest()


def record(repo: Path) -> dict:
    from mindgan.data import load_mnist
    from mindgan.infer import generate
    from mindgan.rundir import read_log
    from mindgan.runtime import setup
    from mindgan.training import TrainConfig, train

    setup("CPU", "graph")
    digits = load_mnist("train", repo / "data" / "mnist")[0][:2048]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, per_call in (("one_per_call", 1), ("four_per_call", 4)):
            run = train(TrainConfig(epochs=2, batch_size=64, subset=640, seed=11, device_target="CPU",
                                    output_dir=str(Path(tmp) / name), steps_per_call=per_call),
                        images=digits, progress=False)
            rows = [[r[c] for c in ("step", "loss_d", "loss_g", "d_real", "d_fake")]
                    for r in read_log(run / "losses.csv", 10 ** 9)]
            runs[name] = {"rows": rows, "generator_sha256": tensor_digest(run / "checkpoints" / "generator.ckpt")}
    ckpt = repo / "pretrained" / "generator_mnist.ckpt"
    fake = generate(ckpt, 16, seed=0)
    return {"runs": runs, "pretrained": {"file_sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
                                         "generate_16_seed0_sha256": hashlib.sha256(fake.tobytes()).hexdigest()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", metavar="JSON", required=True, help="the reference file to add this CPU class to")
    p.add_argument("--repo", default=".", help="the checkout whose data/ and pretrained/ to use (default .)")
    args = p.parse_args()
    path = Path(args.write)
    reference = json.loads(path.read_text()) if path.exists() else {}
    reference.setdefault("classes", {})[cpu_class()] = record(Path(args.repo))
    path.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"{path}: recorded the {cpu_class()} entry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
