"""The live server through Starlette's test client: the protocol, every kind of bad message
(answered, never fatal), a foreign Origin refused, two players at once, the limit on sessions,
a player gone mid-answer, and the export."""

import base64
import dataclasses
import json
import time

import pytest
import symusic
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from amadeus.generate.loaded import load
from amadeus.live import protocol
from amadeus.live.instrument import Instrument
from amadeus.live.server import ServerOptions, create_app

PORT = 8765
PAGE = {"origin": f"http://127.0.0.1:{PORT}"}


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    """Most tests play on a made-up client timeline that runs ahead of real time (a phrase at
    0-0.6 s, an export at 5 s, all sent at once), so they widen how far ahead of the server's
    estimate an event may be dated; the clock tests use `REAL` limits."""
    monkeypatch.setattr(protocol, "LIMITS", dataclasses.replace(REAL, clock_ahead=1e6))


REAL = protocol.LIMITS


@pytest.fixture(scope="module")
def model(tiny_session):
    return Instrument(load(tiny_session))


def client(model, tmp_path, **options) -> TestClient:
    (tmp_path / "index.html").write_text("<!doctype html><title>Amadeus</title>")
    return TestClient(create_app(model, ServerOptions(port=PORT, web=tmp_path, **options)))


def hello(ws) -> dict:
    ws.send_text(json.dumps({"type": "hello", "protocol": 1, "time": 0.0}))
    return ws.receive_json()


def send(ws, kind: str, time: float, **fields) -> None:
    ws.send_text(json.dumps({"type": kind, "time": time, **fields}))


def until(ws, kind: str, limit: int = 2000) -> list[dict]:
    """Messages up to and including the first of `kind`."""
    seen = []
    for _ in range(limit):
        seen.append(ws.receive_json())
        if seen[-1]["type"] == kind:
            return seen
    raise AssertionError(f"no {kind} in {len(seen)} messages")


def play_phrase(ws, start: float = 0.0) -> None:
    for i, pitch in enumerate((60, 64, 67)):
        send(ws, "note_on", start + 0.2 * i, pitch=pitch, velocity=80)
        send(ws, "note_off", start + 0.2 * i + 0.15, pitch=pitch)


def test_a_phrase_gets_an_answer_streamed_in_order(model, tmp_path):
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        welcome = hello(ws)
        assert welcome["type"] == "welcome" and welcome["protocol"] == 1
        assert welcome["model"]["name"] == "tiny.sess" and "silence" in welcome["settings"]
        send(ws, "settings", 0.0, answer_seconds=1.0)
        assert ws.receive_json()["settings"]["answer_seconds"] == 1.0
        play_phrase(ws)
        send(ws, "handover", 0.6)
        messages = until(ws, "answer_end")
        answer = next(m for m in messages if m["type"] == "answer")
        assert answer["phrase_end"] == 0.6 and answer["compute_ms"] > 0
        events = [e for m in messages if m["type"] == "notes" for e in m["events"]]
        times = [e["time"] for e in events]
        assert events and times == sorted(times) and times[0] >= 0.6
        onsets = [e for e in events if e["velocity"]]
        assert messages[-1]["notes"] == len(onsets) > 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "a JSON object"),
        ('{"type": "dance", "time": 1}', "unknown message type 'dance'"),
        ('{"type": "note_on", "time": 1, "pitch": 60}', "note_on: no velocity"),
        ('{"type": "note_on", "time": 1, "pitch": 200, "velocity": 9}', "pitch must be an integer"),
        ('{"type": "note_off", "time": "soon", "pitch": 60}', "time must be a number"),
        ('{"type": "clock", "time": 1' + "0" * 309 + "}", "time must be a number"),
        ('{"type": "settings", "time": 1, "temperature": 1' + "0" * 309 + "}", "temperature"),
        ("[" * 2000 + "]" * 2000, "nested too deeply"),
        ('{"type": "settings", "time": 1, "temperature": 99}', "temperature must be a number"),
        ('{"type": "settings", "time": 1, "volume": 3}', "unknown setting 'volume'"),
        ('{"type": "clock", "time": 1, "x": "' + "y" * 5000 + '"}', "the limit is 4096"),
    ],
)
def test_a_bad_message_gets_an_error_and_the_session_goes_on(model, tmp_path, text, reason):
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        hello(ws)
        ws.send_text(text)
        error = ws.receive_json()
        assert error["type"] == "error" and reason in error["message"]
        send(ws, "settings", 2.0, silence=0.5)
        assert ws.receive_json()["settings"]["silence"] == 0.5  # still serving


def test_hello_first_and_events_in_order(model, tmp_path):
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        send(ws, "note_on", 0.0, pitch=60, velocity=80)
        assert "say hello first" in ws.receive_json()["message"]
        hello(ws)
        send(ws, "note_on", 5.0, pitch=60, velocity=80)
        send(ws, "note_off", 1.0, pitch=60)
        assert "before the previous event" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "hello", "protocol": 2, "time": 6.0}))
        assert "this server speaks 1" in ws.receive_json()["message"]


def test_a_flood_is_refused_beyond_the_rate(model, tmp_path, monkeypatch):
    """A bucket so small that no machine is fast or slow enough to change the outcome; each
    settings message gets one answer (accepted, or refused while the bucket refills), so the
    test never waits on a message that will not come."""
    tiny = dataclasses.replace(protocol.LIMITS, messages_per_second=2.0, burst=5)
    monkeypatch.setattr(protocol, "LIMITS", tiny)
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        hello(ws)
        for i in range(50):
            send(ws, "clock", 0.001 * i)
        errors = []
        for attempt in range(200):
            send(ws, "settings", 1.0 + attempt, silence=0.4)
            reply = until_settings_answered(ws, errors)
            if reply is not None:
                break
            time.sleep(0.05)
        assert reply["settings"]["silence"] == 0.4  # the session goes on
        assert len(errors) >= 40 and all("at most 2 a second" in e["message"] for e in errors)


def until_settings_answered(ws, errors: list) -> dict | None:
    """The settings message's answer; errors on the way are kept, None if it was refused."""
    while True:
        message = ws.receive_json()
        if message["type"] == "settings":
            return message
        errors.append(message)
        if message["message"].startswith("settings:"):
            return None


def test_another_sites_page_is_refused(model, tmp_path):
    foreign = {"origin": "https://evil.example"}
    with client(model, tmp_path) as c:
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            c.websocket_connect("/ws", headers=foreign),
        ):
            pass
        assert refused.value.code == 1008
        with c.websocket_connect("/ws", headers={"origin": f"http://localhost:{PORT}"}) as ws:
            assert hello(ws)["type"] == "welcome"
        with c.websocket_connect("/ws") as ws:  # no Origin: not a browser page, allowed
            assert hello(ws)["type"] == "welcome"


def test_two_players_each_have_their_own_session_and_a_third_is_told_busy(model, tmp_path):
    with (
        client(model, tmp_path, max_sessions=2) as c,
        c.websocket_connect("/ws", headers=PAGE) as one,
        c.websocket_connect("/ws", headers=PAGE) as two,
    ):
        hello(one), hello(two)
        send(one, "settings", 0.0, answer_seconds=0.5)
        one.receive_json()
        play_phrase(one)
        send(one, "handover", 0.6)
        assert any(m["type"] == "notes" for m in until(one, "answer_end"))
        send(two, "export", 1.0)  # the second player has played nothing
        empty = symusic.Score.from_midi(base64.b64decode(two.receive_json()["midi"]))
        assert sum(len(t.notes) for t in empty.tracks) == 0
        with c.websocket_connect("/ws", headers=PAGE) as three:
            busy = three.receive_json()
            assert busy["type"] == "error" and "busy" in busy["message"]


def test_a_player_gone_mid_answer_frees_the_session(model, tmp_path):
    with client(model, tmp_path, max_sessions=1) as c:
        with c.websocket_connect("/ws", headers=PAGE) as ws:
            hello(ws)
            play_phrase(ws)
            send(ws, "handover", 0.6)
            until(ws, "answer")  # gone while the answer streams
        with c.websocket_connect("/ws", headers=PAGE) as ws:
            assert hello(ws)["type"] == "welcome"  # not "busy": the first was freed


def test_export_holds_the_player_and_amadeus(model, tmp_path):
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        hello(ws)
        send(ws, "settings", 0.0, answer_seconds=0.5)
        ws.receive_json()
        play_phrase(ws)
        send(ws, "handover", 0.6)
        until(ws, "answer_end")
        send(ws, "export", 5.0)
        export = ws.receive_json()
        assert export["filename"].startswith("amadeus-") and export["filename"].endswith(".mid")
        score = symusic.Score.from_midi(base64.b64decode(export["midi"]))
        tracks = {t.name: len(t.notes) for t in score.tracks}
        assert tracks["player"] == 3 and tracks["Amadeus"] > 0


def test_the_page_and_the_info_are_served(model, tmp_path):
    with client(model, tmp_path) as c:
        assert "Amadeus" in c.get("/").text
        info = c.get("/api/info").json()
        assert info["name"] == "tiny.sess" and info["precision"] == "fp32"
        assert info["samples"] is False and info["protocol"] == protocol.PROTOCOL


def test_protocol_rejects_bad_settings_values():
    with pytest.raises(protocol.ProtocolError, match="conditioning is true or false"):
        protocol.settings_of({"conditioning": 1})
    assert protocol.settings_of({"type": "settings", "time": 0, "answer_seconds": None}) == {
        "answer_seconds": None
    }


def test_a_binary_frame_gets_an_error_and_the_session_goes_on(model, tmp_path):
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        hello(ws)
        ws.send_bytes(b"\x00\x01")
        assert "binary frames" in ws.receive_json()["message"]
        send(ws, "settings", 0.1, silence=0.5)
        assert ws.receive_json()["settings"]["silence"] == 0.5


def answers_to_four_notes(ws, start: float) -> list[dict]:
    """Four notes played (and released) now, then the silence that ends the phrase."""
    for i in range(4):
        send(ws, "note_on", start + 0.1 * i, pitch=60 + i, velocity=80)
        send(ws, "note_off", start + 0.1 * i + 0.05, pitch=60 + i)
    return until(ws, "answer_end")


def test_a_client_clock_cannot_poison_the_session(model, tmp_path, monkeypatch):
    """An event an hour ahead, a clock a million seconds ahead, a note 1e9 s in the past: each
    refused, and the phrase after them is heard and answered once, on time."""
    monkeypatch.setattr(protocol, "LIMITS", REAL)
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        start = time.monotonic()
        ws.send_text(json.dumps({"type": "hello", "protocol": 1, "time": 100.0}))
        ws.receive_json()
        now = lambda: 100.0 + time.monotonic() - start  # noqa: E731  (the client's clock)
        send(ws, "note_on", now() + 3600, pitch=60, velocity=80)
        assert "ahead of your clock" in ws.receive_json()["message"]
        send(ws, "clock", now() + 1e6)
        assert "ahead of your clock" in ws.receive_json()["message"]
        send(ws, "note_on", now() - 1e9, pitch=60, velocity=80)
        assert "behind your clock" in ws.receive_json()["message"]
        played = now()
        messages = answers_to_four_notes(ws, played)
        answers = [m for m in messages if m["type"] == "answer"]
        assert len(answers) == 1 and not [m for m in messages if m["type"] == "error"]
        assert answers[0]["phrase_end"] >= played + 0.35  # after the last note, not before
        later = [m for m in messages if m["type"] == "notes"]
        assert min(e["time"] for m in later for e in m["events"]) >= answers[0]["phrase_end"]


def test_sockets_that_never_say_hello_do_not_keep_the_seats(model, tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "LIMITS", dataclasses.replace(REAL, hello_seconds=0.3))
    with client(model, tmp_path, max_sessions=2) as c:
        with (
            c.websocket_connect("/ws", headers=PAGE) as one,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            one.receive_json()  # says nothing: closed after 0.3 s
        assert closed.value.code == 4000 and "no hello" in closed.value.reason
        with (
            c.websocket_connect("/ws", headers=PAGE) as a,
            c.websocket_connect("/ws", headers=PAGE) as b,
        ):
            assert hello(a)["type"] == hello(b)["type"] == "welcome"  # both seats free again


def test_an_idle_session_is_closed_and_frees_its_seat(model, tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "LIMITS", dataclasses.replace(REAL, idle_seconds=0.5))
    with client(model, tmp_path, max_sessions=1) as c:
        with c.websocket_connect("/ws", headers=PAGE) as ws:
            hello(ws)
            for _ in range(3):  # clock messages alone do not keep a seat
                time.sleep(0.1)
                send(ws, "clock", 0.0)
            with pytest.raises(WebSocketDisconnect) as closed:
                until(ws, "never")
            assert closed.value.code == 4000 and "idle" in closed.value.reason
        with c.websocket_connect("/ws", headers=PAGE) as ws:
            assert hello(ws)["type"] == "welcome"


def test_a_late_hello_or_a_clock_that_really_moved_is_re_anchored(model, tmp_path, monkeypatch):
    """The hello came 2 s late, so the page's clock reads 2 s ahead of the server's estimate:
    its events are refused until two clock readings agree, then the session plays on."""
    monkeypatch.setattr(protocol, "LIMITS", REAL)
    with client(model, tmp_path) as c, c.websocket_connect("/ws", headers=PAGE) as ws:
        start = time.monotonic()
        ws.send_text(json.dumps({"type": "hello", "protocol": 1, "time": 100.0}))
        ws.receive_json()
        now = lambda: 102.0 + time.monotonic() - start  # noqa: E731  (2 s ahead of the hello)
        send(ws, "note_on", now(), pitch=60, velocity=80)
        assert "ahead of your clock" in ws.receive_json()["message"]
        send(ws, "clock", now())
        assert "ahead of your clock" in ws.receive_json()["message"]  # one reading: refused
        send(ws, "clock", now())  # a second that agrees: re-anchored (nothing to answer)
        send(ws, "settings", now(), silence=0.5)
        assert ws.receive_json()["settings"]["silence"] == 0.5
