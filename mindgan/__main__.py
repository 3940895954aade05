"""`python -m mindgan` (or `mindgan` once installed): the commands, and `mindgan COMMAND ...`
as a short form of `python -m mindgan.COMMAND ...`."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "train a GAN (the MLP tutorial by default; --model for the others)",
    "infer": "generate images from a generator checkpoint",
    "export": "export a generator to MINDIR or ONNX",
    "evaluate": "MNIST: Parzen, classifier FID, mode coverage; any images (--real): Inception FID and KID",
    "data": "check or download the training data",
    "classifier": "retrain the LeNet-5 behind the FID",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, what in COMMANDS.items()]
    return ("usage: python -m mindgan COMMAND [flags]   (or: mindgan COMMAND, python -m mindgan.COMMAND)\n\n"
            "commands:\n" + "\n".join(lines) + "\n\n`python -m mindgan COMMAND --help` explains each one's flags.")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"python -m mindgan: error: unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    if argv[0] == "classifier":  # it imports MindSpore as it loads: the kernels are chosen first
        from .cpu import choose_cpu_kernels

        choose_cpu_kernels(True)
    module = importlib.import_module(f"mindgan.{argv[0]}")
    sys.argv = [f"python -m mindgan.{argv[0]}"] + argv[1:]
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
