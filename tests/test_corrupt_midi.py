"""Every corrupt or odd file class either raises MidiError naming the file and the reason, or reads
to the right notes; random damage never escapes as another exception."""

import random
import re
import struct

import midi_factory as mf
import numpy as np
import pretty_midi
import pytest
from pretty_reference import from_pretty_midi

from amadeus.data import midi
from amadeus.errors import MidiError

REASONS = {
    "empty_file": "empty file",
    "random_bytes": "not a MIDI file",
    "text_file": r"not a MIDI file \(starts with b'These ar'\)",
    "header_only": "header announces no tracks",
    "cut_inside_track": r"chunk MTrk at byte 33 claims 31 bytes, 15 remain \(file cut short",
    "chunk_too_long": r"chunk MTrk at byte 33 claims 1031 bytes, 31 remain",
    "chunk_too_short": r"bad chunk type b'\\xff/\\x00M' at byte 30 \(a chunk length is wrong\)",
    "tpq_zero": "0 ticks per quarter note",
    "tempo_zero": "tempo 0 at tick 240",
}


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / f"{name}.mid"
    path.write_bytes(data)
    return path


def reference_seconds(notes) -> list:
    return [(float(s), float(e)) for s, e in zip(notes.start, notes.end)]


@pytest.mark.parametrize("name", sorted(mf.UNREADABLE))
def test_unreadable_class_raises_with_file_and_reason(tmp_path, name):
    assert set(REASONS) == mf.UNREADABLE
    path = write(tmp_path, name, mf.CORRUPT[name]())
    with pytest.raises(MidiError, match=f"^{re.escape(str(path))}: {REASONS[name]}"):
        midi.read(path)


@pytest.mark.parametrize("name", ["unknown_chunk", "rmid_wrapper"])
def test_wrapped_or_padded_reference_reads_exactly(tmp_path, name):
    notes = midi.read(write(tmp_path, name, mf.CORRUPT[name]()))
    assert reference_seconds(notes) == mf.REFERENCE_SECONDS
    assert notes.pitch.tolist() == [60, 64, 67] and notes.velocity.tolist() == [80, 90, 100]


def test_smpte_division_counts_real_time_and_ignores_tempo(tmp_path):
    notes = midi.read(write(tmp_path, "smpte", mf.smpte_division()))
    wanted = [(s / 1000, e / 1000) for s, e, _, _ in mf.REFERENCE]  # 1000 ticks per second
    np.testing.assert_allclose(reference_seconds(notes), wanted, rtol=0, atol=1e-12)


@pytest.mark.parametrize("code, fps", [(-24, 24.0), (-25, 25.0), (-29, 29.97002997), (-30, 30.0)])
def test_smpte_frame_rates(tmp_path, code, fps):
    data = mf.reference_bytes()
    path = write(tmp_path, "smpte", data[:12] + struct.pack(">bB", code, 80) + data[14:])
    assert midi.read(path).end[-1] == pytest.approx(1920 / (fps * 80), rel=1e-9)


def test_unknown_smpte_rate_and_rmid_without_data_are_errors(tmp_path):
    data = mf.reference_bytes()
    bad_rate = write(tmp_path, "rate", data[:12] + struct.pack(">bB", -26, 40) + data[14:])
    with pytest.raises(MidiError, match="unknown SMPTE timing 0xE628"):
        midi.read(bad_rate)
    no_data = write(tmp_path, "rmid", b"RIFF" + struct.pack("<I", 4) + b"RMID")
    with pytest.raises(MidiError, match="without a 'data' chunk"):
        midi.read(no_data)


def test_larger_header_and_trailing_bytes_are_tolerated(tmp_path):
    data = mf.reference_bytes()
    longer = b"MThd" + struct.pack(">I", 8) + data[8:14] + b"\x00\x00" + data[14:]
    for name, variant in [("longer", longer), ("trailing", data + b"\x00" * 5)]:
        assert reference_seconds(midi.read(write(tmp_path, name, variant))) == mf.REFERENCE_SECONDS


def test_file_ending_between_tracks_is_an_error(tmp_path):
    data = mf.reference_bytes()
    path = write(tmp_path, "short", data[:10] + struct.pack(">H", 3) + data[12:])
    with pytest.raises(MidiError, match="file ends after 2 of 3 tracks"):
        midi.read(path)


def test_largest_delta_time_is_read(tmp_path):
    notes = midi.read(write(tmp_path, "late", mf.largest_delta()))
    assert reference_seconds(notes)[:3] == mf.REFERENCE_SECONDS
    late = (1920 + mf.LARGEST_DELTA) / 960  # ticks per second at 120 bpm
    assert notes.start[3] == pytest.approx(late, abs=1e-9) and notes.end[3] == pytest.approx(
        late + 0.5
    )


def test_thirty_minute_file_reads_like_pretty_midi(tmp_path):
    path = write(tmp_path, "long", mf.thirty_minutes())
    notes = midi.read(path)
    assert len(notes) == 7200 and 1800 < notes.duration < 1801
    reference = from_pretty_midi(pretty_midi.PrettyMIDI(str(path)))
    np.testing.assert_allclose(notes.start, reference.start, rtol=0, atol=1e-6)
    np.testing.assert_allclose(notes.end, reference.end, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(notes.pitch, reference.pitch)


def test_sixty_four_tracks_merge(tmp_path):
    notes = midi.read(write(tmp_path, "tracks", mf.many_tracks(64)))
    assert notes.pitch.tolist() == list(range(30, 94))
    np.testing.assert_allclose(notes.start, np.arange(64) / 960, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["no_notes", "velocity_zero_only"])
def test_files_without_notes_read_empty(tmp_path, name):
    assert len(midi.read(write(tmp_path, name, mf.CORRUPT[name]()))) == 0


def test_missing_file_and_folder_are_errors(tmp_path):
    with pytest.raises(MidiError, match="cannot read"):
        midi.read(tmp_path / "absent.mid")
    (tmp_path / "folder.mid").mkdir()
    with pytest.raises(MidiError, match="cannot read"):
        midi.read(tmp_path / "folder.mid")


def test_random_damage_gives_notes_or_midi_error():
    good = mf.smf_bytes(
        [
            mf.track(tempos=[(0, 500_000), (900, 300_000)]),
            mf.track(mf.REFERENCE * 3, pedal=[(100, 700)]),
            mf.track([(5, 50, 36, 60)], channel=9),
        ]
    )
    rng, outcomes = random.Random(0), {"notes": 0, "error": 0}
    for _ in range(3000):
        data = bytearray(good)
        at = rng.randrange(len(data))
        kind = rng.randrange(4)
        if kind == 0:
            data[at] = rng.randrange(256)
        elif kind == 1:
            del data[at:]
        elif kind == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 12))
        else:
            del data[at : at + rng.randint(1, 12)]
        try:
            notes = midi.read_bytes(bytes(data), "damaged.mid")
        except MidiError as e:
            assert str(e).startswith("damaged.mid: ")
            outcomes["error"] += 1
            continue
        assert (
            np.isfinite(notes.end).all()
            and (notes.start >= 0).all()
            and (notes.end >= notes.start).all()
        )
        outcomes["notes"] += 1
    assert min(outcomes.values()) > 100  # both outcomes exercised
