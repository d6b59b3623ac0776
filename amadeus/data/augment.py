"""Data augmentation for training: each window transposed on its own, and the pieces played a
little faster and slower (Magenta's time stretch), so a small corpus teaches more than itself.

Transposition moves every NOTE_ON/NOTE_OFF and the controls' pitch-class histogram by the same
semitones, a draw per window per step (the original drew one per batch). Time stretching re-encodes
each piece at a few tempos once, before training: a window of a stretched piece is a different
token sequence (other TIME_SHIFTs, and controls that count the notes of other two seconds), which
no token-level operation could produce.
"""

from __future__ import annotations

import numpy as np

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece
from amadeus.data.notes import Notes

TRANSPOSITIONS = np.arange(-6, 6)  # semitones, as the original drew them
STRETCH_FACTORS = (0.95, 0.975, 1.0, 1.025, 1.05)  # Magenta's Performance RNN


def transpose_windows(
    events: np.ndarray,
    compact: np.ndarray,
    codec: EventCodec,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Events [T, B] and compact controls [T, B, 13], each window (column) moved by its own
    draw from TRANSPOSITIONS."""
    offsets = rng.choice(TRANSPOSITIONS, size=events.shape[1])
    events, compact = events.copy(), compact.copy()
    for offset in np.unique(offsets):
        columns = offsets == offset
        events[:, columns] = codec.transpose(events[:, columns], int(offset))
        compact[:, columns] = ctl.transpose(compact[:, columns], int(offset))
    return events, compact


def time_stretched(
    pieces: list[Piece], codec: EventCodec, factors: tuple[float, ...] = STRETCH_FACTORS
) -> list[Piece]:
    """Every piece at every factor (1.0 keeps the piece itself): times multiplied, re-encoded."""
    out = []
    for piece in pieces:
        notes = codec.decode(piece.tokens)
        for factor in factors:
            if factor == 1.0:
                out.append(piece)
                continue
            stretched = Notes(notes.start * factor, notes.end * factor, notes.pitch, notes.velocity)
            tokens = codec.encode(stretched)
            out.append(Piece(tokens, ctl.compute(tokens, codec), codec.name, piece.meta))
    return out
