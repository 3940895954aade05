"""`TrainConfig`: every setting of a run, as plain values; saved as the run's config.json.

`--model NAME` picks a family; the family's `PRESET` (its tutorial's hyper-parameters) fills
every setting left as None, so `TrainConfig()` is the MLP tutorial exactly and
`TrainConfig(model="dcgan")` is MindSpore's DCGAN tutorial. An explicit value always wins.
"""
from __future__ import annotations

import dataclasses

from .models import ModelSpec, family

__all__ = ["TrainConfig", "NOISE_KINDS", "RECOMMENDED"]

NOISE_KINDS = ("normal", "uniform")

# What `python -m mindgan.train` uses, unless given `--tutorial`, where measurements beat the
# tutorial's own settings (docs/RESULTS.md, "An averaged generator"): for the MLP, an averaged
# generator and 50 epochs beat the tutorial's 200 plain epochs on Parzen, FID and class balance
# for both seeds measured (later epochs drift towards 1s). `TrainConfig()` itself stays the
# tutorial's, as the notebook and the tests expect.
RECOMMENDED = {"mlp": dict(ema=0.999, eval_every=10, epochs=50)}


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run. None means "the model family's preset" (or, for `channels`,
    the data's)."""
    model: str = "mlp"
    epochs: int | None = None
    batch_size: int | None = None
    latent_size: int = 100
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    image_size: int | None = None  # generated images are image_size x image_size
    channels: int | None = None    # 1 or 3; None: the data's
    ngf: int = 64                  # generator width (convolutional families)
    ndf: int = 64                  # discriminator width (convolutional families)
    noise: str = "normal"          # z ~ N(0, 1), or "uniform" in [-1, 1]
    g_steps: int = 1               # generator updates per discriminator update
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
    save_every: int = 1            # epochs between checkpoints (and generator snapshots)
    max_steps: int | None = None   # stop after this many steps in total
    log_every: int = 10            # steps between progress-bar updates
    steps_per_call: int = 0        # GAN steps per compiled call; 0: auto_steps_per_call

    # Settings a resumed run may change; everything else must match the saved run.
    RUN_CONTROL = ("epochs", "output_dir", "device_target", "mode", "save_every", "max_steps",
                   "log_every", "data_dir", "steps_per_call", "eval_every", "eval_samples")

    def __post_init__(self):
        preset = family(self.model).PRESET
        for name, value in preset.items():
            if getattr(self, name, None) is None and name != "channels":
                setattr(self, name, value)
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, not {self.noise!r}")
        if self.g_steps < 1:
            raise ValueError(f"g_steps must be at least 1, not {self.g_steps}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1) (0: off), not {self.ema}")
        if self.lr_decay_from < 0 or (self.lr_decay_from and self.lr_decay_from >= self.epochs):
            raise ValueError(f"--lr_decay_from {self.lr_decay_from} must be below --epochs "
                             f"({self.epochs}); 0 turns the decay off")

    @property
    def spec(self) -> ModelSpec:
        """The networks this config trains. Until the data has set `channels`, the family's
        own (1 for the MNIST families, 3 for dcgan)."""
        channels = self.channels if self.channels is not None else family(self.model).PRESET["channels"]
        return ModelSpec(self.model, self.latent_size, channels, self.image_size,
                         self.ngf, self.ndf)

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch `epoch` (0-based): `lr` for the first `lr_decay_from`
        epochs, then falling linearly, lr * (epochs - epoch) / (epochs - lr_decay_from + 1),
        to lr / (n + 1) in the last of the n decaying epochs (pix2pix's and CycleGAN's schedule).
        Constant `lr` when lr_decay_from is 0."""
        if not self.lr_decay_from or epoch < self.lr_decay_from:
            return self.lr
        return self.lr * (self.epochs - epoch) / (self.epochs - self.lr_decay_from + 1)

    @property
    def grid_rows(self) -> int:
        """Images per row of the sample grid: the square root of num_samples, rounded up."""
        return max(1, int(-(-self.num_samples ** 0.5 // 1)))

    def asdict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from config.json (keys it does not know are ignored: older or newer runs)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
