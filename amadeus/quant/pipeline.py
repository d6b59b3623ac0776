"""What quantize.py does, as one call: check the outputs, load the session and its data as the
session records them, calibrate (or read statistics), save the int8 session, compare fp32 with
int8 on the validation windows.

The dataset, window and validation share come from the session's record of its data, so the
calibration windows are the training files and the comparison the held-out ones, as train.py
cut them; a flag that differs from the record says so in one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from amadeus.data import controls as ctl
from amadeus.data.dataset import (
    DEFAULT_STRIDE,
    DEFAULT_VAL_FRACTION,
    DEFAULT_WINDOW,
    DataRecord,
    Piece,
    Windows,
    load_split,
)
from amadeus.errors import DatasetError, UsageError
from amadeus.model.device import resolve_device
from amadeus.model.loss import mean_loss
from amadeus.model.network import PerformanceRNN
from amadeus.model.session import Session, build_model
from amadeus.progress import progress
from amadeus.quant.quantizer import calibrate, quantize
from amadeus.quant.session import save_int8, state_bytes
from amadeus.quant.stats import Stats, load_stats, save_stats


@dataclass(frozen=True)
class QuantizeOptions:
    session: Path  # the float .sess
    stats_file: Path  # written, or read with `evaluate`
    dataset: Path | None = None  # None: the folder the session records
    output: Path | None = None  # the int8 session
    batches: int = 16  # calibration batches
    batch_size: int = 64
    window_size: int | None = None  # None: the session's training window
    val_windows: int = 256  # validation windows to measure perplexity on
    val_fraction: float | None = None  # None: the session's
    evaluate: bool = False  # use the existing stats file instead of calibrating
    device: str = "auto"
    seed: int = 0  # picks the calibration windows
    quiet: bool = False


@dataclass(frozen=True)
class DataChoice:
    """The data one run uses: the session's record, with the flags' overrides applied."""

    dataset: Path
    window: int
    val_fraction: float
    stride: int  # events between the starts of calibration windows, as train.py cut them


def run(o: QuantizeOptions, log=print) -> None:
    device = resolve_device(o.device)
    check_outputs(o)
    stats = load_stats(o.stats_file) if o.evaluate else None
    session = Session.load(o.session)
    c = session.config
    log(
        f"{o.session}: {c.gru_layers} x {c.hidden_dim} GRU, codec {session.codec}, "
        f"step {session.step}, device {device}"
    )
    data = choose_data(o, session.data, log)
    train, validation = load_data(o, data, session.codec)
    model = build_model(session).eval().to(device)
    if o.evaluate and len(validation) == 0:
        raise DatasetError(f"{data.dataset}: {no_validation(data)}")
    if stats is None:
        stats = calibrate_and_save(model, train, o, data, device, log)
    int8 = quantize(model, stats)
    if o.output:
        save_int8(int8, session.codec, o.output, session.step, session.data)
        size, float_size = os.path.getsize(o.output), state_bytes(session.model_state)
        log(
            f"{o.output}: {size / 1e6:.2f} MB, {100 * size / float_size:.1f}% of the fp32 "
            f"weights ({float_size / 1e6:.2f} MB)"
        )
    compare(model, int8, validation, o, data, device, log)


def choose_data(o: QuantizeOptions, record: DataRecord | None, log=print) -> DataChoice:
    """The session's data, unless a flag overrides it (said in one line); a session written
    before sessions recorded their data takes the flags, or train.py's defaults."""
    if record is None:
        if o.dataset is None:
            raise UsageError(
                f"{o.session}: the session does not record its dataset (written by an older "
                "Amadeus or the original project): give one with --dataset"
            )
        window, fraction = (
            o.window_size or DEFAULT_WINDOW,
            _or(o.val_fraction, DEFAULT_VAL_FRACTION),
        )
        return DataChoice(o.dataset, window, fraction, DEFAULT_STRIDE)
    recorded_folder = (
        record.folder() if o.dataset is None else Path(record.dataset_resolved or record.dataset)
    )
    overrides = {
        "--dataset": (o.dataset, recorded_folder),
        "--window-size": (o.window_size, record.window),
        "--val-fraction": (o.val_fraction, record.val_fraction),
    }
    chosen = {}
    for flag, (given, recorded) in overrides.items():
        chosen[flag] = recorded if given is None else given
        same = given == recorded or (
            isinstance(given, Path) and given.resolve() == recorded.resolve()
        )
        if given is not None and not same:
            log(f"note: {flag} {given} differs from the session's {recorded}: using {given}")
    return DataChoice(*chosen.values(), stride=record.stride)


def _or(value, default):
    return default if value is None else value


def check_outputs(o: QuantizeOptions) -> None:
    """Before the slow part: every file to be written has a folder; none is the float session."""
    written = [o.output] + ([] if o.evaluate else [o.stats_file])
    for path in filter(None, written):
        if not path.parent.is_dir():
            raise UsageError(f"{path}: folder {path.parent} does not exist")
    if o.output and o.output.resolve() == o.session.resolve():
        raise UsageError(f"--output {o.output}: would overwrite the float session")


def load_data(o: QuantizeOptions, data: DataChoice, codec: str) -> tuple[list[Piece], Windows]:
    """(training pieces, validation windows), which must hold the session's token layout."""
    split = load_split(data.dataset, data.val_fraction)
    if split.settings.codec != codec:
        raise DatasetError(
            f"{data.dataset}: made with codec {split.settings.codec!r}, but {o.session} reads "
            f"codec {codec!r}"
        )
    return split.train, Windows(split.validation, data.window, data.window)


def no_validation(data: DataChoice) -> str:
    return (
        f"no validation window of {data.window} events in the files held out "
        f"(validation share {data.val_fraction:g})"
    )


def calibrate_and_save(
    model: PerformanceRNN,
    pieces: list[Piece],
    o: QuantizeOptions,
    data: DataChoice,
    device: torch.device,
    log=print,
) -> Stats:
    windows = Windows(pieces, data.window, data.stride)
    if windows.batches_per_epoch(o.batch_size) == 0:
        raise DatasetError(
            f"{data.dataset}: {len(windows)} training windows of {data.window} events, "
            f"fewer than the batch size {o.batch_size}"
        )
    steps = progress(range(o.batches), desc="calibrate", quiet=o.quiet)
    stats = calibrate(model, batches(model, windows, steps, o, device))
    stats.source = str(o.stats_file)
    save_stats(stats, o.stats_file)
    log(
        f"{o.stats_file}: {len(stats)} modules, {o.batches} batches of {o.batch_size} "
        f"windows of {data.window} events from {len(pieces)} training files, seed {o.seed}"
    )
    return stats


def batches(
    model: PerformanceRNN,
    windows: Windows,
    steps: Iterable[int],
    o: QuantizeOptions,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(init [B, init_dim], events [T, B], controls [T, B, 24] or None) of each calibration step:
    init noise drawn as generation draws it, and every other batch without controls, so that the
    ranges hold both ways generate.py runs (conditioned, and unconditioned by default)."""
    generator = torch.Generator().manual_seed(o.seed)
    for step in steps:
        events, compact = windows.batch(step, o.batch_size, o.seed)
        init = torch.randn(o.batch_size, model.config.init_dim, generator=generator)
        controls = torch.from_numpy(ctl.expand(compact)).to(device) if step % 2 == 0 else None
        yield init.to(device), torch.from_numpy(events).to(device), controls


def compare(
    model: PerformanceRNN,
    int8: PerformanceRNN,
    windows: Windows,
    o: QuantizeOptions,
    data: DataChoice,
    device: torch.device,
    log=print,
) -> None:
    """Print the perplexity of both models on the same validation windows."""
    starts = windows.evenly(o.val_windows)
    if len(starts) == 0:
        log(f"{no_validation(data)}: perplexity not measured")
        return
    fp32, q = (math.exp(mean_loss(m, windows, starts, o.batch_size, device)) for m in (model, int8))
    log(f"perplexity on {len(starts)} validation windows of {data.window} events, zero init:")
    log(f"  fp32  {fp32:.4f}")
    log(f"  int8  {q:.4f}  ({100 * (q / fp32 - 1):+.2f}%)")
