"""Files written so that an interrupted run never leaves a half-written one: the data goes to a
temporary file beside the target, which is renamed onto it (atomic on one file system)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
