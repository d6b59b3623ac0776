"""pretty_midi as an independent reference: it converts ticks to seconds by its own tempo map
code, so notes it reads (with our pedal rules applied on top: it applies none) check ours."""

import numpy as np
import pretty_midi

from amadeus.data import midi
from amadeus.data.notes import Notes


def to_pretty_midi(notes: Notes) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes = [
        pretty_midi.Note(velocity=int(v), pitch=int(p), start=float(s), end=float(e))
        for s, e, p, v in zip(notes.start, notes.end, notes.pitch, notes.velocity)
    ]
    pm.instruments.append(piano)
    return pm


def from_pretty_midi(pm: pretty_midi.PrettyMIDI) -> Notes:
    """pretty_midi's notes and pedal (it applies none itself), by `read`'s rules: drums out, one
    merged pedal."""
    instruments = [i for i in pm.instruments if not i.is_drum]
    rows = [(n.start, n.end, n.pitch, n.velocity) for i in instruments for n in i.notes]
    keys = tuple(np.array(rows, dtype=np.float64).reshape(-1, 4).T)
    pedal = [(c.time, c.value) for i in instruments for c in i.control_changes if c.number == 64]
    time, value = np.array(pedal, dtype=np.float64).reshape(-1, 2).T
    order = np.argsort(time, kind="stable")
    return midi.performance(keys, (time[order], value[order]))
