"""Sample quality in numbers: `python -m mindgan.evaluate --ckpt PATH`.

- Parzen-window log-likelihood of the MNIST test set (the protocol of Goodfellow et al. 2014,
  Table 1: 225 ± 2 on MNIST): Gaussian kernels on generated samples with pixels in [0, 1],
  sigma chosen by maximum likelihood on a validation split (the last 10,000 training images).
- Classifier FID: Fréchet distance between the penultimate-layer features of the shipped
  MNIST classifier for generated and test images, next to the floor FID(real train, test).
- Mode coverage: the classifier's class histogram of the samples, its KL divergence to
  uniform, and the mean classifier confidence.
- For a conditional generator (10 classes, labels drawn uniformly for the figures above): the
  conditional accuracy (how often the classifier reads the digit asked for), beside the
  classifier's own accuracy on the real test set (its ceiling), and the intra-class FID (each
  digit's samples against that digit's test images) with their mean.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from .metrics import fid, gaussian_stats

__all__ = ["parzen_log_likelihood", "parzen_select_sigma", "fid", "gaussian_stats",
           "mode_coverage", "evaluate", "evaluate_images", "load_samples", "NotMnistGenerator", "QuickFID",
           "SIGMAS", "main"]

# The paper's grid: numpy.logspace(-1, 0, 10) (adversarial/parzen_ll.py, --cross_val 10).
SIGMAS = np.logspace(-1.0, 0.0, 10)


def _log_kernel_sums(samples: np.ndarray, points: np.ndarray, sigmas: np.ndarray,
                     chunk: int = 500) -> np.ndarray:
    """log sum_i exp(-|x - mu_i|^2 / (2 sigma^2)) for each point x and sigma: `[S, M]` float64.

    Squared distances come from one float64 matmul per chunk of points, so memory stays at
    `chunk x N` whatever the sizes; the log-sum-exp is exact (max-shifted) in float64."""
    mu = np.asarray(samples, np.float64)
    mu_sq = np.einsum("ij,ij->i", mu, mu)
    out = np.empty((len(sigmas), len(points)))
    for start in range(0, len(points), chunk):
        x = np.asarray(points[start:start + chunk], np.float64)
        d2 = np.einsum("ij,ij->i", x, x)[:, None] + mu_sq[None, :] - 2.0 * x @ mu.T
        np.maximum(d2, 0.0, out=d2)  # rounding can leave tiny negatives
        for s, sigma in enumerate(sigmas):
            a = d2 * (-0.5 / sigma ** 2)
            top = a.max(axis=1, keepdims=True)
            out[s, start:start + len(x)] = top[:, 0] + np.log(np.exp(a - top).sum(axis=1))
    return out


def parzen_log_likelihood(samples: np.ndarray, points: np.ndarray, sigma: float,
                          chunk: int = 500) -> np.ndarray:
    """log p(x) under an isotropic Gaussian Parzen window on `samples`, for each point.

    samples float `[N, D]`, points float `[M, D]` (pixels in [0, 1]); returns float64 `[M]`:
    logsumexp_i(-|x - mu_i|^2 / (2 sigma^2)) - log N - D/2 log(2 pi sigma^2)."""
    n, d = np.shape(samples)
    lse = _log_kernel_sums(samples, points, np.array([sigma]), chunk)[0]
    return lse - np.log(n) - 0.5 * d * np.log(2.0 * np.pi * sigma ** 2)


def parzen_select_sigma(samples: np.ndarray, validation: np.ndarray,
                        sigmas: np.ndarray = SIGMAS) -> tuple[float, np.ndarray]:
    """The sigma of the grid with the highest mean validation log-likelihood; also returns
    the mean log-likelihood for every sigma `[S]`."""
    n, d = np.shape(samples)
    lse = _log_kernel_sums(samples, validation, sigmas)
    means = lse.mean(axis=1) - np.log(n) - 0.5 * d * np.log(2.0 * np.pi * sigmas ** 2)
    return float(sigmas[int(np.argmax(means))]), means


def mode_coverage(probs: np.ndarray) -> dict:
    """From classifier probabilities `[N, 10]`: the class histogram (fractions), its KL
    divergence to uniform (0 = every digit equally often), the number of classes present
    and the mean confidence (mean max probability)."""
    hist = np.bincount(probs.argmax(axis=1), minlength=10) / len(probs)
    nonzero = hist[hist > 0]
    return {"class_fractions": [round(float(h), 4) for h in hist],
            "kl_to_uniform": float(np.sum(nonzero * np.log(nonzero * 10))),
            "classes_present": int((hist > 0).sum()),
            "mean_confidence": float(probs.max(axis=1).mean())}


class NotMnistGenerator(ValueError):
    """The generator does not make MNIST-shaped images, which every metric here needs."""


class QuickFID:
    """A cheap quality figure to watch during training: classifier FID of `num` samples against
    the MNIST test set (its statistics computed once), with the digits present and the KL of
    the class histogram to uniform. Lower FID is better; noisier than `evaluate`'s 10,000."""

    _TEST_STATS: dict = {}  # data_dir -> (classifier, test-set statistics): once per process

    def __init__(self, num: int = 2000, seed: int = 0, data_dir=None):
        self.num, self.seed, self.data_dir = num, seed, data_dir

    def _reference(self):
        """(classifier, test-set statistics), computed at the first measurement (seconds of
        work), so that a run too short to measure does not pay for them."""
        if self.data_dir not in self._TEST_STATS:
            from .classifier import load_classifier, predict
            from .data import load_mnist, to_model_range

            net = load_classifier()
            test = to_model_range(load_mnist("test", self.data_dir)[0])
            self._TEST_STATS[self.data_dir] = (net, gaussian_stats(predict(net, test)[0]))
        return self._TEST_STATS[self.data_dir]

    def __call__(self, generator) -> dict:
        """{"fid", "classes_present", "kl_to_uniform"} for a loaded generator (mode kept)."""
        from .classifier import predict
        from .infer import generate

        net, test_stats = self._reference()
        feats, probs = predict(net, generate(generator, self.num, seed=self.seed))
        coverage = mode_coverage(probs)
        return {"fid": fid(gaussian_stats(feats), test_stats),
                "classes_present": coverage["classes_present"],
                "kl_to_uniform": coverage["kl_to_uniform"]}


def evaluate(ckpt, num: int = 10000, seed: int = 0, data_dir=None,
             with_reference: bool = True, progress=print) -> dict:
    """Every figure for the generator in `ckpt` (a path or a loaded generator of any family
    making `[1, 28, 28]` images); see the module doc. NotMnistGenerator otherwise."""
    from .checkpoint import as_generator
    from .classifier import IMAGE_SHAPE
    from .infer import generate

    t0 = time.perf_counter()
    ckpt = as_generator(ckpt)
    spec = getattr(ckpt, "spec", None)
    if spec is not None and spec.image_shape != IMAGE_SHAPE:
        raise NotMnistGenerator(
            f"this generator makes {'x'.join(map(str, spec.image_shape))} images ({spec.describe()}); "
            f"Parzen, classifier FID and mode coverage are MNIST-only metrics "
            f"({'x'.join(map(str, IMAGE_SHAPE))}): give --real with images like its training set for "
            f"Inception FID and KID")
    conditional = bool(spec is not None and spec.num_classes)
    if conditional and spec.num_classes != 10:
        raise NotMnistGenerator(f"this conditional generator has {spec.num_classes} classes; the conditional "
                                f"figures here are MNIST's 10 digits")
    labels = np.random.default_rng([seed, 1]).integers(0, 10, num).astype(np.int32) if conditional else None
    fake = generate(ckpt, num, seed=seed, labels=labels)          # [-1, 1]
    result = {"num_samples": num, "seed": seed,
              **evaluate_images(fake, labels, data_dir, with_reference, progress)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def evaluate_images(fake: np.ndarray, labels: np.ndarray | None = None, data_dir=None,
                    with_reference: bool = True, progress=print) -> dict:
    """Every figure for digits made by anything: float `[N, 1, 28, 28]` in [-1, 1]; with
    `labels` (int `[N]`, the digit each was asked to be), the conditional figures too."""
    from .classifier import IMAGE_SHAPE, load_classifier, predict
    from .data import load_mnist, to_model_range

    fake = np.asarray(fake, np.float32)
    if fake.shape[1:] != IMAGE_SHAPE:
        raise NotMnistGenerator(f"images of shape {list(fake.shape[1:])}: Parzen, classifier FID and mode coverage "
                                f"are MNIST-only metrics ({list(IMAGE_SHAPE)}); give --real for Inception FID and KID")
    num = len(fake)
    train_images, _ = load_mnist("train", data_dir)
    test_images, test_labels = load_mnist("test", data_dir)
    fake01 = ((fake.reshape(num, -1) + 1.0) / 2.0).astype(np.float64)
    valid01 = train_images[-10000:].reshape(10000, -1) / 255.0
    test01 = test_images.reshape(len(test_images), -1) / 255.0

    progress(f"Parzen: choosing sigma on {len(valid01)} validation images ...")
    sigma, by_sigma = parzen_select_sigma(fake01, valid01)
    progress(f"Parzen: sigma {sigma:.4f}; scoring {len(test01)} test images ...")
    ll = parzen_log_likelihood(fake01, test01, sigma)
    result = {"num_samples": num,
              "parzen_ll": float(ll.mean()), "parzen_se": float(ll.std(ddof=1) / np.sqrt(len(ll))),
              "parzen_sigma": sigma,
              "parzen_validation_by_sigma": {f"{s:.4f}": float(v) for s, v in zip(SIGMAS, by_sigma)}}

    net = load_classifier()
    feats_fake, probs_fake = predict(net, fake)
    feats_test, probs_test = predict(net, to_model_range(test_images))
    test_stats = gaussian_stats(feats_test)
    result["fid"] = fid(gaussian_stats(feats_fake), test_stats)
    if with_reference:
        feats_real, _ = predict(net, to_model_range(train_images[:10000]))
        result["fid_reference_train_vs_test"] = fid(gaussian_stats(feats_real), test_stats)
    result.update(mode_coverage(probs_fake))
    if labels is not None:
        result.update(_conditional_figures(feats_fake, probs_fake, labels, feats_test, probs_test, test_labels))
    return result


def load_samples(path) -> np.ndarray:
    """Digits made elsewhere, for `evaluate_images`: an `.npy` of float `[N, 1, 28, 28]` in
    [-1, 1] (or uint8), or a folder or zip of images (made gray and 28x28), as float32 in [-1, 1]."""
    from pathlib import Path

    from .fidelity import ImageSourceError, check_range, load_image_set

    path = Path(path)
    if path.suffix == ".npy" and path.is_file():
        try:
            a = np.load(path)
        except (OSError, ValueError) as exc:
            raise ImageSourceError(f"{path}: not a readable .npy file ({exc})") from None
        if np.issubdtype(a.dtype, np.floating):
            if a.ndim == 3:
                a = a[:, None]
            return np.clip(check_range(a, f"--samples {path}").astype(np.float32), -1.0, 1.0)
    images = load_image_set(path, 28, channels=1, progress=False)
    return images.astype(np.float32) / 127.5 - 1.0


def _conditional_figures(feats_fake, probs_fake, labels, feats_test, probs_test, test_labels) -> dict:
    intra = [fid(gaussian_stats(feats_fake[labels == c]), gaussian_stats(feats_test[test_labels == c]))
             for c in range(10)]
    return {"conditional_accuracy": float((probs_fake.argmax(axis=1) == labels).mean()),
            "classifier_test_accuracy": float((probs_test.argmax(axis=1) == test_labels).mean()),
            "intra_fid": [round(v, 3) for v in intra], "intra_fid_mean": float(np.mean(intra))}


def format_table(r: dict) -> str:
    rows = [("Parzen log-likelihood (test)", f"{r['parzen_ll']:.1f} ± {r['parzen_se']:.1f}",
             f"sigma {r['parzen_sigma']:.3f}; paper's GAN: 225 ± 2"),
            ("classifier FID (generated vs test)", f"{r['fid']:.2f}",
             f"floor, real train vs test: {r['fid_reference_train_vs_test']:.2f}"
             if "fid_reference_train_vs_test" in r else ""),
            ("classes present", f"{r['classes_present']} / 10", ""),
            ("KL(class histogram || uniform)", f"{r['kl_to_uniform']:.4f}", "0 = all digits equally often"),
            ("mean classifier confidence", f"{r['mean_confidence']:.3f}", ""),
            ("class fractions 0..9", " ".join(f"{f:.3f}" for f in r["class_fractions"]), "")]
    if "conditional_accuracy" in r:
        rows += [("conditional accuracy", f"{100 * r['conditional_accuracy']:.2f} %",
                  f"the classifier on real test digits: {100 * r['classifier_test_accuracy']:.2f} %"),
                 ("intra-class FID, mean", f"{r['intra_fid_mean']:.2f}",
                  "per digit: " + " ".join(f"{v:.1f}" for v in r["intra_fid"]))]
    width = max(len(a) for a, _, _ in rows)
    return "\n".join(f"{a.ljust(width)}  {b}   {c}".rstrip() for a, b, c in rows)


def format_inception_table(r: dict) -> str:
    rows = [("Inception FID", f"{r['fid']:.3f}",
             f"{r['num_samples']} generated vs {r['num_real'] or 'saved statistics of'} real images")]
    if "kid_mean" in r:
        rows.append(("KID (x 1000)", f"{1000 * r['kid_mean']:.3f} ± {1000 * r['kid_std']:.3f}",
                     f"{r['kid_subsets']} subsets of {r['kid_subset_size']}"))
    rows.append(("protocol, weights", f"{r['protocol']}, {r['inception_weights'][:23]}",
                 "images resized from " + "x".join(map(str, r["image_size"][::-1])) + " to 299x299"))
    width = max(len(a) for a, _, _ in rows)
    return "\n".join(f"{a.ljust(width)}  {b}   {c}".rstrip() for a, b, c in rows)


def build_parser():
    from .cli import Parser, add_runtime_flags, non_negative, positive
    from .inception import PROTOCOLS, WEIGHTS_NAME, WEIGHTS_URL

    p = Parser(prog="python -m mindgan.evaluate",
               description="How good a generator's images are. For MNIST (any family): Parzen log-likelihood, "
                           "classifier FID and mode coverage. For any images, with --real: FID and KID on the "
                           "standard Inception features, as torch-fidelity computes them.",
               epilog="Examples: --ckpt G.ckpt (MNIST); --ckpt G.ckpt --real faces.zip (colour); "
                      "--samples fakes.npy --real real_dir/ (images made elsewhere).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--ckpt", help="generator checkpoint (or a resume state) to draw --num images from")
    what.add_argument("--samples", help="images made elsewhere: an .npy ([N, C, H, W] float in [-1, 1], or uint8), "
                                        "a folder or a zip of images")
    p.add_argument("--num", type=positive("num"), default=10000, help="generated samples (default 10000)")
    p.add_argument("--seed", type=non_negative("seed"), default=0, help="noise seed (default 0)")
    p.add_argument("--data_dir", default=None, help="MNIST folder (default: the usual search)")
    inc = p.add_argument_group("Inception FID and KID (--real)")
    inc.add_argument("--real", default=None,
                     help="the real images to compare with: an .npy, a folder or a zip (brought to the generated "
                          "images' size; their features are cached), or an .npz of saved statistics (mu, sigma)")
    inc.add_argument("--inception", default=None,
                     help=f"the weights file {WEIGHTS_NAME} (default: from the cache, else downloaded once "
                          f"from {WEIGHTS_URL})")
    inc.add_argument("--inception_url", default=WEIGHTS_URL, help="where to download the weights from (a mirror)")
    inc.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0],
                     help="resize and scaling as torch-fidelity (default; the original TensorFlow FID's) or "
                          "pytorch-fid does them")
    inc.add_argument("--kid_subsets", type=positive("kid_subsets"), default=100, help="KID subsets (default 100)")
    inc.add_argument("--kid_subset_size", type=positive("kid_subset_size"), default=1000,
                     help="images per KID subset (default 1000; at most the smaller set)")
    inc.add_argument("--batch_size", type=positive("batch_size"), default=50, help="Inception batch (default 50)")
    inc.add_argument("--save_stats", default=None,
                     help="also write the real set's statistics and features to this .npz, for a later --real")
    add_runtime_flags(p)
    return p


def main(argv=None) -> int:
    from .cli import choose_kernels, one_line_errors, parse, start
    from .fidelity import ImageSourceError, inception_scores
    from .inception import InceptionWeightsError

    p = build_parser()
    args = parse(p, argv, convolutional=None)
    if args.num < 2:
        p.error("--num must be at least 2")
    if args.save_stats and not args.real:
        p.error("--save_stats needs --real (the set whose statistics it saves)")
    if args.save_stats and not args.save_stats.endswith(".npz"):
        p.error(f"--save_stats {args.save_stats}: give a file name ending in .npz")
    choose_kernels(p, args, "inception" if args.real else True)
    start(p, args.device_target)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with one_line_errors(p, NotMnistGenerator, ImageSourceError, InceptionWeightsError):
        if args.real:
            from .fidelity import load_image_set

            if args.ckpt:
                from .checkpoint import load_generator
                from .infer import generate, label_indices

                net = load_generator(args.ckpt)
                labels = label_indices(net.spec, None, args.num, np.random.default_rng([args.seed, 1]))
                fake = generate(net, args.num, seed=args.seed, labels=labels)
            else:
                fake = load_image_set(args.samples)
            result = {"seed": args.seed} if args.ckpt else {"samples": args.samples}
            result.update(inception_scores(fake, args.real, args.inception, args.protocol, args.kid_subsets,
                                           args.kid_subset_size, args.batch_size, url=args.inception_url,
                                           save_stats=args.save_stats, log=log))
            print(format_inception_table(result))
        elif args.ckpt:
            result = evaluate(args.ckpt, args.num, args.seed, args.data_dir, progress=log)
            print(format_table(result))
        else:
            result = {"samples": args.samples, **evaluate_images(load_samples(args.samples), None, args.data_dir,
                                                                 progress=log)}
            print(format_table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
