"""What the page's engine tests share: Node (the tests skip without it, except in CI), tiny
sessions that record their data as a trained one does, a stepper whose logits are a fixed table
(the same music in Python and JavaScript, whatever the random draws), and a MIDI file's content
as mido reads it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import DataRecord, Settings
from amadeus.model.network import PerformanceRNN
from amadeus.model.session import Session
from amadeus.quant.quantizer import calibrate, quantize
from amadeus.quant.session import save_int8

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
GAP = 20.0  # logits between one preference and the next: the first allowed one is drawn


def node() -> str:
    """Node's path; the test skips without it, except in CI (CI set), where it fails."""
    found = shutil.which("node")
    if found is None:
        message = "node is missing: apt-get install -y nodejs"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_node(script: Path, fixture: dict, folder: Path) -> list:
    """`script` run by Node on `fixture` (written as JSON): the results it prints."""
    path = folder / "fixture.json"
    path.write_text(json.dumps(fixture, allow_nan=False))
    done = subprocess.run(
        [node(), str(script), str(path)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def tiny_session(
    folder: Path,
    codec: str = "prnn",
    velocities: tuple[float, float] | None = (40.0, 100.0),
    longest_note: float | None = 3.0,
    int8: bool = False,
) -> Path:
    """A random 2 x 32 model's .sess (or .int8.sess, quantized on random calibration data)
    whose data record says how its (imagined) data was made."""
    torch.manual_seed(0)
    size = EventCodec(codec).size
    model = PerformanceRNN(size, 24, 8, 32, 2).eval()
    data = DataRecord(
        "data", settings=Settings(codec), longest_note=longest_note, velocities=velocities
    )
    if not int8:
        path = folder / f"tiny-{codec}.sess"
        Session(model.config, model.state_dict(), codec=codec, data=data).save(path)
        return path
    batches = [(torch.randn(4, 8), torch.randint(0, size, (32, 4)), torch.rand(32, 4, 24))]
    path = folder / f"tiny-{codec}.int8.sess"
    save_int8(quantize(model, calibrate(model, batches * 3)), codec, path, data=data)
    return path


def preference_table(codec: EventCodec, seed: int = 0) -> np.ndarray:
    """[V, V] float32 logits: per input event, every event ranked, a kind at a time, GAP apart.
    After a note-on a time shift, after a shift the release of a sounding note, after a
    velocity a note-on, after a note-off a velocity: music that moves on and ends its notes."""
    rng = np.random.default_rng(seed)
    after = {
        "note_on": ("time_shift", "note_on", "note_off", "velocity"),
        "time_shift": ("note_off", "velocity", "time_shift", "note_on"),
        "velocity": ("note_on", "time_shift", "note_off", "velocity"),
        "note_off": ("velocity", "time_shift", "note_off", "note_on"),
    }
    table = np.empty((codec.size, codec.size), dtype=np.float32)
    for event in range(codec.size):
        kinds = after[codec.token_kind[event]]
        ranked = np.concatenate([rng.permutation(codec.ranges[kind]) for kind in kinds])
        table[event, ranked] = -GAP * np.arange(codec.size)
    return table


class TableStepper:
    """The logits of a fixed table row per input event; the hidden state counts the steps."""

    def __init__(self, table: np.ndarray):
        self.table = table
        self.start_token = self.event_dim = len(table) - 1

    def initial(self, init: np.ndarray) -> np.ndarray:
        return np.zeros(1, dtype=np.float32)

    def step(self, event, hidden, control):
        return self.table[int(np.asarray(event).reshape(-1)[0])][None], hidden + 1


class Logged:
    """A stepper whose steps are logged: each one's event and control, and the logits of the
    first `keep` (as web/test/engine_parity.mjs logs them)."""

    def __init__(self, stepper, keep: int = 0):
        self.stepper, self.keep = stepper, keep
        self.start_token, self.event_dim = stepper.start_token, stepper.event_dim
        self.log: list = []
        self.logits: list = []
        self.steps = 0

    def initial(self, init: np.ndarray):
        return self.stepper.initial(init)

    def step(self, event, hidden, control):
        seen = None if control is None else np.asarray(control, np.float32).reshape(-1).tolist()
        self.log.append([int(np.asarray(event).reshape(-1)[0]), seen])
        self.steps += 1
        logits, hidden = self.stepper.step(event, hidden, control)
        if len(self.logits) < self.keep:
            self.logits.append(np.asarray(logits, np.float32).reshape(-1).tolist())
        return logits, hidden


def busy_clock(engine, stepper: Logged, slow: float):
    """The caller's clock of a machine on which each step costs `slow` seconds: the time of the
    engine's call, plus the steps taken since (as web/test/engine_parity.mjs counts them)."""
    mark = [None, 0]

    def clock() -> float:
        if engine.called is not mark[0]:
            mark[:] = [engine.called, stepper.steps]
        return engine.called[0] + slow * (stepper.steps - mark[1])

    return clock


def midi_content(data: bytes) -> dict:
    """A MIDI file as mido reads it: its tracks' names and notes (on tick, off tick, pitch,
    velocity), the markers and tempos (tick, value)."""
    mid = mido.MidiFile(file=io.BytesIO(data))
    tracks, markers, tempos = [], [], []
    for track in mid.tracks:
        tick, name, sounding, notes = 0, None, {}, []
        for msg in track:
            tick += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "marker":
                markers.append((tick, msg.text))
            elif msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault(msg.note, []).append((tick, msg.velocity))
            elif msg.type in ("note_on", "note_off"):
                start, velocity = sounding[msg.note].pop(0)
                notes.append((start, tick, msg.note, velocity))
        tracks.append((name, sorted(notes)))
    return {
        "type": mid.type,
        "ticks_per_beat": mid.ticks_per_beat,
        "tracks": tracks,
        "markers": sorted(markers),
        "tempos": tempos,
    }
