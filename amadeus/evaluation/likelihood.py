"""Likelihood of held-out music: evaluate.py's figure, over whole validation pieces, in nats
per event, per note and per second of music, and its share by token type; with a second model,
how closely it follows the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece


@dataclass
class Likelihood:
    """Negative log-likelihood of whole pieces, in nats, with what it is divided by."""

    nats: float = 0.0
    events: int = 0
    notes: int = 0
    seconds: float = 0.0
    by_kind: dict[str, float] = field(default_factory=dict)  # nats per token kind

    @property
    def per_event(self) -> float:
        return self.nats / max(self.events, 1)

    @property
    def per_note(self) -> float:
        return self.nats / max(self.notes, 1)

    @property
    def per_second(self) -> float:
        """Comparable across codecs (which cut the same music into different numbers of events)
        and with other projects."""
        return self.nats / max(self.seconds, 1e-9)

    def share(self, kind: str) -> float:
        return self.by_kind.get(kind, 0.0) / max(self.nats, 1e-12)


@dataclass
class Agreement:
    """How closely a second model (int8) follows the first (fp32), event by event."""

    kl: float  # mean KL(first || second) of the next-event distributions, nats
    top1: float  # share of events where both models' likeliest next event is the same


@torch.no_grad()
def piece_likelihood(
    model: Any,
    pieces: list[Piece],
    codec: EventCodec,
    conditioned: bool,
    other: Any = None,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
) -> tuple[Likelihood, Likelihood | None, Agreement | None]:
    """Teacher-forced likelihood of each whole piece from zero init noise, with the pieces' own
    controls or without any (as generation runs by default); with `other`, the same for it and
    how far it is from `model`. Pieces are batched by length and padded; padding is not scored."""
    first, second = Likelihood(), Likelihood() if other is not None else None
    kl = agree = 0.0
    kinds = codec.token_kind
    for events, controls, mask in _padded_batches(pieces, conditioned, batch_size, device):
        targets = events[mask]
        logp = _log_probs(model, events, controls)[mask]  # [N, V]
        _add(first, logp, targets, kinds, codec)
        if other is not None:
            logq = _log_probs(other, events, controls)[mask]
            _add(second, logq, targets, kinds, codec)
            kl += (logp.exp() * (logp - logq)).sum().item()
            agree += (logp.argmax(-1) == logq.argmax(-1)).sum().item()
    agreement = None
    if other is not None:
        agreement = Agreement(kl / max(first.events, 1), agree / max(first.events, 1))
    return first, second, agreement


def _log_probs(model: Any, events: torch.Tensor, controls: torch.Tensor | None) -> torch.Tensor:
    init = torch.zeros(events.shape[1], model.config.init_dim, device=events.device)
    return torch.log_softmax(model.logits(init, events, controls).float(), -1)  # [T, B, V]


def _add(total: Likelihood, logp: torch.Tensor, targets: torch.Tensor, kinds, codec) -> None:
    nll = -logp.gather(1, targets[:, None])[:, 0].double().cpu().numpy()  # [N]
    tokens = targets.cpu().numpy()
    total.nats += float(nll.sum())
    total.events += len(tokens)
    total.seconds += float(codec.token_seconds[tokens].sum())
    token_kinds = kinds[tokens]
    total.notes += int((token_kinds == "note_on").sum())
    for kind in codec.ranges:
        total.by_kind[kind] = total.by_kind.get(kind, 0.0) + float(nll[token_kinds == kind].sum())


def _padded_batches(pieces: list[Piece], conditioned: bool, batch_size: int, device):
    """(events [T, B], controls [T, B, 24] or None, mask [T, B]) of pieces batched by length."""
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i].tokens))
    for start in range(0, len(order), batch_size):
        chunk = [pieces[i] for i in order[start : start + batch_size]]
        length = max(len(p.tokens) for p in chunk)
        events = np.zeros((length, len(chunk)), dtype=np.int64)
        compact = np.zeros((length, len(chunk), ctl.COMPACT_DIM), dtype=np.uint8)
        mask = np.zeros((length, len(chunk)), dtype=bool)
        for b, piece in enumerate(chunk):
            n = len(piece.tokens)
            events[:n, b], compact[:n, b], mask[:n, b] = piece.tokens, piece.controls, True
        controls = torch.from_numpy(ctl.expand(compact)).to(device) if conditioned else None
        yield torch.from_numpy(events).to(device), controls, torch.from_numpy(mask).to(device)
