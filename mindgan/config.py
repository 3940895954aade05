"""A run's settings, resolved once: defaults -> the family's preset -> the recommended
settings -> the explicit values, into a frozen `TrainConfig`, checked before anything compiles.

`resolve_config(given)` is what `python -m mindgan.train` and a Python user both call: the
recommended settings included unless `tutorial=True`. `TrainConfig(**values)` itself is the
family's tutorial exactly (`TrainConfig()` is the MLP tutorial, `TrainConfig(model="dcgan")`
MindSpore's DCGAN tutorial), with an explicit value always winning. `check_output_dir` and
`check_data` are the checks that need the file system or the data; `training.train` runs them
too, so the library and the command line refuse the same things with the same line.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from .augment import parse_policy
from .losses import LOSSES, RAW_SCORE
from .models import ModelSpec, family
from .registry import UPDATE_ORDERS

__all__ = ["TrainConfig", "NOISE_KINDS", "RECOMMENDED", "resolve_config", "check_resume",
           "check_output_dir", "check_data", "check_classes"]

NOISE_KINDS = ("normal", "uniform")
CONDITIONS = ("concat", "projection")
SNAPSHOTS = 20  # about this many generator_epoch_XXX.ckpt per run, whatever its length
GRIDS = 50      # about this many samples/epoch_XXX.png per run
GRID_CLASSES = 10  # rows of a conditional run's sample grid, one class each

# What `python -m mindgan.train` uses, unless given `--tutorial`, where measurements beat the
# tutorial's own settings (docs/RESULTS.md, "An averaged generator"): for the MLP, an averaged
# generator and 50 epochs beat the tutorial's 200 plain epochs on Parzen, FID and class balance
# for both seeds measured (later epochs drift towards 1s); with --conditional, the projection
# discriminator beat the cGAN paper's label joined to D's input (README, "Conditional
# generation"), for the MLP and for a convolutional family alike. `TrainConfig()` itself
# stays the tutorial's, as the notebook and the tests expect.
# Settings a family's preset may leave out.
FALLBACK = dict(noise="normal", g_steps=1)

RECOMMENDED = {"mlp": dict(ema=0.999, eval_every=10, epochs=50, condition="projection"),
               **{m: dict(condition="projection") for m in ("dcgan", "dcgan-mnist", "dcgan-carpedm20")}}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run, frozen (change one with `dataclasses.replace`). None given for a
    setting means "the model family's preset" (for `channels`, the data's)."""
    model: str = "mlp"
    epochs: int | None = None
    batch_size: int | None = None
    latent_size: int = 100
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    image_size: int | None = None  # generated images are image_size x image_size
    channels: int | None = None    # 1 or 3; None: the data's
    conditional: bool = False      # G(z, y) and D(x, y) on the data's class labels
    condition: str = "concat"      # how D takes the label: "concat" (at its input) or "projection"
    class_names: tuple[str, ...] | None = None  # the classes, in label order; None: the data's
    ngf: int = 64                  # generator width (convolutional families)
    ndf: int = 64                  # discriminator width (convolutional families)
    noise: str | None = None       # z ~ N(0, 1) ("normal", the default), or "uniform" in [-1, 1]
    loss: str = "bce"              # the GAN loss, by name (mindgan.losses.LOSSES)
    update: str = "alternating"    # the update order (mindgan.gan.UPDATE_ORDERS)
    diffaugment: str = ""          # DiffAugment's transforms before D, e.g. "color,translation,cutout" ("": off)
    spectral_norm: bool = False    # spectrally normalised D weights (Miyato et al. 2018)
    r1: float = 0.0                # gamma of the R1 penalty on D's gradient at real images (0: off)
    r1_every: int = 1              # lazy R1: on every k-th step only, with gamma * k (1: every step)
    g_steps: int | None = None     # generator updates per discriminator update (default 1)
    ema: float = 0.0               # decay of an averaged generator (0: off, e.g. 0.999)
    lr_decay_from: int = 0         # epochs at the full lr; then linear decay to the last (0: off)
    eval_every: int = 0            # epochs between quick FIDs (MNIST-shaped runs; 0: off)
    eval_samples: int = 2000       # generated images behind each quick FID
    num_samples: int | None = None  # images in each epoch's sample grid (a square number)
    seed: int = 0
    data_dir: str | None = None    # MNIST IDX folder, or a folder or .zip of images
    background: str = "white"      # transparent pixels of image files become this colour
    crop: int | None = None        # centre-crop image files to this many pixels first
    subset: int | None = None      # use only the first N training images (quick runs, tests)
    output_dir: str | None = None
    device_target: str = "auto"
    mode: str = "graph"            # "graph": compiled with mindspore.jit; "pynative": eager
    save_every: int = 1            # epochs between checkpoints (last.ckpt, generator.ckpt, ...)
    snapshot_every: int = 0        # epochs between generator_epoch_XXX.ckpt; 0: auto (snapshot_interval)
    max_steps: int | None = None   # stop after this many steps in total
    log_every: int = 10            # steps between progress-bar updates
    steps_per_call: int = 0        # GAN steps per compiled call; 0: auto_steps_per_call

    # Settings a resumed run may change; everything else must match the saved run.
    RUN_CONTROL = ("epochs", "output_dir", "device_target", "mode", "save_every", "snapshot_every", "max_steps",
                   "log_every", "data_dir", "steps_per_call", "eval_every", "eval_samples")

    def __post_init__(self):
        if self.class_names is not None:  # config.json holds a list
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if not self.conditional:  # how D would take labels means nothing without them
            object.__setattr__(self, "condition", "concat")
        preset = {**FALLBACK, **family(self.model).preset}
        for name, value in preset.items():
            if getattr(self, name, None) is None and name != "channels":
                object.__setattr__(self, name, value)
        if self.update not in UPDATE_ORDERS:
            raise ValueError(f"--update {self.update}: choose from {', '.join(UPDATE_ORDERS)}")
        if self.update != "alternating" and self.g_steps != 1:
            raise ValueError(f"--g_steps {self.g_steps} is for --update alternating (the {self.update} "
                             f"update makes one update of each net per step)")
        if self.update == "simultaneous" and self.steps_per_call > 1:
            raise ValueError(f"--steps_per_call {self.steps_per_call}: the simultaneous update runs one step "
                             f"per compiled call")
        if self.loss not in LOSSES:
            raise ValueError(f"--loss {self.loss}: choose from {', '.join(LOSSES)}")
        object.__setattr__(self, "diffaugment", ",".join(parse_policy(self.diffaugment)))
        if not (self.r1 >= 0.0 and math.isfinite(self.r1)):
            raise ValueError(f"--r1 {self.r1}: the penalty's gamma must be 0 (off) or positive, e.g. 10")
        if self.r1_every < 1 or (self.r1_every > 1 and not self.r1):
            raise ValueError(f"--r1_every {self.r1_every}: a positive number of steps, with --r1 GAMMA")
        if self.condition not in CONDITIONS:
            raise ValueError(f"--condition {self.condition}: choose from {', '.join(CONDITIONS)}")
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, not {self.noise!r}")
        if self.g_steps < 1:
            raise ValueError(f"g_steps must be at least 1, not {self.g_steps}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1) (0: off), not {self.ema}")
        if self.lr_decay_from < 0 or (self.lr_decay_from and self.lr_decay_from >= self.epochs):
            raise ValueError(f"--lr_decay_from {self.lr_decay_from} must be below --epochs "
                             f"({self.epochs}); 0 turns the decay off")
        family(self.model).check(self.spec)

    @property
    def spec(self) -> ModelSpec:
        """The networks this config trains. Until the data has set `channels`, the family's
        own (1 for the MNIST families, 3 for dcgan)."""
        channels = self.channels if self.channels is not None else family(self.model).preset["channels"]
        classes = tuple(self.class_names or ()) if self.conditional else ()
        return ModelSpec(self.model, self.latent_size, channels, self.image_size, self.ngf, self.ndf,
                         num_classes=len(classes), class_names=classes, noise=self.noise,
                         condition=self.condition if classes else "concat",
                         loss=self.loss, d_output="logit" if self.loss in RAW_SCORE or self.r1 else "",
                         diffaugment=self.diffaugment, spectral_norm=self.spectral_norm, r1=self.r1)

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch `epoch` (0-based): `lr` for the first `lr_decay_from`
        epochs, then falling linearly, lr * (epochs - epoch) / (epochs - lr_decay_from + 1),
        to lr / (n + 1) in the last of the n decaying epochs (pix2pix's and CycleGAN's schedule).
        Constant `lr` when lr_decay_from is 0."""
        if not self.lr_decay_from or epoch < self.lr_decay_from:
            return self.lr
        return self.lr * (self.epochs - epoch) / (self.epochs - self.lr_decay_from + 1)

    @property
    def snapshot_interval(self) -> int:
        """Epochs between generator snapshots: `snapshot_every`, or by default every epoch for
        runs of up to SNAPSHOTS epochs and then every ceil(epochs / SNAPSHOTS) (at most about
        SNAPSHOTS files; each is a few MB), rounded up to a multiple of --save_every (snapshots
        are written with the checkpoints)."""
        every = self.snapshot_every or -(-self.epochs // SNAPSHOTS)
        return -(-every // self.save_every) * self.save_every

    @property
    def grid_interval(self) -> int:
        """Epochs between sample grids: every epoch up to GRIDS epochs, then every
        ceil(epochs / GRIDS), so a long run keeps about GRIDS grids (and GIF frames)."""
        return -(-self.epochs // GRIDS)

    @property
    def grid_rows(self) -> int:
        """Images per row of the sample grid (`viz.grid_columns`: 5 for 25, 8 for 32 or 64);
        a conditional run's grid has that many columns and one row per class (`grid_labels`)."""
        from .viz import grid_columns

        return grid_columns(self.num_samples)

    @property
    def grid_labels(self):
        """A conditional run's sample grid, row by row: int32 `[rows * grid_rows]`, one row per
        class (at most GRID_CLASSES rows, classes spread evenly over the labels when there are
        more), the same fixed noise along each column; None for an unconditional run."""
        import numpy as np

        k = self.spec.num_classes
        if not k:
            return None
        classes = np.linspace(0, k - 1, min(k, GRID_CLASSES)).round().astype(np.int32)
        return np.repeat(classes, self.grid_rows)

    def asdict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from config.json (keys it does not know are ignored: older or newer runs)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def resolve_config(given: dict | None = None, *, tutorial: bool = False,
                   resume: str | Path | None = None) -> TrainConfig:
    """The config of a run from the settings `given` (None values count as not given).

    A new run: the family's preset, then `RECOMMENDED` for the family unless `tutorial`, then
    `given`. With `resume` (a run folder): its config.json, with the run-control settings of
    `given` (`TrainConfig.RUN_CONTROL`) applied; any other change is refused. ValueError with
    one line naming the flag otherwise."""
    given = {k: v for k, v in (given or {}).items() if v is not None}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(given.keys() - names)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r} (settings: {', '.join(sorted(names))})")
    if resume is None:
        recommended = {} if tutorial else RECOMMENDED.get(given.get("model", "mlp"), {})
        return TrainConfig(**{**recommended, **given})
    if tutorial:
        raise ValueError(f"--tutorial with --resume {resume}: a resumed run keeps the settings it "
                         f"was started with")
    if not (Path(resume) / "checkpoints" / "last.ckpt").is_file():
        raise ValueError(f"--resume {resume}: no checkpoints/last.ckpt there to resume from")
    if "output_dir" in given and Path(given["output_dir"]).resolve() != Path(resume).resolve():
        raise ValueError(f"--output_dir {given['output_dir']} with --resume {resume}: a resumed "
                         f"run continues in its own folder; to branch it, copy it first "
                         f"(cp -r {resume} {given['output_dir']}) and resume the copy")
    saved = _saved_config(resume)
    _refuse_changes(given, saved)
    return dataclasses.replace(saved, **{k: v for k, v in given.items() if k in TrainConfig.RUN_CONTROL})


def check_resume(config: TrainConfig, resume: str | Path) -> None:
    """A config given with `resume` must be the resumed run's, but for the run-control settings
    (`TrainConfig.RUN_CONTROL`) and settings left to the data (channels None); ValueError with
    one line naming the first difference otherwise."""
    _refuse_changes(dataclasses.asdict(config), _saved_config(resume))


def _saved_config(resume) -> TrainConfig:
    try:
        return TrainConfig.from_dict(json.loads((Path(resume) / "config.json").read_text()))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--resume {resume}: its config.json cannot be read ({exc})") from None


def _refuse_changes(values: dict, saved: TrainConfig) -> None:
    for name, mine in values.items():
        theirs = getattr(saved, name)
        if name not in TrainConfig.RUN_CONTROL and mine is not None and mine != theirs:
            raise ValueError(f"--{name} {mine} differs from the resumed run's {theirs}; "
                             f"only {', '.join('--' + n for n in TrainConfig.RUN_CONTROL)} may change")


def check_output_dir(config: TrainConfig, resume: str | Path | None = None) -> None:
    """A new run's --output_dir must not hold anything (nothing of an earlier run is
    overwritten); ValueError with one line otherwise."""
    if config.output_dir and resume is None:
        out = Path(config.output_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ValueError(f"--output_dir {out} exists and is not empty; use --resume {out} to "
                             f"continue that run, or choose another folder")


def check_data(config: TrainConfig, shape: tuple, workers: int = 1, source: str = "MNIST",
               class_names: tuple[str, ...] | None = None) -> TrainConfig:
    """The config with the data's channels (and, for a conditional run, its `class_names`:
    None where the data has no labels), once the training images' `shape` (N, C, H, W),
    before --subset, is known to suit it: the model's image shape, a batch no larger than the
    data, a global batch that splits over `workers`, classes for --conditional (the same as
    the resumed run's). ValueError with one line otherwise."""
    if config.model == "dcgan-carpedm20" and source == "MNIST":
        raise ValueError("--model dcgan-carpedm20 on MNIST is carpedm20's conditional MNIST model (labels "
                         "joined to z and to every layer), which needs --conditional (not built yet); "
                         "train it on a folder or .zip of images")
    if config.conditional:
        config = _check_classes(config, source, class_names)
    n = min(shape[0], config.subset or shape[0])
    if config.batch_size > n:
        raise ValueError(f"--batch_size {config.batch_size} is larger than the dataset ({n} images): "
                         f"give --batch_size {n} or less")
    if config.batch_size % workers:
        raise ValueError(f"--batch_size {config.batch_size} is the global batch and must split "
                         f"evenly over the {workers} msrun workers")
    data_shape = tuple(int(v) for v in shape[1:])
    if config.channels is None:
        config = dataclasses.replace(config, channels=data_shape[0])
    if config.spec.image_shape != data_shape:  # image files are decoded to the model's shape
        what = "x".join(map(str, config.spec.image_shape))
        try:
            family(config.model).check(dataclasses.replace(config.spec, image_size=data_shape[1]))
            hint = f"give --image_size {data_shape[1]} --channels {data_shape[0]}"
        except ValueError as exc:
            hint = f"and {str(exc).split(': ', 1)[-1]}; train it on a folder or zip of images"
        raise ValueError(f"--model {config.model} makes {what} images but {source} is "
                         f"{'x'.join(map(str, data_shape))}; {hint}")
    return config


def check_classes(source: str, class_names) -> None:
    """ValueError with one line unless `class_names` are two or more classes of `source`."""
    if not class_names:
        raise ValueError(f"--conditional: {source} has no class labels; put each class's images in a sub-folder "
                         f"of its own ({source}/cat/..., {source}/dog/...), or train without --conditional")
    if len(class_names) < 2:
        raise ValueError(f"--conditional: {source} has one class only ({class_names[0]!r}); conditional "
                         f"training needs two or more sub-folders of images")


def _check_classes(config: TrainConfig, source: str, class_names) -> TrainConfig:
    check_classes(source, class_names)
    if config.class_names is not None and tuple(config.class_names) != tuple(class_names):
        raise ValueError(f"--conditional: the classes of {source} ({', '.join(class_names)}) are not the "
                         f"run's ({', '.join(config.class_names)})")
    return dataclasses.replace(config, class_names=tuple(class_names))
