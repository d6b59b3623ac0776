"""play.py's local server: the page as static files, and one WebSocket per player speaking the
live protocol (`protocol`) to a turn-taking engine of its own (`live.engine`).

Starlette (HTTP, WebSocket and static files in one small, well-kept ASGI library) under uvicorn.
It listens on 127.0.0.1 unless told otherwise, and a WebSocket whose Origin is not the page's
own is refused: another web site open in the same browser cannot drive or read the model.
Everything a client sends is checked; a bad message gets an "error" reply and the session goes
on. Each connection has its own engine (and so its own music and takes); past `max_sessions`
a new one is told "busy".
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from amadeus import protocol
from amadeus.codec import EventCodec
from amadeus.dataset import Settings
from amadeus.live import engine as turns
from amadeus.session import Loaded
from amadeus.stepper import make_stepper

TICK_SECONDS = 0.02  # how often a connection's engine is told the time
RATE = 200.0  # messages per second a client may send, on average...
BURST = 400  # ...and at once
MAX_PHRASE_NOTES = 1000  # a phrase this long is handed over
OUT_OF_ORDER = 0.05  # seconds an event may come before the previous one (clock jitter)


@dataclass
class Model:
    """The model every connection plays, loaded once."""

    loaded: Loaded
    info: dict[str, Any]  # for the page: name, precision, megabytes, step, codec, ...
    encoding: Settings
    stepper: Any = None

    def __post_init__(self) -> None:
        self.stepper = make_stepper(self.loaded.model, "cpu")
        self.codec = EventCodec(self.loaded.codec)

    def engine(self, settings: turns.LiveSettings, seed: int) -> turns.Engine:
        data = self.loaded.data
        longest = data.longest_note if data else None
        init_dim = self.loaded.model.config.init_dim
        return turns.Engine(
            self.stepper, self.codec, self.encoding, init_dim, settings, longest, seed
        )


@dataclass
class ServerOptions:
    port: int = 8765
    host: str = "127.0.0.1"
    web: Path = Path("web")
    samples: Path | None = None  # folder of the sampled piano's files, served at /samples
    max_sessions: int = 8
    seed: int = 0
    live: turns.LiveSettings = field(default_factory=turns.LiveSettings)

    def origins(self) -> set[str]:
        """The page's own origins: a WebSocket from anywhere else is refused."""
        hosts = {"127.0.0.1", "localhost", self.host}
        return {f"http://{host}:{self.port}" for host in hosts}


def create_app(model: Model, options: ServerOptions) -> Starlette:
    # The page's scripts are ES modules, which a browser runs only as JavaScript; Windows'
    # registry can map .js to text/plain.
    mimetypes.add_type("text/javascript", ".js")
    sessions: set[int] = set()

    async def info(_request) -> JSONResponse:
        return JSONResponse(model.info | {"samples": options.samples is not None})

    async def socket(ws: WebSocket) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and origin not in options.origins():
            await ws.close(code=1008)  # before accepting: the browser sees a refused handshake
            return
        await ws.accept()
        if len(sessions) >= options.max_sessions:
            await _send(ws, {"type": "error", "message": "busy: too many sessions open"})
            await ws.close(code=1013)
            return
        key = id(ws)
        sessions.add(key)
        connection = Connection(ws, model, options, seed=options.seed + len(sessions))
        ticker = asyncio.create_task(connection.ticks())
        try:
            while True:
                await connection.handle(await ws.receive_text())
        except WebSocketDisconnect:
            pass
        finally:  # a client gone mid-answer: its generation stops, its engine is freed
            ticker.cancel()
            sessions.discard(key)

    routes = [Route("/api/info", info), WebSocketRoute("/ws", socket)]
    if options.samples is not None:
        routes.append(Mount("/samples", StaticFiles(directory=options.samples)))
    routes.append(Mount("/", StaticFiles(directory=options.web, html=True)))
    return Starlette(routes=routes)


class Connection:
    """One client: its engine, the offset between its clock and ours, and its limits."""

    def __init__(self, ws: WebSocket, model: Model, options: ServerOptions, seed: int):
        self.ws, self.model, self.options = ws, model, options
        self.engine = model.engine(options.live, seed)
        self.offset: float | None = None  # client time - monotonic(): the largest seen
        self.latest = -float("inf")  # the newest event time
        self.tokens, self.refilled = float(BURST), time.monotonic()

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
            await _send(self.ws, {"type": "error", "message": str(e)})

    def _admit(self, message: dict) -> None:
        """Rate, greeting and order: a message that fails one is refused."""
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * RATE)
        self.refilled = now
        if self.tokens < 1:
            raise protocol.ProtocolError(
                f"{message['type']}: too many messages: at most {RATE:g} a second"
            )
        self.tokens -= 1
        if self.offset is None and message["type"] != "hello":
            raise protocol.ProtocolError(f"{message['type']}: say hello first")
        offset = message["time"] - now
        self.offset = offset if self.offset is None else max(self.offset, offset)
        if message["type"] in ("note_on", "note_off", "pedal", "handover"):
            if message["time"] < self.latest - OUT_OF_ORDER:
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
            if e.phrase is not None and len(e.phrase) >= MAX_PHRASE_NOTES:
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
        limits = {
            "messages_per_second": RATE,
            "phrase_notes": MAX_PHRASE_NOTES,
            "message_bytes": protocol.MAX_MESSAGE_BYTES,
        }
        return {
            "type": "welcome",
            "protocol": protocol.PROTOCOL,
            "model": self.model.info,
            "samples": self.options.samples is not None,
            "settings": asdict(self.engine.live),
            "limits": limits,
        }

    def _export(self) -> dict:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        midi = base64.b64encode(self.engine.record.midi_bytes()).decode()
        return {"type": "export", "filename": f"amadeus-{stamp}.mid", "midi": midi}

    async def send(self, outputs: list) -> None:
        for message in messages(outputs):
            await _send(self.ws, message)


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


async def _send(ws: WebSocket, message: dict) -> None:
    await ws.send_text(protocol.dumps(message))
