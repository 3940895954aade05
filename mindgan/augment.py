"""Differentiable Augmentation (Zhao et al. 2020, "DiffAugment"): the same random transforms of
the real and the generated images on their way into D, in both updates, differentiable so that
G's gradient passes through them. It keeps D from memorising a small training set.

`--diffaugment color,translation,cutout` (any of them, applied in that order), the paper's
transforms with its constants: color = brightness + U(-0.5, 0.5), saturation x U(0, 2) about the
pixel's channel mean, contrast x U(0.5, 1.5) about the image mean; translation by a whole number
of pixels up to 1/8 of the size each way, zeros coming in; cutout of a square half the size,
anywhere on the image (clipped at its edges). Each image of each call draws its own values.

The randomness is a pure function of a call counter (a Parameter saved in the resume state),
the image's index and the transform, hashed as `models.layers.Dropout` hashes (integer
arithmetic, the same on every device), so a resumed run draws exactly what it would have.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from .models.layers import counted_uniform

__all__ = ["POLICIES", "parse_policy", "DiffAugment"]

POLICIES = ("color", "translation", "cutout")
_SLOTS = 8  # random numbers per image and call: brightness, saturation, contrast, ty, tx, cy, cx


def parse_policy(text: str | None) -> tuple[str, ...]:
    """"color,translation" -> ("color", "translation") in POLICIES' order; "" or None -> ().
    ValueError with one line naming the choices for anything else."""
    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"--diffaugment {text}: {unknown[0]!r} is not a transform (choose any of "
                         f"{', '.join(POLICIES)}, comma-separated)")
    return tuple(p for p in POLICIES if p in names)


class DiffAugment(nn.Cell):
    """x float32 `[N, C, S, S]` -> the same images transformed by `policy` (a tuple of POLICIES),
    differentiably; the identity in inference mode or for an empty policy."""

    def __init__(self, policy: tuple[str, ...], image_size: int, salt: int = 0):
        super().__init__()
        self.policy = tuple(policy)
        self.color, self.translation, self.cutout = (p in self.policy for p in POLICIES)
        self.size = int(image_size)
        self.shift_px = int(self.size * 0.125 + 0.5)
        self.cut = int(self.size * 0.5 + 0.5)
        self.salt = int(salt) % (1 << 31)
        self.calls = Parameter(Tensor(0.0, ms.float32), name="augment.calls", requires_grad=False)
        self.rank = 0
        self.rshift = ops.RightShift()
        self.grid = Tensor(list(range(self.size)), ms.float32)

    def use_workers(self, rank: int, workers: int) -> None:
        """Index images by their place in the global batch of `workers` equal slices."""
        self.rank = rank

    def uniform(self, n: int):
        """U[0, 1) float32 `[n, _SLOTS]` for this call."""
        calls = self.calls * 1.0
        ops.assign(self.calls, calls + 1.0)
        return counted_uniform(calls, self.salt, 0x85EBCA77, self.rank * n * _SLOTS, n * _SLOTS,
                               self.rshift).reshape(n, _SLOTS)

    def shift_matrix(self, t):
        """`[N, S, S]` with row i holding a 1 at column i + t (zero where that falls outside):
        M @ x shifts each image by its t rows (x^T M^T its columns)."""
        target = self.grid.reshape(1, -1, 1) + t.reshape(-1, 1, 1)
        return (self.grid.reshape(1, 1, -1) == target).astype(ms.float32)

    def construct(self, x):
        if not self.training or not self.policy:
            return x
        r = self.uniform(x.shape[0])
        if self.color:
            x = x + (r[:, 0] - 0.5).reshape(-1, 1, 1, 1)
            mean = x.mean(axis=1, keep_dims=True)
            x = (x - mean) * (r[:, 1] * 2.0).reshape(-1, 1, 1, 1) + mean
            mean = x.mean(axis=(1, 2, 3), keep_dims=True)
            x = (x - mean) * (r[:, 2] + 0.5).reshape(-1, 1, 1, 1) + mean
        if self.translation:
            span = 2 * self.shift_px + 1
            ty = ops.floor(r[:, 3] * span) - self.shift_px
            tx = ops.floor(r[:, 4] * span) - self.shift_px
            rows, cols = self.shift_matrix(ty), self.shift_matrix(tx)
            x = ops.matmul(ops.matmul(rows.expand_dims(1), x), cols.transpose(0, 2, 1).expand_dims(1))
        if self.cutout:
            positions = self.size + (1 - self.cut % 2)
            low_y = ops.floor(r[:, 5] * positions) - self.cut // 2
            low_x = ops.floor(r[:, 6] * positions) - self.cut // 2
            inside_y = ops.logical_and(self.grid.reshape(1, -1) >= low_y.reshape(-1, 1),
                                       self.grid.reshape(1, -1) < (low_y + self.cut).reshape(-1, 1))
            inside_x = ops.logical_and(self.grid.reshape(1, -1) >= low_x.reshape(-1, 1),
                                       self.grid.reshape(1, -1) < (low_x + self.cut).reshape(-1, 1))
            hole = ops.logical_and(inside_y.expand_dims(2), inside_x.expand_dims(1))
            x = x * (1.0 - hole.astype(ms.float32)).expand_dims(1)
        return x

    def extend_repr(self):
        return f"policy={','.join(self.policy) or 'none'}"
