"""Shared command-line pieces: one-line argparse errors and checked number types."""
from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `prog: error: ...`, exit status 2, no usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


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
