"""Evaluation metrics with known answers, the shipped classifier, and the CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, SHIPPED_MNIST
from scipy.special import logsumexp

from mindgan.evaluate import SIGMAS, fid, gaussian_stats, mode_coverage, parzen_log_likelihood, parzen_select_sigma


def direct_parzen(samples, points, sigma):
    """Independent oracle: sum of Gaussian log-densities, one kernel at a time."""
    d = samples.shape[1]
    logk = np.array([[-np.sum((x - m) ** 2) / (2 * sigma ** 2) for m in samples] for x in points])
    return logsumexp(logk, axis=1) - np.log(len(samples)) - d / 2 * np.log(2 * np.pi * sigma ** 2)


def test_parzen_matches_direct_sum():
    rng = np.random.default_rng(0)
    samples, points = rng.uniform(0, 1, (40, 12)), rng.uniform(0, 1, (9, 12))
    for sigma in (0.05, 0.2, 1.0):  # 0.05: the kernels underflow without log-sum-exp
        np.testing.assert_allclose(parzen_log_likelihood(samples, points, sigma),
                                   direct_parzen(samples, points, sigma), rtol=1e-10)
    np.testing.assert_allclose(parzen_log_likelihood(samples, points, 0.2, chunk=4),
                               parzen_log_likelihood(samples, points, 0.2), rtol=1e-12)


def test_parzen_single_kernel_closed_form():
    x, mu, sigma = np.array([[0.5, 0.25]]), np.array([[0.0, 0.0]]), 0.5
    expected = -(0.25 + 0.0625) / (2 * 0.25) - np.log(2 * np.pi * 0.25)
    assert parzen_log_likelihood(mu, x, sigma)[0] == pytest.approx(expected, rel=1e-12)


def test_parzen_prefers_samples_on_the_data():
    rng = np.random.default_rng(1)
    test = rng.uniform(0, 1, (50, 30))
    on, far = test.copy(), test + 3.0
    assert parzen_log_likelihood(on, test, 0.2).mean() > parzen_log_likelihood(far, test, 0.2).mean() + 100


def test_sigma_selection_recovers_the_noise_scale():
    rng = np.random.default_rng(2)
    centres = rng.uniform(0, 100, (400, 5))  # far apart: each point sees one kernel
    samples = centres + rng.normal(0, 0.3, centres.shape)
    sigma, by_sigma = parzen_select_sigma(samples, centres)
    assert sigma == pytest.approx(SIGMAS[np.argmin(np.abs(SIGMAS - 0.3))])
    assert len(by_sigma) == len(SIGMAS)


def test_fid_known_answers():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, (4000, 8))
    assert abs(fid(gaussian_stats(a), gaussian_stats(a))) < 1e-6
    shifted = [fid(gaussian_stats(a), gaussian_stats(a + c)) for c in (0.5, 1.0, 2.0)]
    np.testing.assert_allclose(shifted, [8 * 0.25, 8 * 1.0, 8 * 4.0], rtol=1e-6)  # |delta|^2
    wider = fid(gaussian_stats(a), gaussian_stats(a * 2))
    assert wider == pytest.approx(8 * (1 - 2) ** 2, rel=0.05)  # Tr(C + 4C - 4C) = Tr(C)


def test_fid_closed_form_for_commuting_and_singular_covariances():
    """C_a = Q diag(a) Q^T, C_b = Q diag(b) Q^T commute, so the distance is
    |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2; zeros make both singular, as a feature
    that never fires does."""
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    a, b = rng.uniform(0.1, 3, 12), rng.uniform(0.1, 3, 12)
    a[:3] = 0
    b[1:4] = 0
    mu_a, mu_b = rng.normal(size=12), rng.normal(size=12)
    got = fid((mu_a, q @ np.diag(a) @ q.T), (mu_b, q @ np.diag(b) @ q.T))
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert got == pytest.approx(expected, rel=1e-6)


def test_mode_coverage():
    uniform = np.eye(10)[np.arange(1000) % 10] * 0.9 + 0.01
    r = mode_coverage(uniform)
    assert r["classes_present"] == 10 and r["kl_to_uniform"] == pytest.approx(0, abs=1e-12)
    assert r["mean_confidence"] == pytest.approx(0.91)
    collapsed = np.eye(10)[np.zeros(100, int)]
    r = mode_coverage(collapsed)
    assert r["classes_present"] == 1 and r["kl_to_uniform"] == pytest.approx(np.log(10))


def test_shipped_classifier_reaches_its_accuracy():
    from mindgan.classifier import accuracy, load_classifier
    from mindgan.data import load_mnist

    images, labels = load_mnist("test", SHIPPED_MNIST)
    assert accuracy(load_classifier(), images, labels) >= 0.99


def test_evaluate_cli(tmp_path):
    from mindgan.checkpoint import atomic_save
    from mindgan.models import Generator

    atomic_save(Generator(), tmp_path / "g.ckpt")
    proc = subprocess.run([sys.executable, "-m", "mindgan.evaluate", "--ckpt", tmp_path / "g.ckpt",
                           "--num", "300", "--seed", "1"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "GLOG_v": "3"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    for key in ("parzen_ll", "parzen_se", "parzen_sigma", "fid", "fid_reference_train_vs_test",
                "class_fractions", "kl_to_uniform", "mean_confidence"):
        assert key in result
    assert any(line.startswith("Parzen log-likelihood") for line in lines)
    # An untrained generator is far from MNIST; real training images are close to the test set.
    assert result["fid"] > 10 * result["fid_reference_train_vs_test"]
