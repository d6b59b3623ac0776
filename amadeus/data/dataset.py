"""The `.data` file format, the dataset folder, and training windows.

A `.data` file holds one performance, safe to open from strangers (no pickle) and fast to load:

    magic      8 bytes   b"AMADEUS\\x00"
    header_len 4 bytes   little-endian uint32
    header     JSON      {"version": 1, "codec": "prnn", "events": N, "token_dtype": "uint8", ...}
    tokens     N * 1 or 2 bytes  (uint8 for 240 tokens, little-endian uint16 for 388)
    controls   N * 13 bytes      uint8 [density bin | pitch-class histogram * 255]

In memory a dataset is one array of tokens and one of compact controls for all files together,
expanded to floats one batch at a time. A session records how its data was cut and made
(`DataRecord`), so that every later tool reads the same split with the same settings.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from amadeus.atomic import write_bytes
from amadeus.data.codec import PRESETS, EventCodec
from amadeus.data.controls import COMPACT_DIM
from amadeus.errors import DatasetError

MAGIC = b"AMADEUS\x00"
FORMAT_VERSION = 1
SUFFIX = ".data"
TOKEN_DTYPES = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2")}
SPLIT_RULE = "crc32-of-name"  # how `split_by_file` ranks files; recorded in sessions
DEFAULT_MAX_SILENCE = 3.0  # seconds; longer gaps in which nothing sounds are shortened to this
DEFAULT_WINDOW, DEFAULT_STRIDE, DEFAULT_VAL_FRACTION = 200, 10, 0.1  # of sessions without a record


@dataclass(frozen=True)
class Settings:
    """How a performance becomes events: what each `.data` header records and every encoder of
    a file or phrase (preprocessing, a primer, the live engine) must share."""

    codec: str = "prnn"  # token layout preset
    sustain: bool = True  # CC64 holds notes (Magenta's rule)
    max_silence: float = DEFAULT_MAX_SILENCE  # seconds; longer silences are shortened to it

    @classmethod
    def of_header(cls, header: dict) -> Settings:
        """The settings a `.data` header records; keys it lacks take today's defaults."""
        d = cls()
        return cls(
            header.get("codec", d.codec),
            bool(header.get("sustain", d.sustain)),
            float(header.get("max_silence", d.max_silence)),
        )


@dataclass
class Piece:
    """One performance: tokens [N] and compact controls [N, 13], plus what made it."""

    tokens: np.ndarray
    controls: np.ndarray
    codec: str
    meta: dict = field(default_factory=dict)  # source file, notes, dropped notes, seconds


def write_data(path: str | Path, piece: Piece) -> None:
    """Writes atomically (no fsync: a .data file can be remade in seconds)."""
    path = Path(path)
    dtype = "uint8" if piece.tokens.dtype.itemsize == 1 else "uint16"
    if len(piece.controls) != len(piece.tokens):
        raise ValueError("tokens and controls differ in length")
    header = dict(piece.meta, version=FORMAT_VERSION, codec=piece.codec, events=len(piece.tokens))
    header["token_dtype"] = dtype
    blob = json.dumps(header, sort_keys=True).encode()
    tokens = piece.tokens.astype(TOKEN_DTYPES[dtype]).tobytes()
    controls = np.ascontiguousarray(piece.controls, dtype=np.uint8).tobytes()
    write_bytes(path, MAGIC + struct.pack("<I", len(blob)) + blob + tokens + controls)


def read_data(path: str | Path) -> Piece:
    """Reads and validates one `.data` file; any defect raises DatasetError naming it."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from e
    if raw[:8] != MAGIC or len(raw) < 12:
        raise DatasetError(f"{path}: not an Amadeus .data file (bad magic)")
    (header_len,) = struct.unpack("<I", raw[8:12])
    try:
        header = json.loads(raw[12 : 12 + header_len])
        version, codec, n = header["version"], header["codec"], int(header["events"])
        dtype = TOKEN_DTYPES[header["token_dtype"]]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: corrupt header ({e})") from e
    if version != FORMAT_VERSION:
        raise DatasetError(f"{path}: format version {version}, this Amadeus reads {FORMAT_VERSION}")
    if codec not in PRESETS:
        raise DatasetError(
            f"{path}: unknown codec {codec!r} (this Amadeus knows {', '.join(PRESETS)})"
        )
    body = 12 + header_len
    if len(raw) != body + n * (dtype.itemsize + COMPACT_DIM):
        raise DatasetError(f"{path}: truncated or padded (size does not match {n} events)")
    tokens = np.frombuffer(raw, dtype=dtype, count=n, offset=body)
    controls = np.frombuffer(raw, np.uint8, n * COMPACT_DIM, body + n * dtype.itemsize)
    meta = {k: v for k, v in header.items() if k not in ("version", "codec", "events")}
    return Piece(tokens, controls.reshape(n, COMPACT_DIM), codec, meta)


def data_files(folder: str | Path) -> list[Path]:
    """Every `.data` file under `folder`, sorted, so the order never depends on the disk."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder does not exist")
    return sorted(p for p in folder.rglob(f"*{SUFFIX}") if p.is_file())


def split_by_file(files: list[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, validation): a deterministic split by file name, independent of the folder.

    Files are ordered by a hash of their name; the first ceil(fraction * n) go to validation,
    keeping at least one training file.
    """
    ranked = sorted(files, key=lambda p: (zlib.crc32(p.name.encode()), p.name))
    n_val = min(int(np.ceil(val_fraction * len(files))), len(files) - 1)
    validation = set(ranked[:n_val])
    return [p for p in files if p not in validation], [p for p in files if p in validation]


def load_pieces(files: list[Path], codec: str | None = None) -> list[Piece]:
    """Reads files, all of one codec preset (`codec`, or the first file's)."""
    pieces = [read_data(p) for p in files]
    for p, piece in zip(files, pieces):
        codec = codec or piece.codec
        if piece.codec != codec:
            raise DatasetError(f"{p}: made with codec {piece.codec!r}, expected {codec!r}")
    return pieces


@dataclass
class Split:
    """A dataset folder split by file as training splits it, every file of one codec."""

    train: list[Piece]
    validation: list[Piece]
    settings: Settings  # from the first training file's header: the whole folder was made alike


def load_split(dataset: str | Path, val_fraction: float, codec: str | None = None) -> Split:
    """Reads a dataset folder split by file; every file must share one codec (`codec`, or the
    first training file's)."""
    files = data_files(dataset)
    if not files:
        raise DatasetError(f"{dataset}: no .data files (run preprocess.py first)")
    train_files, val_files = split_by_file(files, val_fraction)
    train = load_pieces(train_files, codec)
    settings = Settings.of_header(dict(train[0].meta, codec=train[0].codec))
    return Split(train, load_pieces(val_files, settings.codec), settings)


@dataclass(frozen=True)
class DataRecord:
    """How a session's data was cut and made. train.py records it in the session; quantize.py,
    evaluation, held_out.py, generation and the live engine read it instead of asking again."""

    dataset: str  # folder of .data files, as given to train.py
    window: int = DEFAULT_WINDOW  # events per training window
    stride: int = DEFAULT_STRIDE  # events between training windows
    val_fraction: float = DEFAULT_VAL_FRACTION  # share of files held out, by SPLIT_RULE
    split: str = SPLIT_RULE
    settings: Settings = Settings()  # how MIDI became events (the .data headers)
    longest_note: float | None = None  # seconds: the longest note of the training files
    dataset_resolved: str | None = None  # the same folder as an absolute path (None: older file)
    velocities: tuple[float, float] | None = None  # the training notes' loudness (data.dynamics)

    def folder(self) -> Path:
        """The dataset folder from wherever a tool runs: the absolute path train.py saw, else the
        path as given to train.py, from the current folder (a clone run from its root)."""
        candidates = [self.dataset_resolved, self.dataset]
        for candidate in filter(None, candidates):
            if Path(candidate).is_dir():
                return Path(candidate)
        tried = " nor ".join(dict.fromkeys(filter(None, candidates)))
        raise DatasetError(
            f"the session's dataset is not on this machine (neither {tried} is a folder): "
            "give it with --dataset"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so a session still loads with `weights_only`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> DataRecord:
        """Strict about types (a session comes from a file); ValueError names what is wrong."""
        if not isinstance(values, dict) or not isinstance(values.get("settings"), dict):
            raise ValueError("data record is not a dict with settings")
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"data record has unknown key(s) {', '.join(unknown)}")
        try:
            settings = Settings(**values["settings"])
            record = cls(**dict(values, settings=settings))
        except TypeError as e:
            raise ValueError(f"data record: {e}") from None
        record.check()
        return record

    def check(self) -> None:
        s = self.settings
        numbers = (self.window, self.stride, self.val_fraction, s.max_silence)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise ValueError(
                "data record: window, stride, val_fraction and max_silence are numbers"
            )
        if s.codec not in PRESETS:
            raise ValueError(f"data record: unknown codec {s.codec!r}")
        loudness = self.velocities
        if loudness is not None and not (
            len(loudness) == 2 and all(isinstance(v, (int, float)) for v in loudness)
        ):
            raise ValueError("data record: velocities is (low, high)")


class Windows:
    """All windows of `window` events, every `stride` events, over a list of pieces.

    Tokens and compact controls of every piece live in two concatenated arrays; a window is
    just its start offset, so memory stays at about 14 bytes per event.
    """

    def __init__(self, pieces: list[Piece], window: int, stride: int):
        if window < 1 or stride < 1:
            raise ValueError("window and stride must be positive")
        self.window = window
        self.tokens = np.concatenate([p.tokens for p in pieces] or [np.zeros(0, np.uint8)])
        self.controls = np.concatenate(
            [p.controls for p in pieces] or [np.zeros((0, COMPACT_DIM), np.uint8)]
        )
        starts, offset = [], 0
        for p in pieces:
            # The original's range(0, len - window, stride): a window never runs off its piece.
            starts.append(offset + np.arange(0, len(p.tokens) - window, stride, dtype=np.int64))
            offset += len(p.tokens)
        self.starts = np.concatenate(starts or [np.zeros(0, np.int64)])
        self._epoch: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def gather(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Events [T, B] int64 and compact controls [T, B, 13] uint8 of the given windows."""
        index = starts[None, :] + np.arange(self.window)[:, None]  # [T, B]
        return self.tokens[index].astype(np.int64), self.controls[index]

    def batches_per_epoch(self, batch_size: int, world_size: int = 1) -> int:
        return len(self) // (batch_size * world_size)

    def batch(
        self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The batch of training step `step`: a pure function of (step, seed), so a resumed
        run sees exactly the batches an uninterrupted one would. Each epoch is a fresh
        permutation; rank r of `world_size` takes its own slice, disjoint from the others'."""
        per_epoch = self.batches_per_epoch(batch_size, world_size)
        if per_epoch == 0:
            raise DatasetError(
                f"{len(self)} windows, fewer than the batch size {batch_size} x {world_size} "
                "processes: use a smaller batch, window or stride, or more data"
            )
        epoch, index = divmod(step, per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, np.random.default_rng([seed, epoch]).permutation(len(self)))
        first = (index * world_size + rank) * batch_size
        return self.gather(self.starts[self._epoch[1][first : first + batch_size]])

    def evenly(self, count: int) -> np.ndarray:
        """`count` window starts spread evenly over the data: a fixed validation set."""
        if len(self) == 0:
            return self.starts
        return self.starts[np.unique(np.linspace(0, len(self) - 1, count).round().astype(int))]


def read_header(path: str | Path) -> dict | None:
    """The JSON header of a `.data` file, or None when it is not a readable one."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:8] != MAGIC or len(head) < 12:
                return None
            return json.loads(f.read(struct.unpack("<I", head[8:12])[0]))
    except (OSError, ValueError):
        return None


def longest_note(pieces: list[Piece], codec: EventCodec) -> float | None:
    """Seconds of the longest note among the pieces (None without notes): how long the data
    ever holds a note, which generation need never exceed."""
    decoded = (codec.decode(piece.tokens) for piece in pieces)
    return max((float((n.end - n.start).max()) for n in decoded if len(n)), default=None)
