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
    with pytest.raises(ValueError, match="unknown loss 'foo' \\(choose from bce, hinge, lsgan, wgan-gp\\)"):
        loss_for("foo", "logit")


def test_every_registered_family_builds_networks_that_keep_their_spec():
    assert tuple(FAMILIES) == FAMILY_NAMES
    tiny = {"mlp": ModelSpec("mlp", latent_size=4, image_size=8),
            "dcgan": ModelSpec("dcgan", latent_size=4, channels=3, image_size=16, ngf=2, ndf=2),
            "dcgan-mnist": ModelSpec("dcgan-mnist", latent_size=4, image_size=8, ngf=2, ndf=2),
            "dcgan-carpedm20": ModelSpec("dcgan-carpedm20", latent_size=4, channels=3, image_size=17, ngf=2, ndf=2)}
    for name, fam in FAMILIES.items():
        assert isinstance(fam, Family) and fam.name == name
        assert fam.d_output in ("probability", "logit") and {"epochs", "batch_size", "lr"} <= fam.preset.keys()
        net_g, net_d = build(tiny[name])
        assert net_g.spec == net_d.spec == tiny[name]
        assert d_output(net_d.spec) == fam.d_output
        assert d_output(ModelSpec(name, d_output="logit")) == "logit"  # a spec may say otherwise


def test_hinge_least_squares_and_wasserstein_on_the_raw_score():
    rng = np.random.default_rng(1)
    real, fake = (rng.standard_normal((6, 1)).astype(np.float32) * 2 for _ in range(2))
    t = ms.Tensor
    d_loss, g_loss, _ = loss_for("hinge", "logit")
    assert float(d_loss(t(real), t(fake)).asnumpy()) == pytest.approx(
        np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean(), rel=1e-5)
    assert float(g_loss(t(fake)).asnumpy()) == pytest.approx(-fake.mean(), rel=1e-5)
    d_loss, g_loss, probability = loss_for("lsgan", "logit")
    assert float(d_loss(t(real), t(fake)).asnumpy()) == pytest.approx(
        0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean()), rel=1e-5)
    assert float(g_loss(t(fake)).asnumpy()) == pytest.approx(0.5 * ((fake - 1) ** 2).mean(), rel=1e-5)
    d_loss, g_loss, _ = loss_for("wgan-gp", "logit")  # the critic's part; the penalty: test_penalties
    assert float(d_loss(t(real), t(fake)).asnumpy()) == pytest.approx(fake.mean() - real.mean(), rel=1e-5)
    assert float(g_loss(t(fake)).asnumpy()) == pytest.approx(-fake.mean(), rel=1e-5)
    assert probability(t(np.array([[-1.0], [0.3], [2.0]], np.float32))).asnumpy().ravel().tolist() == pytest.approx(
        [0.0, 0.3, 1.0])
    with pytest.raises(ValueError, match="the hinge loss needs D's raw score"):
        loss_for("hinge", "probability")


def test_a_loss_on_the_raw_score_builds_d_without_its_sigmoid():
    from mindspore import nn

    from mindgan.config import TrainConfig

    for model, extra in (("mlp", {}), ("dcgan", dict(image_size=16, ngf=2, ndf=2))):
        for loss, sigmoid in (("bce", True), ("hinge", False), ("lsgan", False), ("wgan-gp", False)):
            spec = TrainConfig(model=model, loss=loss, **extra).spec
            _, net_d = build(spec)
            assert any(isinstance(c, nn.Sigmoid) for _, c in net_d.cells_and_names()) == sigmoid, (model, loss)
            assert d_output(spec) == ("probability" if sigmoid else "logit")
    assert d_output(TrainConfig(model="dcgan-mnist", loss="hinge").spec) == "logit"


def test_a_hinge_run_trains_and_its_checkpoints_say_so(tmp_path):
    from helpers import SHIPPED_MNIST

    from mindgan.checkpoint import load_generator, read_checkpoint
    from mindgan.config import TrainConfig
    from mindgan.data import load_mnist
    from mindgan.rundir import read_log
    from mindgan.training import train

    digits = load_mnist("train", SHIPPED_MNIST)[0][:128]
    run = train(TrainConfig(loss="hinge", batch_size=32, epochs=1, seed=2, output_dir=str(tmp_path / "run")),
                images=digits, progress=False)
    rows = read_log(run / "losses.csv", 10)
    assert len(rows) == 4 and all(np.isfinite(float(r[k])) for r in rows for k in ("loss_d", "loss_g"))
    assert float(rows[0]["loss_d"]) == pytest.approx(2.0, abs=0.3)  # relu(1 - s) + relu(1 + s) near s = 0
    spec = ModelSpec.from_json(str(read_checkpoint(run / "checkpoints" / "last.ckpt")["mindgan_spec"]))
    assert (spec.loss, spec.d_output) == ("hinge", "logit")
    assert load_generator(run / "checkpoints" / "generator.ckpt").spec.loss == "hinge"
