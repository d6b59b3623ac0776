"""One player's connection to play.py's server: the live protocol (`protocol`) spoken to a
turn-taking engine of its own, with the offset between the client's clock and ours, and the
client's limits. Everything a client sends is checked; a bad message gets an "error" reply and
the session goes on."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import deque
from dataclasses import asdict
from datetime import datetime

from starlette.websockets import WebSocket

from amadeus.live import engine as turns
from amadeus.live import protocol
from amadeus.live.engine import Engine

IDLE = 4000  # close code: no hello in time, or nothing played for long


class Connection:
    """One client: its engine, the offset between its clock and ours, and its limits."""

    def __init__(self, ws: WebSocket, engine: Engine, welcome: dict):
        self.ws, self.engine = ws, engine
        self.welcome = welcome  # what the server tells every client, besides the settings
        self.offset: float | None = None  # client time - monotonic(): the largest seen
        self.latest = -float("inf")  # the newest event time
        self.tokens, self.refilled = float(protocol.LIMITS.burst), time.monotonic()
        self.played = time.monotonic()  # when the client last played (idle connections close)
        self.lags: deque[tuple[float, float]] = deque()  # (when, seconds late) of late arrivals
        self.jump: float | None = None  # a clock reading beyond the tolerance, not yet confirmed

    def now(self) -> float:
        """The client's clock, as well as we know it."""
        return time.monotonic() + (self.offset or 0.0)

    async def ticks(self) -> None:
        """The engine told the time, until the connection idles out. A tick that comes late
        (a busy machine) counts as lag: messages may be waiting behind it."""
        while time.monotonic() - self.played < protocol.LIMITS.idle_seconds:
            slept = time.monotonic()
            await asyncio.sleep(protocol.TICK_SECONDS)
            self._lagged(time.monotonic() - slept - protocol.TICK_SECONDS)
            if self.offset is not None:
                await self.send(self.engine.tick(self.now(), self.heard()))
        minutes = protocol.LIMITS.idle_seconds / 60
        await self.ws.close(code=IDLE, reason=f"idle: nothing played for {minutes:g} minutes")

    async def handle(self, frame: dict) -> None:
        """One frame from the client: a text message, checked and answered (a bad one gets
        an "error" reply and changes nothing)."""
        try:
            if frame.get("text") is None:
                raise protocol.ProtocolError("binary frames are not part of the protocol")
            message = protocol.parse(frame["text"])
            self._admit(message)
            await self.send(self._dispatch(message))
        except protocol.ProtocolError as e:
            await send(self.ws, {"type": "error", "message": str(e)})

    def _admit(self, message: dict) -> None:
        """Rate, greeting, clock and order: a message that fails one is refused and changes
        nothing."""
        self._take_token(message["type"])
        now, kind, limits = time.monotonic(), message["type"], protocol.LIMITS
        if self.offset is None:
            if kind != "hello":
                raise protocol.ProtocolError(f"{kind}: say hello first")
            self.offset = message["time"] - now
        offset = message["time"] - now
        if self._reanchored(kind, offset):
            return
        if offset > self.offset + limits.clock_ahead:
            raise protocol.ProtocolError(
                f"{kind}: time {message['time']:.3f} is {offset - self.offset:.1f} s ahead of "
                f"your clock as this server knows it (at most {limits.clock_ahead:g} s)"
            )
        if offset < self.offset - limits.clock_behind:
            raise protocol.ProtocolError(
                f"{kind}: time {message['time']:.3f} is {self.offset - offset:.1f} s behind "
                f"your clock as this server knows it (at most {limits.clock_behind:g} s)"
            )
        if kind in ("note_on", "note_off", "pedal", "handover"):
            if message["time"] < self.latest - limits.out_of_order:
                raise protocol.ProtocolError(
                    f"{kind}: time {message['time']:.3f} is before the previous "
                    f"event's {self.latest:.3f}"
                )
            self.latest = max(self.latest, message["time"])
        self.offset = max(self.offset, offset)  # the least delayed message tells the clock best
        self._lagged(self.offset - offset)  # how late this one came
        if kind in protocol.PLAYING:
            self.played = now

    def _reanchored(self, kind: str, offset: float) -> bool:
        """A client clock that really moved (a laptop that slept, a hello that came late): two
        `clock` readings in a row that agree with each other, beyond the tolerance, re-anchor the
        estimate. One reading alone is refused (or, behind, taken as lag) as before."""
        tolerance = protocol.LIMITS.clock_ahead
        if kind != "clock" or abs(offset - self.offset) <= tolerance:
            self.jump = None
            return False
        if self.jump is None or abs(offset - self.jump) > tolerance:
            self.jump = offset
            return False
        self.offset, self.jump, self.latest = offset, None, -float("inf")
        self.lags.clear()
        return True

    def heard(self) -> float:
        """The client's time up to which its events have surely arrived: now, less the longest
        lag seen lately (messages that came late, ticks that came late)."""
        recent = time.monotonic() - protocol.LAG_MEMORY
        while self.lags and self.lags[0][0] < recent:
            self.lags.popleft()
        return self.now() - max((lag for _, lag in self.lags), default=0.0)

    def _lagged(self, seconds: float) -> None:
        if seconds > 0:
            self.lags.append((time.monotonic(), seconds))

    def _take_token(self, kind: str) -> None:
        """The rate limit: a bucket of `burst` messages, refilled at the allowed rate."""
        now, limits = time.monotonic(), protocol.LIMITS
        rate = limits.messages_per_second
        self.tokens = min(limits.burst, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens < 1:
            raise protocol.ProtocolError(f"{kind}: too many messages: at most {rate:g} a second")
        self.tokens -= 1

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
        elif isinstance(item, turns.Delayed):
            out.append({"type": "delayed"} | asdict(item))
        elif isinstance(item, turns.Stopped):
            out.append({"type": "stopped", "time": item.time})
    return out


async def send(ws: WebSocket, message: dict) -> None:
    await ws.send_text(protocol.dumps(message))
