"""Checkpoints without a spec (mindgan.compat): every width read from the shapes."""
from mindgan.compat import looks_like_discriminator, spec_from_shapes
from mindgan.models import ModelSpec, build


def canonical_shapes(net):
    """The "model.<index>.<kind>" shapes that checkpoint.generator_weights hands to compat."""
    return {p.name.split(".", 1)[1]: tuple(p.shape) for p in net.get_parameters()}


def test_widths_come_from_the_shapes_and_ndf_from_the_discriminator_when_the_file_has_it():
    for spec in (ModelSpec("dcgan", latent_size=8, channels=3, image_size=32, ngf=4, ndf=6),
                 ModelSpec("dcgan-mnist", latent_size=8, channels=1, image_size=12, ngf=2, ndf=3),
                 ModelSpec("mlp", latent_size=8, channels=3, image_size=10)):
        net_g, net_d = build(spec)
        g, d = canonical_shapes(net_g), canonical_shapes(net_d)
        assert spec_from_shapes(g, d) == spec
        if spec.family != "mlp":  # a generator alone says nothing of D: the default width
            assert spec_from_shapes(g).ndf == 64
        assert not looks_like_discriminator([p.name for p in net_g.get_parameters()], g)
        assert looks_like_discriminator([p.name for p in net_d.get_parameters()], d)
        assert looks_like_discriminator(["model.0.weight", "model.2.weight", "model.4.weight"], d)
