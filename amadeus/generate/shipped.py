"""Which model to play when the user names none: theirs if they trained one, else the one that
ships in models/, so music comes out right after install.
"""

from __future__ import annotations

from pathlib import Path

from amadeus.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]  # the clone the scripts run from
SHIPPED = Path("models/bach.int8.sess")  # the trained model that ships (see models/README.md)
DEMO = (Path("save/bach.int8.sess"), Path("save/bach.best.sess"))  # what `make demo` trains
HOW = "train one (make demo) or name one with -s"


def shipped() -> Path | None:
    """The shipped model, from the current folder or the clone; None when it is missing."""
    for path in (SHIPPED, ROOT / SHIPPED):
        if path.is_file():
            return path
    return None


def first_existing(candidates: list[Path | None], what: str) -> Path:
    """The first candidate that exists, or a UsageError saying how to get a model."""
    for path in candidates:
        if path is not None and path.is_file():
            return path
    raise UsageError(f"no model to {what}: models/ holds none and none was trained; {HOW}")


def for_generation(user_default: Path) -> Path:
    """generate.py without -s: the user's own session when they trained one, else the shipped."""
    return first_existing([user_default, shipped()], "generate with")


def for_play() -> Path:
    """play.py without -s: the shipped model, else the one `make demo` trained."""
    return first_existing([shipped(), *DEMO], "play")


def int8_beside(session: Path) -> Path | None:
    """NAME.int8.sess beside NAME.sess (or NAME.best.sess), which play.py prefers."""
    stem = session.name.removesuffix(".sess").removesuffix(".best")
    candidate = session.with_name(f"{stem}.int8.sess")
    return candidate if candidate.is_file() and candidate != session else None
