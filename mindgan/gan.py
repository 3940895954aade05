"""What every GAN here shares: the nets and optimizers, the two updates, the compiled step,
the noise and sampling. Nothing in it knows an architecture or an image shape.

The step is the tutorial's: a discriminator update on BCE(D(x), 1) + BCE(D(G(z)), 0), then a
generator update on the non-saturating BCE(D(G(z)), 1), each through `mindspore.value_and_grad`
and `nn.Adam`, compiled into one graph by `mindspore.jit`. The losses come by name from
`mindgan.losses` (a family whose D gives logits gets them in their stable form on logits); the
order of the updates is one of `UPDATE_ORDERS`.
"""
from __future__ import annotations

import contextlib
import dataclasses

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from .cpu import DEFAULT, Kernels
from .losses import loss_for
from .models import build, family
from .penalties import NONE as NO_PENALTY
from .penalties import Penalty, gp_penalty, input_gradient, needs_second_order, r1_penalty

__all__ = ["build_gan", "make_updates", "make_train_step", "alternating", "simultaneous", "UPDATE_ORDERS",
           "auto_steps_per_call", "GeneratorEMA",
           "latent_noise", "steps_noise", "fixed_noise", "sample", "inference_mode"]


def build_gan(config, kernels: Kernels = DEFAULT):
    """Generator, Discriminator and their Adam optimizers for `config` (a TrainConfig),
    initialised from `config.seed`, their layers computing as `kernels` say.

    Returns (net_g, net_d, opt_g, opt_d), nets in training mode. The optimizers' own state
    (step counter, beta powers, moments) is prefixed "optim_g." / "optim_d." so that every
    Parameter name in the compiled graph is unique.
    """
    ms.set_seed(config.seed)
    if needs_second_order(config.spec):
        kernels = second_order(kernels)
    net_g, net_d = build(config.spec, kernels)
    optimizers = []
    for net, prefix in ((net_g, "optim_g."), (net_d, "optim_d.")):
        opt = nn.Adam(net.trainable_params(), learning_rate=config.lr,
                      beta1=config.beta1, beta2=config.beta2)
        # Not opt.update_parameters_name: that would rename the network's weights too.
        own = {id(p) for p in net.get_parameters()}
        for p in opt.get_parameters():
            if id(p) not in own:
                p.name = prefix + p.name
        optimizers.append(opt)
    net_g.set_train(True)
    net_d.set_train(True)
    return net_g, net_d, optimizers[0], optimizers[1]


def second_order(kernels: Kernels) -> Kernels:
    """`kernels` for a D whose input gradient is differentiated again (gradient penalties):
    batch norms off the native kernel, and the gather + MatMul convolutions (whose graph
    MindSpore 2.10 cannot differentiate twice) replaced by MindSpore's own."""
    conv = "stock" if kernels.conv == "matmul" else kernels.conv
    return dataclasses.replace(kernels, conv=conv, second_order=True)


def d_output(spec) -> str:
    """What the discriminator of `spec` ends in: "probability" or "logit"."""
    return spec.d_output or family(spec.family).d_output


def make_updates(net_g, net_d, opt_g, opt_d, workers: int = 1, loss: str = "bce", augment=None,
                 penalty: Penalty = NO_PENALTY):
    """The two phases of a step, uncompiled: (d_update, g_update).

    `d_update(real, z, y=None)` takes one Adam step on the discriminator with the D loss of
    `loss` (`losses.loss_for`; "bce": BCE(D(x), 1) + BCE(D(G(z)), 0)) plus `penalty`
    (`penalties.Penalty`: R1, WGAN-GP's) and returns (loss_d, mean D(x), mean D(G(z))) (D's
    outputs as probabilities; loss_d with the penalty); `g_update(z, y=None)` takes one on
    the generator with its G loss (the non-saturating BCE(D(G(z)), 1)) and returns loss_g.
    real float32 `[B, C, H, W]` in [-1, 1], z float32 `[B, latent]`, y the batch's labels int32
    `[B]` for a conditional pair (the fakes are made for the real batch's labels, as carpedm20
    does), None otherwise. With `workers` > 1 (data parallelism under msrun) each optimizer
    gets the gradients averaged over the workers by
    `nn.DistributedGradReducer`. `augment` (an `augment.DiffAugment`, or None) transforms
    every image on its way into D, real and generated, in both updates.
    """
    # Plain functions, unpacked here: a compiled graph sees a NamedTuple as a bare tuple.
    d_loss, g_loss, probability = loss_for(loss, d_output(net_d.spec))
    judge = _judge(net_d, augment)
    discriminate = _discriminate(net_d, augment, penalty)

    def d_forward(real, z, y):
        d_real, d_fake, extra = discriminate(real, net_g(z, y), y)
        return d_loss(d_real, d_fake) + extra, probability(d_real).mean(), probability(d_fake).mean()

    def g_forward(z, y):
        return g_loss(judge(net_g(z, y), y))

    # Gradients only for the parameters this phase's optimizer owns.
    d_grad = ms.value_and_grad(d_forward, None, opt_d.parameters, has_aux=True)
    g_grad = ms.value_and_grad(g_forward, None, opt_g.parameters)

    reduce_d, reduce_g = _reducers(opt_d, workers), _reducers(opt_g, workers)

    def d_update(real, z, y=None):
        (loss_d, d_real, d_fake), grads = d_grad(real, z, y)
        opt_d(reduce_d(grads))
        return loss_d, d_real, d_fake

    def g_update(z, y=None):
        loss_g, grads = g_grad(z, y)
        opt_g(reduce_g(grads))
        return loss_g

    return d_update, g_update


def _judge(net_d, augment):
    """D(x, y), or D(augment(x), y) with DiffAugment."""
    if augment is None:
        return net_d

    def judge(x, y):
        return net_d(augment(x), y)
    return judge


def _discriminate(net_d, augment, penalty: Penalty):
    """`(real, fake, y) -> (D(x) [B, 1], D(fake) [B, 1], penalty)`: D's outputs on the real
    batch and on a generated one (after DiffAugment, if any) and the gradient penalty on D's
    input (0.0 without). R1's gradient comes from the same forward pass as D(x); WGAN-GP's from
    a third one, at the interpolates."""
    see = _identity if augment is None else augment
    gradient = input_gradient(net_d)
    r1, gp, interpolate = penalty  # a compiled graph sees a NamedTuple as a bare tuple

    def discriminate(real, fake, y):
        x = see(real)
        extra = 0.0
        if r1:
            d_real, g = gradient(x, y)
            extra = r1_penalty(g, r1)
        else:
            d_real = net_d(x, y)
        fake = see(fake)
        d_fake = net_d(fake, y)
        if gp:
            _, g = gradient(interpolate(x, fake), y)
            extra = extra + gp_penalty(g, gp)
        return d_real, d_fake, extra
    return discriminate


def _reducers(opt, workers: int):
    """Gradients of `opt`'s parameters averaged over the data-parallel workers (as they are
    for one)."""
    return nn.DistributedGradReducer(opt.parameters, mean=True, degree=workers) if workers > 1 else _identity


def _identity(x):
    return x


class GeneratorEMA(nn.Cell):
    """An exponential moving average of every generator parameter, weights and BatchNorm
    running statistics alike, updated in the compiled step after each generator update.

    The statistics are averaged with the weights rather than recomputed: it costs nothing
    extra (no forward passes over data) and keeps each shadow consistent with the averaged
    weights' history. The decay warms up as min(decay, (1 + t) / (10 + t)) over the t updates
    so far, so early samples are not dominated by the random initial weights. The shadows
    ("ema.<name>") and t ("ema.updates") are Parameters: they go into the resume state and a
    resumed run continues the average exactly.
    """

    def __init__(self, net_g, decay: float):
        super().__init__(auto_prefix=False)  # keep the generator's own parameter names
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), not {decay}")
        self.decay = float(decay)
        params = list(net_g.get_parameters())
        self.sources = ParameterTuple(params)
        self.shadows = ParameterTuple(Parameter(Tensor(p.asnumpy()), name="ema." + p.name,
                                                requires_grad=False) for p in params)
        self.updates = Parameter(Tensor(0.0, ms.float32), name="ema.updates", requires_grad=False)

    def construct(self):
        t = self.updates + 1.0
        ops.assign(self.updates, t)
        d = ops.minimum((1.0 + t) / (10.0 + t), self.decay)
        for shadow, source in zip(self.shadows, self.sources):
            ops.assign(shadow, shadow * d + ops.stop_gradient(source) * (1.0 - d))
        return d

    def copy_to(self, net) -> None:
        """Load the averaged parameters into `net` (a generator of the same spec)."""
        for shadow, p in zip(self.shadows, net.get_parameters()):
            p.set_data(Tensor(shadow.asnumpy()))


def alternating(net_g, net_d, opt_g, opt_d, workers: int = 1, loss: str = "bce", g_steps: int = 1,
                augment=None, penalty: Penalty = NO_PENALTY):
    """The MindSpore tutorials' order: update D on (real, z), then G on z, `g_steps` times (on
    the same noise, as carpedm20's DCGAN does with 2), each from a fresh forward pass, G's
    through the updated D. Returns `body(real, z, y)` -> (loss_d, loss_g of the last G update,
    mean D(x), mean D(G(z))); y: labels or None, `augment` and `penalty` as in `make_updates`."""
    d_update, g_update = make_updates(net_g, net_d, opt_g, opt_d, workers, loss, augment, penalty)

    def body(real, z, y):
        loss_d, d_real, d_fake = d_update(real, z, y)
        loss_g = g_update(z, y)
        for _ in range(g_steps - 1):
            loss_g = g_update(z, y)
        return loss_d, loss_g, d_real, d_fake
    return body


def simultaneous(net_g, net_d, opt_g, opt_d, workers: int = 1, loss: str = "bce", g_steps: int = 1,
                 augment=None, penalty: Penalty = NO_PENALTY):
    """TensorFlow's DCGAN tutorial's order: one forward pass (G(z) once, D on the real and the
    generated batch once each), both losses from it, D's gradient of its loss and G's of its
    loss (through D's weights before this step's update) taken from that one pass, then both
    updates. Returns `body(real, z, y)` as `alternating` does."""
    if g_steps != 1:
        raise ValueError(f"--g_steps {g_steps}: the simultaneous update makes one update of each net "
                         f"per step (g_steps is for --update alternating)")
    d_loss, g_loss, probability = loss_for(loss, d_output(net_d.spec))
    reduce_d, reduce_g = _reducers(opt_d, workers), _reducers(opt_g, workers)
    discriminate = _discriminate(net_d, augment, penalty)

    def judge(real, fake, y):
        d_real, d_fake, extra = discriminate(real, fake, y)
        return (d_loss(d_real, d_fake) + extra, g_loss(d_fake), probability(d_real).mean(),
                probability(d_fake).mean())

    def judge_unconditional(real, fake):
        return judge(real, fake, None)

    def generate_unconditional(z):
        return net_g(z, None)

    def body(real, z, y):
        # One forward pass: G(z), then D on the real and the generated batch. Two products
        # with D's Jacobian pick D's weight gradient of its loss and the generated batch's
        # gradient of G's loss; one product with G's carries the latter to G's weights. No
        # backward pass through G for D's loss, none through D's weights for G's.
        if y is None:
            fake, g_backward = ms.vjp(generate_unconditional, z, weights=opt_g.parameters)
            (loss_d, loss_g, d_real, d_fake), d_backward = ms.vjp(judge_unconditional, real, fake,
                                                                  weights=opt_d.parameters)
        else:
            fake, g_backward = ms.vjp(net_g, z, y, weights=opt_g.parameters)
            (loss_d, loss_g, d_real, d_fake), d_backward = ms.vjp(judge, real, fake, y, weights=opt_d.parameters)
        one, zero = ops.ones_like(loss_d), ops.zeros_like(loss_d)
        grads_d = d_backward((one, zero, zero, zero))[1]
        grad_fake = d_backward((zero, one, zero, zero))[0][1]
        grads_g = g_backward(grad_fake)[1]
        opt_d(reduce_d(grads_d))
        opt_g(reduce_g(grads_g))
        return loss_d, loss_g, d_real, d_fake
    return body


# name -> (net_g, net_d, opt_g, opt_d, workers, loss, g_steps, augment, penalty) -> body(real, z, y)
UPDATE_ORDERS = {"alternating": alternating, "simultaneous": simultaneous}


def make_train_step(net_g, net_d, opt_g, opt_d, jit: bool = True, steps: int | None = None,
                    g_steps: int = 1, ema: GeneratorEMA | None = None, lr_input: bool = False,
                    workers: int = 1, loss: str = "bce", update: str = "alternating", augment=None,
                    penalty: Penalty = NO_PENALTY, penalised: tuple[bool, ...] | None = None):
    """One GAN step, `update` (one of `UPDATE_ORDERS`; "alternating": D, then G `g_steps`
    times) with the losses `loss` (`losses.loss_for`); one compiled graph when `jit`.

    `step(images, idx, z)`: images uint8 `[N, C, H, W]` (the whole training set, resident on
    the device, scaled to [-1, 1] a batch at a time) or float32 already in [-1, 1], idx int32
    `[B]` (this batch's rows), z float32 `[B, latent]`. For a conditional pair
    (`spec.num_classes` > 0), `step(images, labels, idx, z)`: labels int32 `[N]`, the whole
    set's, resident beside the images and gathered with them.
    Returns float32 `[4]`: loss_d, loss_g (of the last G update), mean D(x), mean D(G(z))
    (before the D update). With `ema`, its average is updated after the generator's.

    With `steps` = k the function runs k steps in a row, unrolled in one graph: idx `[k, B]`,
    z `[k, B, latent]` -> `[k, 4]`. Same updates in the same order, but one launch and one host
    sync for all of them, at the price of a longer compile.

    With `lr_input` the function takes a fourth argument, float32 scalar: the learning rate of
    both optimizers for this call (written into their `learning_rate` Parameters in the graph;
    a Parameter set from Python after compilation is not seen by the compiled graph).

    With `workers` > 1 (under msrun) each worker passes its slice of the global batch (idx and
    z); gradients and the returned figures are averaged over the workers, so every worker
    returns the global batch's losses. `augment`: DiffAugment before D, `penalty`: a gradient
    penalty in D's loss (`make_updates`). `penalised`: for lazy R1, which of the call's steps
    (one bool per step) carry the R1 penalty; None: all.
    """
    if update not in UPDATE_ORDERS:
        raise ValueError(f"unknown update order {update!r} (choose from {', '.join(UPDATE_ORDERS)})")
    if update == "simultaneous" and steps is not None and steps > 1:
        # MindSpore 2.10 runs the side effects inside `ms.vjp`'s function again when several
        # such steps are unrolled in one graph: dropout's and DiffAugment's counters advanced
        # 16 times in 3 steps instead of 6 (and batch-norm statistics with them).
        raise ValueError(f"the simultaneous update runs one step per compiled call, not {steps}")
    penalised = tuple(penalised) if penalised is not None else (True,) * (steps or 1)
    if len(penalised) != (steps or 1):
        raise ValueError(f"penalised has {len(penalised)} entries for {steps or 1} steps")
    order = UPDATE_ORDERS[update]
    body = order(net_g, net_d, opt_g, opt_d, workers, loss, g_steps, augment, penalty)
    # Lazy R1: the steps without it run the same update with the rest of the penalty.
    unpenalised = order(net_g, net_d, opt_g, opt_d, workers, loss, g_steps, augment, penalty._replace(r1=0.0)) \
        if not all(penalised) else body
    if workers > 1:
        all_reduce = ops.AllReduce()

    def one(images, labels, idx, z, body):
        real = ops.gather(images, idx, 0)  # batch gathered on the device: no host copy
        if real.dtype == ms.uint8:  # the set stays uint8 on the device; this batch becomes float
            real = real.astype(ms.float32) / 127.5 - 1.0
        y = None if labels is None else ops.gather(labels, idx, 0)
        loss_d, loss_g, d_real, d_fake = body(real, z, y)
        if ema is not None:
            ema()
        values = ops.stack([loss_d, loss_g, d_real, d_fake])
        if workers > 1:  # equal slices: the mean of the workers' means is the global mean
            return all_reduce(values) * (1.0 / workers)
        return values

    def run(images, labels, idx, z):
        if steps is None:
            return one(images, labels, idx, z, body if penalised[0] else unpenalised)
        results = []
        for k in range(steps):
            results.append(one(images, labels, idx[k], z[k], body if penalised[k] else unpenalised))
        return ops.stack(results)

    def set_lr(lr):
        ops.assign(opt_g.learning_rate, lr)
        ops.assign(opt_d.learning_rate, lr)

    # The four signatures, so that an unconditional step takes no labels argument at all.
    def plain(images, idx, z):
        return run(images, None, idx, z)

    def plain_lr(images, idx, z, lr):
        set_lr(lr)
        return run(images, None, idx, z)

    def conditional(images, labels, idx, z):
        return run(images, labels, idx, z)

    def conditional_lr(images, labels, idx, z, lr):
        set_lr(lr)
        return run(images, labels, idx, z)

    fn = {(False, False): plain, (False, True): plain_lr, (True, False): conditional,
          (True, True): conditional_lr}[(net_g.spec.num_classes > 0, lr_input)]
    return ms.jit(fn) if jit else fn


def auto_steps_per_call(steps_per_epoch: int, total_steps: int, most: int = 12,
                        min_total: int = 2000) -> int:
    """Steps per compiled call for a run: the largest divisor of `steps_per_epoch` up to `most`
    (so calls never straddle an epoch; 12 for the tutorial's 468), or 1 for runs shorter than
    `min_total` steps, where the longer compile would not pay back (README, "Speed")."""
    if total_steps < min_total:
        return 1
    return max(k for k in range(1, most + 1) if steps_per_epoch % k == 0)


def _draw(rng: np.random.Generator, shape: tuple, kind: str) -> np.ndarray:
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return rng.standard_normal(shape, dtype=np.float32)


def latent_noise(seed: int, step: int, n: int, latent_size: int, kind: str = "normal") -> np.ndarray:
    """z for global step `step`: float32 `[n, latent_size]`, N(0, 1) or uniform in [-1, 1].

    A pure function of (seed, step), so a resumed run draws exactly the noise it would have.
    """
    return _draw(np.random.default_rng([seed, 1, step]), (n, latent_size), kind)


def steps_noise(seed: int, first_step: int, steps: int, n: int, latent_size: int,
                kind: str = "normal") -> np.ndarray:
    """z for `steps` consecutive global steps after `first_step`: float32 `[steps, n, latent]`."""
    return np.stack([latent_noise(seed, first_step + j, n, latent_size, kind) for j in range(steps)])


def fixed_noise(seed: int, latent_size: int, n: int = 25, kind: str = "normal") -> np.ndarray:
    """The noise behind every epoch's sample grid: float32 `[n, latent_size]`."""
    return _draw(np.random.default_rng([seed, 2]), (n, latent_size), kind)


@contextlib.contextmanager
def inference_mode(net):
    """Run `net` in inference mode (BatchNorm on its running statistics, no dropout) inside
    the block, and give it back in the mode it had."""
    was_training = net.training
    net.set_train(False)
    try:
        yield net
    finally:
        net.set_train(was_training)


def sample(net_g, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """G(z) (a conditional G: G(z, labels), int `[N]`) in inference mode: float32
    `[N, C, H, W]` in [-1, 1]; the net's mode is kept."""
    with inference_mode(net_g):
        if net_g.spec.num_classes:
            return net_g(ms.Tensor(z), ms.Tensor(np.asarray(labels, np.int32))).asnumpy()
        return net_g(ms.Tensor(z)).asnumpy()
