"""The CPU convolution routes' plan for one layer: its geometry and the op that computes it."""
from __future__ import annotations

from .matmul_conv import ConvGeometry, ConvOp, same_padding
from .onednn_conv import OneDNNConv

__all__ = ["plan_convolution"]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _padding(pad_mode, padding, size, kernel, stride):
    """(top, left) padding of a convolution of `size` (h, w) pixels."""
    if pad_mode == "valid":
        return (0, 0)
    if pad_mode == "same":
        return tuple(same_padding(size[k], kernel[k], stride[k])[0] for k in (0, 1))
    pads = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if pads[0] != pads[1] or pads[2] != pads[3]:
        raise ValueError(f"padding {padding}: only symmetric padding is supported")
    return (pads[0], pads[2])


def plan_convolution(layer, input_size, transpose: bool, route: str, output_size=None):
    """(output pixels (h, w), op) of `layer` (an `nn.Conv2d` or `nn.Conv2dTranspose`, no groups
    or dilation) for inputs of `input_size` pixels on `route`; op is None on "stock". The
    "onednn" op maps NCHW to NCHW; the "matmul" op pixel rows `[N, H·W, C]` to rows.
    `output_size`: a "same" transposed convolution's output pixels when they are not input x
    stride (TensorFlow's `conv2d_transpose(output_shape=...)`: the input gradient of the "same"
    convolution from `output_size` pixels, which has ceil(output_size / stride) = input_size)."""
    if layer.group != 1 or _pair(layer.dilation) != (1, 1):
        raise ValueError(f"{type(layer).__name__}: no groups or dilation")
    size, kernel, stride = _pair(input_size), _pair(layer.kernel_size), _pair(layer.stride)
    if not transpose:
        top_left = _padding(layer.pad_mode, layer.padding, size, kernel, stride)
        if layer.pad_mode == "same":
            out = tuple(-(-size[k] // stride[k]) for k in (0, 1))
        else:
            out = tuple((size[k] + 2 * top_left[k] - kernel[k]) // stride[k] + 1 for k in (0, 1))
        in_out = (size, out)
    else:
        if layer.pad_mode == "same":
            out = _pair(output_size) if output_size else tuple(size[k] * stride[k] for k in (0, 1))
            if any(-(-out[k] // stride[k]) != size[k] for k in (0, 1)):
                raise ValueError(f"output size {out} cannot come from {size} pixels at stride {stride}")
        else:
            pad = (0, 0) if layer.pad_mode == "valid" else _padding("pad", layer.padding, size, kernel, stride)
            out = tuple((size[k] - 1) * stride[k] + kernel[k] - 2 * pad[k] for k in (0, 1))
        # The convolution this is the input gradient of runs from `out` pixels to `size`.
        top_left = _padding(layer.pad_mode, layer.padding, out, kernel, stride)
        in_out = (out, size)
    if route == "onednn":
        return out, OneDNNConv(*in_out, kernel, stride, top_left, transpose)
    if route == "matmul":
        channels = layer.out_channels if transpose else layer.in_channels
        return out, ConvOp(ConvGeometry(*in_out, kernel, stride, top_left, channels), transpose)
    return out, None
