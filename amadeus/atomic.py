"""Files written so that an interrupted run never leaves a half-written one: the data goes to a
temporary file beside the target, which is renamed onto it (atomic on one file system)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from amadeus.errors import UsageError


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`: renamed onto it when the block succeeds, deleted
    when it fails. The process id in the name keeps concurrent writers apart."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes, durable: bool = False) -> None:
    """`durable` also flushes the data to the disk before the rename (for what took hours to
    make, such as a training session), so even a power cut leaves the old or the new file."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())


def writable_folder(folder: Path) -> None:
    """Creates `folder` if needed and checks it can be written: a long job fails before its
    work, not after it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{folder}: cannot create output folder ({e.strerror})") from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{folder}: output folder is not writable")
