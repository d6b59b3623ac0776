"""Builds MIDI files for tests at run time: valid ones with mido, corrupt ones as raw bytes.

Times are ticks. A note is `(start, end, pitch, velocity)`; a tempo map is `(tick, microseconds per
quarter)` pairs; a pedal is `(down, up)` ticks, `up=None` for a pedal never released. `seconds`
converts ticks to seconds with plain Python, independently of `amadeus.data.midi`, for
expected values.

`CORRUPT` names one builder per odd or corrupt class (each returns the file's bytes); `UNREADABLE`
lists the classes no reader can use. The readable ones hold `REFERENCE` (at `REFERENCE_SECONDS`)
unless their docstring says otherwise.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import mido

Note = tuple[int, int, int, int]  # (start tick, end tick, pitch, velocity)

TPQ = 480
DEFAULT_TEMPO = 500_000  # microseconds per quarter: 120 bpm
REFERENCE: list[Note] = [(0, 480, 60, 80), (480, 960, 64, 90), (960, 1920, 67, 100)]
REFERENCE_SECONDS = [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0)]  # REFERENCE at TPQ and 120 bpm


# ---- valid files -------------------------------------------------------------------------------


def track(
    notes: Iterable[Note] = (),
    *,
    channel: int = 0,
    program: int | None = None,
    pedal: Iterable[tuple[int, int | None]] = (),
    tempos: Iterable[tuple[int, int]] = (),
    messages: Iterable[tuple[int, mido.Message | mido.MetaMessage]] = (),
) -> mido.MidiTrack:
    """One track from absolute-tick events; at equal ticks: meta, then offs, then ons."""
    events = [(tick, 0, mido.MetaMessage("set_tempo", tempo=us)) for tick, us in tempos]
    if program is not None:
        events.append((0, 1, mido.Message("program_change", program=program, channel=channel)))
    for down, up in pedal:
        events.append((down, 2, _pedal(127, channel)))
        if up is not None:
            events.append((up, 2, _pedal(0, channel)))
    for start, end, pitch, velocity in notes:
        events.append(
            (start, 3, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel))
        )
        events.append((end, 2, mido.Message("note_off", note=pitch, channel=channel)))
    events += [(tick, 3, message) for tick, message in messages]
    events.sort(key=lambda event: event[:2])
    result, now = mido.MidiTrack(), 0
    for tick, _, message in events:
        result.append(message.copy(time=tick - now))
        now = tick
    return result


def _pedal(value: int, channel: int) -> mido.Message:
    return mido.Message("control_change", control=64, value=value, channel=channel)


def smf_bytes(tracks: Iterable[mido.MidiTrack], *, tpq: int = TPQ, fmt: int = 1) -> bytes:
    midi = mido.MidiFile(type=fmt, ticks_per_beat=tpq)
    midi.tracks.extend(tracks)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def write_tracks(
    path: Path, tracks: Iterable[mido.MidiTrack], *, tpq: int = TPQ, fmt: int = 1
) -> Path:
    path.write_bytes(smf_bytes(tracks, tpq=tpq, fmt=fmt))
    return path


def write_midi(
    path: Path,
    notes: Iterable[Note],
    *,
    tpq: int = TPQ,
    tempo_map: Iterable[tuple[int, int]] = ((0, DEFAULT_TEMPO),),
    pedal: Iterable[tuple[int, int | None]] = (),
    fmt: int = 1,
    channel: int = 0,
) -> Path:
    """Format 0: one track holds everything; formats 1 and 2: tempo map in track 0, notes in 1."""
    if fmt == 0:
        tracks = [track(notes, channel=channel, pedal=pedal, tempos=tempo_map)]
    else:
        tracks = [track(tempos=tempo_map), track(notes, channel=channel, pedal=pedal)]
    return write_tracks(path, tracks, tpq=tpq, fmt=fmt)


def seconds(tick: int, *, tpq: int = TPQ, tempo_map: Iterable[tuple[int, int]] = ()) -> float:
    """Reference tick -> seconds: sums each tempo segment before `tick`."""
    result, at, tempo = 0.0, 0, DEFAULT_TEMPO
    for change, us in sorted(tempo_map):
        if change >= tick:
            break
        result += (change - at) * tempo / 1e6 / tpq
        at, tempo = change, us
    return result + (tick - at) * tempo / 1e6 / tpq


# ---- raw bytes ---------------------------------------------------------------------------------


def header(fmt: int, ntracks: int, division: int) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, ntracks, division)


def chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack(">I", len(payload)) + payload


def reference_bytes(*, tempo_map: Iterable[tuple[int, int]] = ((0, DEFAULT_TEMPO),)) -> bytes:
    """REFERENCE as a format 1 file: a tempo track and a piano track."""
    return smf_bytes([track(tempos=tempo_map), track(REFERENCE)])


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset, payload length) of each chunk after the header."""
    result, pos = [], 14
    while pos < len(data):
        size = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        result.append((pos, size))
        pos += 8 + size
    return result


def _with_length(data: bytes, index: int, size: int) -> bytes:
    pos, _ = _chunks(data)[index]
    return data[: pos + 4] + struct.pack(">I", size) + data[pos + 8 :]


# ---- corrupt and odd classes -------------------------------------------------------------------


def empty_file() -> bytes:
    return b""


def random_bytes(size: int = 4096, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def text_file() -> bytes:
    return b"These are not the notes you are looking for.\n" * 20


def header_only() -> bytes:
    """A header announcing no tracks, and nothing after it."""
    return header(1, 0, TPQ)


def cut_inside_track() -> bytes:
    data = reference_bytes()
    pos, size = _chunks(data)[-1]
    return data[: pos + 8 + size // 2]


def chunk_too_long() -> bytes:
    """The last track claims more bytes than the file holds."""
    data = reference_bytes()
    _, size = _chunks(data)[-1]
    return _with_length(data, -1, size + 1000)


def chunk_too_short() -> bytes:
    """The tempo track claims 3 bytes too few: the next chunk header is read mid-event."""
    data = reference_bytes()
    _, size = _chunks(data)[0]
    return _with_length(data, 0, size - 3)


def unknown_chunk() -> bytes:
    """Unknown chunks before and between the tracks; the spec says to skip them."""
    data = reference_bytes()
    (first, _), (second, _) = _chunks(data)
    junk = chunk(b"XFIH", b"\x00\x01\x02\x03\x04\x05")
    return data[:first] + junk + data[first:second] + chunk(b"Junk", b"\xff" * 9) + data[second:]


def rmid_wrapper() -> bytes:
    """A RIFF/RMID file: the SMF in a 'data' chunk, then an INFO list, as Windows wrote them."""
    smf = reference_bytes()
    info = b"INFO" + b"INAM" + struct.pack("<I", 6) + b"Piece\x00"
    body = b"RMID" + _riff_chunk(b"data", smf) + _riff_chunk(b"LIST", info)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)


def tpq_zero() -> bytes:
    data = reference_bytes()
    return data[:12] + struct.pack(">H", 0) + data[14:]


def smpte_division() -> bytes:
    """25 frames/s x 40 ticks/frame = 1000 ticks/s, so REFERENCE reads as ms; tempo is ignored."""
    data = reference_bytes(tempo_map=[(0, 250_000)])
    return data[:12] + struct.pack(">bB", -25, 40) + data[14:]


def tempo_zero() -> bytes:
    return reference_bytes(tempo_map=[(0, DEFAULT_TEMPO), (240, 0)])


LARGEST_DELTA = 0x0FFFFFFF  # the largest 4-byte variable-length quantity


def largest_delta() -> bytes:
    """REFERENCE, then one more note after a delta of LARGEST_DELTA ticks."""
    late = (1920 + LARGEST_DELTA, 1920 + LARGEST_DELTA + 480, 72, 64)
    return smf_bytes([track(tempos=[(0, DEFAULT_TEMPO)]), track([*REFERENCE, late])])


def thirty_minutes(notes_per_second: float = 4.0, seed: int = 0) -> bytes:
    """30 minutes of random notes at 120 bpm, pedal down every other second; not REFERENCE.

    Notes last up to 1.25 s and overlap each other, never on one key (where readers differ).
    """
    rng = random.Random(seed)
    ticks_per_second = 2 * TPQ
    step = ticks_per_second / notes_per_second
    busy_until = dict.fromkeys(range(21, 109), 0)  # pitch -> end tick of its last note
    notes = []
    for i in range(int(1800 * notes_per_second)):
        start = round(i * step)
        pitch = rng.choice([p for p, end in busy_until.items() if end <= start])
        busy_until[pitch] = start + rng.randint(20, 1200)
        notes.append((start, busy_until[pitch], pitch, rng.randint(1, 127)))
    pedal = [
        (t, t + ticks_per_second) for t in range(0, 1800 * ticks_per_second, 2 * ticks_per_second)
    ]
    return smf_bytes([track(tempos=[(0, DEFAULT_TEMPO)]), track(notes, pedal=pedal)])


def many_tracks(count: int = 64) -> bytes:
    """`count` tracks, track i holding one note (i, i + 1, 30 + i, 100) on a non-drum channel."""
    channels = [c for c in range(16) if c != 9]
    tracks = [track([(i, i + 1, 30 + i, 100)], channel=channels[i % 15]) for i in range(count)]
    tracks[0] = track([(0, 1, 30, 100)], tempos=[(0, DEFAULT_TEMPO)])
    return smf_bytes(tracks)


def no_notes() -> bytes:
    """Tempo, program, pedal and a note-off with no note-on, but no note."""
    stray_off = (100, mido.Message("note_off", note=60))
    piano = track(program=0, pedal=[(0, 960)], messages=[stray_off])
    return smf_bytes([track(tempos=[(0, DEFAULT_TEMPO)]), piano])


def velocity_zero_only() -> bytes:
    """Note-ons of velocity 0 only: each is a note-off, so there is no note."""
    silent = [
        (t, mido.Message("note_on", note=60 + t // 100, velocity=0)) for t in range(0, 1000, 100)
    ]
    return smf_bytes([track(messages=silent)], fmt=0)


CORRUPT: dict[str, Callable[[], bytes]] = {
    "empty_file": empty_file,
    "random_bytes": random_bytes,
    "text_file": text_file,
    "header_only": header_only,
    "cut_inside_track": cut_inside_track,
    "chunk_too_long": chunk_too_long,
    "chunk_too_short": chunk_too_short,
    "unknown_chunk": unknown_chunk,
    "rmid_wrapper": rmid_wrapper,
    "tpq_zero": tpq_zero,
    "smpte_division": smpte_division,
    "tempo_zero": tempo_zero,
    "largest_delta": largest_delta,
    "thirty_minutes": thirty_minutes,
    "many_tracks": many_tracks,
    "no_notes": no_notes,
    "velocity_zero_only": velocity_zero_only,
}
UNREADABLE = frozenset(
    {
        "empty_file",
        "random_bytes",
        "text_file",
        "header_only",
        "cut_inside_track",
        "chunk_too_long",
        "chunk_too_short",
        "tpq_zero",
        "tempo_zero",
    }
)
