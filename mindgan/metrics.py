"""Distances between two sets of features, in NumPy: the Fréchet distance of FID (Heusel et al.
2017) and the kernel distance of KID (Bińkowski et al. 2018). Which network makes the features
is the caller's: the MNIST classifier (`evaluate`) or Inception (`fidelity`)."""
from __future__ import annotations

import numpy as np

__all__ = ["gaussian_stats", "fid", "kid", "mmd2_unbiased", "polynomial_kernel"]


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[F]` and covariance `[F, F]` (float64) of features `[N, F]`."""
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid(stats_a, stats_b) -> float:
    """Fréchet distance between two Gaussians (mu, cov):
    |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))."""
    (mu_a, cov_a), (mu_b, cov_b) = stats_a, stats_b
    # Tr (C_a C_b)^(1/2) = Tr (S C_b S)^(1/2) with S = C_a^(1/2): a symmetric PSD matrix, so its
    # eigenvalues are real and >= 0 (up to rounding). Unlike a general sqrtm of C_a C_b this
    # stays exact and quiet when a feature never fires and a covariance is singular.
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_covmean = np.sqrt(np.clip(inner, 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_covmean)


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """(gamma <x, y> + coef0)^degree for every pair of rows: `[len(x), len(y)]` float64; gamma
    defaults to 1 / features."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """The unbiased estimate of the squared MMD from the three kernel matrices of two samples
    of equal size m: the within-sample means leave the diagonals out (m (m - 1) pairs), the
    cross term keeps all m^2 pairs."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 2020, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> tuple[float, float]:
    """Kernel Inception Distance: the mean and standard deviation, over `subsets` random
    subsets of `subset_size` rows drawn without replacement from each set, of the unbiased
    squared MMD with a cubic polynomial kernel (torch-fidelity's defaults, draws included: the
    same `seed` picks the same rows). `subset_size` is capped at the smaller set's size; at
    that size the estimate no longer depends on the draw."""
    n_a, n_b = len(features_a), len(features_b)
    size = min(subset_size, n_a, n_b)
    if size < 2:
        raise ValueError(f"KID needs at least 2 images in each set, not {n_a} and {n_b}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        a = features_a[rng.choice(n_a, size, replace=False)]
        b = features_b[rng.choice(n_b, size, replace=False)]
        kernel = lambda x, y: polynomial_kernel(x, y, degree, gamma, coef0)  # noqa: E731
        values[i] = mmd2_unbiased(kernel(a, a), kernel(a, b), kernel(b, b))
    return float(values.mean()), float(values.std())
