"""Per-event conditioning: note density and pitch-class histogram of the next two seconds.

Model layout, one float vector per event: [density one-hot (12) | pitch-class histogram (12)].
Stored layout, 13 bytes per event as the original stored them: [density bin | histogram * 255].
Pure numpy.
"""

from __future__ import annotations

import numpy as np

from amadeus.data.codec import EventCodec

WINDOW_SECONDS = 2.0  # the controls of an event describe the notes of the next two seconds
DENSITY_EDGES = np.arange(12) * 3 + 1  # 1, 4, ..., 34 note-ons in the window
DENSITY_DIM = len(DENSITY_EDGES)
HISTOGRAM_DIM = 12
CONTROL_DIM = DENSITY_DIM + HISTOGRAM_DIM  # 24
COMPACT_DIM = 1 + HISTOGRAM_DIM  # 13


def compute(tokens: np.ndarray, codec: EventCodec) -> np.ndarray:
    """Compact controls [N, 13] uint8 for tokens [N].

    Event i sees the note-ons among events i, i+1, ... that happen at most WINDOW_SECONDS after
    it. An empty window has a uniform histogram and density bin 0.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    times = codec.event_times(tokens)
    on = codec.ranges["note_on"]
    is_on = (tokens >= on.start) & (tokens < on.stop)
    pitch_class = (tokens - on.start + codec.preset.min_pitch) % 12
    # counts[i, c]: note-ons of pitch class c among events [0, i).
    onehot = np.zeros((len(tokens) + 1, HISTOGRAM_DIM), dtype=np.int64)
    onehot[1:][is_on, pitch_class[is_on]] = 1
    counts = np.cumsum(onehot, axis=0)
    window_end = np.searchsorted(times, times + WINDOW_SECONDS + 1e-9, side="right")
    in_window = counts[window_end] - counts[: len(tokens)]  # [N, 12]
    total = in_window.sum(axis=1, keepdims=True)
    histogram = np.where(total > 0, in_window / np.maximum(total, 1), 1.0 / HISTOGRAM_DIM)
    density = np.maximum(np.searchsorted(DENSITY_EDGES, total[:, 0], side="right") - 1, 0)
    return compact(density, histogram)


def density_bin(note_ons: float) -> int:
    """The density bin of a number of note-ons in WINDOW_SECONDS (0 below the first edge)."""
    return int(max(np.searchsorted(DENSITY_EDGES, note_ons, side="right") - 1, 0))


def held(histogram: np.ndarray, density: int, even_share: float = 0.0) -> np.ndarray:
    """[24] model input of one control held over time: density one-hot, then the pitch-class
    weights [12] normalised to sum 1, `even_share` of them spread evenly over the twelve (a
    looser hold on the keys: the live engine's answers)."""
    histogram = np.asarray(histogram, dtype=np.float64)
    out = np.zeros(CONTROL_DIM, dtype=np.float32)
    out[density] = 1
    out[DENSITY_DIM:] = (1 - even_share) * (
        histogram / histogram.sum()
    ) + even_share / HISTOGRAM_DIM
    return out


def compact(density: np.ndarray, histogram: np.ndarray) -> np.ndarray:
    """[N] density bins and [N, 12] histograms (summing to 1) -> [N, 13] uint8."""
    out = np.empty((len(density), COMPACT_DIM), dtype=np.uint8)
    out[:, 0] = density
    out[:, 1:] = np.round(np.asarray(histogram) * 255)
    return out


def expand(compact_controls: np.ndarray) -> np.ndarray:
    """[..., 13] uint8 -> [..., 24] float32 model input: density one-hot, then histogram."""
    compact_controls = np.asarray(compact_controls)
    out = np.zeros(compact_controls.shape[:-1] + (CONTROL_DIM,), dtype=np.float32)
    density = compact_controls[..., 0].astype(np.int64)
    np.put_along_axis(out, density[..., None], 1.0, axis=-1)
    out[..., DENSITY_DIM:] = compact_controls[..., 1:] / np.float32(255)
    return out


def transpose(compact_controls: np.ndarray, semitones: int) -> np.ndarray:
    """Moves the histogram with the music (the original rolled the density slice instead)."""
    out = np.array(compact_controls, copy=True)
    out[..., 1:] = np.roll(out[..., 1:], semitones, axis=-1)
    return out
