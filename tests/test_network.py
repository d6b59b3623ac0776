"""play.py beyond this computer, through a real socket: the server listens on an address of a
virtual network this test makes (a network namespace joined to this machine by a veth pair, as a
phone on the same Wi-Fi would be), and a client inside the namespace opens the page and its
WebSocket. With the secret address play.py printed it plays; without the token, or from another
site's page, it is refused with a reason, so the page can say what to do."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOST, PHONE = "10.213.7.1", "10.213.7.2"  # this machine's end of the veth pair, the phone's

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="making a network namespace needs root (CI runs as root)"
)

CLIENT = """
import json, sys, urllib.request
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed

base, token = sys.argv[1], sys.argv[2]
out = {"page": urllib.request.urlopen(base + "/", timeout=10).status}

def talk(query, origin):
    try:
        with connect(base.replace("http", "ws") + "/ws" + query, origin=origin,
                     open_timeout=10) as ws:
            ws.send(json.dumps({"type": "hello", "protocol": 1, "time": 0.0}))
            return {"reply": json.loads(ws.recv(timeout=10))["type"]}
    except ConnectionClosed as e:
        return {"code": e.rcvd.code, "reason": e.rcvd.reason}

out["token"] = talk("?token=" + token, base)
out["none"] = talk("", base)
out["wrong"] = talk("?token=x" + token, base)
out["foreign"] = talk("?token=" + token, "http://evil.example")
print(json.dumps(out))
"""


def ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def phone_network():
    """A namespace (the phone) joined to this machine by a veth pair; removed after."""
    name, here, there = f"amadeus{os.getpid()}", f"am{os.getpid()}a", f"am{os.getpid()}b"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=20)
    try:
        ip("link", "add", here, "type", "veth", "peer", "name", there)
        ip("link", "set", there, "netns", name)
        ip("addr", "add", f"{HOST}/24", "dev", here)
        ip("link", "set", here, "up")
        ip("addr", "add", f"{PHONE}/24", "dev", there, netns=name)
        ip("link", "set", there, "up", netns=name)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_phone_on_the_network_plays_with_the_printed_address(phone_network, tiny_session):
    port = free_port()
    command = [sys.executable, "play.py", "-s", str(tiny_session), "--no-browser"]
    server = subprocess.Popen(
        [*command, "--host", HOST, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, CI="true"),
    )
    try:
        lines = []
        while not any("On a phone or tablet" in line for line in lines):
            line = server.stdout.readline()
            assert line, "play.py ended: " + "".join(lines)
            lines.append(line)
        printed = "".join(lines)
        url = re.search(r"On a phone or tablet on this network: (\S+)", printed).group(1)
        assert url.startswith(f"http://{HOST}:{port}/?token=") and "█" in printed  # the QR code
        token = url.split("token=")[1]
        wait_until_listening(port)
        client = ["ip", "netns", "exec", phone_network, sys.executable, "-c", CLIENT]
        done = subprocess.run(
            [*client, f"http://{HOST}:{port}", token], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
    finally:
        server.terminate()
        server.wait(timeout=30)
    refused = {"code": 4003, "reason": "refused: open the address play.py printed"}
    assert seen == {
        "page": 200,
        "token": {"reply": "welcome"},
        "none": refused,
        "wrong": refused,
        "foreign": refused,
    }


def wait_until_listening(port: int) -> None:
    for _ in range(300):
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {HOST}:{port}")
