"""MIDI reading and writing: exact times through tempo maps, every format and resolution, drums
out, the sustain pedal, messy note pairing, and files other libraries read back."""

import midi_factory as mf
import mido
import numpy as np
import pretty_midi
import pytest
import symusic
from pretty_reference import from_pretty_midi, to_pretty_midi

from amadeus.data import midi
from amadeus.data.notes import Notes
from amadeus.errors import MidiError

TEMPO_MAP = [(0, 500_000), (960, 250_000), (1500, 800_000)]  # 120, 240, 75 bpm
# Notes that start and end on both sides of each tempo change.
PIECE = [(0, 480, 60, 80), (480, 1440, 62, 81), (1440, 2000, 64, 82), (1200, 2400, 65, 83)]


def expected(notes, *, tpq=mf.TPQ, tempo_map=()) -> Notes:
    """Notes of `notes` (ticks) at the reference seconds of the factory."""
    at = [
        (
            mf.seconds(s, tpq=tpq, tempo_map=tempo_map),
            mf.seconds(e, tpq=tpq, tempo_map=tempo_map),
            p,
            v,
        )
        for s, e, p, v in notes
    ]
    return Notes.build(*zip(*at)) if at else Notes.empty()


def assert_notes(actual: Notes, wanted: Notes, atol: float = 1e-9) -> None:
    assert len(actual) == len(wanted)
    np.testing.assert_allclose(actual.start, wanted.start, rtol=0, atol=atol)
    np.testing.assert_allclose(actual.end, wanted.end, rtol=0, atol=atol)
    np.testing.assert_array_equal(actual.pitch, wanted.pitch)
    np.testing.assert_array_equal(actual.velocity, wanted.velocity)


def at_tpq(tick: int, tpq: int) -> int:
    """`tick` at mf.TPQ as a tick at `tpq`; the pieces here are chosen so that it is exact."""
    assert tick * tpq % mf.TPQ == 0
    return tick * tpq // mf.TPQ


def as_tuples(notes: Notes) -> list:
    return [
        (float(s), float(e), int(p), int(v))
        for s, e, p, v in zip(notes.start, notes.end, notes.pitch, notes.velocity)
    ]


# ---- time --------------------------------------------------------------------------------------


def test_tempo_changes_in_track_0_give_exact_seconds(tmp_path):
    path = mf.write_midi(tmp_path / "a.mid", PIECE, tempo_map=TEMPO_MAP)
    notes = midi.read(path)
    assert_notes(notes, expected(PIECE, tempo_map=TEMPO_MAP))
    # Spot check by hand: tick 1440 = 960 ticks at 120 bpm (1 s) + 480 at 240 bpm (0.25 s).
    assert notes.end[1] == pytest.approx(1.25, abs=1e-12)


def test_tempo_map_in_a_later_track_is_honoured(tmp_path):
    tracks = [mf.track(PIECE[:2]), mf.track(PIECE[2:]), mf.track(tempos=TEMPO_MAP)]
    notes = midi.read(mf.write_tracks(tmp_path / "a.mid", tracks))
    assert_notes(notes, expected(PIECE, tempo_map=TEMPO_MAP))


@pytest.mark.parametrize("tpq", [96, 480, 10080])
def test_seconds_do_not_depend_on_ticks_per_quarter(tmp_path, tpq):
    # The last note sits 1000 quarters in: at 10080 tpq past pretty_midi's 1e7-tick limit.
    piece = [*PIECE, (1000 * mf.TPQ, 1001 * mf.TPQ, 70, 90)]
    ticks = [(at_tpq(s, tpq), at_tpq(e, tpq), p, v) for s, e, p, v in piece]
    tempo_map = [(at_tpq(t, tpq), us) for t, us in TEMPO_MAP]
    notes = midi.read(mf.write_midi(tmp_path / "a.mid", ticks, tpq=tpq, tempo_map=tempo_map))
    assert_notes(notes, expected(piece, tempo_map=TEMPO_MAP))


def test_last_of_several_tempos_at_one_tick_wins(tmp_path):
    # A tempo of 0 overridden at the same tick never governs any time, so it is harmless.
    tempo_map = [(0, 0), (0, 250_000), (480, 1_000_000), (480, 500_000)]
    notes = midi.read(mf.write_midi(tmp_path / "a.mid", [(0, 960, 60, 80)], tempo_map=tempo_map))
    assert as_tuples(notes) == [(0.0, 0.75, 60, 80)]  # 480 ticks at 240 bpm, 480 at 120 bpm


def test_format_0_merges_channels_of_its_one_track(tmp_path):
    messages = [
        (t, mido.Message("note_on", note=p, velocity=70, channel=5))
        for t, p in [(100, 50), (300, 51)]
    ]
    messages += [
        (t, mido.Message("note_off", note=p, channel=5)) for t, p in [(200, 50), (400, 51)]
    ]
    path = mf.write_tracks(
        tmp_path / "a.mid", [mf.track(PIECE, tempos=TEMPO_MAP, messages=messages)], fmt=0
    )
    wanted = [*PIECE, (100, 200, 50, 70), (300, 400, 51, 70)]
    assert_notes(midi.read(path), expected(wanted, tempo_map=TEMPO_MAP))


def test_format_2_tracks_all_start_at_zero(tmp_path):
    path = mf.write_midi(tmp_path / "a.mid", PIECE, tempo_map=TEMPO_MAP, fmt=2)
    assert_notes(midi.read(path), expected(PIECE, tempo_map=TEMPO_MAP))


def test_tracks_merge_and_drums_are_left_out(tmp_path):
    drums = [(0, 100, 36, 127), (480, 580, 38, 127)]
    tracks = [
        mf.track(tempos=TEMPO_MAP),
        mf.track(PIECE[::2], channel=0),
        mf.track(drums, channel=9),
        mf.track(PIECE[1::2], channel=1, program=40),
    ]
    notes = midi.read(mf.write_tracks(tmp_path / "a.mid", tracks))
    assert_notes(notes, expected(PIECE, tempo_map=TEMPO_MAP))


def test_times_past_32_bits_are_an_error(tmp_path):
    late = [(i * mf.LARGEST_DELTA, i * mf.LARGEST_DELTA + 1, 60, 80) for i in range(10)]
    path = mf.write_midi(tmp_path / "a.mid", late)
    with pytest.raises(MidiError, match="overflows 32 bits"):
        midi.read(path)


# ---- sustain pedal -----------------------------------------------------------------------------


def read_pedalled(tmp_path, notes, pedal, sustain=True) -> list:
    return as_tuples(
        midi.read(mf.write_midi(tmp_path / "p.mid", notes, pedal=pedal), sustain=sustain)
    )


def test_pedal_holds_notes_released_while_it_is_down(tmp_path):
    notes = [
        (0, 96, 60, 80),  # released before the pedal: unchanged
        (0, 192, 62, 80),  # released the instant the pedal goes down: held
        (96, 480, 64, 80),  # released under the pedal: held
        (96, 960, 65, 80),  # released the instant the pedal lifts: unchanged
        (480, 1440, 67, 80),  # released after the pedal lifts: unchanged
    ]
    wanted = [
        (0, 96, 60, 80),
        (0, 960, 62, 80),
        (96, 960, 64, 80),
        (96, 960, 65, 80),
        (480, 1440, 67, 80),
    ]
    assert read_pedalled(tmp_path, notes, [(192, 960)]) == as_tuples(expected(wanted))


def test_pedal_hold_ends_when_the_same_key_is_struck_again(tmp_path):
    notes = [(0, 96, 60, 80), (480, 576, 60, 90), (0, 96, 72, 80)]
    wanted = [(0, 480, 60, 80), (480, 1920, 60, 90), (0, 1920, 72, 80)]
    assert read_pedalled(tmp_path, notes, [(48, 1920)]) == as_tuples(expected(wanted))


def test_sustain_off_keeps_the_written_ends(tmp_path):
    notes = [(0, 96, 60, 80), (480, 576, 60, 90)]
    assert read_pedalled(tmp_path, notes, [(48, 1920)], sustain=False) == as_tuples(expected(notes))


def test_pedal_never_released_lifts_when_the_last_note_ends(tmp_path):
    notes = [(0, 96, 60, 80), (480, 2880, 48, 80)]
    wanted = [(0, 2880, 60, 80), (480, 2880, 48, 80)]
    assert read_pedalled(tmp_path, notes, [(48, None)]) == as_tuples(expected(wanted))


def test_one_piano_one_pedal_across_tracks_but_not_from_drums(tmp_path):
    tracks = [
        mf.track([(0, 96, 60, 80)], channel=0, pedal=[(48, 960)]),
        mf.track([(0, 96, 48, 80)], channel=1),
        mf.track([(0, 96, 36, 80), (0, 96, 52, 80)], channel=9, pedal=[(0, 1920)]),
        mf.track([(0, 96, 55, 80)], channel=2),
    ]
    notes = midi.read(mf.write_tracks(tmp_path / "a.mid", tracks, fmt=1))
    assert as_tuples(notes) == as_tuples(
        expected([(0, 960, 48, 80), (0, 960, 55, 80), (0, 960, 60, 80)])
    )


# ---- messy note pairing ------------------------------------------------------------------------


def raw_track(tmp_path, events) -> Notes:
    """Reads a one-track file made of (tick, type, pitch, velocity) messages."""
    messages = [(t, mido.Message(kind, note=p, velocity=v)) for t, kind, p, v in events]
    return midi.read(mf.write_tracks(tmp_path / "raw.mid", [mf.track(messages=messages)], fmt=0))


def test_same_key_overlap_ends_the_first_note_at_the_second_onset(tmp_path):
    notes = raw_track(
        tmp_path,
        [
            (0, "note_on", 60, 80),
            (240, "note_on", 60, 90),
            (480, "note_off", 60, 0),
            (720, "note_off", 60, 0),
        ],
    )
    # symusic pairs note-offs first in, first out: the second note keeps the second note-off
    # (pretty_midi would end both at the first one).
    assert as_tuples(notes) == [(0.0, 0.25, 60, 80), (0.25, 0.75, 60, 90)]


def test_notes_struck_together_on_one_key_become_one(tmp_path):
    notes = midi.read(
        mf.write_midi(tmp_path / "a.mid", [(0, 96, 60, 50), (0, 480, 60, 90), (0, 96, 61, 70)])
    )
    assert as_tuples(notes) == [(0.0, 0.5, 60, 90), (0.0, 0.1, 61, 70)]


def test_unreleased_note_is_dropped_and_stray_note_off_ignored(tmp_path):
    # symusic (like pretty_midi) drops a note-on that is never released: its length is unknown.
    notes = raw_track(
        tmp_path,
        [
            (0, "note_off", 50, 0),
            (0, "note_on", 60, 80),
            (480, "note_off", 60, 0),
            (480, "note_on", 62, 80),
        ],
    )
    assert as_tuples(notes) == [(0.0, 0.5, 60, 80)]


def test_zero_length_note_is_kept_at_zero_length(tmp_path):
    notes = raw_track(tmp_path, [(96, "note_on", 60, 80), (96, "note_off", 60, 0)])
    assert as_tuples(notes) == [(0.1, 0.1, 60, 80)]


# ---- writing -----------------------------------------------------------------------------------


def random_notes(count=300, seed=0) -> Notes:
    rng = np.random.default_rng(seed)
    start = np.cumsum(
        rng.exponential(0.1, count) + 0.002
    )  # onsets a few ticks apart keep their order
    end = start + rng.uniform(0.0, 2.0, count)
    notes = Notes.build(start, end, rng.integers(21, 109, count), rng.integers(1, 128, count))
    return notes.without_overlaps()


def test_write_then_read_round_trips_within_a_millisecond(tmp_path):
    notes = random_notes()
    midi.write(notes, tmp_path / "out.mid")
    back = midi.read(tmp_path / "out.mid")
    assert_notes(back, notes, atol=0.001)


def test_back_to_back_notes_on_one_key_survive_writing(tmp_path):
    notes = Notes.build([0.0, 0.5, 1.0], [0.5, 1.0, 1.5], [60, 60, 60], [80, 90, 100])
    midi.write(notes, tmp_path / "out.mid")
    assert_notes(midi.read(tmp_path / "out.mid"), notes)


def test_three_libraries_read_what_we_write(tmp_path):
    notes, path = random_notes(50), tmp_path / "out.mid"
    midi.write(notes, path)
    # mido: one track, program 0 (Acoustic Grand Piano), every note on and off.
    file = mido.MidiFile(path)
    programs = [m.program for t in file.tracks for m in t if m.type == "program_change"]
    ons = [m for t in file.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert programs == [0] and len(ons) == len(notes)
    # pretty_midi: the same notes within a millisecond.
    assert_notes(from_pretty_midi(pretty_midi.PrettyMIDI(str(path))), notes, atol=0.001)
    # symusic: one piano track with every note.
    score = symusic.Score(path)
    assert [(t.program, t.is_drum, t.note_num()) for t in score.tracks] == [(0, False, len(notes))]


def test_write_replaces_atomically_and_reports_failures(tmp_path):
    path = tmp_path / "out.mid"
    path.write_bytes(b"old")
    midi.write(random_notes(5), path)
    assert len(midi.read(path)) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["out.mid"]  # no temporary file left
    with pytest.raises(MidiError, match="missing"):
        midi.write(random_notes(5), tmp_path / "missing" / "out.mid")


def test_empty_notes_write_an_empty_piano_track(tmp_path):
    midi.write(Notes.empty(), tmp_path / "out.mid")
    assert len(midi.read(tmp_path / "out.mid")) == 0


# ---- pretty_midi, an independent reader and writer -------------------------------------------


def test_a_file_pretty_midi_wrote_reads_back(tmp_path):
    notes = random_notes()
    to_pretty_midi(notes).write(str(tmp_path / "pm.mid"))
    assert_notes(midi.read(tmp_path / "pm.mid"), notes, atol=0.001)


def test_from_pretty_midi_agrees_with_read(tmp_path):
    tracks = [
        mf.track(tempos=TEMPO_MAP),
        mf.track(PIECE, pedal=[(100, 1300), (1500, 2200)]),
        mf.track([(0, 100, 36, 127)], channel=9),
    ]
    path = mf.write_tracks(tmp_path / "a.mid", tracks)
    from_pm = from_pretty_midi(pretty_midi.PrettyMIDI(str(path)))
    assert_notes(from_pm, midi.read(path), atol=1e-6)
    assert 36 not in from_pm.pitch and from_pm.end[0] > 0.5  # drums out, pedal applied


def test_read_bytes_names_its_source_in_errors():
    with pytest.raises(MidiError, match=r"^upload\.mid: not a MIDI file"):
        midi.read_bytes(b"hello world, not midi", "upload.mid")
