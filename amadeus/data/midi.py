"""MIDI files <-> `Notes`: the only module that imports a MIDI library.

symusic parses (about 100x faster than pretty_midi) and writes. We take ticks from it and convert
them to seconds ourselves in float64: symusic's seconds are float32 (0.1 ms steps by 30 minutes)
and it refuses SMPTE timing. Before symusic sees a file, a pure-Python walk over its chunks
rejects broken structure with a clear reason, skips unknown chunks and unwraps RIFF/RMID.

All non-drum tracks become one piano: their notes are merged and one sustain pedal, merged from
every non-drum CC64, holds them (Magenta's rule). Pitch range and silences are left to the codec.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import symusic

from amadeus.atomic import write_bytes
from amadeus.data.notes import Notes
from amadeus.errors import MidiError

DEFAULT_TEMPO = 500_000  # microseconds per quarter note when a file sets none (120 bpm)
SUSTAIN = 64  # controller number of the sustain pedal; values >= 64 hold it down
SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 30000 / 1001, 30: 30.0}  # header code -> frames per second
WRITE_TPQ, WRITE_QPM = 480, 120  # one tick = 1/960 s: written times are within 0.53 ms
TICKS_PER_SECOND = WRITE_TPQ * WRITE_QPM / 60


def read(path: str | Path, sustain: bool = True) -> Notes:
    """Notes of every non-drum track of a MIDI file, times in seconds; MidiError if unusable."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise MidiError(f"{path}: cannot read: {e.strerror}") from e
    return read_bytes(data, str(path), sustain)


def read_bytes(data: bytes, name: str = "<bytes>", sustain: bool = True) -> Notes:
    """As `read`, from the file's bytes; `name` prefixes error messages."""
    smf, division = _checked_smf(_unwrap_rmid(data, name), name)
    try:
        score = symusic.Score.from_midi(smf)
    except RuntimeError as e:
        raise MidiError(f"{name}: corrupt track data ({e})") from e
    tracks = [t for t in score.tracks if not t.is_drum]
    notes = [t.notes.numpy() for t in tracks]
    start = _joined(notes, "time")  # int64 [N] ticks
    end = start + _joined(notes, "duration")
    if len(start) and start.min() < 0:
        raise MidiError(f"{name}: tick count overflows 32 bits (delta times too large)")
    if sustain and len(start):
        end = _sustained(end, *_pedal_ticks(tracks, end.max()))
    clock = _clock(division, score.tempos.numpy(), name)
    return _performance(
        _seconds(start, clock),
        _seconds(end, clock),
        _joined(notes, "pitch"),
        _joined(notes, "velocity"),
    )


# ---- file structure ----------------------------------------------------------------------------


def _unwrap_rmid(data: bytes, name: str) -> bytes:
    """RIFF/RMID files (Windows) hold a standard MIDI file in their 'data' chunk."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    pos = 12
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if tag == b"data":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + size % 2  # RIFF chunks are padded to even length
    raise MidiError(f"{name}: RIFF/RMID file without a 'data' chunk")


def _checked_smf(data: bytes, name: str) -> tuple[bytes, int]:
    """(clean SMF: header and the announced MTrk chunks only, header's division field).

    Walks chunk headers only (cheap): lengths that overrun the file or land mid-event are caught
    here with a reason, and SMPTE files get a placeholder division symusic accepts.
    """
    if not data:
        raise MidiError(f"{name}: empty file")
    if data[:4] != b"MThd":
        raise MidiError(f"{name}: not a MIDI file (starts with {data[:8]!r})")
    if len(data) < 14:
        raise MidiError(f"{name}: MIDI header cut short")
    header_size = int.from_bytes(data[4:8], "big")
    fmt, ntracks, division = struct.unpack(">HHH", data[8:14])
    if header_size < 6 or fmt > 2:
        raise MidiError(f"{name}: bad MIDI header (length {header_size}, format {fmt})")
    if ntracks == 0:
        raise MidiError(f"{name}: header announces no tracks")
    tracks, pos = [], 8 + header_size
    while len(tracks) < ntracks:
        if pos + 8 > len(data):
            raise MidiError(f"{name}: file ends after {len(tracks)} of {ntracks} tracks")
        tag, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
        if not (tag.isascii() and tag.isalnum()):
            raise MidiError(
                f"{name}: bad chunk type {tag!r} at byte {pos} (a chunk length is wrong)"
            )
        if pos + 8 + size > len(data):
            raise MidiError(
                f"{name}: chunk {tag.decode()} at byte {pos} claims {size} bytes, "
                f"{len(data) - pos - 8} remain (file cut short or length wrong)"
            )
        if tag == b"MTrk":
            tracks.append(data[pos : pos + 8 + size])
        pos += 8 + size
    # symusic refuses SMPTE timing: it gets any valid division, `_clock` times those ticks.
    header = struct.pack(">4sIHHH", b"MThd", 6, fmt, ntracks, 1 if division & 0x8000 else division)
    return header + b"".join(tracks), division


# ---- time --------------------------------------------------------------------------------------


def _clock(division: int, tempos: dict, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Piecewise-linear tick -> second map: knots (tick [K], second [K], seconds per tick [K])."""
    if division & 0x8000:  # SMPTE: -frames per second in the high byte, ticks per frame in the low
        fps, ticks_per_frame = SMPTE_FPS.get(256 - (division >> 8)), division & 0xFF
        if fps is None or ticks_per_frame == 0:
            raise MidiError(f"{name}: unknown SMPTE timing 0x{division:04X}")
        return np.zeros(1, np.int64), np.zeros(1), np.array([1 / (fps * ticks_per_frame)])
    if division == 0:
        raise MidiError(f"{name}: 0 ticks per quarter note")
    order = np.argsort(tempos["time"], kind="stable")
    tick = tempos["time"][order].astype(np.int64)
    tempo = tempos["mspq"][order].astype(np.float64)
    # Of several tempo events at one tick, the last is the one in force.
    last = _last_of_runs(tick)
    tick, tempo = tick[last], tempo[last]
    if (tempo <= 0).any():
        raise MidiError(f"{name}: tempo 0 at tick {tick[tempo <= 0][0]}: timing undefined")
    if not len(tick) or tick[0] > 0:
        tick, tempo = np.append(0, tick), np.append(DEFAULT_TEMPO, tempo)
    rate = tempo / 1e6 / division
    second = np.concatenate([[0.0], np.cumsum(np.diff(tick) * rate[:-1])])
    return tick, second, rate


def _seconds(ticks: np.ndarray, clock: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    tick, second, rate = clock
    k = np.searchsorted(tick, ticks, side="right") - 1  # knot in force at each tick; ticks >= 0
    return second[k] + (ticks - tick[k]) * rate[k]


# ---- notes and pedal ---------------------------------------------------------------------------


def _joined(arrays: list[dict], key: str) -> np.ndarray:
    return np.concatenate([a[key].astype(np.int64) for a in arrays] or [np.zeros(0, np.int64)])


def _last_of_runs(*keys: np.ndarray) -> np.ndarray:
    """Mask of the last element of each run of equal keys (arrays sorted by those keys)."""
    last = np.ones(len(keys[0]), dtype=bool)
    last[:-1] = np.any([key[1:] != key[:-1] for key in keys], axis=0)
    return last


def _pedal_ticks(tracks: list, piece_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Press and release ticks of the one pedal made by merging every track's CC64."""
    controls = [t.controls.numpy() for t in tracks]
    is_pedal = np.concatenate([c["number"] == SUSTAIN for c in controls])
    time, value = _joined(controls, "time")[is_pedal], _joined(controls, "value")[is_pedal]
    order = np.argsort(time, kind="stable")
    return _pedal_intervals(time[order], value[order], piece_end)


def _pedal_intervals(
    time: np.ndarray, value: np.ndarray, piece_end: float
) -> tuple[np.ndarray, np.ndarray]:
    """(down [P], up [P]) from a time-sorted CC64 stream; a pedal left down lifts at the end."""
    held = value >= 64
    was_held = np.concatenate([[False], held[:-1]])
    down, up = time[held & ~was_held], time[~held & was_held]
    if len(up) < len(down):
        up = np.append(up, max(piece_end, down[-1]))
    return down, up


def _sustained(end: np.ndarray, down: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Magenta's rule: a note released while the pedal is down sounds until the pedal lifts."""
    if not len(down):
        return end
    k = np.maximum(np.searchsorted(down, end, side="right") - 1, 0)  # last press at or before end
    held = (down[k] <= end) & (end < up[k])
    return np.where(held, up[k], end)


def performance(
    keys: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    pedal: tuple[np.ndarray, np.ndarray],
    sustain: bool = True,
) -> Notes:
    """Notes from keys (start, release, pitch, velocity: seconds) and a time-sorted CC64 stream
    (time, value), by `read`'s rules: the pedal holds released notes (when `sustain`), one note
    per key and onset, same-key overlaps cut. A pedal left down lifts with the last release."""
    start, end, pitch, velocity = keys
    if sustain and len(start):
        end = _sustained(end, *_pedal_intervals(*pedal, end.max()))
    return _performance(start, end, pitch, velocity)


def _performance(
    start: np.ndarray, end: np.ndarray, pitch: np.ndarray, velocity: np.ndarray
) -> Notes:
    """One `Notes` from merged arrays: one note per key and onset, same-key overlaps cut."""
    # Ordered by end so the longest of notes struck together on one key sorts last (stable sorts).
    order = np.argsort(end, kind="stable")
    notes = Notes.build(start[order], end[order], pitch[order], velocity[order])
    return notes.select(_last_of_runs(notes.start, notes.pitch)).without_overlaps()


# ---- writing -------------------------------------------------------------------------------


def write(notes: Notes, path: str | Path, program: int = 0) -> None:
    """One piano track at 120 bpm, written atomically (temp file, then rename)."""
    write_tracks([("piano", notes)], path, program)


def write_tracks(
    tracks: list[tuple[str, Notes]],
    path: str | Path,
    program: int = 0,
    markers: list[tuple[float, str]] = (),
) -> None:
    """Named tracks at 120 bpm with text markers, written atomically (see `to_bytes`)."""
    path = Path(path)
    try:
        write_bytes(path, to_bytes(tracks, program, markers))
    except OSError as e:
        raise MidiError(f"{path}: cannot write: {e.strerror}") from e


def to_bytes(
    tracks: list[tuple[str, Notes]], program: int = 0, markers: list[tuple[float, str]] = ()
) -> bytes:
    """A standard MIDI file: one named track of `program` per (name, Notes), and text markers
    (seconds, text). Times in seconds, written at 120 bpm: one tick is 1/960 s."""
    score = symusic.Score(WRITE_TPQ)
    score.tempos.append(symusic.Tempo(0, qpm=WRITE_QPM))
    for name, notes in tracks:
        start = np.round(notes.start * TICKS_PER_SECOND).astype(np.int32)
        end = np.round(notes.end * TICKS_PER_SECOND).astype(np.int32)
        pitch = notes.pitch.astype(np.int8)
        velocity = np.clip(notes.velocity, 1, 127).astype(np.int8)
        track = symusic.Track(name, program, False)
        track.notes = symusic.Note.from_numpy(start, end - start, pitch, velocity)
        score.tracks.append(track)
    for seconds, text in markers:
        score.markers.append(symusic.TextMeta(round(seconds * TICKS_PER_SECOND), text))
    return score.dumps_midi()
