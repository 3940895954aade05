"""Export a trained generator for deployment: `python -m mindgan.export --ckpt PATH`.

MINDIR is MindSpore's own deployment format (MindSpore Lite, `mindspore.load`); ONNX serves
other runtimes. The exported graph maps z float32 `[N, latent]` to images `[N, C, H, W]` in
[-1, 1] (the shape the checkpoint's model spec says), with BatchNorm in inference mode and a
free batch dimension where the format allows.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .cli import Parser, add_runtime_flags, one_line_errors, parse, positive, start
from .fileio import atomic_output

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx"}

__all__ = ["export_generator", "main"]


def export_generator(ckpt, out: str | Path, file_format: str = "MINDIR",
                     batch_size: int | None = None) -> Path:
    """Export the generator of `ckpt` (a path or a loaded Generator) to `out`; returns the file.
    Its input is z float32 `[N, latent]`, and for a conditional generator the labels int32 `[N]`
    as a second input.

    `batch_size` None exports a dynamic batch dimension (MINDIR); ONNX gets a fixed one
    (default 1) since MindSpore's ONNX exporter takes only static shapes."""
    import mindspore as ms

    from .checkpoint import load_generator
    from .cpu import STANDARD
    from .gan import inference_mode
    from .models import build_generator

    file_format = file_format.upper()
    if file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r} (choose from {', '.join(FORMATS)})")
    # Every layer its stock cell (standard nodes in the file): a file is loaded that way; a
    # caller's generator is copied into one, so that it keeps its own kernels.
    if isinstance(ckpt, ms.nn.Cell):
        net = build_generator(ckpt.spec, STANDARD)
        for mine, theirs in zip(net.get_parameters(), ckpt.get_parameters()):
            mine.set_data(ms.Tensor(theirs.asnumpy()))
    else:
        net = load_generator(ckpt, kernels=STANDARD)
    if file_format == "ONNX" and batch_size is None:
        batch_size = 1
    if batch_size is None:
        example = [ms.Tensor(shape=[None, net.latent_size], dtype=ms.float32)]
        if net.spec.num_classes:  # a conditional generator's second input: the labels
            example.append(ms.Tensor(shape=[None], dtype=ms.int32))
    else:
        example = [ms.ops.zeros((batch_size, net.latent_size), ms.float32)]
        if net.spec.num_classes:
            example.append(ms.ops.zeros((batch_size,), ms.int32))
    out = Path(out)
    suffix = FORMATS[file_format]
    # MindSpore appends the suffix itself; the name goes without it.
    stem = out.with_suffix("") if out.suffix.lower() == suffix else out
    path = stem.with_name(stem.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    # MindSpore's exporter chmods the folder it writes into (0700) and the file (0400): it
    # writes into a private temporary folder beside the target, and the finished file is moved
    # into place (atomic, mode 0644), leaving the user's folders as they were.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        staged = Path(tmp) / path.name
        with inference_mode(net):
            ms.export(net, *example, file_name=str(staged.with_suffix("")), file_format=file_format)
        if file_format == "ONNX" and any(isinstance(cell, ms.nn.Conv2dTranspose)
                                         for _, cell in net.cells_and_names()):
            _fix_conv_transpose_output_shape(staged)
        os.chmod(staged, 0o644)
        os.replace(staged, path)
    return path


def _fix_conv_transpose_output_shape(path: Path) -> None:
    """Two slips in MindSpore 2.10's ONNX ConvTranspose nodes, mended in place: `output_shape` is
    written `[N, C, H, W]` where ONNX wants the spatial `[H, W]` (onnxruntime refuses the file),
    and pad mode "same" is written SAME_LOWER (the odd padding pixel first) though MindSpore, like
    TensorFlow, pads the end: SAME_UPPER (the outputs differed by up to 0.07 otherwise)."""
    try:
        import onnx
    except ImportError:
        path.unlink(missing_ok=True)
        raise RuntimeError("ONNX export of a convolutional generator needs the onnx package to "
                           "correct MindSpore's ConvTranspose nodes: pip install onnx") from None
    model = onnx.load(str(path))
    for node in (n for n in model.graph.node if n.op_type == "ConvTranspose"):
        for attr in node.attribute:
            if attr.name == "output_shape" and len(attr.ints) == 4:
                spatial = list(attr.ints[2:])
                del attr.ints[:]
                attr.ints.extend(spatial)
            elif attr.name == "auto_pad" and attr.s == b"SAME_LOWER":
                attr.s = b"SAME_UPPER"
    onnx.checker.check_model(model)
    with atomic_output(path) as tmp:
        onnx.save(model, str(tmp))


def main(argv=None) -> int:
    p = Parser(prog="python -m mindgan.export",
               description="Export a generator checkpoint to MINDIR (MindSpore Lite, "
                           "mindspore.load) or ONNX.")
    p.add_argument("--ckpt", required=True, help="generator checkpoint (or a resume state)")
    p.add_argument("--format", default="MINDIR", type=str.upper, choices=list(FORMATS),
                   help="MINDIR (default; dynamic batch) or ONNX (fixed batch)")
    p.add_argument("--out", help="output file (default: generator.mindir / generator.onnx)")
    p.add_argument("--batch_size", type=positive("batch_size"), default=None,
                   help="fix the batch dimension (MINDIR default: dynamic; ONNX default: 1)")
    add_runtime_flags(p)
    args = parse(p, argv)
    if not Path(args.ckpt).is_file():
        p.error(f"--ckpt {args.ckpt}: no such file")

    out = args.out or f"generator{FORMATS[args.format]}"
    start(p, args.device_target)
    from .checkpoint import load_generator

    with one_line_errors(p):
        net = load_generator(args.ckpt)
    try:
        path = export_generator(net, out, args.format, args.batch_size)
    except (RuntimeError, TypeError, ValueError) as exc:  # MindSpore's exporter refused
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        p.error(f"--format {args.format}: MindSpore {__import__('mindspore').__version__} "
                f"cannot export this network: {first}")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
