"""Steppers. Generation is a loop of small steps, so its cost is per-step overhead; a stepper
does one step of a model as fast as the hardware allows:

    stepper.initial(init [B, init_dim]) -> hidden
    stepper.step(events [B], hidden, control [B, C] or None) -> (logits [B, V], hidden)
    stepper.take(hidden, rows [R]) -> hidden of those rows (beam search reorders and repeats rows)

`hidden` belongs to the stepper; events, controls and logits are numpy arrays. On the CPU the
float model runs as a numpy port of `PerformanceRNN.step` with every token-only computation
tabulated (the faster library's matrix product for each batch size; see _matmul). Elsewhere, and
for any other model offering `step`, `init_to_hidden` and `config`, the model's own torch `step`
runs. A model with a `stepper(device)` method (the int8 one) supplies its own.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from amadeus.model.network import PerformanceRNN

TORCH_MATMUL_ROWS = range(2, 17)  # batch sizes whose matrix products go to torch: see _matmul


def make_stepper(model: Any, device: torch.device | str = "cpu") -> Any:
    """The fastest stepper for `model` on `device`."""
    device = torch.device(device)
    if hasattr(model, "stepper"):
        return model.stepper(device)
    # Exactly the float model: a subclass (such as quant's split GRU) may hold other weights.
    if device.type == "cpu" and type(model) is PerformanceRNN:
        return NumpyStepper(model)
    return TorchStepper(model, device)


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


@torch.no_grad()
def _input_tables(model: PerformanceRNN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's own input layer, tabulated in float64 (concat_input_fc is linear in the event's
    embedding and the control): (the pre-activation of each event with control zeros and flag 0
    [V, H], each control unit's share of it [C, H], each event's unconditioned input after the
    activation [V, H])."""
    double = copy.deepcopy(model).cpu().double().eval()
    c = model.config
    tokens = torch.arange(c.event_dim)[None]  # [1, V]
    zeros = torch.zeros(1, c.event_dim, c.control_dim, dtype=torch.float64)
    event_in = double.concat_input_fc(double.input_features(tokens, zeros))[0]  # [V, H]
    units = torch.eye(c.control_dim, dtype=torch.float64)[None]  # [1, C, C]
    first = tokens[:, :1].expand(1, c.control_dim)  # any event: the control's share is linear
    control_in = double.concat_input_fc(double.input_features(first, units))[0] - event_in[0]
    uncontrolled = double.embed_inputs(tokens)[0]  # [V, H]
    return event_in.numpy(), control_in.numpy(), uncontrolled.numpy()


def _matmul(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x [B, in] @ weight [in, out] -> [B, out], by the library that is faster for B rows.

    Measured on the 2-core CPU (3 x 512, whole steps): numpy's OpenBLAS wins for one row (a
    memory-bound matrix-vector product) and for 32 rows and more; torch's MKL, on the same
    memory, wins by about 1.5x for 2-16 rows. A loop keeps to one library per batch size: two
    thread pools alternating within a step wait on each other's spinning threads."""
    if len(x) in TORCH_MATMUL_ROWS:
        return torch.mm(torch.from_numpy(x), torch.from_numpy(weight)).numpy()
    return x @ weight


class NumpyStepper:
    """`PerformanceRNN.step` in numpy float32, for the CPU (matrix products: see _matmul).

    concat_input_fc is linear in its three parts, so the embedding's part becomes a [V, H] table,
    and without controls the whole input path up to the first GRU layer's input gates becomes a
    [V, 3H] table: one row lookup per step instead of two matrix products. Hidden state is
    [B, L*H], layer 0 first: the row layout output_fc reads, so no concatenation per step.
    """

    def __init__(self, model: PerformanceRNN):
        c = model.config
        self.start_token, self.event_dim = model.start_token, c.event_dim
        self.layers, self.hidden_dim = c.gru_layers, c.hidden_dim
        self.slope = model.concat_input_fc_activation.negative_slope
        w = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
        event_in, control_in, uncontrolled = _input_tables(model)  # float64
        self.event_in, self.control_in = _f32(event_in), _f32(control_in)  # [V, H], [C, H]
        self.gate_x, self.gate_h, self.bias_x, self.bias_hn = [], [], [], []
        H = c.hidden_dim
        for layer in range(c.gru_layers):
            b_ih, b_hh = w[f"gru.bias_ih_l{layer}"], w[f"gru.bias_hh_l{layer}"]
            self.gate_x.append(_f32(w[f"gru.weight_ih_l{layer}"].T))  # [H, 3H], gates r, z, n
            self.gate_h.append(_f32(w[f"gru.weight_hh_l{layer}"].T))  # [H, 3H]
            # r and z add both biases; n's hidden bias stays inside r * (W_hn h + b_hn).
            self.bias_x.append(_f32(b_ih + np.concatenate([b_hh[: 2 * H], np.zeros(H)])))
            self.bias_hn.append(_f32(b_hh[2 * H :]))
        gates0 = uncontrolled @ w["gru.weight_ih_l0"].T  # [V, 3H]
        self.uncontrolled = _f32(gates0 + self.bias_x[0])
        self.init_w, self.init_b = _f32(w["inithid_fc.weight"].T), _f32(w["inithid_fc.bias"])
        self.out_w, self.out_b = _f32(w["output_fc.weight"].T), _f32(w["output_fc.bias"])

    def initial(self, init: np.ndarray) -> np.ndarray:
        """Noise [B, init_dim] -> hidden [B, L*H], through the model's plain view (see
        `PerformanceRNN.init_to_hidden`) that mixes batch and layers for B > 1."""
        batch, L, H = len(init), self.layers, self.hidden_dim
        hidden = np.tanh(_f32(init) @ self.init_w + self.init_b)  # [B, L*H]
        return np.ascontiguousarray(
            hidden.reshape(L, batch, H).transpose(1, 0, 2).reshape(batch, -1)
        )

    def step(
        self, events: np.ndarray, hidden: np.ndarray, control: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        events = np.asarray(events, dtype=np.int64)
        H = self.hidden_dim
        if control is None:
            gates_x = self.uncontrolled[events]  # [B, 3H]
        else:
            x = self.event_in[events] + _f32(control) @ self.control_in  # [B, H]
            x = np.maximum(x, self.slope * x)  # LeakyReLU, slope < 1
            gates_x = _matmul(x, self.gate_x[0]) + self.bias_x[0]
        new = np.empty_like(hidden)  # [B, L*H]
        for layer in range(self.layers):
            if layer:
                below = new[:, (layer - 1) * H : layer * H]
                gates_x = _matmul(below, self.gate_x[layer]) + self.bias_x[layer]
            self._gru(layer, gates_x, hidden[:, layer * H : (layer + 1) * H], new[:, layer * H :])
        return _matmul(new, self.out_w) + self.out_b, new

    def _gru(self, layer: int, gates_x: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
        """nn.GRU's cell; writes h' [B, H] into the first H columns of `out`."""
        H = self.hidden_dim
        gates_h = _matmul(h, self.gate_h[layer])  # [B, 3H]
        rz = gates_x[:, : 2 * H] + gates_h[:, : 2 * H]
        rz *= 0.5  # sigmoid(a) = (tanh(a / 2) + 1) / 2
        np.tanh(rz, out=rz)
        rz += 1
        rz *= 0.5
        gates_h[:, 2 * H :] += self.bias_hn[layer]
        n = np.tanh(gates_x[:, 2 * H :] + rz[:, :H] * gates_h[:, 2 * H :])
        np.add(n, rz[:, H:] * (h - n), out=out[:, :H])  # (1 - z) * n + z * h

    def take(self, hidden: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return hidden[rows]


class TorchStepper:
    """Any model's own torch `step`: the float model on CUDA, or a model NumpyStepper cannot
    read. Sets the model to eval mode (no dropout)."""

    def __init__(self, model: Any, device: torch.device):
        self.model, self.device = model.to(device).eval(), device
        self.start_token, self.event_dim = model.start_token, model.config.event_dim

    @torch.inference_mode()
    def initial(self, init: np.ndarray) -> torch.Tensor:
        return self.model.init_to_hidden(
            torch.tensor(init, dtype=torch.float32, device=self.device)
        )

    @torch.inference_mode()
    def step(
        self, events: np.ndarray, hidden: torch.Tensor, control: np.ndarray | None = None
    ) -> tuple[np.ndarray, torch.Tensor]:
        events = torch.tensor(events, dtype=torch.int64, device=self.device)
        if control is not None:
            control = torch.tensor(control, dtype=torch.float32, device=self.device)
        logits, hidden = self.model.step(events, hidden, control)
        return logits.float().cpu().numpy(), hidden

    def take(self, hidden: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return hidden[:, torch.tensor(rows, device=self.device)]  # [L, R, H]
