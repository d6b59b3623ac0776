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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from amadeus.live import protocol
from amadeus.live.connection import Connection, send
from amadeus.live.instrument import Instrument
from amadeus.live.settings import LiveSettings


@dataclass
class ServerOptions:
    port: int = 8765
    host: str = "127.0.0.1"
    web: Path = Path("web")
    samples: Path | None = None  # folder of the sampled piano's files, served at /samples
    max_sessions: int = 8
    seed: int = 0
    live: LiveSettings = field(default_factory=LiveSettings)

    def origins(self) -> set[str]:
        """The page's own origins: a WebSocket from anywhere else is refused."""
        hosts = {"127.0.0.1", "localhost", self.host}
        return {f"http://{host}:{self.port}" for host in hosts}


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
        origin = ws.headers.get("origin")
        if origin is not None and origin not in options.origins():
            await ws.close(code=1008)  # before accepting: the browser sees a refused handshake
            return
        await ws.accept()
        if len(sessions) >= options.max_sessions:
            await send(ws, {"type": "error", "message": "busy: too many sessions open"})
            await ws.close(code=1013)
            return
        key = id(ws)
        sessions.add(key)
        engine = instrument.engine(options.live, seed=options.seed + len(sessions))
        connection = Connection(ws, engine, welcome)
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
    if samples:
        routes.append(Mount("/samples", StaticFiles(directory=options.samples)))
    routes.append(Mount("/", StaticFiles(directory=options.web, html=True)))
    return Starlette(routes=routes)
