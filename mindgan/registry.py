"""The model families by name, readable before MindSpore loads (the command line picks the CPU
kernels from the family before the first MindSpore import). `mindgan.models.FAMILIES` builds
the families from this table; adding a family is its module in `mindgan/models/` and a line
here."""
from __future__ import annotations

__all__ = ["FAMILY_MODULES", "FAMILY_NAMES", "CONVOLUTIONAL", "UPDATE_ORDERS"]

# --model name -> module of mindgan.models that defines its FAMILY
FAMILY_MODULES = {"mlp": "mlp", "dcgan": "dcgan", "dcgan-mnist": "dcgan_mnist",
                 "dcgan-carpedm20": "dcgan_carpedm20"}
FAMILY_NAMES = tuple(FAMILY_MODULES)
# Families with convolutions, whose CPU kernels `mindgan.cpu` chooses.
CONVOLUTIONAL = ("dcgan", "dcgan-mnist", "dcgan-carpedm20")
# The update orders of mindgan.gan.UPDATE_ORDERS, for the command line's --help.
UPDATE_ORDERS = ("alternating", "simultaneous")
