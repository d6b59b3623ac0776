"""The engine in the page (web/js/engine/, run by Node) against the Python engine it ports, on
fixtures made here: the same phrases give the same tokens, the same tokens the same notes, the
same controls, the same loudness, the same allowed events and draws; the same session (phrases,
hand-overs, barge-in, again, undo, settings, a busy machine) gives the same protocol messages,
feeds the model the same events and controls, and exports the same MIDI file. The manifest it
learns its constants from is read off the Python objects.

Without node the tests skip, except in CI (CI set), where they fail."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
from test_live_phrase import CASES, playing
from test_live_phrase import play as play_phrase
from web_fixtures import (
    WEB,
    Logged,
    TableStepper,
    busy_clock,
    midi_content,
    preference_table,
    run_node,
    tiny_session,
)

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Settings
from amadeus.data.dynamics import Dynamics
from amadeus.data.encoding import encode_notes
from amadeus.data.notes import Notes
from amadeus.generate.loaded import load
from amadeus.generate.sampling import PerformanceState, SamplingRules, nucleus, pick
from amadeus.live import protocol
from amadeus.live.connection import Connection, messages
from amadeus.live.engine import Engine
from amadeus.live.instrument import Instrument
from amadeus.live.manifest import codec_table, page_manifest
from amadeus.live.phrase import Phrase
from amadeus.live.record import Record
from amadeus.live.settings import LiveSettings

PARITY = WEB / "test/engine_parity.mjs"
KEEP_LOGITS = 400  # steps of an exported model whose logits are compared


def node_results(tasks: list[dict], folder) -> list:
    return run_node(PARITY, {"tasks": tasks}, folder)


def events_json(events) -> list:
    return [[seconds, kind, list(args)] for seconds, kind, args in events]


# -- the manifest ----------------------------------------------------------------------------------


def test_the_manifest_is_what_the_python_side_knows(tmp_path):
    loaded = load(tiny_session(tmp_path))
    manifest = json.loads(json.dumps(page_manifest(loaded), allow_nan=False))
    codec = loaded.events
    table = manifest["codec"]
    assert table["size"] == codec.size and table["start_token"] == codec.start_token
    for kind, r in codec.ranges.items():
        assert (table["offset"][kind], table["count"][kind]) == (r.start, len(r))
    assert table["time_shifts"] == codec.shift_seconds.tolist()  # exact through JSON
    assert table["velocity_values"] == codec.velocity_values.tolist()
    assert manifest["encoding"] == asdict(loaded.encoding)
    assert manifest["rules"] == asdict(loaded.rules())
    assert manifest["rules"]["max_note_seconds"] == loaded.longest_note == 3.0
    assert manifest["dynamics"]["low"] == 40.0 and manifest["dynamics"]["high"] == 100.0
    assert manifest["live"]["defaults"] == asdict(LiveSettings())
    assert manifest["limits"] == asdict(protocol.LIMITS)
    assert manifest["model"] == loaded.info()
    assert manifest["midi"]["tracks"] == ["player", "Amadeus", "Amadeus, other takes"]
    older = load(tiny_session(tmp_path, velocities=None, longest_note=None))
    assert page_manifest(older)["dynamics"] is None
    assert page_manifest(older)["rules"]["max_note_seconds"] is None


# -- codec, phrase, controls, dynamics -------------------------------------------------------------


def test_the_same_phrases_give_the_same_tokens_take_by_take(tmp_path):
    tasks, want = [], []
    for case, (preset, settings, presses, (low, high), steps) in CASES.items():
        codec = EventCodec(preset)
        for seed in (1, 2):
            events = playing(seed, presses, low, high, steps)
            end = events[-1][0] + 0.7  # keys and the pedal may be down until then
            takes, latest = play_phrase(Phrase(codec, settings, origin=100.0), events, end)
            want.append((case, seed, [t.tolist() for t in takes], latest))
            tasks.append(
                {
                    "kind": "phrase",
                    "codec": codec_table(codec),
                    "encoding": asdict(settings),
                    "origin": 100.0,
                    "events": events_json(events),
                    "end": end,
                }
            )
    for (case, seed, takes, latest), got in zip(want, node_results(tasks, tmp_path)):
        assert got["takes"] == takes, (case, seed)
        assert got["latest"] == latest, (case, seed)


def random_notes(rng, n: int, low: int, high: int) -> dict:
    start = np.round(np.cumsum(rng.choice([0, 0, 1e-3, 0.1, 0.25, 4.0], n)), 6)
    end = start + rng.choice([0.0, 0.005, 0.3, 1.2, 9.0], n)
    return {
        "start": start.tolist(),
        "end": end.tolist(),
        "pitch": rng.integers(low, high, n).tolist(),
        "velocity": rng.integers(1, 128, n).tolist(),
    }


def test_the_same_notes_encode_alike_and_the_same_tokens_decode_alike(tmp_path):
    rng = np.random.default_rng(0)
    tasks, want = [], []
    for preset, max_silence in (("prnn", 3.0), ("magenta", 0.5)):
        codec = EventCodec(preset)
        settings = Settings(preset, max_silence=max_silence)
        arrays = random_notes(rng, 300, 10, 120)
        notes = Notes.build(*arrays.values())
        want.append(encode_notes(notes, codec, settings, "notes").tokens.tolist())
        rows = [dict(zip(arrays, values)) for values in zip(*arrays.values())]
        tasks.append(
            {
                "kind": "encode",
                "codec": codec_table(codec),
                "encoding": asdict(settings),
                "notes": rows,
            }
        )
        for limit in (None, 1.0):
            tokens = rng.integers(-3, codec.size + 3, 2000).tolist()  # outside the vocabulary too
            decoded, skipped = codec.decode_counted(np.array(tokens), limit)
            rows = np.stack([decoded.start, decoded.end, decoded.pitch, decoded.velocity], 1)
            want.append((rows.tolist(), dict(skipped)))
            tasks.append(
                {
                    "kind": "decode",
                    "codec": codec_table(codec),
                    "tokens": tokens,
                    "max_note_seconds": limit,
                }
            )
    got = node_results(tasks, tmp_path)
    assert got[0] == want[0] and got[3] == want[3]  # the encodings
    for g, (rows, skipped) in zip(got[1:3] + got[4:6], want[1:3] + want[4:6]):
        assert [[n["start"], n["end"], n["pitch"], n["velocity"]] for n in g["notes"]] == rows
        assert g["skipped"] == skipped


def test_the_same_phrase_gives_the_same_control_and_the_same_loudness(tmp_path):
    loaded = load(tiny_session(tmp_path))
    layout = page_manifest(loaded)["controls"]
    codec, settings = loaded.events, loaded.encoding
    tasks, want = [], []
    for seed, presses, keys in ((1, 4, 0.5), (2, 40, 0.3), (3, 200, 0.7), (4, 40, 1.0)):
        events = playing(seed, presses, 10, 120)
        phrase = Phrase(codec, settings, origin=5.0)
        play_phrase(phrase, events, events[-1][0] + 0.5)
        live = SimpleNamespace(live=LiveSettings(conditioning=True, phrase_keys=keys))
        want.append(Engine._control_of(live, phrase)[0].tolist())  # the engine's own rule
        tasks.append(
            {
                "kind": "control",
                "codec": codec_table(codec),
                "encoding": asdict(settings),
                "controls": layout,
                "origin": 5.0,
                "events": events_json(events),
                "end": events[-1][0] + 0.5,
                "phrase_keys": live.live.phrase_keys,
            }
        )
    velocities = [1, 2, 30, 63.5, 64, 64.5, 90.25, 127, 140]
    for low, high in ((40.0, 100.0), (91.0, 91.0), (60.5, 90.25), (20.0, 27.5)):
        d = Dynamics(low, high)
        manifest_dynamics = page_manifest(loaded)["dynamics"] | {"low": low, "high": high}
        want.append(
            {
                "flat": d.flat,
                "to_model": [d.to_model(v) for v in velocities],
                "to_player": [d.to_player(v, 71.5) for v in velocities],
            }
        )
        tasks.append(
            {
                "kind": "dynamics",
                "dynamics": manifest_dynamics,
                "velocities": velocities,
                "played": 71.5,
            }
        )
    assert node_results(tasks, tmp_path) == want


# -- sampling --------------------------------------------------------------------------------------


def test_the_same_fed_tokens_allow_the_same_events(tmp_path):
    rng = np.random.default_rng(1)
    tasks, want = [], []
    for preset in ("prnn", "magenta"):
        codec = EventCodec(preset)
        for rules in (SamplingRules(max_note_seconds=1.0), SamplingRules(valid_only=False)):
            tokens = rng.integers(0, codec.size, 1500).tolist()
            state, steps = PerformanceState(codec, 1, rules), []
            for i, token in enumerate(tokens):
                state.closing = i >= 1200
                state.feed(np.array([token]))
                allowed = "".join(str(int(a)) for a in state.allowed()[0])
                expired = [[p, end] for _, p, end in state.expired]
                steps.append({"allowed": allowed, "expired": expired, "now": float(state.now[0])})
            want.append(steps)
            tasks.append(
                {
                    "kind": "mask",
                    "codec": codec_table(codec),
                    "rules": asdict(rules),
                    "tokens": tokens,
                    "closing_from": 1200,
                }
            )
    assert node_results(tasks, tmp_path) == want


class Uniforms:
    """An rng whose draws are given, in turn and over again (web/test/engine_parity.mjs draws
    the same): a draw takes one for the event, then one for the argmax's chance."""

    def __init__(self, values: list[float]):
        self.values, self.taken = values, 0

    def random(self, n: int) -> np.ndarray:
        self.taken += n
        return np.array(
            [self.values[i % len(self.values)] for i in range(self.taken - n, self.taken)]
        )


def test_the_same_logits_and_uniforms_draw_the_same_events(tmp_path):
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (6, 240)).astype(np.float32).astype(np.float64)
    logits[:, rng.integers(0, 240, 100)] = -np.inf  # forbidden events
    logits[1, 10:20] = logits[1, 30]  # ties
    us = np.concatenate([rng.random(40), [0.0, 0.5, 0.999999]]).tolist()
    tasks, want = [], []
    for rules in (SamplingRules(), SamplingRules(0.9, 0.95), SamplingRules(2.5, 0.5)):
        want.append(
            [[int(pick(row[None], Uniforms([u, 1.0]), rules)[0]) for u in us] for row in logits]
        )
        rows = [[None if np.isinf(x) else x for x in row] for row in logits.tolist()]
        tasks.append({"kind": "draws", "logits": rows, "rules": asdict(rules), "us": us})
    p = rng.dirichlet(np.ones(240) * 0.3, 5)
    p[0, :50] = p[0, 60]  # ties in the order of the nucleus
    want.append(nucleus(p, 0.9).tolist())
    tasks.append({"kind": "nucleus", "p": p.tolist(), "top_p": 0.9})
    assert node_results(tasks, tmp_path) == want


# -- the record ------------------------------------------------------------------------------------


def test_the_same_session_records_the_same_midi_file(tmp_path):
    ops = [
        ["playerOn", 1.0, 60, 80],
        ["playerOn", 1.2, 64, 70],
        ["playerOff", 1.5, 60],
        ["newTake", False],
        ["answerNote", 2.0, 62, 70],
        ["answerNote", 2.0, 67, 71],
        ["answerNote", 2.50052, 62, 0],
        ["answerNote", 2.6, 62, 90],
        ["cut", 2.7],
        ["newTake", True],
        ["answerNote", 3.0, 65, 50],
        ["answerNote", 3.25, 65, 0],
        ["answerNote", 3.3, 66, 127],
        ["playerOn", 4.0, 72, 100],
        ["newTake", False],
        ["answerNote", 4.5, 48, 1],
        ["drop"],
        ["playerOff", 4.9, 72],
    ]
    record = Record()
    names = {"playerOn": "player_on", "playerOff": "player_off", "newTake": "new_take"}
    names |= {"answerNote": "answer_note", "cut": "cut", "drop": "drop"}
    for op, *args in ops:
        getattr(record, names[op])(*args)
    midi = page_manifest(load(tiny_session(tmp_path)))["midi"]
    (got,) = node_results([{"kind": "record", "ops": ops, "midi": midi}], tmp_path)
    want = midi_content(record.midi_bytes())
    assert midi_content(base64.b64decode(got)) == want
    assert [name for name, _ in want["tracks"]] == midi["tracks"]
    markers = [text for _, text in want["markers"]]
    assert markers == ["answer 1, take 1", "answer 1, take 2", "answer 2, take 1"]


# -- sessions --------------------------------------------------------------------------------------


def message(kind: str, time: float, **fields) -> tuple[float, dict]:
    return time, {"type": kind, "time": time, **fields}


def keys(time: float, pitch: int, velocity: int, held: float) -> list:
    return [
        message("note_on", time, pitch=pitch, velocity=velocity),
        message("note_off", time + held, pitch=pitch),
    ]


def session_script(seed: int = 0) -> list:
    """A session as the page plays it, ticking every 20 ms: a phrase with the pedal ended by
    silence, again, a barge-in, the soft pedal, undo, a hand-over with no phrase, new settings
    (and refused ones), a long phrase with keys beyond the codec's range, bad messages."""
    rng = np.random.default_rng(seed)
    events = [message("hello", 0.0, protocol=1), message("settings", 0.01, release=0.5)]
    events += [message("settings", 0.02, silence=9), message("settings", 0.03, volume=1)]
    events += keys(0.5, 60, 90, 0.4) + keys(0.8, 64, 70, 0.4) + keys(1.5, 67, 50, 0.4)
    events += [message("pedal", 0.7, controller=64, value=127)]
    events += [message("pedal", 1.4, controller=64, value=0)]
    events += [message("again", 12.0)] + keys(12.6, 72, 100, 0.3)  # a barge-in
    events += [message("pedal", 13.0, controller=67, value=127)]  # the soft pedal hands over
    events += [message("undo", 20.5), message("handover", 21.0), message("clock", 25.9)]
    events += [message("settings", 26.1, answer_seconds=3.0, conditioning=False, temperature=2.0)]
    t = 26.5
    for _ in range(60):
        t += float(rng.choice([0.0, 0.0, 0.05, 0.15, 0.3]))
        pitch = int(rng.integers(10, 120))
        events += keys(t, pitch, int(rng.integers(1, 128)), float(rng.choice([0.02, 0.2, 0.8])))
    events += [message("handover", t + 1.0), message("settings", t + 1.1, answer_seconds=None)]
    events += [message("note_on", t + 8.0, pitch=200, velocity=10), message("louder", t + 8.1)]
    events += [message("note_on", t + 8.2, pitch=60), message("hello", t + 8.3, protocol=2)]
    events += [message("pedal", t + 8.4, controller=64, value=True)]
    end = t + 10.0
    ticks = [(k * 0.02, None) for k in range(int(end / 0.02))]
    timeline = sorted(events + ticks, key=lambda e: (e[0], e[1] is None))  # events before ticks
    refused = [{"type": "clock", "time": 1e12}, {"type": "settings", "time": end, "temperature": 0}]
    return [["tick", t] if m is None else ["message", m] for t, m in timeline] + [
        ["message", m] for m in refused
    ]


def moment(item: list) -> float:
    """The time of a script's item."""
    return item[1] if item[0] == "tick" else item[1]["time"]


def python_session(
    loaded,
    table: np.ndarray | None,
    script: list,
    seed: int,
    slow: float,
    keep_logits: int = 0,
    uniforms: list[float] | None = None,
) -> dict:
    """The script played on play.py's side: a connection's dispatch to the instrument's engine
    (with the table stepper, or the model's own), on the same clock as the page's engine gets."""
    instrument = Instrument(loaded)
    if table is not None:
        instrument.stepper = TableStepper(table)
    instrument.stepper = stepper = Logged(instrument.stepper, keep_logits)
    engine = instrument.engine(LiveSettings(), seed)
    engine.clock = busy_clock(engine, stepper, slow)
    if uniforms is not None:
        engine.rng = Uniforms(uniforms)
    welcome = {
        "type": "welcome",
        "protocol": protocol.PROTOCOL,
        "model": instrument.info,
        "samples": True,
        "limits": asdict(protocol.LIMITS),
    }
    connection = Connection(None, engine, welcome)
    replies, steps = [], []  # per script item: the messages, the steps taken by then
    for kind, payload in script:
        try:
            if kind == "tick":
                replies.append(messages(engine.tick(payload)))
            else:
                checked = protocol.parse(json.dumps(payload))
                replies.append(messages(connection._dispatch(checked)))
        except protocol.ProtocolError as e:
            replies.append([{"type": "error", "message": str(e)}])
        steps.append(stepper.steps)
    replies = json.loads(json.dumps(replies))
    logged = {"log": stepper.log, "logits": stepper.logits, "steps": steps}
    return {"replies": replies, "engine": engine} | logged


def without_compute_ms(replies: list) -> list:
    return [[{k: v for k, v in m.items() if k != "compute_ms"} for m in reply] for reply in replies]


SESSIONS = {
    "prnn, loudness kept": ("prnn", (40.0, 100.0), 0.0),
    "prnn, one loudness, a busy machine": ("prnn", (91.0, 91.0), 0.03),
    "magenta, loudness not recorded": ("magenta", None, 0.0),
}


@pytest.mark.parametrize("case", SESSIONS)
def test_the_same_session_speaks_the_same_messages_and_feeds_the_same_events(tmp_path, case):
    preset, velocities, slow = SESSIONS[case]
    loaded = load(tiny_session(tmp_path, preset, velocities=velocities))
    table = preference_table(loaded.events)
    script = session_script()
    want = python_session(loaded, table, script, seed=3, slow=slow)
    task = {
        "kind": "session",
        "manifest": page_manifest(loaded),
        "table": table.tolist(),
        "script": script,
        "seed": 3,
        "slow": slow,
    }
    (got,) = node_results([task], tmp_path)
    assert got["log"] == want["log"]  # the model heard the same events, with the same controls
    assert without_compute_ms(got["replies"]) == without_compute_ms(want["replies"])
    engine = want["engine"]
    assert got["hidden"] == engine.hidden.tolist() and got["event"] == int(engine.event[0])
    kinds = {m["type"] for reply in got["replies"] for m in reply}
    assert {"welcome", "settings", "error", "answer", "notes", "answer_end", "stopped"} <= kinds
    assert ("delayed" in kinds) == (slow > 0)
    assert midi_content(base64.b64decode(got["midi"])) == midi_content(engine.record.midi_bytes())


def one_by_one(replies: list) -> list:
    """A session's messages in the order sent, each note on its own (however calls grouped them)."""
    out = []
    for reply in without_compute_ms(replies):
        for m in reply:
            out += [{"type": "note"} | e for e in m["events"]] if m["type"] == "notes" else [m]
    return out


@pytest.mark.parametrize("case", ["prnn, loudness kept", "magenta, loudness not recorded"])
def test_a_budgeted_session_sends_the_same_notes_sooner(tmp_path, case):
    """The worker's engine samples in short calls (a budget; the first note of an answer alone),
    ticking again at once while more is due: the same events heard, the same messages in the same
    order as the server's engine that samples all it can per call; only the grouping differs."""
    preset, velocities, slow = SESSIONS[case]
    loaded = load(tiny_session(tmp_path, preset, velocities=velocities))
    table = preference_table(loaded.events)
    script = session_script()
    want = python_session(loaded, table, script, seed=3, slow=slow)
    task = {"kind": "session", "manifest": page_manifest(loaded), "table": table.tolist()}
    task |= {"script": script, "seed": 3, "slow": slow, "budget": 0.5}
    (got,) = node_results([task], tmp_path)
    assert got["log"] == want["log"]
    assert one_by_one(got["replies"]) == one_by_one(want["replies"])
    assert len(got["calls"]) > len(script) + 50  # calls cut short, ticked again at once...
    assert max(got["calls"]) <= 2  # ...each a step's notes (each call took one step here)


def test_a_phrase_handled_late_does_not_end_by_silence_too_soon(tmp_path):
    """The worker's session, its queue behind: a phrase whose notes are handled 1.5 s after they
    were played ends by silence only once the clock less that lag (as the server's connection
    judges it) is past its last note's end plus the silence, and the answer starts from there."""
    loaded = load(tiny_session(tmp_path))
    manifest = page_manifest(loaded)
    handled_at, lag = 2.0, 1.5
    ends = 0.5 + 0.1 + manifest["live"]["defaults"]["silence"]
    task = {"kind": "lag", "manifest": manifest, "table": preference_table(loaded.events).tolist()}
    played = [message("hello", handled_at, protocol=1)] + keys(handled_at - lag, 60, 80, 0.1)
    task |= {"played": [m for _, m in played], "handled_at": handled_at}
    task["ticks"] = [handled_at + 0.1, ends + lag - 0.05, ends + lag + 0.05]
    assert task["ticks"][0] > ends  # by the clock alone, the first tick would answer
    (got,) = node_results([task], tmp_path)
    assert got == [None, None, pytest.approx(ends)]


def test_a_session_refuses_what_the_server_refuses(tmp_path):
    """Before hello, and an event dated before the previous one: the server's own words."""
    loaded = load(tiny_session(tmp_path))
    table = preference_table(loaded.events)
    script = [
        ["message", {"type": "note_on", "time": 0.0, "pitch": 60, "velocity": 80}],
        ["tick", 0.01],
        ["message", {"type": "hello", "time": 0.02, "protocol": 1}],
        ["message", {"type": "note_on", "time": 0.5, "pitch": 60, "velocity": 80}],
        ["message", {"type": "note_off", "time": 0.4, "pitch": 60}],
        ["message", {"type": "note_off", "time": 0.46, "pitch": 60}],  # within the jitter allowed
    ]
    task = {"kind": "session", "manifest": page_manifest(loaded), "table": table.tolist()}
    (got,) = node_results([task | {"script": script, "seed": 0, "slow": 0.0}], tmp_path)
    connection = Connection(None, Instrument(loaded).engine(LiveSettings(), 0), {})
    want = []
    for _, m in script[:1] + script[2:]:
        try:
            connection._admit(m)
            want.append(None)
        except protocol.ProtocolError as e:
            want.append(str(e))
    said = [
        reply[0]["message"] if reply and reply[0]["type"] == "error" else None
        for reply in got["replies"]
    ]
    assert said == want[:1] + [None] + want[1:]
    assert want[0] == "note_on: say hello first" and want[3].startswith("note_off: time 0.400")


SHAPES = {  # the server's messages and their fields (amadeus/live/protocol.py)
    "welcome": {"protocol", "model", "samples", "limits", "settings"},
    "answer": {"answer", "take", "phrase_end", "compute_ms"},
    "notes": {"events"},
    "answer_end": {"answer", "take", "time", "notes"},
    "stopped": {"time"},
    "settings": {"settings"},
    "delayed": {"answer", "take", "ms"},
    "error": {"message"},
}


def test_a_session_follows_the_protocol_and_the_answers_rules(tmp_path):
    loaded = load(tiny_session(tmp_path))
    manifest = page_manifest(loaded)
    script = session_script()
    task = {"kind": "session", "manifest": manifest, "script": script, "seed": 3, "slow": 0.0}
    (got,) = node_results([task | {"table": preference_table(loaded.events).tolist()}], tmp_path)
    live = manifest["live"]["defaults"] | {"release": 0.5}  # as the script sets it
    answers, current = [], None
    for reply in got["replies"]:
        for m in reply:
            assert set(m) == SHAPES[m["type"]] | {"type"}, m
            if m["type"] == "answer":
                current = {"start": m, "events": []}
                answers.append(current)
            elif m["type"] == "notes":
                assert all(set(e) == {"time", "pitch", "velocity"} for e in m["events"])
                current["events"] += m["events"]
            elif m["type"] in ("answer_end", "stopped"):
                current["end"] = m
    takes = [(a["start"]["answer"], a["start"]["take"]) for a in answers]
    assert takes == [(1, 1), (1, 2), (2, 1), (3, 1), (4, 1)]  # again made take 2
    for a in answers:
        times = [e["time"] for e in a["events"]]
        assert times == sorted(times)
        assert times[0] >= a["start"]["phrase_end"] + live["start_delay"] - 1e-9
        ons = [e["time"] for e in a["events"] if e["velocity"]]
        if a["end"]["type"] == "answer_end":  # every note rang out before it ended
            assert max(ons) < max(times) <= a["end"]["time"] and a["end"]["notes"] == len(ons)
    barge_in = answers[1]
    assert barge_in["end"] == {"type": "stopped", "time": 12.6}
    assert max(e["time"] for e in barge_in["events"]) <= 12.6 + live["lookahead"]  # sent ahead
    content = midi_content(base64.b64decode(got["midi"]))
    names = [name for name, _ in content["tracks"]]
    assert names == manifest["midi"]["tracks"] and content["ticks_per_beat"] == 480
    marks = dict((text, tick) for tick, text in content["markers"])
    assert list(marks) == [f"answer {a}, take {t}" for a, t in takes]
    kept, other = content["tracks"][1][1], content["tracks"][2][1]
    cut = marks["answer 1, take 2"] + 960 * (12.6 - 12.0 - live["start_delay"])
    assert all(start < cut for start, *_ in kept if start < marks["answer 2, take 1"])
    undone = range(marks["answer 2, take 1"], marks["answer 3, take 1"])
    assert not any(start in undone for start, *_ in kept)  # undo struck answer 2 out...
    assert any(start in undone for start, *_ in other)  # ...to the other takes


def onnx_runtime() -> None:
    """The tests that run an exported model skip without Helper A's stepper or onnxruntime-web
    in web/node_modules, except in CI."""
    missing = [
        str(p)
        for p in (WEB / "js/engine/stepper.js", WEB / "node_modules/onnxruntime-web")
        if not p.exists()
    ]
    if missing:
        message = f"missing: {', '.join(missing)} (cd web && npm ci)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_an_exported_model_plays_a_whole_session_in_node(tmp_path, int8):
    """The session through a real exported model in onnxruntime-web, both engines drawing with
    the same uniforms: the same events heard, the same logits (fp32: the same messages)."""
    onnx_runtime()
    from amadeus.live.onnx_export import export_onnx

    loaded = load(tiny_session(tmp_path, int8=int8))
    manifest = page_manifest(loaded) | export_onnx(loaded, tmp_path / "model.onnx")
    script = [item for item in session_script() if moment(item) < 14.0]  # to the soft pedal
    uniforms = np.random.default_rng(4).random(5000).tolist()
    want = python_session(loaded, None, script, 3, 0.0, KEEP_LOGITS, uniforms)
    task = {
        "kind": "session",
        "manifest": manifest,
        "onnx": str(tmp_path / "model.onnx"),
        "script": script,
        "seed": 3,
        "slow": 0.0,
        "keep_logits": KEEP_LOGITS,
        "uniforms": uniforms,
    }
    (got,) = node_results([task], tmp_path)
    same = next(
        (i for i, (a, b) in enumerate(zip(got["log"], want["log"])) if a != b), len(want["log"])
    )
    first = next(i for i, r in enumerate(want["replies"]) if r and r[0]["type"] == "answer")
    assert same > want["steps"][first - 1]  # the phrase heard alike, and the first answer step
    ours, theirs = np.array(got["logits"][:same]), np.array(want["logits"][:same])
    agree = (ours.argmax(1) == theirs.argmax(1)).mean()
    print(
        f"{'int8' if int8 else 'fp32'}: {same} steps alike, max |logit difference| "
        f"{np.abs(ours - theirs).max():.2e}, top-1 agreement {agree:.3f}"
    )
    if not int8:
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
        assert got["log"] == want["log"]
        assert without_compute_ms(got["replies"]) == without_compute_ms(want["replies"])
    else:
        assert agree >= 0.98
    kinds = [m["type"] for reply in got["replies"] for m in reply]
    assert kinds.count("answer") == 3 and kinds.count("stopped") == 1
