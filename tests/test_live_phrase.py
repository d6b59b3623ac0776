"""The phrase encoded as it is played is the phrase encoded at once, token for token, each token
goes out as soon as it is final, and a key costs what the notes still sounding cost, not what the
phrase so far does."""

import numpy as np
import pytest

import amadeus.live.phrase as phrase_module
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Settings
from amadeus.data.encoding import encode_notes
from amadeus.data.notes import Notes
from amadeus.live.phrase import Phrase

TICK = 1 / 960  # seconds: events fall on a grid, so some share an instant
CHORDS = (0, 0, 1, 60, 120, 240, 480)  # ticks from one step to the next; 0: the same instant
PAUSES = (*CHORDS, 4800)  # with 5 s silences: longer than the settings' cap


def playing(seed: int, presses: int, low: int = 40, high: int = 80, steps=CHORDS):
    """Random playing as (seconds, kind, args) in time order: keys held for some ticks (0
    too), the pedal moved now and then (to any value), events at one instant in any order.
    Steps of 0 make chords and keys struck again at once; a key struck while down is struck
    again without a release (its first release then lifts the second); a key released before
    it is struck at one instant stays down, as keys and the pedal may at the end."""
    rng = np.random.default_rng(seed)
    events, tick = [], 0
    for _ in range(presses):
        tick += int(rng.choice(steps))
        pitch, held = int(rng.integers(low, high)), int(rng.choice([0, 30, 120, 480, 1500]))
        events += [(tick, "on", (pitch, int(rng.integers(1, 128)))), (tick + held, "off", (pitch,))]
        if rng.random() < 0.25:
            value = int(rng.choice([0, 30, 64, 100, 127]))
            events.append((tick + int(rng.choice([0, 0, 60, 240])), "pedal", (value,)))
    order = np.lexsort((rng.random(len(events)), [tick for tick, _, _ in events]))
    return [(events[i][0] * TICK, *events[i][1:]) for i in order]


def play(phrase: Phrase, events, end: float) -> tuple[list[np.ndarray], list[float]]:
    """Every event, then the finish at `end`: the tokens of each take, and the newest event's
    time at each."""
    takes, latest = [], []
    for seconds, kind, args in events:
        t = phrase.origin + seconds
        {"on": phrase.press, "off": phrase.release, "pedal": phrase.sustain}[kind](t, *args)
        takes.append(phrase.take_final())
        latest.append(phrase.latest)
    takes.append(phrase.finish(phrase.origin + end))
    return takes, latest


def heard(notes: Notes, codec: EventCodec, settings: Settings) -> Notes:
    """The notes whose events the phrase's tokens hold (in range, playable once the silences
    are capped), at their true times."""
    notes, _ = codec.in_range(notes)
    capped = notes.with_silences_capped(settings.max_silence).without_overlaps()
    return notes.select(capped.end > capped.start)


CASES = {
    "long, pedal": ("prnn", Settings(), 400, (21, 109), CHORDS),
    "silences over the cap": ("prnn", Settings(max_silence=0.5), 150, (40, 80), PAUSES),
    "out of the pitch range": ("prnn", Settings(), 150, (0, 128), PAUSES),
    "velocity when it changes": ("magenta", Settings("magenta"), 150, (40, 80), PAUSES),
    "no pedal": ("prnn", Settings(sustain=False), 150, (40, 80), CHORDS),
}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_the_phrase_played_is_the_phrase_encoded_at_once_and_each_token_goes_out_when_final(
    case, seed
):
    preset, settings, presses, (low, high), steps = CASES[case]
    codec = EventCodec(preset)
    events = playing(seed, presses, low, high, steps)
    end = events[-1][0]
    if seed == 2:  # every key and the pedal up: the phrase ended with its last event
        events += [(end, "off", (pitch,)) for pitch in range(128)] + [(end, "pedal", (0,))]
    phrase = Phrase(codec, settings, origin=100.0)
    takes, latest = play(phrase, events, end + 0.7)  # seed 1: keys and pedal down until then

    notes = phrase.notes(phrase.latest)  # the finished phrase, read at once
    at_once = encode_notes(notes, codec, settings, "phrase").tokens.astype(np.int64)
    np.testing.assert_array_equal(np.concatenate(takes), at_once)

    # After each event, every note-on and note-off before its time has gone out, and no more.
    ons = np.cumsum([np.isin(t, codec.ranges["note_on"]).sum() for t in takes[:-1]])
    offs = np.cumsum([np.isin(t, codec.ranges["note_off"]).sum() for t in takes[:-1]])
    notes = heard(notes, codec, settings)
    np.testing.assert_array_equal(ons, np.searchsorted(np.sort(notes.start), latest))
    np.testing.assert_array_equal(offs, np.searchsorted(np.sort(notes.end), latest))


def test_a_key_costs_the_notes_still_sounding_not_the_phrase(monkeypatch):
    read = []  # (keys, pedal changes) the pedal rules read at each event
    performance = phrase_module.performance

    def counted(keys, pedal, sustain):
        read.append((len(keys[0]), len(pedal[0])))
        return performance(keys, pedal, sustain)

    monkeypatch.setattr(phrase_module, "performance", counted)
    phrase = Phrase(EventCodec("prnn"), Settings(), origin=0.0)
    events = playing(3, 1000)
    play(phrase, events, events[-1][0])
    keys, pedal = np.max(read, axis=0)
    assert len(phrase) == 1000 and len(phrase.pedal) > 100
    assert keys <= 80  # of the 40 keys, the note sounding and one ending at the newest instant
    assert pedal <= 4  # the changes since the earliest release still sounding, and its lift
