"""One player's connection to play.py's server: the live protocol (`protocol`) spoken to a
turn-taking engine of its own, with the offset between the client's clock and ours, and the
client's limits. Everything a client sends is checked; a bad message gets an "error" reply and
the session goes on."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import asdict
from datetime import datetime

from starlette.websockets import WebSocket

from amadeus.live import engine as turns
from amadeus.live import protocol
from amadeus.live.engine import Engine

TICK_SECONDS = 0.02  # how often a connection's engine is told the time


class Connection:
    """One client: its engine, the offset between its clock and ours, and its limits."""

    def __init__(self, ws: WebSocket, engine: Engine, welcome: dict):
        self.ws, self.engine = ws, engine
        self.welcome = welcome  # what the server tells every client, besides the settings
        self.offset: float | None = None  # client time - monotonic(): the largest seen
        self.latest = -float("inf")  # the newest event time
        self.tokens, self.refilled = float(protocol.LIMITS.burst), time.monotonic()

    def now(self) -> float:
        """The client's clock, as well as we know it."""
        return time.monotonic() + (self.offset or 0.0)

    async def ticks(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self.offset is not None:
                await self.send(self.engine.tick(self.now()))

    async def handle(self, text: str) -> None:
        try:
            message = protocol.parse(text)
            self._admit(message)
            await self.send(self._dispatch(message))
        except protocol.ProtocolError as e:
            await send(self.ws, {"type": "error", "message": str(e)})

    def _admit(self, message: dict) -> None:
        """Rate, greeting and order: a message that fails one is refused."""
        now = time.monotonic()
        rate = protocol.LIMITS.messages_per_second
        self.tokens = min(protocol.LIMITS.burst, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens < 1:
            raise protocol.ProtocolError(
                f"{message['type']}: too many messages: at most {rate:g} a second"
            )
        self.tokens -= 1
        if self.offset is None and message["type"] != "hello":
            raise protocol.ProtocolError(f"{message['type']}: say hello first")
        offset = message["time"] - now
        self.offset = offset if self.offset is None else max(self.offset, offset)
        if message["type"] in ("note_on", "note_off", "pedal", "handover"):
            if message["time"] < self.latest - protocol.LIMITS.out_of_order:
                raise protocol.ProtocolError(
                    f"{message['type']}: time {message['time']:.3f} is before the previous "
                    f"event's {self.latest:.3f}"
                )
            self.latest = max(self.latest, message["time"])

    def _dispatch(self, m: dict) -> list:
        e, t, kind = self.engine, m["time"], m["type"]
        if kind == "hello":
            return [self._welcome()]
        if kind == "note_on":
            out = e.note_on(t, m["pitch"], m["velocity"])
            if e.phrase is not None and len(e.phrase) >= protocol.LIMITS.phrase_notes:
                return out + e.handover(t)
            return out
        if kind == "note_off":
            return e.note_off(t, m["pitch"])
        if kind == "pedal":
            return e.pedal(t, m["controller"], m["value"])
        if kind == "settings":
            e.configure(**protocol.settings_of(m))
            return [{"type": "settings", "settings": asdict(e.live)}]
        if kind == "export":
            return [self._export()]
        return {"handover": e.handover, "again": e.again, "undo": e.undo}.get(kind, e.tick)(t)

    def _welcome(self) -> dict:
        return self.welcome | {"settings": asdict(self.engine.live)}

    def _export(self) -> dict:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        midi = base64.b64encode(self.engine.record.midi_bytes()).decode()
        return {"type": "export", "filename": f"amadeus-{stamp}.mid", "midi": midi}

    async def send(self, outputs: list) -> None:
        for message in messages(outputs):
            await send(self.ws, message)


def messages(outputs: list) -> list[dict]:
    """Engine outputs as protocol messages; consecutive notes go in one "notes" message."""
    out: list[dict] = []
    for item in outputs:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, turns.NoteEvent):
            event = {"time": item.time, "pitch": item.pitch, "velocity": item.velocity}
            if out and out[-1]["type"] == "notes":
                out[-1]["events"].append(event)
            else:
                out.append({"type": "notes", "events": [event]})
        elif isinstance(item, turns.AnswerStarted):
            out.append({"type": "answer"} | asdict(item))
        elif isinstance(item, turns.AnswerEnded):
            out.append({"type": "answer_end"} | asdict(item))
        elif isinstance(item, turns.Stopped):
            out.append({"type": "stopped", "time": item.time})
    return out


async def send(ws: WebSocket, message: dict) -> None:
    await ws.send_text(protocol.dumps(message))
