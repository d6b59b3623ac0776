#!/usr/bin/env python3
"""The page's model against Python's (issue 22): the session exported by export.py's graph, run
by onnxruntime (Python) and by onnxruntime-web's WebAssembly build under Node (the page's
stepper, web/js/engine/stepper.js), against the session's own Python stepper (Int8Stepper for an
int8 session), over the session's validation files, whole pieces teacher-forced from a zero init,
unconditioned as generation's default (--conditioned: with the pieces' own controls). Per
runtime: NLL (nats/event) of both, its relative difference, how often the likeliest next event
is the same (top-1 agreement), how many steps have the very same logits, and the time a step
took. The issue's bar: NLL within 1%, top-1 agreement at least 98%.

    python bench/web_parity.py -s models/bach.int8.sess [-d DATASET] [--conditioned] [--pieces N]

Node runs where node and web/node_modules/onnxruntime-web are (cd web && npm ci); else it says so.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amadeus import cli  # noqa: E402
from amadeus.data import controls as ctl  # noqa: E402
from amadeus.data.dataset import DEFAULT_VAL_FRACTION, load_split  # noqa: E402
from amadeus.errors import UsageError  # noqa: E402
from amadeus.generate.loaded import Loaded, load  # noqa: E402
from amadeus.live.onnx_export import export_onnx  # noqa: E402
from amadeus.live.onnx_steps import onnx_session, teacher_forced  # noqa: E402
from amadeus.model.stepper import make_stepper  # noqa: E402

NODE_SCRIPT = ROOT / "web/test/stepper_logits.mjs"
Piece = tuple[np.ndarray, np.ndarray | None]  # tokens [T], controls [T, C] or None


@dataclass
class Run:
    """Every step's logits [N, V] of all pieces, and seconds per step."""

    logits: np.ndarray
    step_seconds: float


def python_run(loaded: Loaded, pieces: list[Piece]) -> Run:
    """The session's Python stepper, one thread (as the live engine steps)."""
    stepper = make_stepper(loaded.model, "cpu")
    rows, began = [], time.perf_counter()
    for tokens, controls in pieces:
        hidden = stepper.initial(np.zeros((1, loaded.model.config.init_dim), np.float32))
        for t, event in enumerate(inputs(loaded.model.start_token, tokens)):
            control = None if controls is None else controls[t : t + 1]
            logits, hidden = stepper.step(np.array([event]), hidden, control)
            rows.append(logits[0])
    return Run(np.array(rows), (time.perf_counter() - began) / len(rows))


def onnx_run(path: Path, sections: dict, pieces: list[Piece]) -> Run:
    """The exported graph in onnxruntime (Python), one thread."""
    session = onnx_session(path)
    rows, began = [], time.perf_counter()
    for tokens, controls in pieces:
        rows.extend(teacher_forced(session, sections, tokens, controls)[0])
    return Run(np.array(rows), (time.perf_counter() - began) / len(rows))


def node_run(folder: Path, graph: Path, sections: dict, pieces: list[Piece]) -> Run | str:
    """The page's stepper in onnxruntime-web under Node (one thread); a reason where it cannot."""
    node = shutil.which("node")
    if node is None or not (ROOT / "web/node_modules/onnxruntime-web").is_dir():
        return "skipped: needs node and web/node_modules (cd web && npm ci)"
    manifest, fixture, out = folder / "model.json", folder / "pieces.json", folder / "out.f32"
    manifest.write_text(json.dumps(sections))
    listed = [
        {"events": t.tolist(), "controls": None if c is None else c.tolist()} for t, c in pieces
    ]
    fixture.write_text(json.dumps({"pieces": listed}))
    command = [node, NODE_SCRIPT, graph, manifest, fixture, out]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT / "web")
    if done.returncode != 0:
        raise RuntimeError(f"node failed: {done.stderr.strip()}")
    timing = json.loads(done.stdout)
    logits = np.fromfile(out, np.float32).reshape(timing["steps"], -1)
    return Run(logits, timing["seconds"] / timing["steps"])


def inputs(start_token: int, tokens: np.ndarray) -> np.ndarray:
    """What each step reads: the start token, then the piece's tokens but the last."""
    return np.concatenate([[start_token], tokens[:-1]]).astype(np.int64)


def nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Nats per event."""
    logp = torch.log_softmax(torch.from_numpy(logits).double(), -1)
    return -logp[torch.arange(len(targets)), torch.from_numpy(targets)].mean().item()


def report(name: str, run: Run, reference: Run, targets: np.ndarray) -> str:
    ours, theirs = nll(run.logits, targets), nll(reference.logits, targets)
    agree = (run.logits.argmax(1) == reference.logits.argmax(1)).mean()
    same = (run.logits == reference.logits).all(1).mean()
    return (
        f"{name}: NLL {ours:.5f} vs {theirs:.5f} nats/event (relative difference "
        f"{(ours - theirs) / theirs:+.2e}), top-1 agreement {agree:.4f}, identical logits at "
        f"{same:.4f} of steps, {run.step_seconds * 1e3:.2f} ms/step "
        f"(Python: {reference.step_seconds * 1e3:.2f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, required=True, help="an .int8.sess or a .sess")
    cli.add_dataset(p)
    p.add_argument("--conditioned", action="store_true", help="with the pieces' own controls")
    p.add_argument("--pieces", type=cli.positive_int, default=None, help="the first N files")
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    torch.set_num_threads(1)
    loaded = load(args.session)
    record = loaded.data
    if args.dataset is None and record is None:
        raise UsageError(f"{loaded.path}: the session records no dataset: give one with -d")
    fraction = record.val_fraction if record else DEFAULT_VAL_FRACTION
    validation = load_split(args.dataset or record.folder(), fraction, loaded.codec).validation
    validation = validation[: args.pieces]
    pieces = [
        (v.tokens, ctl.expand(v.controls).astype(np.float32) if args.conditioned else None)
        for v in validation
    ]
    targets = np.concatenate([tokens for tokens, _ in pieces]).astype(np.int64)
    with tempfile.TemporaryDirectory() as folder:
        graph = Path(folder) / "model.onnx"
        sections = export_onnx(loaded, graph)
        print(
            f"{loaded.path} ({sections['model']['precision']}) -> ONNX "
            f"{sections['onnx']['bytes'] / 1e6:.2f} MB; {len(pieces)} validation files, "
            f"{len(targets)} events, {'conditioned' if args.conditioned else 'unconditioned'}"
        )
        reference = python_run(loaded, pieces)
        print(report("onnxruntime (Python)", onnx_run(graph, sections, pieces), reference, targets))
        web = node_run(Path(folder), graph, sections, pieces)
        name = "onnxruntime-web (Node, WebAssembly)"
        print(f"{name}: {web}" if isinstance(web, str) else report(name, web, reference, targets))


if __name__ == "__main__":
    cli.run(main)
