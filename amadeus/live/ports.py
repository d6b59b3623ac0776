"""play.py without a browser: the engine on MIDI ports, so a keyboard and a synth or a DAW work
directly. mido reads and writes the ports through python-rtmidi, an optional dependency (the
`midi` extra); without it, or without the named port, one line says what to do.
"""

from __future__ import annotations

import heapq
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from amadeus.errors import UsageError
from amadeus.live.engine import Engine, NoteEvent, Stopped

POLL_SECONDS = 0.005
INSTALL = "pip install python-rtmidi==1.5.8 (or pip install -e '.[midi]')"


def backend() -> Any:
    """mido with its rtmidi backend, or a UsageError naming what to install."""
    import mido

    try:
        import rtmidi  # noqa: F401  (mido's default backend; imported to say so clearly)
    except ImportError:
        raise UsageError(f"MIDI ports need python-rtmidi: {INSTALL}") from None
    return mido


def port_names() -> tuple[list[str], list[str]]:
    """(input names, output names) of the MIDI ports on this machine."""
    mido = backend()
    try:
        with _alsa_quiet():
            return mido.get_input_names(), mido.get_output_names()
    except Exception as e:  # rtmidi raises its own error types when the system has no MIDI
        raise UsageError(f"cannot list MIDI ports: {_meaning(e)}") from e


def _meaning(error: Exception) -> str:
    """What the MIDI system's own message means for the user, in one line."""
    if "ALSA sequencer" in str(error):
        return (
            "this computer has no MIDI system running (ALSA's sequencer is missing: load it with "
            "`sudo modprobe snd-seq`, or plug in a MIDI device); the browser page needs none"
        )
    return str(error)


@contextmanager
def _alsa_quiet() -> Iterator[None]:
    """ALSA's C library prints its own complaint to stderr; the error line says it better."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_ports(input_name: str, output_name: str) -> tuple[Any, Any]:
    """(input, output) ports by name, or a UsageError listing the ports there are."""
    inputs, outputs = port_names()
    mido = backend()
    for name, names, what in ((input_name, inputs, "input"), (output_name, outputs, "output")):
        if name not in names:
            found = ", ".join(repr(n) for n in names) or "none"
            raise UsageError(f"no MIDI {what} port {name!r} (there are: {found})")
    with _alsa_quiet():
        return mido.open_input(input_name), mido.open_output(output_name)


def play(engine: Engine, inport: Any, outport: Any, log=print) -> None:
    """Until Ctrl-C: the keyboard's notes and pedals go to the engine, its answer to the synth,
    each note at its time."""
    mido = backend()
    due: list[tuple[float, int, int, int]] = []  # heap of (time, order, pitch, velocity)
    sounding: set[int] = set()
    log(f"listening on {inport.name!r}, answering on {outport.name!r} (Ctrl-C ends)")
    with inport, outport:
        order = 0
        while True:
            now = time.monotonic()
            outputs = []
            for message in inport.iter_pending():
                outputs += _hear(engine, message, now)
            outputs += engine.tick(now)
            for item in outputs:
                if isinstance(item, NoteEvent):
                    heapq.heappush(due, (item.time, order, item.pitch, item.velocity))
                    order += 1
                elif isinstance(item, Stopped):  # barge-in: what was not played is void
                    due = [d for d in due if d[0] <= item.time]
                    heapq.heapify(due)
                    for pitch in sounding:
                        outport.send(mido.Message("note_off", note=pitch))
                    sounding.clear()
            while due and due[0][0] <= time.monotonic():
                _, _, pitch, velocity = heapq.heappop(due)
                kind = "note_on" if velocity else "note_off"
                outport.send(mido.Message(kind, note=pitch, velocity=velocity))
                (sounding.add if velocity else sounding.discard)(pitch)
            time.sleep(POLL_SECONDS)


def _hear(engine: Engine, message: Any, now: float) -> list:
    """One message from the keyboard, as an engine call (others are ignored)."""
    if message.type == "note_on" and message.velocity > 0:
        return engine.note_on(now, message.note, message.velocity)
    if message.type in ("note_on", "note_off"):
        return engine.note_off(now, message.note)
    if message.type == "control_change":
        return engine.pedal(now, message.control, message.value)
    return []
