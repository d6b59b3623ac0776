"""One generation step of a session's model as an ONNX graph, so that the page can play without a
server: onnxruntime-web runs it in a Web Worker, the JavaScript engine steps it token by token.

The graph is written with `onnx.helper`, not traced, so that it holds the Python stepper's own
arithmetic:
- int8 sessions (`amadeus/quant`): each Linear is `kernel.ReferenceGemm` op by op (quantize the
  input in float64, an exact integer product, requantize and dequantize in float64), and the GRU
  cell rounds every element-wise result to float16 as `quant.stepper.fp16_cell` does (float16
  values held in float32: a Cast there and back rounds correctly and needs no float16 kernels).
  The logits and hidden states are Int8Stepper's to the bit (tests/test_export.py). Weights stay
  8-bit initializers: the file is the size of the `.int8.sess`.
- float sessions: the same graph in float32 (Gemm, no rounding).

Inputs and outputs (batch B, layers L, width H, controls C, vocabulary V):
    event int64 [B], hidden float32 [L, B, H], control float32 [B, C], controlled float32 [B, 1]
    (1: use `control`; 0: the model's "no control" path, as the Python stepper with None)
    -> logits float32 [B, V], hidden_out float32 [L, B, H]
Every op runs in onnxruntime-web's WebAssembly build (tests/test_web_stepper.py runs it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from amadeus.atomic import write_bytes
from amadeus.generate.loaded import Loaded
from amadeus.live.manifest import page_manifest
from amadeus.quant.gru import DecomposedGRU
from amadeus.quant.linear import QMAX, QMIN, Int8Embedding, Int8Linear

OPSET = 17  # from 13 on, Split and Unsqueeze take their sizes and axes as inputs, as here
IR_VERSION = 8  # what onnx 1.12 wrote with opset 17: older runtimes read it too
FLOAT, FLOAT16, DOUBLE = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE
INT64, UINT8 = TensorProto.INT64, TensorProto.UINT8


class _Graph:
    """Nodes and initializers under unique names: `op` adds a node and returns its output(s)."""

    def __init__(self, fp16: bool) -> None:
        self.fp16 = fp16  # round each element-wise result of the GRU cell to float16
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> Any:
        names = [self.name(op_type) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def round16(self, x: str) -> str:
        """x rounded to the nearest float16, kept as float32 (int8 sessions only)."""
        if not self.fp16:
            return x
        return self.op("Cast", self.op("Cast", x, to=FLOAT16), to=FLOAT)

    def add(self, a: str, b: str) -> str:
        return self.round16(self.op("Add", a, b))

    def mul(self, a: str, b: str) -> str:
        return self.round16(self.op("Mul", a, b))

    def sigmoid(self, x: str) -> str:
        """1 / (1 + exp(-x)): onnxruntime's Sigmoid is an approximation whose float16 rounding
        differs from torch's for 529 of the 63488 finite float16 inputs; this form for none."""
        denominator = self.op(
            "Add", self.op("Exp", self.op("Neg", x)), self.const("one", _float(1))
        )
        return self.op("Reciprocal", denominator)


def _float(value: float | np.ndarray) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def _double(value: float | np.ndarray) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _linear(g: _Graph, layer: nn.Module, x: str) -> str:
    """float [B, K] -> float [B, N] through an nn.Linear or an Int8Linear, as it computes."""
    if isinstance(layer, Int8Linear):
        return _int8_linear(g, layer, x)
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"cannot export a {type(layer).__name__} as a Linear")
    weight = layer.weight.detach().numpy()  # [N, K]
    bias = np.zeros(len(weight)) if layer.bias is None else layer.bias.detach().numpy()
    return g.op("Gemm", x, g.const("weight", weight), g.const("bias", _float(bias)), transB=1)


def _int8_linear(g: _Graph, layer: Int8Linear, x: str) -> str:
    """`kernel.ReferenceGemm` step by step. Quantizing and requantizing run in float64 as there,
    so that the output is the same to the bit. The product takes uint8 q + 128 (zero point
    128 - zp) by uint8 weights: onnxruntime's uint8 x uint8 product is fast and exact, where int8
    inputs take a path 40x slower and uint8 x int8 sums pairs in int16 on AVX2, which saturates
    (as fbgemm's does, see `kernel`)."""
    (in_scale, in_zp), (out_scale, out_zp) = layer.in_params, layer.out_params
    q = _quantize(g, g.op("Cast", x, to=DOUBLE), in_scale, in_zp)  # [B, K], int8 values
    q = g.op("Cast", g.op("Add", q, g.const("offset", _double(128))), to=UINT8)
    weight = layer.weight.numpy().T.astype(np.int16) + 128  # [K, N]
    products = g.op(
        "MatMulInteger",
        q,
        g.const("weight", weight.astype(np.uint8)),
        g.const("in_zero_point", np.array(128 - in_zp, dtype=np.uint8)),
        g.const("w_zero_point", (128 - layer.w_zero_point.numpy()).astype(np.uint8)),  # [N]
    )  # int32 [B, N]: (q + zp) @ (w + w_zp).T, exact
    acc = g.op("Cast", g.op("Add", products, g.const("bias", layer.bias.numpy())), to=DOUBLE)
    requant = out_scale / (in_scale * layer.w_scale.double().numpy())  # [N]
    y = g.op("Add", _quantize(g, acc, requant, out_zp), g.const("out_zero_point", _double(out_zp)))
    return g.op("Cast", g.op("Div", y, g.const("out_scale", _double(out_scale))), to=FLOAT)


def _quantize(g: _Graph, x: str, scale: float | np.ndarray, zero_point: int) -> str:
    """`linear.quantize` in float64: clamp(round(x * scale - zp), -128, 127)."""
    x = g.op(
        "Sub", g.op("Mul", x, g.const("scale", _double(scale))), g.const("zp", _double(zero_point))
    )
    low, high = g.const("low", _double(QMIN)), g.const("high", _double(QMAX))
    return g.op("Clip", g.op("Round", x), low, high)


def _embedding(g: _Graph, layer: nn.Module, event: str) -> str:
    """event int64 [B] -> its row [B, V], dequantized as `Int8Embedding` does."""
    if isinstance(layer, nn.Embedding):
        return g.op("Gather", g.const("embedding", layer.weight.detach().numpy()), event)
    if not isinstance(layer, Int8Embedding):
        raise TypeError(f"cannot export a {type(layer).__name__} as an embedding")
    rows = g.op("Cast", g.op("Gather", g.const("embedding", layer.weight.numpy()), event), to=FLOAT)
    zero = g.op("Gather", g.const("zero_point", _float(layer.zero_point.numpy()[:, None])), event)
    scale = g.op("Gather", g.const("scale", layer.scale.numpy()[:, None]), event)
    return g.op("Div", g.op("Add", rows, zero), scale)


def _cell(g: _Graph, cell: nn.Module, x: str, h: str, size: int) -> str:
    """One GRU layer (`quant.gru.GRUCell.update`): x [B, I], h [B, H] -> h' [B, H]."""
    gates = g.const("gates", np.array([2 * size, size], dtype=np.int64))  # r and z | n
    halves = g.const("halves", np.array([size, size], dtype=np.int64))  # r | z
    gates_x = g.round16(_linear(g, cell.fc_gate_x, x))  # [B, 3H], as the cell takes them
    gates_h = g.round16(_linear(g, cell.fc_gate_h, h))
    rz_x, n_x = g.op("Split", gates_x, gates, axis=1, outputs=2)
    rz_h, n_h = g.op("Split", gates_h, gates, axis=1, outputs=2)
    r, z = g.op("Split", g.round16(g.sigmoid(g.add(rz_x, rz_h))), halves, axis=1, outputs=2)
    n = g.round16(g.op("Tanh", g.add(n_x, g.mul(r, n_h))))
    return g.add(n, g.mul(z, g.round16(g.op("Sub", g.round16(h), n))))


def step_graph(loaded: Loaded) -> onnx.ModelProto:
    """The session's model, one step, as an ONNX model (checked)."""
    model, c = loaded.model, loaded.model.config
    gru = model.gru if isinstance(model.gru, DecomposedGRU) else DecomposedGRU.from_gru(model.gru)
    g = _Graph(fp16=loaded.int8)
    batch = "batch"
    inputs = [
        helper.make_tensor_value_info("event", INT64, [batch]),
        helper.make_tensor_value_info("hidden", FLOAT, [c.gru_layers, batch, c.hidden_dim]),
        helper.make_tensor_value_info("control", FLOAT, [batch, c.control_dim]),
        helper.make_tensor_value_info("controlled", FLOAT, [batch, 1]),
    ]
    # `input_features`: the event's embedding, the "no control" flag, the control (or zeros)
    flag = g.op("Sub", g.const("one", _float(1.0)), "controlled")
    control = g.op("Mul", "control", "controlled")
    features = g.op("Concat", _embedding(g, model.event_embedding, "event"), flag, control, axis=1)
    slope = model.concat_input_fc_activation.negative_slope
    x = g.op("LeakyRelu", _linear(g, model.concat_input_fc, features), alpha=slope)
    states = []
    for layer, cell in enumerate(gru.cells):
        h = g.op("Gather", "hidden", g.const("layer", np.array(layer, dtype=np.int64)), axis=0)
        x = _cell(g, cell, x, h, c.hidden_dim)
        states.append(x)
    logits = _linear(g, model.output_fc, g.op("Concat", *states, axis=1))  # [B, L*H] in
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    axis0 = g.const("axis0", np.array([0], dtype=np.int64))
    stacked = [g.op("Unsqueeze", state, axis0) for state in states]
    g.nodes.append(helper.make_node("Concat", stacked, ["hidden_out"], axis=0))
    outputs = [
        helper.make_tensor_value_info("logits", FLOAT, [batch, c.event_dim]),
        helper.make_tensor_value_info("hidden_out", FLOAT, [c.gru_layers, batch, c.hidden_dim]),
    ]
    graph = helper.make_graph(g.nodes, "amadeus_step", inputs, outputs, g.initializers)
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="amadeus",
        doc_string=f"{loaded.path.name}: one step of the Performance RNN",
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def initial_hidden(loaded: Loaded) -> list[float]:
    """The steppers' initial hidden state from a zero init, [L * H] layer-major."""
    with torch.inference_mode():
        zeros = torch.zeros(1, loaded.model.config.init_dim)
        return loaded.model.init_to_hidden(zeros).flatten().tolist()


def export_onnx(loaded: Loaded, path: Path) -> dict[str, Any]:
    """Writes the step graph to `path` (atomically) and returns the page's whole manifest: the
    session's (`manifest.page_manifest`) with the graph's `onnx` section."""
    data = step_graph(loaded).SerializeToString()
    write_bytes(path, data)
    c = loaded.model.config
    return page_manifest(loaded) | {
        "onnx": {
            "file": path.name,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "opset": OPSET,
            "init_dim": c.init_dim,
            "control_dim": c.control_dim,
            "event_dim": c.event_dim,
            "start_token": loaded.model.start_token,
            "initial_hidden": initial_hidden(loaded),
        },
    }


def export_page_model(loaded: Loaded, folder: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """What the page loads: FOLDER/NAME.onnx and FOLDER/NAME.json (the manifest, naming the
    graph beside it); returns the JSON's path and the manifest."""
    manifest = export_onnx(loaded, folder / f"{name}.onnx")
    path = folder / f"{name}.json"
    write_bytes(path, json.dumps(manifest, indent=1).encode())
    return path, manifest
