"""mindgan's Inception features, FID and KID against torch-fidelity's and pytorch-fid's, with the
same weights file, on real and generated images.

The published weights cannot be downloaded here, so both sides load one file of random weights
in the published layout (`inception.random_state`) whose batch norms were calibrated on real
anime faces by PyTorch (plain random weights make features that barely depend on the image).
The PyTorch side runs in its own Python (`--ref_python`, an environment with torch,
torchvision, torch-fidelity and pytorch-fid; they need NumPy 2, MindSpore NumPy 1):

    python3 -m venv /tmp/ref
    /tmp/ref/bin/pip install torch==2.14.1 torchvision==0.29.1 torch-fidelity pytorch-fid
    python benchmarks/fid_vs_reference.py --ref_python /tmp/ref/bin/python --out docs/fid_vs_reference.json

Sets: the first `--num` faces of ../shared/anime_faces/faces.zip (96 px), as many Twemoji
(../shared/twemoji/72x72, 72 px) and as many digits from pretrained/generator_mnist.ckpt
(28 px, gray in three channels). Each is measured by mindgan with both protocols and by the
implementation each protocol copies; FID and KID (one subset of the whole set, where the
estimate does not depend on the draw) between every pair of sets, each framework on its own
features with its own code.

`--fixture PATH` instead writes the small file tests/test_inception.py checks against: three
48-px images and their features from both PyTorch implementations under `random_state(0)`
(uncalibrated: the test rebuilds those weights without PyTorch).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"


# ------------------------------------------------------------------ the PyTorch side (--ref_python)

def _torch_state(state):
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def torch_make_weights(out: str, calibration: str, seed: int) -> None:
    """random_state(seed), batch norms calibrated (cumulative averages) on uint8 images."""
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from mindgan.inception import random_state

    with tempfile.TemporaryDirectory() as tmp:
        torch.save(_torch_state(random_state(seed)), f"{tmp}/w.pth")
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                          feature_extractor_weights_path=f"{tmp}/w.pth")
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    images = np.load(calibration)
    with torch.no_grad():
        for start in range(0, len(images), 50):
            net(torch.from_numpy(images[start:start + 50]))
    net.eval()
    torch.save(net.state_dict(), out)


def torch_features(weights: str, images_npy: str, impl: str, out: str) -> None:
    import torch

    images = np.load(images_npy)
    feats = []
    if impl == "torch-fidelity":
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights)
        prepare = torch.from_numpy
    else:
        # pytorch-fid loads its weights through torch.hub's cache: put the file there.
        home = tempfile.mkdtemp()
        os.makedirs(f"{home}/hub/checkpoints")
        os.symlink(os.path.abspath(weights), f"{home}/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth")
        os.environ["TORCH_HOME"] = home
        from pytorch_fid.inception import InceptionV3

        net = InceptionV3([3]).eval()
        prepare = lambda a: torch.from_numpy(a).float() / 255.0  # noqa: E731 (its ToTensor)
    with torch.no_grad():
        for start in range(0, len(images), 50):
            y = net(prepare(images[start:start + 50]))
            y = y[0] if impl == "torch-fidelity" else y[0][:, :, 0, 0]
            feats.append(y.numpy().astype(np.float32))
    np.save(out, np.concatenate(feats))


def torch_metrics(a_npy: str, b_npy: str, impl: str) -> None:
    import torch

    a, b = np.load(a_npy), np.load(b_npy)
    if impl == "torch-fidelity":
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
        from torch_fidelity.metric_kid import kid_features_to_metric

        fid = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a)),
                                       fid_features_to_statistics(torch.from_numpy(b)), False)
        n = min(len(a), len(b))
        kid = kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=1, kid_subset_size=n,
                                     verbose=False)
        out = {"fid": fid["frechet_inception_distance"], "kid": kid["kernel_inception_distance_mean"]}
    else:
        from pytorch_fid.fid_score import calculate_frechet_distance

        stats = [(f.mean(axis=0), np.cov(f, rowvar=False)) for f in (a, b)]
        out = {"fid": float(calculate_frechet_distance(*stats[0], *stats[1]))}
    print(json.dumps(out))


def torch_side(argv) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["weights", "features", "metrics"])
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if a.what == "weights":
        torch_make_weights(a.args[0], a.args[1], int(a.args[2]))
    elif a.what == "features":
        torch_features(*a.args)
    else:
        torch_metrics(*a.args)


# ------------------------------------------------------------------ mindgan's side

def _ref(ref_python: str, *args, capture=False) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([ref_python, __file__, "--torch_side", *map(str, args)], env=env, text=True,
                          capture_output=True)
    if proc.returncode:
        sys.exit(f"the PyTorch side failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def _sets(num: int) -> dict[str, np.ndarray]:
    from mindgan.fidelity import to_uint8
    from mindgan.images import Preprocess, load_images
    from mindgan.infer import generate

    faces = load_images(SHARED / "anime_faces" / "faces.zip", Preprocess(96, 3), progress=False)
    emoji = load_images(SHARED / "twemoji" / "72x72", Preprocess(72, 3), progress=False)
    digits = to_uint8(generate(str(REPO / "pretrained" / "generator_mnist.ckpt"), num, seed=0))
    return {"faces": faces[:num], "twemoji": emoji[:num], "generated digits": np.repeat(digits, 3, axis=1),
            "calibration": faces[-1000:]}


def _relative(a: np.ndarray, b: np.ndarray) -> dict:
    """How far features a are from the reference b: the largest difference over the largest
    reference value, and the largest per-image |a - b| / |b|."""
    return {"max_abs_over_max": float(np.abs(a - b).max() / np.abs(b).max()),
            "max_row_norm": float((np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)).max())}


def compare(ref_python: str, num: int, out: str | None) -> None:
    from mindgan.fidelity import inception_features
    from mindgan.inception import FIDInception
    from mindgan.metrics import fid, gaussian_stats, kid
    from mindgan.pth import read_pth

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fid_ref_"))
    sets = _sets(num)
    for name, images in sets.items():
        np.save(work / f"{name}.npy", images)
    weights = work / "calibrated.pth"
    _ref(ref_python, "weights", weights, work / "calibration.npy", 0)
    state = read_pth(weights)
    report = {"num": num, "weights": "random_state(0), batch norms calibrated on 1000 anime faces by PyTorch",
              "features": {}, "metrics": []}
    names = [n for n in sets if n != "calibration"]
    feats = {}
    for protocol, impl in (("torch-fidelity", "torch-fidelity"), ("pytorch-fid", "pytorch-fid")):
        for name in names:
            images = sets[name]
            t = time.perf_counter()
            net = FIDInception(state, protocol, images.shape[2])
            mine = inception_features(images, net, progress=False)
            seconds = time.perf_counter() - t
            ref_path = work / f"{name}-{impl}.npy"
            _ref(ref_python, "features", weights, work / f"{name}.npy", impl, ref_path)
            theirs = np.load(ref_path)
            np.save(work / f"{name}-mindgan-{protocol}.npy", mine)
            feats[(protocol, name)] = (mine, theirs)
            row = {"protocol": protocol, "set": name, "size": images.shape[2], "images": len(images),
                   "mindgan_seconds": round(seconds, 1), "feature_mean": float(theirs.mean()),
                   "feature_std": float(theirs.std()), **_relative(mine, theirs)}
            report["features"][f"{protocol}/{name}"] = row
            print(json.dumps(row), flush=True)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                (ma, _), (mb, _) = feats[(protocol, a)], feats[(protocol, b)]
                theirs = json.loads(_ref(ref_python, "metrics", work / f"{a}-{impl}.npy", work / f"{b}-{impl}.npy",
                                         impl, capture=True).strip().splitlines()[-1])
                row = {"protocol": protocol, "pair": f"{a} vs {b}",
                       "fid_mindgan": fid(gaussian_stats(ma), gaussian_stats(mb)), "fid_reference": theirs["fid"]}
                row["fid_relative"] = abs(row["fid_mindgan"] - row["fid_reference"]) / abs(row["fid_reference"])
                if "kid" in theirs:
                    n = min(len(ma), len(mb))
                    row["kid_mindgan"] = kid(ma, mb, subsets=1, subset_size=n)[0]
                    row["kid_reference"] = theirs["kid"]
                    row["kid_relative"] = abs(row["kid_mindgan"] - row["kid_reference"]) / abs(row["kid_reference"])
                report["metrics"].append(row)
                print(json.dumps(row), flush=True)
    report["seconds"] = round(time.perf_counter() - t0)
    if out:
        Path(out).write_text(json.dumps(report, indent=1) + "\n")
        print(f"-> {out}")


def fixture(ref_python: str, out: str) -> None:
    rng = np.random.default_rng(7)
    # Smooth colour fields with some noise: three 48-px images unlike each other.
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    base = np.stack([np.stack([np.sin(3 * xx + k), np.cos(4 * yy - k), xx * yy], 0) for k in range(3)])
    images = np.clip((base * 0.5 + 0.5) * 255 + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    work = Path(tempfile.mkdtemp(prefix="fid_fixture_"))
    np.save(work / "images.npy", images)
    from mindgan.inception import random_state

    import_free = work / "w.npz"
    np.savez(import_free, **random_state(0))
    code = ("import numpy as np, torch, sys; z = np.load(sys.argv[1]); "
            "torch.save({k: torch.from_numpy(z[k]) for k in z.files}, sys.argv[2])")
    subprocess.run([ref_python, "-c", code, import_free, work / "w.pth"], check=True)
    result = {"images": images}
    for impl in ("torch-fidelity", "pytorch-fid"):
        _ref(ref_python, "features", work / "w.pth", work / "images.npy", impl, work / f"{impl}.npy")
        result[impl.replace("-", "_")] = np.load(work / f"{impl}.npy")
    np.savez_compressed(out, **result)
    print(f"-> {out}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in result.items()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--torch_side":
        torch_side(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref_python", required=True, help="a Python with torch, torch-fidelity and pytorch-fid")
    p.add_argument("--num", type=int, default=400, help="images per set (default 400)")
    p.add_argument("--out", default=None, help="write the report here as JSON")
    p.add_argument("--fixture", default=None, help="write the test fixture here instead")
    a = p.parse_args()
    os.environ.setdefault("GLOG_v", "3")
    from mindgan.cpu import choose_cpu_kernels

    choose_cpu_kernels("dcgan")
    import mindspore as ms

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    if a.fixture:
        fixture(a.ref_python, a.fixture)
    else:
        compare(a.ref_python, a.num, a.out)


if __name__ == "__main__":
    main()
