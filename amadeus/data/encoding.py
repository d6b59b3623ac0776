"""One performance -> one `Piece`: the single way a MIDI file or a played phrase becomes tokens.

Preprocessing encodes each file with it, generation its primer and the live engine the phrase
being played, all with the dataset's own `Settings` (pedal, silence cap, codec): a model only
ever sees music encoded the way its training data was.
"""

from __future__ import annotations

from pathlib import Path

from amadeus.data import controls
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece, Settings
from amadeus.data.midi import read
from amadeus.data.notes import Notes
from amadeus.errors import AmadeusError


def encode_notes(notes: Notes, codec: EventCodec, settings: Settings, source: str) -> Piece:
    """Notes (pedal already applied) -> Piece: pitch range, silence cap, tokens, controls.
    Raises AmadeusError naming `source` when no note is left to encode."""
    notes, dropped = codec.in_range(notes)
    if len(notes) == 0:
        raise AmadeusError(f"{source}: no notes in the codec's pitch range")
    notes = notes.with_silences_capped(settings.max_silence)
    tokens = codec.encode(notes)
    meta = {
        "source": source,
        "notes": len(notes),
        "dropped_notes": dropped,
        "seconds": round(notes.duration, 3),
        "sustain": settings.sustain,
        "max_silence": settings.max_silence,
    }
    return Piece(tokens, controls.compute(tokens, codec), codec.name, meta)


def encode_file(path: Path, codec: EventCodec, settings: Settings, source: str = "") -> Piece:
    """A MIDI file, read with the settings' pedal rule, then as `encode_notes`."""
    return encode_notes(read(path, sustain=settings.sustain), codec, settings, source or str(path))
