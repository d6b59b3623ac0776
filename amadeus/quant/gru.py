"""nn.GRU split into cells of plain modules, as Distiller's decomposed RNNs, so that calibration
hooks see every gate and the quantizer can swap each gate Linear for an int8 one.

Per layer, with gates in PyTorch's order r, z, n (rows of weight_ih / weight_hh):
    gx = fc_gate_x(x)   gh = fc_gate_h(h)                       # [B, 3H] each
    r = act_r(gx_r + gh_r)   z = act_z(gx_z + gh_z)             # sigmoid
    n = act_n(gx_n + r * gh_n)                                  # tanh
    h' = n + z * (h - n)                                        # = (1 - z) * n + z * h
Every + and * goes through `eltwiseadd_gate` / `eltwisemult_gate`, which can compute in float16.
No dropout between layers: this GRU serves calibration and inference, always in eval mode.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Eltwise(nn.Module):
    """A binary element-wise op as a module, so hooks see it; in fp16 mode it computes in float16
    and returns float32. Subclasses set `op`."""

    def __init__(self, fp16: bool = False) -> None:
        super().__init__()
        self.fp16 = fp16

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if self.fp16:
            return self.op(a.half(), b.half()).float()
        return self.op(a, b)

    def extra_repr(self) -> str:
        return f"fp16={self.fp16}"


class EltwiseAdd(Eltwise):
    """a + b"""

    op = staticmethod(torch.add)


class EltwiseMult(Eltwise):
    """a * b"""

    op = staticmethod(torch.mul)


class GRUCell(nn.Module):
    """One GRU layer: the gate Linears, element-wise ops and activations as separate modules."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.fc_gate_x = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.fc_gate_h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.eltwiseadd_gate = EltwiseAdd()
        self.eltwisemult_gate = EltwiseMult()
        self.act_r = nn.Sigmoid()
        self.act_z = nn.Sigmoid()
        self.act_n = nn.Tanh()

    def sequence(self, x: Tensor, h: Tensor) -> Tensor:
        """Every step: x [T, B, I], h [B, H] -> outputs [T, B, H]. The input gates of all steps
        are one product: only the hidden gates wait on the previous step."""
        gates_x = self.fc_gate_x(x)  # [T, B, 3H]
        outputs = []
        for gx in gates_x:
            h = self.update(gx, h)
            outputs.append(h)
        return torch.stack(outputs)

    def update(self, gx: Tensor, h: Tensor) -> Tensor:
        """Input gates gx [B, 3H] (fc_gate_x's output), h [B, H] -> h' [B, H]."""
        size = self.hidden_size
        gh = self.fc_gate_h(h)  # [B, 3H]
        add, mult = self.eltwiseadd_gate, self.eltwisemult_gate
        rz = add(gx[..., : 2 * size], gh[..., : 2 * size])  # r and z in one call
        r, z = self.act_r(rz[..., :size]), self.act_z(rz[..., size:])
        n = self.act_n(add(gx[..., 2 * size :], mult(r, gh[..., 2 * size :])))
        return add(n, mult(z, add(h, -n)))


class DecomposedGRU(nn.Module):
    """A unidirectional, sequence-first nn.GRU as a stack of GRUCells (`cells.K`)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(GRUCell(size, hidden_size, bias) for size in sizes)

    @classmethod
    def from_gru(cls, gru: nn.GRU) -> DecomposedGRU:
        """The same network with `gru`'s weights copied."""
        if gru.bidirectional or gru.batch_first or gru.proj_size:
            raise ValueError("only unidirectional, sequence-first GRUs without projection")
        new = cls(gru.input_size, gru.hidden_size, gru.num_layers, gru.bias)
        new.to(device=gru.weight_ih_l0.device, dtype=gru.weight_ih_l0.dtype)
        with torch.no_grad():
            for k, cell in enumerate(new.cells):
                cell.fc_gate_x.weight.copy_(getattr(gru, f"weight_ih_l{k}"))
                cell.fc_gate_h.weight.copy_(getattr(gru, f"weight_hh_l{k}"))
                if gru.bias:
                    cell.fc_gate_x.bias.copy_(getattr(gru, f"bias_ih_l{k}"))
                    cell.fc_gate_h.bias.copy_(getattr(gru, f"bias_hh_l{k}"))
        return new

    @property
    def num_layers(self) -> int:
        return len(self.cells)

    def set_fp16(self, enabled: bool = True) -> DecomposedGRU:
        """Run every element-wise add and multiply in float16 (or back in float32)."""
        for module in self.modules():
            if isinstance(module, Eltwise):
                module.fp16 = enabled
        return self

    def layer_outputs(self, x: Tensor, h0: Tensor | None = None) -> list[Tensor]:
        """Every layer's hidden state at every step: x [T, B, I], h0 [L, B, H] (None: zeros)
        -> L tensors [T, B, H]. The Performance RNN's output_fc reads all of them."""
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, x.shape[1], self.hidden_size)
        outputs = []
        for cell, h in zip(self.cells, h0):
            x = cell.sequence(x, h)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """As nn.GRU: x [T, B, I], h0 [L, B, H] -> (top layer's output [T, B, H], h_n)."""
        outputs = self.layer_outputs(x, h0)
        return outputs[-1], torch.stack([out[-1] for out in outputs])
