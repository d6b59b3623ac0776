"""play.py as a person runs it: it serves the page and the protocol on the port it prints, prefers
the int8 session beside a float one, warns when it listens beyond this computer, and every way
it cannot start is one line and exit 2."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import scripts

from amadeus.errors import UsageError
from amadeus.generate import shipped
from amadeus.live import playing, ports

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def session(tiny_session) -> Path:
    return tiny_session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def play(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "play.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or dict(os.environ, CI="true"),
    )


def one_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    scripts.assert_one_error(done.returncode, done.stderr, fragment)


def serving(session: Path, port: int, *extra) -> tuple[dict, bytes, str]:
    """Runs play.py until its page answers: (the info, the page, what it printed)."""
    args = ["-s", session, "--no-browser", "--port", port, *extra]
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "play.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until it listens (importing torch takes a few seconds)
            try:
                info = json.loads(urllib.request.urlopen(f"{url}/api/info").read())
                break
            except OSError:
                time.sleep(0.1)
        page = urllib.request.urlopen(url).read()
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    return info, page, out


def test_serves_the_page_and_the_protocol(session):
    port = free_port()
    info, page, out = serving(session, port)
    assert info["name"] == "tiny.sess" and info["precision"] == "fp32"
    assert b"<title>Amadeus" in page
    assert f"Amadeus is listening: http://127.0.0.1:{port}/" in out


def test_a_missing_session_a_port_in_use_and_no_browser(session, tmp_path):
    one_error(play("-s", tmp_path / "none.sess", "--no-browser"), "none.sess: no such file")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_error(play("-s", session, "--no-browser", "--port", port), f"--port {port}")
    bare = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path), "CI": "true"}
    one_error(play("-s", session, "--port", free_port(), env=bare), "no web browser found")
    one_error(play("-s", session, "--midi-in", "x"), "--midi-in and --midi-out go together")


def test_no_model_at_all_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shipped, "ROOT", tmp_path)
    with pytest.raises(Exception, match="no model to play: .*make demo"):
        shipped.for_play()


def test_the_int8_session_beside_a_float_one_is_preferred(tmp_path):
    float_session = tmp_path / "bach.best.sess"
    float_session.write_bytes(b"x")
    assert shipped.int8_beside(float_session) is None
    (tmp_path / "bach.int8.sess").write_bytes(b"x")
    assert shipped.int8_beside(float_session) == tmp_path / "bach.int8.sess"
    assert shipped.int8_beside(tmp_path / "bach.int8.sess") is None


def test_listening_beyond_this_computer_prints_a_secret_address(session):
    port = free_port()
    _, _, out = serving(session, port, "--host", "0.0.0.0")
    local = re.search(r"Amadeus is listening: (\S+)", out).group(1)
    remote = re.search(r"On a phone or tablet on this network: (\S+)", out).group(1)
    assert local.startswith(f"http://127.0.0.1:{port}/?token=")
    assert remote.endswith(local.partition("?")[2]) and "only who has it can play" in out


def test_midi_ports_without_a_midi_system_is_one_line():
    done = play("--list-ports")
    if done.returncode == 0:  # a machine with MIDI: it lists them
        assert done.stdout.startswith("inputs:")
    else:
        one_error(done, "MIDI ports")
        assert "MidiInAlsa" not in done.stderr  # said in words, not in ALSA's


def test_alsas_complaint_is_said_in_words(monkeypatch):
    mido = ports.backend()

    def no_alsa():
        raise RuntimeError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_input_names", no_alsa)
    with pytest.raises(UsageError, match="no MIDI system running .* the browser page needs none"):
        ports.port_names()


def test_a_port_in_time_wait_is_free_to_play(tmp_path):
    """After a connection the server closed first, its port sits in TIME-WAIT: a new server
    binds it (with SO_REUSEADDR, as uvicorn does), so the port check must not refuse it."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a server, as uvicorn's
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end goes to TIME-WAIT
        client.recv(1)
        client.close()
    playing.check_port("127.0.0.1", port)  # no UsageError
