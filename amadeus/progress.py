"""Progress bars: shown on a terminal, silent in CI, in pipes and under --quiet."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm


def is_interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", quiet: bool = False):
    """tqdm over `iterable`, disabled unless someone is watching a terminal."""
    return tqdm(
        iterable, total=total, desc=desc, disable=quiet or not is_interactive(), leave=False
    )
