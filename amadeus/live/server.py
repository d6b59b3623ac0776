"""play.py's local server: the page as static files, and one WebSocket per player, each a
`connection.Connection` with a turn-taking engine of its own.

Starlette (HTTP, WebSocket and static files in one small, well-kept ASGI library) under uvicorn.
It listens on 127.0.0.1 unless told otherwise, and a WebSocket whose Origin is not the page's
own is refused: another web site open in the same browser cannot drive or read the model. Each
connection has its own engine (and so its own music and takes); past `max_sessions` a new one is
told "busy".
"""

from __future__ import annotations

import asyncio
import mimetypes
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from amadeus.live import protocol
from amadeus.live.connection import IDLE, Connection, send
from amadeus.live.instrument import Instrument
from amadeus.live.settings import LiveSettings

REFUSED = 4003  # close code: no token, or not this server's page (network mode)


@dataclass
class ServerOptions:
    port: int = 8765
    host: str = "127.0.0.1"
    web: Path = Path("web")
    samples: Path | None = None  # folder of the sampled piano's files, served at /samples
    max_sessions: int = 8
    seed: int = 0
    live: LiveSettings = field(default_factory=LiveSettings)
    token: str | None = None  # beyond loopback: the secret every connection must carry

    def origins(self) -> set[str]:
        """The page's own origins on this computer: a WebSocket from anywhere else is refused."""
        hosts = {"127.0.0.1", "localhost", self.host}
        return {f"http://{host}:{self.port}" for host in hosts}

    def admits(self, ws: WebSocket) -> bool:
        """On loopback, a page of our own origin (or a client that is no page); beyond it, only
        the page this server served, at the address it was opened with, and with the token."""
        origin = ws.headers.get("origin")
        if self.token is None:
            return origin is None or origin in self.origins()
        page = f"http://{ws.headers.get('host')}"
        return origin == page and secrets.compare_digest(
            ws.query_params.get("token", ""), self.token
        )


async def _converse(ws: WebSocket, connection: Connection) -> None:
    """Frames to the connection until the client leaves. One that says no hello within
    `hello_seconds` is closed: a socket held open by nobody must not keep a seat."""
    hello = protocol.LIMITS.hello_seconds
    deadline = time.monotonic() + hello
    while True:
        if connection.offset is None:  # not greeted yet: only until the deadline
            try:
                left = max(deadline - time.monotonic(), 0.0)
                frame = await asyncio.wait_for(ws.receive(), timeout=left)
            except asyncio.TimeoutError:  # (TimeoutError itself from Python 3.11 on)
                await ws.close(code=IDLE, reason=f"no hello within {hello:g} s")
                return
        else:
            frame = await ws.receive()
        if frame["type"] == "websocket.disconnect":
            return
        await connection.handle(frame)


def create_app(instrument: Instrument, options: ServerOptions) -> Starlette:
    # The page's scripts are ES modules, which a browser runs only as JavaScript; Windows'
    # registry can map .js to text/plain.
    mimetypes.add_type("text/javascript", ".js")
    sessions: set[int] = set()
    samples = options.samples is not None
    welcome = {
        "type": "welcome",
        "protocol": protocol.PROTOCOL,
        "model": instrument.info,
        "samples": samples,
        "limits": asdict(protocol.LIMITS),
    }

    async def info(_request) -> JSONResponse:
        return JSONResponse(instrument.info | {"samples": samples, "protocol": protocol.PROTOCOL})

    async def socket(ws: WebSocket) -> None:
        if options.token is None and not options.admits(ws):
            await ws.close(code=1008)  # before accepting: the browser sees a refused handshake
            return
        await ws.accept()
        if not options.admits(ws):  # the page is told why, and stops trying
            await ws.close(code=REFUSED, reason="refused: open the address play.py printed")
            return
        if len(sessions) >= options.max_sessions:
            await send(ws, {"type": "error", "message": "busy: too many sessions open"})
            await ws.close(code=1013)
            return
        key = id(ws)
        sessions.add(key)
        engine = instrument.engine(options.live, seed=options.seed + len(sessions))
        connection = Connection(ws, engine, welcome)
        engine.clock = connection.now  # lateness is judged on the client's clock as it is now
        ticker = asyncio.create_task(connection.ticks())
        try:
            await _converse(ws, connection)
        except WebSocketDisconnect:
            pass
        finally:  # a client gone mid-answer: its generation stops, its engine is freed
            ticker.cancel()
            sessions.discard(key)

    routes = [Route("/api/info", info), WebSocketRoute("/ws", socket)]
    if samples:
        routes.append(Mount("/samples", StaticFiles(directory=options.samples)))
    routes.append(Mount("/", StaticFiles(directory=options.web, html=True)))
    return Starlette(routes=routes)
