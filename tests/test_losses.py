"""GAN losses by name (mindgan.losses) against numpy, and the family contract they rely on."""
import mindspore as ms
import numpy as np
import pytest

from mindgan.gan import d_output
from mindgan.losses import loss_for
from mindgan.models import FAMILIES, Family, ModelSpec, build
from mindgan.registry import FAMILY_NAMES


def np_bce(p, target):
    p = np.clip(p, 1e-12, 1.0)  # nn.BCELoss clamps its logs there
    q = np.clip(1.0 - p, 1e-12, 1.0)
    return float(-(target * np.log(p) + (1 - target) * np.log(q)).mean())


@pytest.mark.parametrize("kind", ["probability", "logit"])
def test_bce_is_the_non_saturating_gan_loss(kind):
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((8, 1)).astype(np.float32) * 3
    real, fake = raw[:4], raw[4:]
    prob = (lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))) if kind == "logit" else (lambda x: x)
    if kind == "probability":
        real, fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    d_loss, g_loss, probability = loss_for("bce", kind)
    t = ms.Tensor
    assert float(d_loss(t(real), t(fake)).asnumpy()) == pytest.approx(
        np_bce(prob(real), 1) + np_bce(prob(fake), 0), rel=1e-5)
    assert float(g_loss(t(fake)).asnumpy()) == pytest.approx(np_bce(prob(fake), 1), rel=1e-5)
    np.testing.assert_allclose(probability(t(fake)).asnumpy(), prob(fake), rtol=1e-5)


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'hinge' \\(choose from bce\\)"):
        loss_for("hinge", "logit")


def test_every_registered_family_builds_networks_that_keep_their_spec():
    assert tuple(FAMILIES) == FAMILY_NAMES
    tiny = {"mlp": ModelSpec("mlp", latent_size=4, image_size=8),
            "dcgan": ModelSpec("dcgan", latent_size=4, channels=3, image_size=16, ngf=2, ndf=2),
            "dcgan-mnist": ModelSpec("dcgan-mnist", latent_size=4, image_size=8, ngf=2, ndf=2)}
    for name, fam in FAMILIES.items():
        assert isinstance(fam, Family) and fam.name == name
        assert fam.d_output in ("probability", "logit") and {"epochs", "batch_size", "lr"} <= fam.preset.keys()
        net_g, net_d = build(tiny[name])
        assert net_g.spec == net_d.spec == tiny[name]
        assert d_output(net_d.spec) == fam.d_output
        assert d_output(ModelSpec(name, d_output="logit")) == "logit"  # a spec may say otherwise
