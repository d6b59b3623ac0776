"""`--device auto|cpu|cuda`: CUDA when present and asked for, the CPU everywhere else."""

from __future__ import annotations

import torch

from amadeus.errors import UsageError

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (try --device cpu)")
    if name not in CHOICES:
        raise UsageError(f"--device {name}: choose from {', '.join(CHOICES)}")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA (bf16 where supported, else fp16); none on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
