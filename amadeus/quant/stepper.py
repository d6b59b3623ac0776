"""The int8 model's generation stepper (the interface of `amadeus.model.stepper`), bit for bit
`Int8PerformanceRNN.step` at a fraction of its per-step cost.

A step is one TorchScript call: the kernels' modules are called from the script, not from
Python, where fbgemm's op alone spends 13 us a call on argument handling (see `kernel`). Each
layer's fp16 cell is one compiled op where `native` can build it, else a dozen torch calls on
gates converted to fp16 once. Without controls, the token-only path up to the first layer's
input gates is a [V, 3H] table lookup.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor, nn

from amadeus.model.network import PerformanceRNN
from amadeus.quant import kernel, native

_SCRIPT_DEPRECATION = r"`torch\.jit\.script` is deprecated"


class Int8Stepper:
    """Hidden state: [L, B, H] float32, the model's own layout: each layer's rows are contiguous,
    as the int8 kernel's input must be.

    `compiled`: run each layer's fp16 cell as `native`'s compiled op (None: where it is available,
    which needs fbgemm's exact kernel, on the CPU), else as `fp16_cell`'s torch calls. Both give the
    same bits."""

    def __init__(
        self,
        model: PerformanceRNN,  # the int8 model (`models.Int8PerformanceRNN`)
        device: torch.device | str = "cpu",
        compiled: bool | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.start_token, self.event_dim = model.start_token, model.config.event_dim
        possible = self.device.type == "cpu" and kernel.FBGEMM_EXACT
        if compiled is None:
            compiled = possible and native.available()
        elif compiled and not (possible and native.available()):
            raise ValueError(
                "the compiled GRU cell needs fbgemm with AVX512-VNNI, torch's AVX512 kernels and "
                "a C++ compiler"
            )
        self.compiled = compiled
        with warnings.catch_warnings():
            # TorchScript is deprecated in torch 2.13 but still the way to run ops without
            # Python's per-call cost; torch is pinned, and the warning is for us, not the user.
            warnings.filterwarnings("ignore", _SCRIPT_DEPRECATION, DeprecationWarning)
            self.script = torch.jit.script(Int8Step(model, self.device, compiled))

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

    def __init__(self, model: PerformanceRNN, device: torch.device, compiled: bool) -> None:
        super().__init__()
        layer = CompiledCell if compiled else TorchCell
        self.cells = nn.ModuleList(
            layer(cell.fc_gate_x.pack(device), cell.fc_gate_h.pack(device))
            for cell in model.gru.cells
        )
        self.concat = model.concat_input_fc.pack(device)
        self.activation = model.concat_input_fc_activation
        self.output = model.output_fc.pack(device)
        with torch.inference_mode():
            tokens = torch.arange(model.config.event_dim, device=device)
            self.embedded = model.event_embedding(tokens)  # [V, V], every row dequantized
            uncontrolled = model.embed_inputs(tokens[None])[0]  # [V, H]
            self.uncontrolled = self.cells[0].input_gates(uncontrolled)  # [V, 3H]

    def forward(
        self, events: Tensor, hidden: Tensor, control: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if control is None:
            gates_x = self.uncontrolled.index_select(0, events)  # [B, 3H]
        else:  # `embed_inputs` with its "no control" flag 0
            flag = control.new_zeros(control.shape[0], 1)
            embedded = self.embedded.index_select(0, events)
            x = self.concat(torch.cat([embedded, flag, control], 1))  # [B, H]
            gates_x = self.cells[0].input_gates(self.activation(x))
        new = torch.empty_like(hidden)  # [L, B, H]
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                gates_x = cell.input_gates(new[layer - 1])
            cell(gates_x, hidden[layer], new[layer])
        batch = hidden.shape[1]
        return self.output(new.transpose(0, 1).reshape(batch, -1)), new  # [B, L*H] in


class TorchCell(nn.Module):
    """One layer's gates and fp16 cell in torch calls, on any kernel and device."""

    def __init__(self, gate_x: nn.Module, gate_h: nn.Module) -> None:
        super().__init__()
        self.gate_x, self.gate_h = gate_x, gate_h

    def input_gates(self, x: Tensor) -> Tensor:
        return self.gate_x(x).half()  # fp16, as the cell takes them

    def forward(self, gates_x: Tensor, h: Tensor, out: Tensor) -> None:
        out.copy_(fp16_cell(gates_x, self.gate_h(h), h, h.shape[1]))


class CompiledCell(nn.Module):
    """The same on fbgemm's quint8 gates, in `native`'s compiled op."""

    def __init__(self, gate_x: nn.Module, gate_h: nn.Module) -> None:
        super().__init__()
        self.gate_x, self.gate_h = gate_x, gate_h
        self.tanh_table, self.tanh_from = native.tanh_table()

    def input_gates(self, x: Tensor) -> Tensor:
        return self.gate_x.quantized(x)

    def forward(self, gates_x: Tensor, h: Tensor, out: Tensor) -> None:
        gates_h = self.gate_h.quantized(h)
        torch.ops.amadeus.gru_cell_fp16(gates_x, gates_h, h, self.tanh_table, self.tanh_from, out)


def fp16_cell(gates_x: Tensor, gates_h: Tensor, h: Tensor, size: int) -> Tensor:
    """`GRUCell.update` with fp16 element-wise ops: gates [B, 3H], h [B, H] -> h' (fp16).
    Sigmoid and tanh take the fp16 sums as they are: torch computes them in fp32 and rounds to
    fp16, which the next fp16 op would do anyway (the same bits for every fp16 input, tested), so
    the fp32 activations of the scheme cost no conversions."""
    gx, gh = gates_x.half(), gates_h.half()
    rz = torch.sigmoid(gx[:, : 2 * size] + gh[:, : 2 * size])  # [B, 2H]
    n = torch.tanh(gx[:, 2 * size :] + rz[:, :size] * gh[:, 2 * size :])
    return n + rz[:, size:] * (h.half() - n)
