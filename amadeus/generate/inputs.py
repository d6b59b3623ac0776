"""generate.py's inputs from the command line, as arrays: a control (held, or a sequence from a
.data file), the number of events, and a primer phrase encoded as the model's data was. Every
check a user can fail happens here, before the first step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece, Settings, data_files, read_data
from amadeus.data.dynamics import Dynamics
from amadeus.data.encoding import encode_notes
from amadeus.data.midi import read
from amadeus.data.notes import Notes
from amadeus.errors import UsageError

DEFAULT_LENGTH = 1000  # events, when neither -l nor a control sequence says otherwise


def parse_control(text: str) -> np.ndarray:
    """'h0,...,h11;d' -> control [24]: density bin d (0-11) one-hot, then the 12 pitch-class
    weights normalised to sum 1; ';d' alone means a uniform histogram."""
    usage = f"-c {text!r}: expected 'h0,...,h11;d' (12 pitch-class weights, density 0-11)"
    histogram, sep, density = text.partition(";")
    if not sep:
        raise UsageError(f"{usage}, or an existing .data file or folder")
    try:
        d = int(density)
        weights = [float(h) for h in histogram.split(",")] if histogram.strip() else [1.0] * 12
    except ValueError:
        raise UsageError(f"{usage}: not numbers") from None
    if not 0 <= d < ctl.DENSITY_DIM:
        raise UsageError(f"{usage}: density {d} is outside 0-{ctl.DENSITY_DIM - 1}")
    if len(weights) != ctl.HISTOGRAM_DIM:
        raise UsageError(f"{usage}: {len(weights)} histogram values, not 12")
    h = np.array(weights)
    if not np.isfinite(h).all() or (h < 0).any():
        raise UsageError(f"{usage}: histogram values must be finite and not negative")
    if h.sum() == 0:
        raise UsageError(f"{usage}: the histogram is all zeros (';{d}' gives a uniform one)")
    return ctl.held(h, d)


def load_controls(text: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """-c: (controls, description). A .data file or a folder of them (one picked with `rng`)
    gives controls that vary over time, [T, 24]; 'h0,...,h11;d' gives one held control, [24]."""
    path = Path(text)
    if path.is_dir():
        files = data_files(path)
        if not files:
            raise UsageError(f"-c {path}: no .data files in this folder")
        path = files[rng.integers(len(files))]
    if path.is_file():
        return ctl.expand(read_data(path).controls), f"controls of {path}"
    control = parse_control(text)
    density = int(control[: ctl.DENSITY_DIM].argmax())
    histogram = np.round(control[ctl.DENSITY_DIM :].astype(np.float64), 3).tolist()
    return control, f"density {density}, histogram {histogram}"


def resolve_length(max_length: int | None, controls: np.ndarray | None) -> int:
    """Events to generate. With a control sequence, -l defaults to (and may not exceed) its
    length, and -l 0 means its length, as in the original; otherwise DEFAULT_LENGTH."""
    sequence = controls is not None and controls.ndim == 2
    if sequence and len(controls) == 0:
        raise UsageError("-c: the control sequence is empty")
    if max_length is None or (max_length == 0 and sequence):
        return len(controls) if sequence else DEFAULT_LENGTH
    if max_length < 1:
        raise UsageError(
            f"-l {max_length}: give a positive number of events (0 means the "
            "length of a control file, and there is none)"
        )
    if sequence and max_length > len(controls):
        raise UsageError(f"-l {max_length}: the control sequence has only {len(controls)} events")
    return max_length


def read_primer(
    path: Path,
    codec: EventCodec,
    settings: Settings,
    seconds: float | None = None,
    dynamics: Dynamics | None = None,
) -> Piece:
    """A phrase to continue, encoded with the settings of the model's training data (its
    velocities mapped into the loudness the model knows, with `dynamics`); with `seconds`, only
    the events of its first `seconds`."""
    notes = read(path, sustain=settings.sustain)
    if dynamics is not None:
        loudness = [dynamics.to_model(v) for v in notes.velocity.tolist()]
        notes = Notes(notes.start, notes.end, notes.pitch, np.array(loudness, dtype=np.int16))
    piece = encode_notes(notes, codec, settings, str(path))
    if seconds is not None:
        keep = codec.event_times(piece.tokens) < seconds  # a prefix: times never go back
        piece = Piece(piece.tokens[keep], piece.controls[keep], piece.codec, piece.meta)
        if len(codec.decode(piece.tokens)) == 0:
            raise UsageError(f"{path}: no notes start in the first {seconds:g} s")
    return piece
