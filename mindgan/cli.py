"""Shared command-line pieces: one-line argparse errors, checked number types, and the start-up
every command does (flags, quiet logs, device, expected errors as one line)."""
from __future__ import annotations

import argparse
import contextlib
import sys


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `prog: error: ...`, exit status 2, no usage dump; no
    prefix matching of flags (`--steps` is not `--steps_per_call`), with a "did you mean" for
    a flag that is close to a real one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            message += _did_you_mean(message.split(":", 1)[1].split(), self)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _did_you_mean(words: list[str], parser: argparse.ArgumentParser) -> str:
    """" (did you mean --x?)" for the first unknown flag in `words` close to a known one."""
    import difflib

    known = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
    for word in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        close = [k for k in known if k.startswith(word)]  # what argparse's prefix match took
        close += [k for k in difflib.get_close_matches(word, known, n=2, cutoff=0.6) if k not in close]
        if close:
            return f" (did you mean {' or '.join(close[:2])}?)"
    return ""


def _parse(name: str, kind: type, text: str):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"--{name} must be {what}, not {text!r}") from None


def positive(name: str, kind: type = int):
    """argparse type: a number > 0."""
    def parse(text):
        value = _parse(name, kind, text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"--{name} must be positive, not {text}")
        return value
    return parse


def non_negative(name: str, kind: type = int):
    """argparse type: a number >= 0."""
    def parse(text):
        value = _parse(name, kind, text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"--{name} must be zero or more, not {text}")
        return value
    return parse


def unit_interval(name: str):
    """argparse type: a float in [0, 1)."""
    def parse(text):
        value = _parse(name, float, text)
        if not 0.0 <= value < 1.0:
            raise argparse.ArgumentTypeError(f"--{name} must be in [0, 1), not {text}")
        return value
    return parse


def add_runtime_flags(parser: argparse.ArgumentParser, device_default: str | None = "auto") -> None:
    """--device_target and --verbose, the same for every command."""
    from .runtime import DEVICES

    parser.add_argument("--device_target", choices=DEVICES, default=device_default,
                        help=f"where to run (default {device_default or 'auto'}); auto picks GPU, "
                             f"then Ascend, then CPU")
    parser.add_argument("--verbose", action="store_true",
                        help="show MindSpore's own INFO/WARNING log lines")


def parse(parser: argparse.ArgumentParser, argv=None,
          convolutional: bool | None = True) -> argparse.Namespace:
    """Parse the flags, then, before MindSpore is imported: quiet its logs unless --verbose, and
    choose the CPU kernels (`cpu.choose_cpu_kernels`) unless `convolutional` is None (the
    caller decides later, still before importing MindSpore)."""
    from .runtime import quiet_mindspore

    args = parser.parse_args(argv)
    quiet_mindspore(getattr(args, "verbose", False))
    if convolutional is not None:
        choose_kernels(parser, args, convolutional)
    return args


def choose_kernels(parser: argparse.ArgumentParser, args, convolutional: bool | str) -> None:
    """`cpu.choose_cpu_kernels` before MindSpore is imported, its choice printed with
    --verbose; a bad MINDGAN_CPU_CONVOLUTIONS is a one-line error."""
    from .cpu import choose_cpu_kernels

    device = getattr(args, "device_target", "auto")
    if device in ("GPU", "Ascend"):   # nothing to choose (nor native kernels to build)
        if getattr(args, "verbose", False):
            print(f"CPU kernels: not chosen (--device_target {device})", file=sys.stderr)
        return
    try:
        kernels = choose_cpu_kernels(convolutional)
    except ValueError as exc:
        parser.error(str(exc))
    if getattr(args, "verbose", False):
        print(f"CPU kernels: {kernels}", file=sys.stderr)


@contextlib.contextmanager
def one_line_errors(parser: argparse.ArgumentParser, *kinds: type[BaseException]):
    """Inside the block, the expected failures (a missing or foreign checkpoint, no such
    device, missing data, and `kinds`) become `prog: error: message`, exit status 2."""
    from .checkpoint import CheckpointError
    from .runtime import DeviceUnavailable

    try:
        yield
    except (CheckpointError, DeviceUnavailable, FileNotFoundError, *kinds) as exc:
        parser.error(str(exc))


def start(parser: argparse.ArgumentParser, device_target: str, mode: str = "graph") -> str:
    """Select the device (`runtime.setup`); an unusable one is a one-line error."""
    from .runtime import setup

    with one_line_errors(parser):
        return setup(device_target, mode)
