"""The int8 model's generation stepper (the interface of `amadeus.stepper`), bit for bit
`Int8PerformanceRNN.step` at a fraction of its per-step cost.

A step is one TorchScript call: the kernels' modules are called from the script, not from
Python, where fbgemm's op alone spends 13 us a call on argument handling (see `kernel`). Each
gate's fp16 arithmetic runs on tensors converted once, and without controls the token-only path
up to the first layer's input gates is a [V, 3H] table lookup.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from amadeus.quant.quantizer import Int8PerformanceRNN

_SCRIPT_DEPRECATION = r"`torch\.jit\.script` is deprecated"


class Int8Stepper:
    """Hidden state: [L, B, H] float32, the model's own layout: each layer's rows are contiguous,
    as the int8 kernel's input must be."""

    def __init__(self, model: Int8PerformanceRNN, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.start_token, self.event_dim = model.start_token, model.config.event_dim
        with warnings.catch_warnings():
            # TorchScript is deprecated in torch 2.13 but still the way to run ops without
            # Python's per-call cost; torch is pinned, and the warning is for us, not the user.
            warnings.filterwarnings("ignore", _SCRIPT_DEPRECATION, DeprecationWarning)
            self.script = torch.jit.script(Int8Step(model, self.device))

    @torch.inference_mode()
    def initial(self, init: np.ndarray) -> Tensor:
        return self.model.init_to_hidden(torch.as_tensor(init, device=self.device))

    @torch.inference_mode()
    def step(
        self, events: np.ndarray, hidden: Tensor, control: np.ndarray | None = None
    ) -> tuple[np.ndarray, Tensor]:
        events = torch.as_tensor(events, device=self.device)
        if control is not None:
            control = torch.as_tensor(control, dtype=torch.float32, device=self.device)
        logits, hidden = self.script(events, hidden, control)
        return logits.cpu().numpy(), hidden

    def take(self, hidden: Tensor, rows: np.ndarray) -> Tensor:
        return hidden.index_select(1, torch.as_tensor(rows, device=self.device))


class Int8Step(nn.Module):
    """One step of the int8 model for TorchScript: (events [B], hidden [L, B, H], control [B, C]
    or None) -> (logits [B, V], hidden')."""

    def __init__(self, model: Int8PerformanceRNN, device: torch.device) -> None:
        super().__init__()
        cells = model.gru.cells
        self.hidden_dim = model.config.hidden_dim
        self.gates_x = nn.ModuleList(cell.fc_gate_x.pack(device) for cell in cells)
        self.gates_h = nn.ModuleList(cell.fc_gate_h.pack(device) for cell in cells)
        self.concat = model.concat_input_fc.pack(device)
        self.activation = model.concat_input_fc_activation
        self.output = model.output_fc.pack(device)
        with torch.inference_mode():
            tokens = torch.arange(model.config.event_dim, device=device)
            self.embedded = model.event_embedding(tokens)  # [V, V], every row dequantized
            uncontrolled = model.embed_inputs(tokens[None])[0]  # [V, H]
            self.uncontrolled = self.gates_x[0](uncontrolled).half()  # [V, 3H]

    def forward(
        self, events: Tensor, hidden: Tensor, control: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if control is None:
            gates_x = self.uncontrolled.index_select(0, events)  # [B, 3H]
        else:  # `embed_inputs` with its "no control" flag 0
            flag = control.new_zeros(control.shape[0], 1)
            embedded = self.embedded.index_select(0, events)
            x = self.concat(torch.cat([embedded, flag, control], 1))  # [B, H]
            gates_x = self.gates_x[0](self.activation(x))
        new = torch.empty_like(hidden)  # [L, B, H]
        for layer, (gate_x, gate_h) in enumerate(zip(self.gates_x, self.gates_h)):
            if layer > 0:
                gates_x = gate_x(new[layer - 1])
            new[layer] = fp16_cell(gates_x, gate_h(hidden[layer]), hidden[layer], self.hidden_dim)
        batch = hidden.shape[1]
        return self.output(new.transpose(0, 1).reshape(batch, -1)), new  # [B, L*H] in


def fp16_cell(gates_x: Tensor, gates_h: Tensor, h: Tensor, size: int) -> Tensor:
    """`GRUCell.update` with fp16 element-wise ops: gates [B, 3H], h [B, H] -> h' (fp16).
    Sigmoid and tanh take the fp16 sums as they are: torch computes them in fp32 and rounds to
    fp16, which the next fp16 op would do anyway (the same bits for every fp16 input, tested), so
    the fp32 activations of the scheme cost no conversions."""
    gx, gh = gates_x.half(), gates_h.half()
    rz = torch.sigmoid(gx[:, : 2 * size] + gh[:, : 2 * size])  # [B, 2H]
    n = torch.tanh(gx[:, 2 * size :] + rz[:, :size] * gh[:, 2 * size :])
    return n + rz[:, size:] * (h.half() - n)
