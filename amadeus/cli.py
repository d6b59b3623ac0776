"""What the scripts share: flags into an options dataclass, user errors as one line and exit 2,
never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from amadeus.errors import AmadeusError

T = TypeVar("T")


def options(cls: type[T], args: argparse.Namespace) -> T:
    """The options dataclass `cls` from parsed flags: each flag's dest is a field of `cls`, so
    a script is its parser, this, and one call into the package."""
    values = vars(args)
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:  # a programming error, not a user's: the parser and the dataclass disagree
        raise TypeError(f"{cls.__name__} has no field for flag(s) {', '.join(sorted(unknown))}")
    return cls(**values)


def run(main: Callable[[], int | None]) -> None:
    """Runs a script's main; an AmadeusError prints `error: <message>` and exits 2."""
    try:
        code = main()
    except AmadeusError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `script | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    sys.exit(code or 0)


def positive_int(text: str) -> int:
    value = int_arg(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


DEVICES = ("auto", "cpu", "cuda")  # --device: see amadeus.model.device


def add_device(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """--device for the tools that run torch."""
    parser.add_argument("--device", choices=DEVICES, default=default, help="default %(default)s")


def add_seed(parser: argparse.ArgumentParser, default: int, what: str) -> None:
    """--seed for the tools whose result depends on chance; `what` says what it picks."""
    parser.add_argument("--seed", type=int_arg, default=default, help=f"picks {what}")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """--quiet for the tools with a progress bar (it is off anyway when not on a terminal)."""
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_dataset(parser: argparse.ArgumentParser) -> None:
    """-d/--dataset for the tools that read the data a session records."""
    parser.add_argument(
        "-d",
        "--dataset",
        type=Path,
        default=None,
        help="folder of .data files (default: the one the session was trained on)",
    )


def count(text: str) -> int:
    """A whole number, 0 included."""
    value = int_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """A number in [0, 1]: ratios and fractions."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def share(text: str) -> float:
    """A number in (0, 1]: a share that cannot be empty, such as nucleus sampling's top-p."""
    value = unit_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value
