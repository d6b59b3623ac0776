"""The live protocol, version 1: small JSON messages over one WebSocket (`/ws`), one text frame
each. The page speaks it; so can any other client.

Times are seconds on the client's own clock (any monotonic one: the page uses
performance.now() / 1000). Every message a client sends carries its clock's `time` when sent,
which also tells the server the offset between the two clocks.

Client to server ("type", then the fields):

    hello     protocol: 1, time                          first message; the answer is "welcome"
    note_on   time, pitch 0-127, velocity 1-127
    note_off  time, pitch
    pedal     time, controller 64 (sustain) | 67 (soft: hands over), value 0-127
    handover  time                                     the phrase ends now; Amadeus answers
    again     time                                     a new take of the last answer
    undo      time                                     drop the last answer
    settings  time, and any of: answer_seconds (number, or null: as long as the phrase),
              temperature, silence (seconds), conditioning (true/false), release (seconds)
    export    time                                     the session as a MIDI file
    clock     time                                     nothing but the time (keeps the offset)

Server to client:

    welcome     protocol, model {name, precision, megabytes, step, codec, layers, hidden},
                settings {...}, limits {...}
    answer      answer, take, phrase_end, compute_ms   an answer starts (its notes follow)
    notes       events [{time, pitch, velocity}]   velocity 0 ends a note
    answer_end  answer, take, time, notes
    stopped     time          the answer was cut: drop its events after `time`, end its notes
    settings    settings {...}                          the settings now in force
    export      filename, midi (base64)
    delayed     answer, take, ms   the machine was busy: the answer's notes from here on come `ms`
                later than planned, keeping their spacing (none is sent after its time)
    error       message       the message was refused; the session goes on

Answer events come ahead of their time (by the lookahead, 0.5 s): schedule them.

What the server holds a client to (`Limits`, sent in "welcome"): the size and rate of messages,
the length of a phrase, and its clock. The server estimates the client's clock from the least
delayed message so far; an event dated more than `clock_ahead` seconds after that estimate, or
more than `clock_behind` before it, is refused, and so is a clock that jumps ahead by more than
`clock_ahead`: a client cannot push the session into the future or the distant past. Two
`clock` readings in a row that agree, beyond the tolerance, re-anchor the estimate (a clock that
really moved: a laptop that slept). A
connection that says no hello within `hello_seconds` is closed, and so is one that plays nothing
(no key, pedal or button) for `idle_seconds`, with code 4000 and the reason in its close frame.
Binary frames, deep nesting and numbers beyond a float are refused like any bad message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from amadeus.live.settings import CLIENT_RANGES, FLAG, NULLABLE

PROTOCOL = 1


@dataclass(frozen=True)
class Limits:
    """What a client may send; the page learns them from "welcome"."""

    messages_per_second: float = 200.0  # on average...
    burst: int = 400  # ...and at once
    message_bytes: int = 4096
    phrase_notes: int = 1000  # a phrase this long is handed over
    out_of_order: float = 0.05  # seconds an event may come before the previous one (jitter)
    clock_ahead: float = 1.0  # seconds an event may be dated after the client clock's estimate
    clock_behind: float = 30.0  # ...and before it (a busy machine delays messages)
    hello_seconds: float = 5.0  # a connection that says no hello by then is closed
    idle_seconds: float = 1800.0  # one that plays nothing for this long is closed


LIMITS = Limits()
TICK_SECONDS = 0.02  # how often the server tells a connection's engine the time
LAG_MEMORY = 2.0  # seconds a late arrival keeps a phrase from ending by silence too soon
TIME_RANGE = 1e9  # seconds: a client's clock reads within this of zero (about 31 years)
PLAYING = ("note_on", "note_off", "pedal", "handover", "again", "undo", "settings", "export")
FIELDS = {  # type: the fields it must have, besides time
    "hello": ("protocol",),
    "note_on": ("pitch", "velocity"),
    "note_off": ("pitch",),
    "pedal": ("controller", "value"),
    "handover": (),
    "again": (),
    "undo": (),
    "settings": (),
    "export": (),
    "clock": (),
}


class ProtocolError(ValueError):
    """A message the server refuses; its text goes back in an "error" message."""


def parse(text: str) -> dict[str, Any]:
    """A client message, checked: its type, a finite time, and its fields in range."""
    if len(text) > LIMITS.message_bytes:
        raise ProtocolError(f"message of {len(text)} bytes: the limit is {LIMITS.message_bytes}")
    try:
        message = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"not JSON: {e}") from None
    except RecursionError:
        raise ProtocolError("not JSON this server reads: nested too deeply") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message is a JSON object")
    kind = message.get("type")
    if kind not in FIELDS:
        raise ProtocolError(f"unknown message type {kind!r} (known: {', '.join(FIELDS)})")
    _number(message, "time", -TIME_RANGE, TIME_RANGE)
    for name in FIELDS[kind]:
        if name not in message:
            raise ProtocolError(f"{kind}: no {name}")
    if kind in ("note_on", "note_off"):
        _integer(message, "pitch", 0, 127)
    if kind == "note_on":
        _integer(message, "velocity", 1, 127)
    if kind == "pedal":
        _integer(message, "controller", 0, 127)
        _integer(message, "value", 0, 127)
    if kind == "hello" and message["protocol"] != PROTOCOL:
        raise ProtocolError(f"protocol {message['protocol']!r}: this server speaks {PROTOCOL}")
    if kind == "settings":
        settings_of(message)
    return message


def settings_of(message: dict[str, Any]) -> dict[str, Any]:
    """The settings a "settings" message changes, each checked."""
    changes = {k: v for k, v in message.items() if k not in ("type", "time")}
    for name, value in changes.items():
        if name not in CLIENT_RANGES:
            known = ", ".join(CLIENT_RANGES)
            raise ProtocolError(f"settings: unknown setting {name!r} (known: {known})")
        bounds = CLIENT_RANGES[name]
        if bounds is FLAG:
            if not isinstance(value, bool):
                raise ProtocolError(f"settings: {name} is true or false")
        elif not (name in NULLABLE and value is None):
            _number(changes, name, *bounds)
    return changes


def _number(message: dict, name: str, low: float, high: float) -> float:
    """A number in low..high, as a float (an integer too large for one is refused)."""
    value = message.get(name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        value = float(value) if ok else math.nan
    except OverflowError:  # an integer of hundreds of digits
        value = math.nan
    if not low <= value <= high:  # NaN and infinities fail here too
        raise ProtocolError(
            f"{message.get('type', 'settings')}: {name} must be a number in {low:g}..{high:g}"
        )
    message[name] = value
    return value


def _integer(message: dict, name: str, low: int, high: int) -> int:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"{message['type']}: {name} must be an integer in {low}..{high}")
    return value


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
