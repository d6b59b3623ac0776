"""The exported step graph run by onnxruntime in Python: what the page runs, here, so that the
parity checks (tests/test_export.py, bench/web_parity.py) step it exactly as the page does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


def onnx_session(path: Path) -> ort.InferenceSession:
    """The graph on the CPU with one thread, as the page runs it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def teacher_forced(
    session: ort.InferenceSession,
    sections: dict,
    tokens: np.ndarray,
    controls: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every step's logits [T, V] over a piece's tokens [T] from the graph's own initial hidden
    state (with the piece's controls [T, C], or none), and the last hidden state [L * H]."""
    o, model = sections["onnx"], sections["model"]
    hidden = np.array(o["initial_hidden"], np.float32).reshape(model["layers"], 1, model["hidden"])
    none = np.zeros((1, o["control_dim"]), np.float32)
    flag = np.array([[0.0 if controls is None else 1.0]], np.float32)
    rows = []
    for t, event in enumerate(np.concatenate([[o["start_token"]], tokens[:-1]])):
        feeds = {
            "event": np.array([event], np.int64),
            "hidden": hidden,
            "control": none if controls is None else controls[t : t + 1],
            "controlled": flag,
        }
        logits, hidden = session.run(["logits", "hidden_out"], feeds)
        rows.append(logits[0])
    return np.array(rows), hidden.reshape(-1)
