"""The learning rate over a run: a linear warm-up, then a cosine decay to a floor over the run's
length (Loshchilov and Hutter's schedule without restarts, as nanoGPT trains), or constant.

A cosine needs to know how long the run is. With --max-steps that is given; with --max-time it
is estimated from the speed so far, after every step (a shared machine's speed drifts: estimated
once, from the first steps, a 61-minute run's curve was set a quarter too long), and recorded in
the session, so a run that is stopped and resumed keeps the curve it had reached. Without either
the rate stays at its peak after the warm-up.

A resumed run may also start a new curve from its step (--restart-schedule: a warm restart, as
Loshchilov and Hutter's SGDR restarts): warm-up and decay again, the weights and moments kept.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

KINDS = ("cosine", "constant")
TIMED_STEPS = (3, 8)  # steps whose duration estimates the length of a --max-time run
ESTIMATE_MARGIN = 0.95  # slack for a machine that slows down before the estimate sees it


@dataclass(frozen=True)
class Schedule:
    peak: float  # the learning rate after the warm-up
    kind: str = "cosine"
    warmup: int = 10  # steps of linear warm-up (cosine only), at most a quarter of the run
    floor: float = 0.1  # the last rate, as a share of the peak (cosine only)
    horizon: int | None = None  # the step the decay ends at; None: not known yet
    start: int = 0  # the step the curve begins at (later for a warm restart)

    def rate(self, step: int) -> float:
        """The learning rate of optimizer step `step` (the session's, 0-based)."""
        if self.kind == "constant":
            return self.peak
        step -= self.start
        length = None if self.horizon is None else self.horizon - self.start
        warmup = self.warmup if length is None else min(self.warmup, length // 4)
        if step < warmup:
            return self.peak * (step + 1) / warmup
        if length is None:
            return self.peak
        progress = min((step - warmup) / max(length - warmup, 1), 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.peak * (self.floor + (1 - self.floor) * cosine)

    def with_horizon(self, horizon: int) -> Schedule:
        return replace(self, horizon=max(int(horizon), 1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> Schedule | None:
        """A schedule a session recorded, or None when it recorded none (or a damaged one)."""
        try:
            schedule = cls(**values)
        except TypeError:
            return None
        return schedule if schedule.kind in KINDS else None


def estimated_horizon(step: int, seconds_per_step: float, seconds_left: float) -> int:
    """The step a --max-time run will reach, from its measured speed."""
    return step + int(ESTIMATE_MARGIN * seconds_left / max(seconds_per_step, 1e-9))
