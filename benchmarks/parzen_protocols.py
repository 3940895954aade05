"""Parzen log-likelihood of an MNIST generator under two protocols, side by side.

    python benchmarks/parzen_protocols.py --ckpt pretrained/generator_mnist.ckpt

- "mindgan" (`mindgan.evaluate`, as Goodfellow et al. 2014): sigma chosen on the last 10,000
  training images, the score on the 10,000 real test images.
- "ModelZoo CGAN" (MindSpore ModelZoo's research/cv/CGAN eval.py, whose README reports 283.03):
  sigma chosen on training images 10,000-19,999, the score on training images 50,000-59,999,
  images the generator was trained on; labels 0-9 in turn (i % 10) for a conditional generator.

Both use 10,000 samples and the sigma grid numpy.logspace(-1, 0, 10). The same numbers for
10,000 real training images (0-9,999) in place of samples are printed as the reference.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402

PROTOCOLS = {  # name -> (validation slice, scored slice, scored split)
    "mindgan": (slice(50000, 60000), None, "test"),
    "ModelZoo CGAN": (slice(10000, 20000), slice(50000, 60000), "train"),
}


def parzen(samples01: np.ndarray, train01: np.ndarray, test01: np.ndarray, protocol: str) -> dict:
    """Parzen log-likelihood of `samples01` (float `[N, 784]` in [0, 1]) under `protocol`."""
    from mindgan.evaluate import parzen_log_likelihood, parzen_select_sigma

    valid, scored, split = PROTOCOLS[protocol]
    points = test01 if split == "test" else train01[scored]
    sigma, _ = parzen_select_sigma(samples01, train01[valid])
    ll = parzen_log_likelihood(samples01, points, sigma)
    return {"parzen": float(ll.mean()), "se": float(ll.std(ddof=1) / np.sqrt(len(ll))), "sigma": sigma}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="an MNIST generator checkpoint (any family)")
    p.add_argument("--num", type=int, default=10000, help="samples (default 10000, as both protocols)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from mindgan.data import load_mnist
    from mindgan.infer import generate
    from mindgan.runtime import setup

    setup("CPU", "graph")
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    train01 = train.reshape(len(train), -1) / 255.0
    test01 = test.reshape(len(test), -1) / 255.0
    from mindgan.checkpoint import load_generator

    net = load_generator(args.ckpt)
    labels = (np.arange(args.num) % net.spec.num_classes).astype(np.int32) if net.spec.num_classes else None
    fake01 = (generate(net, args.num, seed=args.seed, labels=labels).reshape(args.num, -1) + 1.0) / 2.0
    rows = {}
    for name in PROTOCOLS:
        rows[name] = {"generator": parzen(fake01, train01, test01, name),
                      "real training images 0-9,999": parzen(train01[:10000], train01, test01, name)}
        for who, r in rows[name].items():
            print(f"{name:14s} {who:30s} {r['parzen']:7.1f} ± {r['se']:.1f}  (sigma {r['sigma']:.3f})", flush=True)
    print(json.dumps({"ckpt": str(args.ckpt), "num": args.num, "seed": args.seed, "protocols": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
