"""The training step and loop, in process (real MindSpore on CPU, real MNIST digits)."""
import csv
import hashlib
import json
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from helpers import SHIPPED_MNIST
from record_mlp_reference import cpu_class, tensor_digest

from mindgan.checkpoint import atomic_save, read_checkpoint
from mindgan.data import load_mnist, to_model_range
from mindgan.gan import build_gan, make_train_step, make_updates, sample
from mindgan.hooks import Hook
from mindgan.training import TrainConfig, TrainingDiverged, train


@pytest.fixture(scope="module")
def digits():
    return load_mnist("train", SHIPPED_MNIST)[0][:2048]


def snapshot(net, trainable=True):
    params = net.trainable_params() if trainable else net.get_parameters()
    return {p.name: p.asnumpy().copy() for p in params}


def test_each_phase_updates_only_its_own_network(digits):
    net_g, net_d, opt_g, opt_d = build_gan(TrainConfig(seed=1))
    d_update, g_update = (ms.jit(f) for f in make_updates(net_g, net_d, opt_g, opt_d))
    real = ms.Tensor(to_model_range(digits[:64]))
    z = ms.Tensor(np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32))

    g0, d0 = snapshot(net_g), snapshot(net_d)
    d_update(real, z)
    g1, d1 = snapshot(net_g), snapshot(net_d)
    assert all(np.array_equal(g0[k], g1[k]) for k in g0), "the D update moved G's weights"
    unchanged = [k for k in d0 if np.array_equal(d0[k], d1[k])]
    assert not unchanged, f"the D update left {unchanged} alone"

    g_update(z)
    g2, d2 = snapshot(net_g), snapshot(net_d)
    assert all(np.array_equal(d1[k], d2[k]) for k in d1), "the G update moved D's weights"
    unchanged = [k for k in g1 if np.array_equal(g1[k], g2[k])]
    assert not unchanged, f"the G update left {unchanged} alone"


def test_discriminator_alone_learns_real_from_fake(digits):
    net_g, net_d, opt_g, opt_d = build_gan(TrainConfig(seed=2))
    d_update = ms.jit(make_updates(net_g, net_d, opt_g, opt_d)[0])
    real = ms.Tensor(to_model_range(digits[:128]))
    z = ms.Tensor(np.random.default_rng(1).standard_normal((128, 100)).astype(np.float32))
    losses = [float(d_update(real, z)[0].asnumpy()) for _ in range(50)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_pynative_step_matches_compiled_step(digits):
    images = ms.Tensor(to_model_range(digits))
    rng = np.random.default_rng(3)
    batches = [(ms.Tensor(rng.permutation(len(digits))[:64].astype(np.int32)),
                ms.Tensor(rng.standard_normal((64, 100)).astype(np.float32))) for _ in range(3)]
    results = {}
    for jit in (True, False):
        nets = build_gan(TrainConfig(seed=4))
        step = make_train_step(*nets, jit=jit)
        values = [step(images, idx, z).asnumpy() for idx, z in batches]
        results[jit] = (np.array(values), snapshot(nets[0], trainable=False))
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-4, atol=1e-5)
    for name, value in results[True][1].items():
        np.testing.assert_allclose(value, results[False][1][name], rtol=1e-3, atol=1e-5)


def _model_key(name):
    """'generator.model.3.gamma', 'generatormodel.3.gamma' -> 'model.3.gamma'."""
    return name[name.index("model."):]


def test_step_matches_the_tutorials_own_step(digits):
    """Oracle: the tutorial's nets (stock nn.BatchNorm1d, nn.LeakyReLU) and its step, from the
    same weights and data, give the same losses, weights and BatchNorm running statistics
    (mindgan's layers are rewritten for speed, and its graph computes G(z) once)."""
    import tutorial_reference as tut

    net_g, net_d, opt_g, opt_d = build_gan(TrainConfig(seed=6))
    t_g, t_d, t_opt_g, t_opt_d = tut.build()
    for ours, theirs in ((net_g, t_g), (net_d, t_d)):
        weights = {_model_key(p.name): p.asnumpy() for p in ours.get_parameters()}
        for p in theirs.get_parameters():
            p.set_data(ms.Tensor(weights[_model_key(p.name)]))
    t_g.set_train(True)  # as the tutorial does before its loop
    t_d.set_train(True)
    step = make_train_step(net_g, net_d, opt_g, opt_d)
    t_step = ms.jit(tut.make_train_step(t_g, t_d, t_opt_g, t_opt_d))

    images = ms.Tensor(to_model_range(digits))
    rng = np.random.default_rng(6)
    for _ in range(3):
        idx = rng.permutation(len(digits))[:64].astype(np.int32)
        z = ms.Tensor(rng.standard_normal((64, 100)).astype(np.float32))
        loss_d, loss_g = step(images, ms.Tensor(idx), z).asnumpy()[:2]
        t_loss_d, t_loss_g = t_step(ms.Tensor(to_model_range(digits[idx])), z)
        np.testing.assert_allclose([loss_d, loss_g], [t_loss_d.asnumpy(), t_loss_g.asnumpy()],
                                   rtol=1e-5)
    for ours, theirs in ((net_g, t_g), (net_d, t_d)):
        expected = {_model_key(p.name): p.asnumpy() for p in theirs.get_parameters()}
        for p in ours.get_parameters():  # weights, biases, gamma/beta, running mean/variance
            np.testing.assert_allclose(p.asnumpy(), expected[_model_key(p.name)],
                                       rtol=1e-4, atol=1e-6, err_msg=p.name)


def test_sampling_uses_batchnorm_statistics_and_restores_training_mode():
    net_g, *_ = build_gan(TrainConfig(seed=5))
    z = np.random.default_rng(5).standard_normal((25, 100)).astype(np.float32)
    grid = sample(net_g, z)
    assert net_g.training
    # In inference mode every sample is independent of the rest of its batch.
    np.testing.assert_allclose(sample(net_g, z[3:4])[0], grid[3], rtol=1e-5, atol=1e-6)
    assert grid.shape == (25, 1, 28, 28)


def read_log(run_dir):
    with open(run_dir / "losses.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_same_run(run_a, run_b, steps):
    """Both runs logged steps 1..steps with the same losses, and their resume states (weights,
    BatchNorm statistics, optimizer state) agree. Returns run_a's resume state."""
    a, b = read_log(run_a), read_log(run_b)
    assert [r["step"] for r in b] == [str(i) for i in range(1, steps + 1)]
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        np.testing.assert_allclose([float(r[key]) for r in a], [float(r[key]) for r in b],
                                   rtol=1e-5, atol=1e-6)
    wa = read_checkpoint(run_a / "checkpoints" / "last.ckpt")
    wb = read_checkpoint(run_b / "checkpoints" / "last.ckpt")
    assert wa.keys() == wb.keys()
    for name, value in wa.items():
        if hasattr(value, "asnumpy"):
            np.testing.assert_allclose(value.asnumpy(), wb[name].asnumpy(), rtol=1e-5, atol=1e-6)
    return wa


def straight_and_resumed(tmp_path, images, **common):
    """The same run twice: 2 epochs straight, and 1 epoch then resumed for 1 more.
    Returns (straight run folder, split run folder)."""
    straight = train(TrainConfig(epochs=2, output_dir=str(tmp_path / "a"), **common),
                     images=images, progress=False)
    split = train(TrainConfig(epochs=1, output_dir=str(tmp_path / "b"), **common),
                  images=images, progress=False)
    train(TrainConfig(epochs=2, **common), resume=split, images=images, progress=False)
    return straight, split


class Recorder(Hook):
    """Every call a hook gets, with the run's step after it."""

    def __init__(self):
        self.events = []

    def epoch_start(self, run, epoch, first):
        self.events.append(("epoch_start", epoch, first, run.step))

    def steps(self, run, epoch, values):
        self.events.append(("steps", epoch, len(values), run.step))

    def epoch_end(self, run, epoch, complete):
        self.events.append(("epoch_end", epoch, complete, run.step))

    def save(self, run, epoch_done, final):
        self.events.append(("save", epoch_done, final, run.step))


def test_resume_continues_exactly(tmp_path, digits, capfd):
    """2 epochs in one go == 1 epoch, then resume for 1 more: same losses, same weights."""
    common = dict(batch_size=64, subset=640, seed=7, device_target="CPU")
    straight = train(TrainConfig(epochs=2, output_dir=str(tmp_path / "a"), **common),
                     images=digits, progress=False)
    split = train(TrainConfig(epochs=1, output_dir=str(tmp_path / "b"), **common),
                  images=digits, progress=False)
    assert len(read_log(split)) == 10
    assert "warning: 640 training images: GANs usually need thousands" in capfd.readouterr().err
    cfg = TrainConfig(epochs=2, **common)
    seen = Recorder()
    train(cfg, resume=split, images=digits, progress=False, hooks=[seen])
    # A hook of the caller's sees the resumed epoch: its start at step 0 of epoch 2 (0-based 1),
    # one call per step, its end complete, one final save at step 20.
    assert seen.events == [("epoch_start", 1, 0, 10)] + [("steps", 1, 1, s) for s in range(11, 21)] + [
        ("epoch_end", 1, True, 20), ("save", 2, True, 20)]
    assert cfg.output_dir is None and cfg.channels is None  # the caller's config is unchanged

    wa = assert_same_run(straight, split, steps=20)
    # Both optimizers' state is in the resume file, under unique names.
    assert {"optim_g.global_step", "optim_d.global_step", "optim_g.beta1_power"} <= wa.keys()
    assert any(k.startswith("optim_d.moment1.") for k in wa)


def mlp_reference() -> dict:
    """This CPU class's entry of tests/data/mlp_reference.json (skip where none is recorded)."""

    classes = json.loads((Path(__file__).parent / "data" / "mlp_reference.json").read_text())["classes"]
    if cpu_class() not in classes:
        pytest.skip(f"no MLP reference for {cpu_class()} CPUs: record one (tests/record_mlp_reference.py)")
    return classes[cpu_class()]


def test_mlp_trains_bit_for_bit_as_before_the_refactor_at_one_and_several_steps_per_call(
        tmp_path, digits):
    """steps_per_call=4 on 10 steps an epoch (calls of 4, 4, then 1, 1) trains like one step per
    call, and both exactly as the MLP did before the package became a framework: the same
    losses to every logged digit and the same generator weights bit for bit."""
    common = dict(epochs=2, batch_size=64, subset=640, seed=11, device_target="CPU")
    runs = {}
    for name, per_call in (("one_per_call", 1), ("four_per_call", 4)):
        runs[name] = train(TrainConfig(output_dir=str(tmp_path / name), steps_per_call=per_call,
                                       **common), images=digits, progress=False)
        expected = mlp_reference()["runs"][name]
        rows = [[r[c] for c in ("step", "loss_d", "loss_g", "d_real", "d_fake")]
                for r in read_log(runs[name])]
        assert rows == expected["rows"], name
        assert tensor_digest(runs[name] / "checkpoints" / "generator.ckpt") == expected["generator_sha256"]
    assert_same_run(runs["one_per_call"], runs["four_per_call"], steps=20)


def test_steps_per_call_is_chosen_per_run():
    from mindgan.gan import auto_steps_per_call

    assert auto_steps_per_call(468, 200 * 468) == 12   # the tutorial's run
    assert auto_steps_per_call(469, 200 * 469) == 7    # 469 = 7 x 67: calls never straddle epochs
    assert auto_steps_per_call(468, 100) == 1          # short runs: not worth the compile


def test_log_reader_drops_unsaved_rows_and_a_line_cut_short(tmp_path):
    from mindgan.rundir import LOG_COLUMNS
    from mindgan.rundir import read_log as _read_log

    path = tmp_path / "losses.csv"
    lines = [",".join(LOG_COLUMNS)] + [f"1,{s},1.2,0.9,0.6,0.4" for s in range(1, 6)]
    path.write_text("\n".join(lines) + "\n1,6,1.2,0.")  # a crash in the middle of an append
    assert [int(r["step"]) for r in _read_log(path, 4)] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in _read_log(path, 99)] == [1, 2, 3, 4, 5]
    path.write_text("\n".join(lines[:2] + ["1,x,y,z,w,v"] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match="line 3 is not a log row"):
        _read_log(path, 99)
    path.write_bytes(b"\x00\x01 not a csv\n")
    with pytest.raises(ValueError, match="header"):
        _read_log(path, 99)


def test_nan_loss_stops_and_leaves_checkpoints_untouched(tmp_path, digits):
    common = dict(batch_size=64, subset=256, seed=8, device_target="CPU")
    run = train(TrainConfig(epochs=1, output_dir=str(tmp_path / "run"), **common),
                images=digits, progress=False)
    ckpts = run / "checkpoints"
    # Poison one discriminator weight in the resume state: the next step's loss is NaN.
    params = read_checkpoint(ckpts / "last.ckpt")
    weight = params["discriminator.model.0.weight"].asnumpy()
    weight[0, 0] = np.inf
    params["discriminator.model.0.weight"].set_data(ms.Tensor(weight))
    extra = {k: params.pop(k) for k in [k for k in params if k.startswith("mindgan_")]}
    extra["mindgan_step"] = int(extra["mindgan_step"].asnumpy())
    atomic_save([{"name": k, "data": v} for k, v in params.items()], ckpts / "last.ckpt", extra)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in ckpts.iterdir()}
    log_before = read_log(run)

    with pytest.raises(TrainingDiverged, match=r"loss became nan .* at step 5 .*untouched"):
        train(TrainConfig(epochs=2, **common), resume=run, images=digits, progress=False)
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in ckpts.iterdir()}
    assert read_log(run) == log_before


def test_ema_in_the_step_is_the_running_average_of_the_generator(digits):
    """After each compiled step the shadow is d * shadow + (1 - d) * weights, with the decay
    warming up as min(decay, (1 + t) / (10 + t)); the same on the host, step by step."""
    from mindgan.gan import GeneratorEMA, latent_noise

    net_g, net_d, opt_g, opt_d = build_gan(TrainConfig(batch_size=32, seed=9))
    ema = GeneratorEMA(net_g, 0.5)
    step = make_train_step(net_g, net_d, opt_g, opt_d, ema=ema)
    images = ms.Tensor(digits[:, None])  # uint8, scaled in the step
    params = list(net_g.get_parameters())
    expected = [p.asnumpy().astype(np.float64) for p in params]
    for t in range(1, 5):
        idx = ms.Tensor(np.arange(32 * t, 32 * t + 32, dtype=np.int32))
        step(images, idx, ms.Tensor(latent_noise(9, t, 32, 100))).asnumpy()
        d = min(0.5, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * p.asnumpy() for e, p in zip(expected, params)]
    assert float(ema.updates.asnumpy()) == 4
    for e, shadow, p in zip(expected, ema.shadows, params):
        np.testing.assert_allclose(shadow.asnumpy(), e, rtol=1e-5, atol=1e-6, err_msg=p.name)
    assert any(not np.allclose(s.asnumpy(), p.asnumpy()) for s, p in zip(ema.shadows, params))


def test_an_ema_run_resumes_exactly_and_keeps_both_generators(tmp_path, digits):
    common = dict(batch_size=64, subset=256, seed=12, ema=0.9, device_target="CPU")
    straight, split = straight_and_resumed(tmp_path, digits, **common)
    state = assert_same_run(straight, split, steps=8)
    assert float(state["ema.updates"].asnumpy()) == 8
    averaged = read_checkpoint(straight / "checkpoints" / "generator.ckpt")
    raw = read_checkpoint(straight / "checkpoints" / "generator_raw.ckpt")
    name = "generator.model.0.weight"
    np.testing.assert_array_equal(averaged[name].asnumpy(), state["ema." + name].asnumpy())
    np.testing.assert_array_equal(raw[name].asnumpy(), state[name].asnumpy())
    assert not np.array_equal(averaged[name].asnumpy(), raw[name].asnumpy())


def test_eval_every_logs_a_quick_fid_and_keeps_the_best_generator_across_a_resume(tmp_path, digits):
    """2 epochs with a quick FID after each: metrics.csv has both, generator_best.ckpt is the
    snapshot of the lower one; split by a resume, the same rows and the same best file."""
    common = dict(batch_size=64, subset=256, seed=13, eval_every=1, eval_samples=500, device_target="CPU")
    straight, split = straight_and_resumed(tmp_path, digits, **common)
    rows = {}
    for run in (straight, split):
        with open(run / "metrics.csv", newline="") as f:
            rows[run] = list(csv.DictReader(f))
        assert [r["epoch"] for r in rows[run]] == ["1", "2"] and (run / "metrics.png").is_file()
    assert [r["fid"] for r in rows[straight]] == [r["fid"] for r in rows[split]]
    best_epoch = min(rows[straight], key=lambda r: float(r["fid"]))["epoch"]
    for run in (straight, split):
        assert tensor_digest(run / "checkpoints" / "generator_best.ckpt") == tensor_digest(
            run / "checkpoints" / f"generator_epoch_{int(best_epoch):03d}.ckpt")
    assert all(0 < float(r["fid"]) and 1 <= int(r["classes_present"]) <= 10 for r in rows[straight])


def test_lr_decay_from_lowers_the_rate_each_epoch_and_resumes_exactly(tmp_path, digits):
    """3 epochs of 3 steps, decay from epoch 1: lr, 2/3 lr, 1/3 lr. The first epoch matches a
    run without decay and the rest does not; stopped mid-epoch and resumed, the same run. (The
    rate goes into the compiled step as an input: a compiled graph does not see a Parameter
    changed from Python, which this test would catch.)"""
    common = dict(batch_size=64, subset=192, seed=14, epochs=3, device_target="CPU")
    assert [TrainConfig(lr_decay_from=1, **common).lr_at(e) for e in range(3)] == pytest.approx(
        [2e-4, 2e-4 * 2 / 3, 2e-4 / 3])
    decayed = train(TrainConfig(lr_decay_from=1, output_dir=str(tmp_path / "a"), **common),
                    images=digits, progress=False)
    split = train(TrainConfig(lr_decay_from=1, max_steps=4, output_dir=str(tmp_path / "b"), **common),
                  images=digits, progress=False)
    train(TrainConfig(lr_decay_from=1, **common), resume=split, images=digits, progress=False)
    state = assert_same_run(decayed, split, steps=9)
    for opt in ("optim_g", "optim_d"):
        assert float(state[f"{opt}.learning_rate"].asnumpy()) == pytest.approx(2e-4 / 3)
    plain = train(TrainConfig(output_dir=str(tmp_path / "c"), **common), images=digits, progress=False)
    a, c = read_log(decayed), read_log(plain)
    assert [r["loss_g"] for r in a[:3]] == [r["loss_g"] for r in c[:3]]
    assert all(x["loss_g"] != y["loss_g"] for x, y in zip(a[3:], c[3:]))  # loss_g follows the D update
    with pytest.raises(ValueError, match="--lr_decay_from 3 must be below --epochs"):
        TrainConfig(lr_decay_from=3, **common)


def test_a_discriminator_that_wins_outright_is_said_once(capsys):
    """D(G(z)) ~ 0 for `patience` steps in a row: one warning naming the likely causes; a
    step above the floor starts the count again."""
    from types import SimpleNamespace

    from mindgan.hooks import DiscriminatorWins

    hook, run = DiscriminatorWins(n_images=38, patience=5), SimpleNamespace(step=0)

    def calls(*d_fake):
        for value in d_fake:
            run.step += 1
            hook.steps(run, 0, np.array([[0.1, 27.63, 1.0, value]], np.float32))

    calls(0.0, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0)
    assert capsys.readouterr().err == ""
    calls(0.0, 0.0, 0.0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: D(G(z)) has been below 0.001 since step 6 (5 steps)")
    assert "too few images (38 here" in err


def test_the_simultaneous_step_is_tensorflows_update_from_one_forward_pass(digits):
    """--update simultaneous: both losses from one forward pass, D's gradient of its loss and
    G's of its loss (through D before this step's update), then both updates. Checked against
    the same computation written out with two separate gradients at the step's starting weights;
    the alternating step (G through the updated D) gives a different generator."""
    from mindspore import nn, ops

    from mindgan.gan import UPDATE_ORDERS
    from mindgan.registry import UPDATE_ORDERS as NAMES

    assert tuple(UPDATE_ORDERS) == NAMES
    config = TrainConfig(batch_size=16, seed=3, update="simultaneous")
    images = digits[:16, None]
    idx = np.arange(16, dtype=np.int32)
    z = np.random.default_rng(4).standard_normal((16, 100)).astype(np.float32)
    results = {}
    for update in ("simultaneous", "alternating"):
        net_g, net_d, opt_g, opt_d = build_gan(config)
        step = make_train_step(net_g, net_d, opt_g, opt_d, update=update)
        values = step(ms.Tensor(images), ms.Tensor(idx), ms.Tensor(z)).asnumpy()
        results[update] = values, snapshot(net_g), snapshot(net_d)

    net_g, net_d, opt_g, opt_d = build_gan(config)  # by hand, eagerly
    bce, real, noise = nn.BCELoss(reduction="mean"), ms.Tensor(to_model_range(images)), ms.Tensor(z)

    def loss_d():
        d_real, d_fake = net_d(real), net_d(net_g(noise))
        return bce(d_real, ops.ones_like(d_real)) + bce(d_fake, ops.zeros_like(d_fake))

    def loss_g():
        d_fake = net_d(net_g(noise))
        return bce(d_fake, ops.ones_like(d_fake))

    value_d, grads_d = ms.value_and_grad(loss_d, None, opt_d.parameters)()
    value_g, grads_g = ms.value_and_grad(loss_g, None, opt_g.parameters)()  # D not yet updated
    opt_d(grads_d)
    opt_g(grads_g)
    values, g_after, d_after = results["simultaneous"]
    np.testing.assert_allclose(values[:2], [float(value_d.asnumpy()), float(value_g.asnumpy())], rtol=1e-5)
    for mine, theirs in ((g_after, snapshot(net_g)), (d_after, snapshot(net_d))):
        for name in theirs:
            np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
    _, g_alternating, d_alternating = results["alternating"]
    assert all(np.array_equal(d_after[k], d_alternating[k]) for k in d_after)  # D's update is the same
    assert any(not np.allclose(g_after[k], g_alternating[k], atol=1e-7) for k in g_after)  # G's is not
    with pytest.raises(ValueError, match="--g_steps 2 is for --update alternating"):
        TrainConfig(update="simultaneous", g_steps=2)
