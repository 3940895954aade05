"""GAN losses as plain functions chosen by name (compare_gan's way): each is a `Loss` of
`d(real_out, fake_out)` -> D's loss, `g(fake_out)` -> G's loss and `probability(out)` -> D's
belief that an image is real (for the logs), for D outputs `[N, 1]` float32. "bce" is the
tutorials' non-saturating loss; "hinge", "lsgan" and "wgan-gp" work on D's raw score
(`RAW_SCORE`); "wgan-gp"'s gradient penalty is `mindgan.penalties`'.

A family says what its D ends in (`ModelSpec.d_output`): "probability" (a Sigmoid, the
tutorials' `nn.BCELoss`) or "logit" (TensorFlow's `from_logits=True`). `loss_for(name,
d_output)` gives the form that fits it, so the same name trains every family.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from mindspore import nn, ops

__all__ = ["Loss", "LOSSES", "RAW_SCORE", "loss_for"]


class Loss(NamedTuple):
    d: Callable  # (D(x), D(G(z))) -> scalar loss of the discriminator
    g: Callable  # D(G(z)) -> scalar loss of the generator
    probability: Callable  # D's output -> P(real) in [0, 1]


def _identity(x):
    return x


def _bce(d_output: str) -> Loss:
    """The non-saturating GAN loss of Goodfellow et al.: D on BCE(D(x), 1) + BCE(D(G(z)), 0),
    G on BCE(D(G(z)), 1). On probabilities it is the tutorials' `nn.BCELoss` (which clamps
    log at 1e-12); on logits, the stable `nn.BCEWithLogitsLoss`."""
    if d_output == "logit":
        bce, probability = nn.BCEWithLogitsLoss(reduction="mean"), ops.sigmoid
    else:
        bce, probability = nn.BCELoss(reduction="mean"), _identity

    def d(real, fake):
        return bce(real, ops.ones_like(real)) + bce(fake, ops.zeros_like(fake))

    def g(fake):
        return bce(fake, ops.ones_like(fake))  # non-saturating: G wants D(G(z)) -> 1

    return Loss(d, g, probability)


def _hinge(d_output: str) -> Loss:
    """The hinge loss (Lim & Ye 2017; SAGAN, BigGAN) on D's raw score s: D on
    relu(1 - s(x)) + relu(1 + s(G(z))), G on -s(G(z)). D(x) is reported as sigmoid(s)."""
    def d(real, fake):
        return ops.relu(1.0 - real).mean() + ops.relu(1.0 + fake).mean()

    def g(fake):
        return -fake.mean()

    return Loss(d, g, ops.sigmoid)


def _lsgan(d_output: str) -> Loss:
    """Least squares (Mao et al. 2017) on D's raw score s, targets 1 for real and 0 for
    generated: D on ((s(x) - 1)^2 + s(G(z))^2) / 2, G on (s(G(z)) - 1)^2 / 2. D(x) is reported
    as s clipped to [0, 1]."""
    def d(real, fake):
        return 0.5 * (ops.square(real - 1.0).mean() + ops.square(fake).mean())

    def g(fake):
        return 0.5 * ops.square(fake - 1.0).mean()

    def probability(score):
        return ops.clamp(score, 0.0, 1.0)

    return Loss(d, g, probability)


def _wasserstein(d_output: str) -> Loss:
    """The Wasserstein critic's loss (Arjovsky et al. 2017) on D's raw score s: D on
    mean s(G(z)) - mean s(x), G on -mean s(G(z)). "wgan-gp" adds Gulrajani et al.'s gradient
    penalty (`mindgan.penalties`, weight 10). D(x) is reported as sigmoid(s)."""
    def d(real, fake):
        return fake.mean() - real.mean()

    def g(fake):
        return -fake.mean()

    return Loss(d, g, ops.sigmoid)


LOSSES = {"bce": _bce, "hinge": _hinge, "lsgan": _lsgan, "wgan-gp": _wasserstein}  # name -> (d_output -> Loss)
# Losses on D's raw score: a family whose D ends in a Sigmoid builds it without one for them.
RAW_SCORE = ("hinge", "lsgan", "wgan-gp")
D_OUTPUTS = ("probability", "logit")


def loss_for(name: str, d_output: str) -> Loss:
    """The loss `name` for a D whose output is `d_output`; ValueError naming the choices."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r} (choose from {', '.join(LOSSES)})")
    if d_output not in D_OUTPUTS:
        raise ValueError(f"unknown discriminator output {d_output!r} (choose from {', '.join(D_OUTPUTS)})")
    if name in RAW_SCORE and d_output != "logit":
        raise ValueError(f"the {name} loss needs D's raw score, not a probability (a spec with d_output 'logit')")
    return LOSSES[name](d_output)
