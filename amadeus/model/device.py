"""`--device auto|cpu|cuda`: CUDA when present and asked for, the CPU everywhere else."""

from __future__ import annotations

import ctypes

import torch

from amadeus.cli import DEVICES as CHOICES
from amadeus.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (try --device cpu)")
    if name not in CHOICES:
        raise UsageError(f"--device {name}: choose from {', '.join(CHOICES)}")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The type products run in while training (None: float32), for `--precision`.

    auto: on CUDA bf16 where supported, else fp16; on the CPU bf16 where it has bf16 products in
    hardware: AMX tiles (about 4x fp32's step) or AVX512-BF16 (1.84x on an AMD EPYC, Zen 4).
    Elsewhere bf16 is emulated and slower than fp32, so fp32. Weights, optimizer state, gates and
    hidden states stay in float32 whatever this says."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose from {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and has_bf16_products() else None


def has_bf16_products() -> bool:
    """bf16 products in hardware: AVX512-BF16 instructions, or AMX tiles present and granted by
    the kernel (torch asks for them on first use)."""
    return _cpu_says("_is_avx512_bf16_supported") or _cpu_says("_init_amx")


def _cpu_says(probe: str) -> bool:
    """One of torch.cpu's feature probes (private: a torch without it answers no)."""
    found = getattr(torch.cpu, probe, None)
    return bool(found and found())


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of giving it back to the kernel.

    A training step allocates and frees tensors of tens of MB. glibc hands each one to the
    kernel and maps it again on the next step, and touching fresh pages costs a fault per 4 kB.
    That was a fifth of a bf16 step here. PyTorch's CPU tuning guide suggests jemalloc or tcmalloc
    for this; two mallopt calls do it without a new dependency. Elsewhere than glibc it does
    nothing."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_max = -1, -4
    mallopt(m_mmap_max, 0)  # big blocks from the heap, not from mmap
    mallopt(m_trim_threshold, 2**31 - 1)  # and freed memory stays mapped
