"""What the page must know to play a model by itself, besides its ONNX graph: the codec's table,
the encoding the training data had, the controls' layout, the loudness the model knows, the
sampling rules, the live settings and the protocol. The engine in JavaScript (`web/js/engine/`)
takes every constant from here, read off the Python objects, so the two engines cannot drift
apart by a number restated by hand. export.py writes it beside the model.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from amadeus.data import codec as events
from amadeus.data import controls, dynamics, midi
from amadeus.data.codec import EventCodec
from amadeus.generate.loaded import Loaded
from amadeus.live import engine, protocol
from amadeus.live.record import Record
from amadeus.live.settings import CLIENT_RANGES, NULLABLE, LiveSettings


def page_manifest(loaded: Loaded) -> dict[str, Any]:
    """The model's page manifest: plain JSON values only."""
    record = loaded.dynamics
    return {
        "protocol": protocol.PROTOCOL,
        "model": loaded.info(),  # as the server's "welcome" says it
        "codec": codec_table(loaded.events),
        "encoding": asdict(loaded.encoding),  # codec, sustain, max_silence
        "longest_note": loaded.longest_note,
        "controls": {
            "window_seconds": controls.WINDOW_SECONDS,
            "density_edges": controls.DENSITY_EDGES.tolist(),
            "density_dim": controls.DENSITY_DIM,
            "histogram_dim": controls.HISTOGRAM_DIM,
            "control_dim": controls.CONTROL_DIM,
        },
        "dynamics": None
        if record is None
        else {
            "low": record.low,
            "high": record.high,
            "flat_below": dynamics.FLAT,
            "loudest": dynamics.LOUDEST,
        },
        "rules": asdict(loaded.rules()),
        "live": {
            "defaults": asdict(LiveSettings()),
            "client_ranges": {name: _plain(bounds) for name, bounds in CLIENT_RANGES.items()},
            "nullable": sorted(NULLABLE),
        },
        "limits": asdict(protocol.LIMITS),
        "messages": {
            "fields": {kind: list(names) for kind, names in protocol.FIELDS.items()},
            "playing": list(protocol.PLAYING),
            "time_range": protocol.TIME_RANGE,
            "tick_seconds": protocol.TICK_SECONDS,
            "lag_memory": protocol.LAG_MEMORY,
        },
        "engine": {
            "soft_pedal": engine.SOFT_PEDAL,
            "sustain_pedal": midi.SUSTAIN,
            "max_tokens_per_call": engine.MAX_TOKENS_PER_CALL,
        },
        "midi": {
            "ticks_per_quarter": midi.WRITE_TPQ,
            "qpm": midi.WRITE_QPM,
            "tracks": [name for name, _ in Record().tracks()],
        },
    }


def codec_table(codec: EventCodec) -> dict[str, Any]:
    """The token layout: each kind's offset and count in vocabulary order, what its bins mean."""
    p = codec.preset
    return {
        "name": codec.name,
        "size": codec.size,
        "start_token": codec.start_token,
        "kinds": list(p.kinds),
        "offset": dict(codec.offset),
        "count": {kind: len(r) for kind, r in codec.ranges.items()},
        "min_pitch": p.min_pitch,
        "max_pitch": p.max_pitch,
        "velocity_bins": p.velocity_bins,
        "min_velocity": p.min_velocity,
        "max_velocity": p.max_velocity,
        "velocity_values": codec.velocity_values.tolist(),
        "time_shifts": codec.shift_seconds.tolist(),  # float64, exact through JSON
        "velocity_every_note": p.velocity_every_note,
        "default_velocity": events.DEFAULT_VELOCITY,
        "default_note_seconds": events.DEFAULT_NOTE_SECONDS,
        "min_note_seconds": events.MIN_NOTE_SECONDS,
    }


def _plain(bounds: tuple[float, float] | None) -> list[float] | None:
    return None if bounds is None else list(bounds)
