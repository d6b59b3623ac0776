"""Distiller's range-linear scheme, asymmetric signed 8-bit, and the int8 layers built on it.

With lo' = min(lo, 0) and hi' = max(hi, 0), so that 0.0 is always representable:
    scale = 255 / (hi' - lo')            (1 when the range is 0)
    zp    = round(scale * lo') + 128
    q     = clamp(round(scale * x - zp), -128, 127)
    x     = (q + zp) / scale
`scale` is Distiller's: quantized steps per unit, the inverse of torch's.
Weights: per output channel over their whole range (no clipping); activations: per tensor over the
calibration's avg_min/avg_max (Distiller's AVG clipping); bias: int32 at scale in_scale * w_scale.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from amadeus.quant import kernel

QMIN, QMAX = -128, 127


def range_params(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise (scale float64, zero point int64) for ranges [lo, hi]."""
    lo = lo.double().clamp(max=0)
    hi = hi.double().clamp(min=0)
    span = hi - lo
    scale = torch.where(span > 0, 255 / span.where(span > 0, 1), 1.0)
    return scale, (scale * lo).round().long() + 128


def activation_params(lo: float, hi: float) -> tuple[float, int]:
    """Per-tensor (scale, zero point) for an activation range, as Python numbers."""
    scale, zero_point = range_params(torch.tensor(lo), torch.tensor(hi))
    return scale.item(), int(zero_point.item())


def channel_params(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row (scale [N], zero point [N]) of a weight [N, K] over each row's whole range."""
    return range_params(weight.amin(1), weight.amax(1))


def quantize(x: Tensor, scale: Tensor | float, zero_point: Tensor | int) -> Tensor:
    """Float -> int8 values (as int64, clamped), broadcasting scale and zero point."""
    return (x.double() * scale - zero_point).round().clamp(QMIN, QMAX).long()


def dequantize(q: Tensor, scale: Tensor | float, zero_point: Tensor | int) -> Tensor:
    """int8 values -> float32."""
    return ((q.double() + zero_point) / scale).float()


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Weight [N, K] -> (int8 [N, K], scale float32 [N], zero point int16 [N])."""
    scale, zero_point = channel_params(weight.detach())
    scale = scale.float()  # quantize with the scale as stored, so q and scale agree exactly
    q = quantize(weight.detach(), scale.double()[:, None], zero_point[:, None])
    return q.to(torch.int8), scale, zero_point.to(torch.int16)


class Int8Linear(nn.Module):
    """A Linear holding int8 weights; forward quantizes its input, multiplies in int8 through
    `kernel`, requantizes the output to 8 bits and returns it dequantized (float32)."""

    def __init__(
        self,
        weight: Tensor,
        w_scale: Tensor,
        w_zero_point: Tensor,
        bias: Tensor,
        in_params: tuple[float, int],
        out_params: tuple[float, int],
    ) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight.to(torch.int8))  # [N, K]
        self.register_buffer("w_scale", w_scale.float())  # [N]
        self.register_buffer("w_zero_point", w_zero_point.to(torch.int16))  # [N]
        self.register_buffer("bias", bias.to(torch.int32))  # [N]
        # (scale, zero point) of input and output: float64 so that they round-trip exactly
        self.register_buffer(
            "act_params", torch.tensor([*in_params, *out_params], dtype=torch.double)
        )
        # The kernel's packed forms, built on first use per device: kept in a dict, out of the
        # module tree, as derived data that state_dict, copies and pickles leave out.
        self._packed: dict[torch.device, nn.Module] = {}
        self.register_load_state_dict_post_hook(_forget_packed)

    @classmethod
    def from_float(
        cls, linear: nn.Linear, in_range: tuple[float, float], out_range: tuple[float, float]
    ) -> Int8Linear:
        """Quantize `linear` for inputs in `in_range` and outputs in `out_range` (calibration's
        avg_min, avg_max)."""
        weight, w_scale, w_zero_point = quantize_rows(linear.weight)
        in_params = activation_params(*in_range)
        bias = torch.zeros(weight.shape[0]) if linear.bias is None else linear.bias.detach()
        bias_q = (bias.double() * in_params[0] * w_scale.double()).round()
        bias_q = bias_q.clamp(torch.iinfo(torch.int32).min, torch.iinfo(torch.int32).max)
        return cls(weight, w_scale, w_zero_point, bias_q, in_params, activation_params(*out_range))

    @property
    def in_params(self) -> tuple[float, int]:
        return self.act_params[0].item(), int(self.act_params[1].item())

    @property
    def out_params(self) -> tuple[float, int]:
        return self.act_params[2].item(), int(self.act_params[3].item())

    def forward(self, x: Tensor) -> Tensor:
        """x [*, K] -> [*, N] float32."""
        gemm = self._packed.get(x.device)
        if gemm is None:
            gemm = self._packed[x.device] = self.pack(x.device)
        return gemm(x)

    def pack(
        self, device: torch.device | str = "cpu", backend: str | None = None
    ) -> kernel.ReferenceGemm | kernel.FbgemmGemm:
        """This layer in the kernel's form (see `kernel.prepack`)."""
        tensors = (self.weight, self.w_scale, self.w_zero_point, self.bias)
        return kernel.prepack(*tensors, self.in_params, self.out_params, device, backend)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_packed": {}}

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def _forget_packed(module: Int8Linear, _incompatible_keys) -> None:
    """load_state_dict writes new values into the buffers: the packed forms are stale."""
    module._packed.clear()


class Int8Embedding(nn.Module):
    """An Embedding holding int8 rows, each with its own scale and zero point; returns rows
    dequantized (float32)."""

    def __init__(self, weight: Tensor, scale: Tensor, zero_point: Tensor) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = weight.shape
        self.register_buffer("weight", weight.to(torch.int8))  # [V, D]
        self.register_buffer("scale", scale.float())  # [V]
        self.register_buffer("zero_point", zero_point.to(torch.int16))  # [V]

    @classmethod
    def from_float(cls, embedding: nn.Embedding) -> Int8Embedding:
        return cls(*quantize_rows(embedding.weight))

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [*] -> [*, D]."""
        q = self.weight[tokens].float()  # [*, D]
        return (q + self.zero_point[tokens, None].float()) / self.scale[tokens, None]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
