"""The loss over fixed windows: how training validates and how quantize.py compares fp32 with
int8. One function for both, so the same model on the same windows reports the same number
everywhere. The windows are training's validation windows: the files `split_by_file` holds out,
cut into non-overlapping windows, of which `Windows.evenly` picks a fixed set. Every window starts
from zero init noise and sees its controls. Any model with `logits(init, events, controls)` and a
`config` goes: the float Performance RNN or the int8 one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from amadeus.data import controls as ctl
from amadeus.data.dataset import Windows


@torch.no_grad()
def mean_loss(
    model: Any,
    windows: Windows,
    starts: np.ndarray,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> float:
    """Mean cross-entropy per event over the windows at `starts`, teacher-forced, zero init,
    in eval mode (the model's mode is restored after)."""
    was_training = getattr(model, "training", False)
    model.eval()
    total, count = 0.0, 0
    for chunk in np.array_split(starts, max(1, math.ceil(len(starts) / batch_size))):
        events, compact = windows.gather(chunk)  # [T, B], [T, B, 13]
        events = torch.from_numpy(events).to(device)
        controls = torch.from_numpy(ctl.expand(compact)).to(device)  # [T, B, 24]
        init = torch.zeros(events.shape[1], model.config.init_dim, device=device)
        logits = model.logits(init, events, controls).float()  # [T, B, V]
        total += F.cross_entropy(logits.flatten(0, 1), events.flatten(), reduction="sum").item()
        count += events.numel()
    model.train(was_training)
    return total / count
