"""The model families: architectures, specs in checkpoints, training, inference and export of the
convolutional ones (tiny widths, a few steps: real MindSpore on CPU)."""
import json
import os
import subprocess
import sys

import dcgan_tutorial_reference
import imageio.v2 as imageio
import mindspore as ms
import numpy as np
import pytest
from helpers import SHIPPED_MNIST
from mindspore import nn

from mindgan.checkpoint import CheckpointError, atomic_save, load_generator, read_checkpoint, save_generator
from mindgan.config import TrainConfig
from mindgan.data import load_mnist
from mindgan.gan import build_gan, latent_noise, make_train_step, make_updates
from mindgan.infer import generate
from mindgan.models import FAMILIES, ModelSpec, build, build_generator, count_params
from mindgan.training import train

ENV = {**os.environ, "GLOG_v": "3"}


def layer_kinds(net):
    """The MindSpore layer each layer is (mindgan's fast forms by the stock class they subclass)."""
    return [next((k.__name__ for k in type(c).__mro__
                  if k.__module__.startswith("mindspore.nn.layer")), type(c).__name__)
            for c in net.model.cells()]


# ------------------------------------------------------------------ architectures

@pytest.mark.parametrize("spec, g_params, d_params, shape", [
    (ModelSpec("mlp"), 1_510_032, 533_505, (1, 28, 28)),
    (ModelSpec("dcgan", channels=3, image_size=64), 3_576_704, 2_765_568, (3, 64, 64)),
    (ModelSpec("dcgan-mnist"), 2_305_472, 212_865, (1, 28, 28)),
])
def test_each_family_has_the_tutorials_parameter_counts_and_shapes(spec, g_params, d_params, shape):
    net_g, net_d = build(spec)
    assert (count_params(net_g), count_params(net_d)) == (g_params, d_params)
    net_g.set_train(False)
    net_d.set_train(False)
    images = net_g(ms.Tensor(np.zeros((1, 100), np.float32)))
    assert images.shape == (1, *shape)
    assert net_d(images).shape == (1, 1)
    names = [p.name for net in (net_g, net_d) for p in net.get_parameters()]
    assert len(names) == len(set(names))  # one compiled graph holds both


def test_dcgan_layers_are_the_mindspore_tutorials():
    net_g, net_d = build(ModelSpec("dcgan", channels=3, image_size=64))
    assert layer_kinds(net_g) == ["Conv2dTranspose", "BatchNorm2d", "ReLU"] * 4 + ["Conv2dTranspose", "Tanh"]
    assert layer_kinds(net_d) == (["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3
                                  + ["Conv2d", "Sigmoid"])
    convs = [c for c in net_g.model.cells() if isinstance(c, nn.Conv2dTranspose)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (100, 512, 1), (512, 256, 2), (256, 128, 2), (128, 64, 2), (64, 3, 2)]
    assert not any(c.has_bias for c in convs)


def test_dcgan_mnist_layers_are_the_tensorflow_tutorials():
    net_g, net_d = build(ModelSpec("dcgan-mnist"))
    assert layer_kinds(net_g) == ["Dense", "BatchNorm1d", "LeakyReLU", "Reshape",
                                  "Conv2dTranspose", "BatchNorm2d", "LeakyReLU",
                                  "Conv2dTranspose", "BatchNorm2d", "LeakyReLU",
                                  "Conv2dTranspose", "Tanh"]
    assert layer_kinds(net_d) == ["Conv2d", "LeakyReLU", "Dropout", "Conv2d", "LeakyReLU", "Dropout",
                                  "Reshape", "Dense"]
    assert {c.alpha for c in net_g.model.cells() if isinstance(c, nn.LeakyReLU)} == {0.3}
    bn = [c for c in net_g.model.cells() if "BatchNorm" in type(c).__name__]
    assert all(abs(c.momentum - 0.01) < 1e-9 and abs(c.eps - 1e-3) < 1e-12 for c in bn)  # Keras's


@pytest.mark.parametrize("size, ups", [(16, 2), (32, 3), (64, 4), (128, 5)])
def test_dcgan_sizes_add_or_remove_stride_two_blocks(size, ups):
    spec = ModelSpec("dcgan", channels=1, image_size=size, ngf=4, ndf=4)
    net_g, net_d = build(spec)
    convs = [c for c in net_g.model.cells() if isinstance(c, nn.Conv2dTranspose)]
    assert sum(c.stride[0] == 2 for c in convs) == ups
    net_g.set_train(False)
    net_d.set_train(False)
    out = net_g(ms.Tensor(np.zeros((1, 100), np.float32)))
    assert out.shape == (1, 1, size, size) and net_d(out).shape == (1, 1)


@pytest.mark.parametrize("size", [24, 48, 100, 8])
def test_dcgan_refuses_other_sizes_with_one_line(size):
    with pytest.raises(ValueError) as info:
        build(ModelSpec("dcgan", channels=3, image_size=size))
    assert f"--image_size {size}" in str(info.value) and "16·2^k" in str(info.value)
    assert "\n" not in str(info.value)


def test_family_presets_are_defaults_and_flags_win():
    mlp = TrainConfig()
    assert (mlp.epochs, mlp.batch_size, mlp.lr, mlp.beta1, mlp.num_samples) == (200, 128, 2e-4, 0.5, 25)
    dc = TrainConfig(model="dcgan")
    assert (dc.epochs, dc.batch_size, dc.lr, dc.beta1, dc.image_size, dc.num_samples) == (10, 128, 2e-4, 0.5, 64, 64)
    assert dc.spec.channels == 3
    tf = TrainConfig(model="dcgan-mnist", lr=3e-4)
    assert (tf.epochs, tf.batch_size, tf.lr, tf.beta1, tf.num_samples, tf.grid_rows) == (50, 256, 3e-4, 0.9, 16, 4)


def test_cli_knows_every_family():
    from mindgan import train as cli

    model = next(a for a in cli.build_parser()._actions if "--model" in a.option_strings)
    assert tuple(model.choices) == tuple(FAMILIES)


# ------------------------------------------------------------------ specs in checkpoints

TINY = {
    "mlp": ModelSpec("mlp", latent_size=8, channels=3, image_size=8),
    "dcgan": ModelSpec("dcgan", latent_size=8, channels=3, image_size=32, ngf=4, ndf=4),
    "dcgan-mnist": ModelSpec("dcgan-mnist", latent_size=8, channels=1, image_size=28, ngf=4, ndf=4),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_generators_load_with_their_spec_or_from_their_shapes_alone(tmp_path, name):
    spec = TINY[name]
    ms.set_seed(1)
    net = build_generator(spec)
    net.set_train(False)
    z = ms.Tensor(np.random.default_rng(0).standard_normal((3, spec.latent_size)).astype(np.float32))
    expected = net(z).asnumpy()
    save_generator(net, tmp_path / "with_spec.ckpt")
    atomic_save(net, tmp_path / "bare.ckpt")  # no spec in the file: recognised by its shapes
    assert "mindgan_spec" in read_checkpoint(tmp_path / "with_spec.ckpt")
    for file in ("with_spec.ckpt", "bare.ckpt"):
        loaded = load_generator(tmp_path / file)
        assert loaded.spec.image_shape == spec.image_shape and loaded.spec.family == name
        assert loaded.latent_size == spec.latent_size
        np.testing.assert_allclose(loaded(z).asnumpy(), expected, rtol=1e-5, atol=1e-6)


def test_mindspore_dcgan_tutorial_checkpoint_loads_for_inference(tmp_path):
    path = tmp_path / "Generator.ckpt"
    tutorial = dcgan_tutorial_reference.save_generator(path, ngf=8)
    names = list(ms.load_checkpoint(str(path)))
    assert "myTrainOneStepCellForG.netG.generator.0.weight" in names  # the tutorial's own naming
    ours = load_generator(path)
    assert ours.spec == ModelSpec("dcgan", channels=3, image_size=64, ngf=8, ndf=64)
    z = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    np.testing.assert_allclose(ours(ms.Tensor(z)).asnumpy(),
                               tutorial(ms.Tensor(z.reshape(2, 100, 1, 1))).asnumpy(),
                               rtol=1e-5, atol=1e-5)


def test_a_spec_that_does_not_match_the_weights_is_one_line(tmp_path):
    net = build_generator(TINY["dcgan"])
    wrong = ModelSpec("dcgan", latent_size=8, channels=3, image_size=32, ngf=8, ndf=4)
    path = tmp_path / "g.ckpt"
    atomic_save(net, path, append_dict={"mindgan_spec": wrong.to_json()})
    with pytest.raises(CheckpointError) as info:
        load_generator(path)
    message = str(info.value)
    assert str(path) in message and "has shape" in message and "ngf 8" in message
    assert "\n" not in message


# ------------------------------------------------------------------ training the conv families

def colour_blobs(n=64, size=16, seed=0):
    """uint8 `[n, 3, size, size]`: one coloured disc per image on a light background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.full((n, 3, size, size), 230, np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(4, size - 4, 2).tolist() + [rng.uniform(2, size / 3)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        out[i][:, disc] = rng.integers(0, 200, 3)[:, None]
    return out


@pytest.fixture(scope="module")
def digits():
    return load_mnist("train", SHIPPED_MNIST)[0][:512]


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """`--model dcgan` on RGB images (16x16, ngf 8) for 2 epochs of 4 steps."""
    out = tmp_path_factory.mktemp("dcgan") / "run"
    config = TrainConfig(model="dcgan", image_size=16, ngf=8, ndf=8, batch_size=16, epochs=2,
                         num_samples=9, seed=3, output_dir=str(out))
    return train(config, images=colour_blobs(), progress=False)


def test_dcgan_trains_on_rgb_images_and_writes_rgb_artifacts(rgb_run):
    config = json.loads((rgb_run / "config.json").read_text())
    assert (config["model"], config["channels"], config["image_size"]) == ("dcgan", 3, 16)
    grid = imageio.imread(rgb_run / "samples" / "epoch_002.png")
    assert grid.shape == (6 * (3 * 18 + 2), 6 * (3 * 18 + 2), 3)  # 3x3 RGB tiles of 16 px, x6
    assert len(imageio.mimread(rgb_run / "training.gif")) == 2
    net = load_generator(rgb_run / "checkpoints" / "generator.ckpt")
    assert net.spec == ModelSpec("dcgan", 100, 3, 16, 8, 8)
    fake = generate(rgb_run / "checkpoints" / "last.ckpt", 5, seed=0)
    assert fake.shape == (5, 3, 16, 16) and fake.min() >= -1 and fake.max() <= 1


def test_infer_cli_writes_rgb_pngs_from_a_conv_checkpoint(rgb_run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mindgan.infer", "--ckpt",
                           str(rgb_run / "checkpoints" / "generator.ckpt"), "--num", "4", "--seed", "1",
                           "--save_individual", str(tmp_path / "ind"), "--npy", str(tmp_path / "x.npy")],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert imageio.imread(tmp_path / "ind" / "00003.png").shape == (16, 16, 3)
    assert np.load(tmp_path / "x.npy").shape == (4, 3, 16, 16)
    assert not (tmp_path / "samples.png").exists()  # no grid unless asked for, with other outputs


def test_conv_generator_exports_to_mindir_and_onnx(rgb_run, tmp_path):
    from mindgan.export import export_generator

    ort = pytest.importorskip("onnxruntime")
    net = load_generator(rgb_run / "checkpoints" / "generator.ckpt")
    z = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    expected = net(ms.Tensor(z)).asnumpy()
    graph = nn.GraphCell(ms.load(str(export_generator(net, tmp_path / "g.mindir"))))
    np.testing.assert_allclose(graph(ms.Tensor(z)).asnumpy(), expected, rtol=1e-4, atol=1e-5)
    session = ort.InferenceSession(str(export_generator(net, tmp_path / "g.onnx", "ONNX", batch_size=2)),
                                   providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: z})
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert not net.training


def test_dcgan_mnist_generator_exports_to_onnx(tmp_path):
    """Its ConvTransposes are 'same'-padded, the dcgan family's explicitly padded."""
    from mindgan.export import export_generator

    ort = pytest.importorskip("onnxruntime")
    net = build_generator(TINY["dcgan-mnist"])
    net.set_train(False)
    z = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    session = ort.InferenceSession(str(export_generator(net, tmp_path / "g.onnx", "ONNX", batch_size=3)),
                                   providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: z})
    assert out.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(out, net(ms.Tensor(z)).asnumpy(), rtol=1e-4, atol=1e-4)


def test_dcgan_mnist_resumes_exactly_dropout_included(tmp_path, digits):
    """2 epochs straight == 1 epoch, then resume: the dropout masks are a function of a counter
    saved with the weights, so the losses and every parameter agree."""
    from test_training import assert_same_run, straight_and_resumed

    common = dict(model="dcgan-mnist", ngf=8, ndf=8, batch_size=32, subset=128, seed=5)
    straight, split = straight_and_resumed(tmp_path, digits, **common)
    state = assert_same_run(straight, split, steps=8)
    assert float(state["discriminator.model.2.calls"].asnumpy()) == 8 * 3  # D runs 3 times a step
    assert json.loads((straight / "config.json").read_text())["beta1"] == 0.9


def test_g_steps_update_the_generator_that_many_times(digits):
    """make_train_step(g_steps=2) == one D update and two G updates on the same noise."""
    config = TrainConfig(model="dcgan-mnist", ngf=4, ndf=4, batch_size=8, seed=2)
    images = ms.Tensor(digits[:64].astype(np.float32)[:, None] / 127.5 - 1)
    idx = ms.Tensor(np.arange(8, dtype=np.int32))
    z = ms.Tensor(latent_noise(2, 0, 8, 100))
    nets = build_gan(config)
    loss_g = make_train_step(*nets, jit=False, g_steps=2)(images, idx, z).asnumpy()[1]
    reference = build_gan(config)
    d_update, g_update = make_updates(*reference)
    d_update(images[:8], z)
    g_update(z)
    second = g_update(z).asnumpy()
    np.testing.assert_allclose(loss_g, second, rtol=1e-5)
    for a, b in zip(nets[0].get_parameters(), reference[0].get_parameters()):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-4, atol=1e-6)


def test_uniform_noise_is_in_range_and_seeded():
    z = latent_noise(0, 3, 500, 100, "uniform")
    assert z.dtype == np.float32 and z.min() >= -1 and z.max() < 1 and abs(z.mean()) < 0.02
    np.testing.assert_array_equal(z, latent_noise(0, 3, 500, 100, "uniform"))


def test_evaluate_says_its_metrics_are_mnist_only(rgb_run):
    from mindgan.evaluate import NotMnistGenerator, evaluate

    with pytest.raises(NotMnistGenerator, match="3x16x16 images .* MNIST-only"):
        evaluate(rgb_run / "checkpoints" / "generator.ckpt", num=10)
