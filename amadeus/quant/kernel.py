"""The int8 GEMM, behind one small interface so that it can be replaced.

`prepack` turns one int8 Linear (Distiller's signed convention, see `linear.py`) into a module
float [*, K] -> float [*, N] that quantizes the input, multiplies in int8 with int32 accumulation,
adds the int32 bias, requantizes the output to 8 bits and dequantizes it: Distiller's range-linear
Linear, exactly.

Two kernels:
- `fbgemm`: torch's `quantized::linear` on prepacked weights. Activations are quint8: Distiller's
  signed q in [-128, 127] is q + 128, with torch scale 1/scale and torch zero point 128 - zp, so
  the asymmetric per-tensor scheme fits exactly. Weights are qint8 per channel with torch zero
  point -zp: fbgemm takes per-channel zero points, so weights stay asymmetric, as in the scheme.
  (oneDNN's kernels would force symmetric weights; the engine is pinned to fbgemm while packing.)
  fbgemm adds the bias in float after the int32 product; we hand it the int32 bias times
  in_scale*w_scale, so the sum is the same up to float32 rounding.
  On CPUs without AVX512-VNNI, fbgemm's AVX2 path sums pairs of u8*s8 products in int16, which
  saturates for inputs at the far end of their range with weights near +-127: on an AMD EPYC
  with AVX2 only, outputs of a 256 x 384 layer were up to 28 steps off the exact product. So
  fbgemm runs only where it is exact (`FBGEMM_EXACT`); elsewhere the reference kernel does.
- `reference`: the same arithmetic in float64 (exact for these integer products), on any device;
  used where fbgemm is absent (e.g. ARM) and for CUDA tensors.

The quantized-tensor API behind fbgemm is deprecated in torch 2.13 and warns once per process,
on the first quantized tensor made. Packing makes one under a filter for that warning alone, which
spends it: products then need no filter (a filter costs 4 us a call). A test runs a fresh
interpreter with -W error to hold torch to that.

Both kernels are TorchScript-able modules, so the int8 stepper can run a whole step as one
script: called from Python, fbgemm's op costs 13 us of argument handling (torch looks up
`__torch_function__` on the packed weight and its C++ getattr throws), against under 1 us from
TorchScript.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

FBGEMM = "fbgemm" in torch.backends.quantized.supported_engines
# fbgemm accumulates u8*s8 products in int32 (VPDPBUSD) only with AVX512-VNNI.
FBGEMM_EXACT = FBGEMM and getattr(torch.cpu, "_is_vnni_supported", lambda: False)()
_DEPRECATION = r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor"


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's deprecation of quantized tensors, and nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=UserWarning)
        yield


@contextmanager
def _engine(name: str) -> Iterator[None]:
    """Pin the quantized engine while packing, so a user's global choice is left as it was."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


class ReferenceGemm(nn.Module):
    """Distiller's arithmetic spelled out: int8 in, int32 accumulate, int8 out, float back."""

    def __init__(
        self,
        weight: Tensor,  # int8 [N, K]
        w_scale: Tensor,  # [N]
        w_zero_point: Tensor,  # [N]
        bias: Tensor,  # int32 [N]
        in_scale: float,
        in_zp: int,
        out_scale: float,
        out_zp: int,
    ) -> None:
        super().__init__()
        self.weight_t = (weight.double() + w_zero_point.double()[:, None]).T  # [K, N], q + zp
        self.bias = bias.double()  # [N], int32 values
        self.in_scale, self.in_zp = in_scale, in_zp
        self.out_scale, self.out_zp = out_scale, out_zp
        self.requant = out_scale / (in_scale * w_scale.double())  # [N]

    def forward(self, x: Tensor) -> Tensor:
        q = (x.double() * self.in_scale - self.in_zp).round_().clamp_(-128, 127)
        acc = (q + self.in_zp) @ self.weight_t + self.bias  # [*, N], exact integers
        y = (acc * self.requant - self.out_zp).round_().clamp_(-128, 127)
        return ((y + self.out_zp) / self.out_scale).to(x.dtype)


class FbgemmGemm(nn.Module):
    """The same product through fbgemm's prepacked int8 kernel (CPU only)."""

    def __init__(
        self,
        weight: Tensor,
        w_scale: Tensor,
        w_zero_point: Tensor,
        bias: Tensor,
        in_scale: float,
        in_zp: int,
        out_scale: float,
        out_zp: int,
    ) -> None:
        super().__init__()
        w_scale = w_scale.double()
        with _quiet(), _engine("fbgemm"):
            qweight = torch._make_per_channel_quantized_tensor(
                weight.cpu(), 1.0 / w_scale.cpu(), -w_zero_point.long().cpu(), 0
            )
            float_bias = (bias.double() / (in_scale * w_scale)).float().cpu()
            self.packed = torch.ops.quantized.linear_prepack(qweight, float_bias)
        self.in_scale, self.in_zp = 1.0 / in_scale, 128 - in_zp
        self.out_scale, self.out_zp = 1.0 / out_scale, 128 - out_zp

    def forward(self, x: Tensor) -> Tensor:
        return self.quantized(x).dequantize().to(x.dtype)

    def quantized(self, x: Tensor) -> Tensor:
        """The output before dequantization: a quint8 tensor (for `native`'s GRU cell)."""
        q = torch.quantize_per_tensor(x.float(), self.in_scale, self.in_zp, torch.quint8)
        return torch.ops.quantized.linear(q, self.packed, self.out_scale, self.out_zp)


def prepack(
    weight: Tensor,
    w_scale: Tensor,
    w_zero_point: Tensor,
    bias: Tensor,
    in_params: tuple[float, int],
    out_params: tuple[float, int],
    device: torch.device | str = "cpu",
    backend: str | None = None,
) -> ReferenceGemm | FbgemmGemm:
    """Ready one int8 Linear for `device`: weight int8 [N, K], w_scale/w_zero_point/bias [N]
    (bias int32 at in_scale * w_scale), activation (scale, zero point) pairs.
    `backend` None picks fbgemm on CPU where it is exact, else the reference."""
    if backend is None:
        fast = FBGEMM_EXACT and torch.device(device).type == "cpu"
        backend = "fbgemm" if fast else "reference"
    if backend not in ("fbgemm", "reference"):
        raise ValueError(f"unknown int8 backend {backend!r}")
    if backend == "fbgemm" and not FBGEMM:
        raise ValueError("this torch has no fbgemm")
    cls = FbgemmGemm if backend == "fbgemm" else ReferenceGemm
    tensors = (t.to(device) for t in (weight, w_scale, w_zero_point, bias))
    return cls(*tensors, *in_params, *out_params)
