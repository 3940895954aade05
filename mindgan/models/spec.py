"""`ModelSpec`: what a network pair is, enough to rebuild it; every checkpoint carries one."""
from __future__ import annotations

import dataclasses
import json

__all__ = ["ModelSpec"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A network pair: family, latent size, image shape, widths, and what it was trained for.
    Stored in checkpoints as JSON; fields a file does not have take these defaults.

    `num_classes` 0 is an unconditional pair (conditional generation: the number of classes,
    with `class_names` in order); `d_output` what D ends in ("probability": a Sigmoid,
    "logit"), "" for the family's own; `loss` the loss it was trained with (`mindgan.losses`);
    `noise` the z it was trained on ("normal": N(0, 1), "uniform": in [-1, 1]), which sampling
    draws too. `condition`: how a conditional D takes the label ("concat": joined to its
    input; "projection": Miyato & Koyama's projection on its last features). `diffaugment`:
    the transforms D saw its inputs through in training (`mindgan.augment`; "" none);
    `spectral_norm`: D's weights divided by their largest singular value (`layers.SpectralNorm`);
    `r1`: the R1 penalty's gamma in D's loss (`mindgan.penalties`; 0 none).
    """
    family: str = "mlp"
    latent_size: int = 100
    channels: int = 1
    image_size: int = 28
    ngf: int = 64          # generator width (convolutional families)
    ndf: int = 64          # discriminator width (convolutional families)
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    d_output: str = ""
    loss: str = "bce"
    noise: str = "normal"
    condition: str = "concat"
    diffaugment: str = ""
    spectral_norm: bool = False
    r1: float = 0.0

    @property
    def projected(self) -> bool:
        """Whether a conditional D takes the label by projection (else joined to its input)."""
        return bool(self.num_classes) and self.condition == "projection"

    @property
    def joined_labels(self) -> int:
        """The label channels (or inputs) joined to D's input: K for "concat", else 0."""
        return 0 if self.projected else self.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(C, H, W)` of the generated images."""
        return (self.channels, self.image_size, self.image_size)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        """The spec a checkpoint carries; ValueError with one line if it is not one."""
        try:
            values = json.loads(text)
            kept = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values}
            if "class_names" in kept:
                kept["class_names"] = tuple(kept["class_names"])
            return cls(**kept)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a model spec ({exc})") from None

    def describe(self) -> str:
        c, h, w = self.image_shape
        widths = "" if self.family == "mlp" else f", ngf {self.ngf}, ndf {self.ndf}"
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        classes += ", z uniform in [-1, 1]" if self.noise == "uniform" else ""
        return f"{self.family} (latent {self.latent_size}, images {c}x{h}x{w}{widths}{classes})"
