"""The training loop: teacher-forced windows, validation, TensorBoard, periodic saving, resume,
and DistributedDataParallel under torchrun.

Every step reads top to bottom: stop?, evaluate and checkpoint, batch, forward, clip, step, log.
A run is a pure function of its seed and step count: the batch of step s comes from
`Windows.batch(s, ...)`, the transposition and control dropout of step s from a generator
seeded with (seed, s), and torch's RNG (init noise, dropout) is saved in the session. So a run
stopped and resumed reaches the same weights as one that never stopped.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from amadeus import augment
from amadeus import controls as ctl
from amadeus.atomic import writable_folder
from amadeus.codec import EventCodec
from amadeus.dataset import DataRecord, Windows, load_split
from amadeus.device import autocast_dtype, keep_freed_memory, resolve_device
from amadeus.errors import DatasetError, UsageError
from amadeus.evaluation.features import longest_note
from amadeus.evaluation.likelihood import mean_loss
from amadeus.model import ModelConfig, PerformanceRNN
from amadeus.progress import progress
from amadeus.schedule import TIMED_STEPS, Schedule, estimated_horizon
from amadeus.session import Session, build_model, capture_rng, restore_rng


@dataclass
class TrainOptions:
    session: Path = Path("save/train.sess")
    dataset: Path = Path("dataset/processed/")
    saving_interval: float = 60.0  # seconds between saves
    batch_size: int = 64
    learning_rate: float = 1e-2  # with the cosine schedule: see bench/recipe.py
    window_size: int = 100
    stride_size: int = 10
    control_ratio: float = 0.5  # batches that see their controls; the rest learn to play without
    teacher_forcing_ratio: float = 1.0
    use_transposition: bool = True  # each window moved by -6..5 semitones
    time_stretch: bool = True  # the pieces also at 0.95, 0.975, 1.025 and 1.05 times the tempo
    lr_schedule: str = "cosine"  # or constant: see amadeus.schedule
    warmup_steps: int = 10
    model_params: dict = field(default_factory=dict)  # overrides of ModelConfig for a new model
    reset_optimizer: bool = False
    enable_logging: bool = False  # TensorBoard in runs/
    device: str = "auto"
    precision: str = "auto"  # products in training: see `autocast_dtype`
    seed: int = 0
    max_steps: int | None = None
    max_time: float | None = None  # seconds
    val_fraction: float = 0.1
    val_interval: int = 100  # steps between validations
    val_batches: int = 4
    clip_norm: float = 1.0
    quiet: bool = False
    log_dir: Path = Path("runs")


def parse_model_params(text: str) -> dict:
    """`hidden_dim=1024,gru_layers=2` -> {'hidden_dim': 1024, 'gru_layers': 2}; never eval'd."""
    known = {f: type(v) for f, v in vars(ModelConfig()).items()}
    params = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise UsageError(f"-p {item!r}: expected KEY=NUMBER with KEY one of {', '.join(known)}")
        try:
            params[key] = known[key](value.strip())
        except ValueError:
            raise UsageError(
                f"-p {item!r}: {value.strip()!r} is not a {known[key].__name__}"
            ) from None
    return params


@dataclass
class Run:
    """Everything one training run holds."""

    options: TrainOptions
    codec: EventCodec
    train: Windows
    validation: Windows | None
    model: PerformanceRNN
    net: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    device: torch.device
    step: int
    best_val_loss: float | None
    seed: int
    data: DataRecord  # how the data was cut and made, saved in every session
    schedule: Schedule
    rank: int = 0
    world_size: int = 1
    autocast: torch.dtype | None = None  # products' type in training steps; None: float32
    timed_since: tuple[int, float] | None = None  # (steps done, time): a --max-time run's clock


def prepare(options: TrainOptions, rank: int = 0, world_size: int = 1) -> Run:
    """Checks every input before anything is written: session, data, flags."""
    device = resolve_device(options.device)
    autocast = autocast_dtype(device, options.precision)  # a bad --precision fails here
    keep_freed_memory()
    writable_folder(options.session.parent)  # a run must not learn for hours, then fail to save
    session = Session.load(options.session) if options.session.exists() else None
    split = load_split(options.dataset, options.val_fraction, session.codec if session else None)
    codec = EventCodec(split.settings.codec)
    record = DataRecord(
        dataset=str(options.dataset),
        window=options.window_size,
        stride=options.stride_size,
        val_fraction=options.val_fraction,
        settings=split.settings,
        longest_note=longest_note(split.train, codec),
    )
    pieces = augment.time_stretched(split.train, codec) if options.time_stretch else split.train
    train = Windows(pieces, options.window_size, options.stride_size)
    if train.batches_per_epoch(options.batch_size, world_size) == 0:
        raise DatasetError(
            f"{options.dataset}: {len(train)} training windows of {options.window_size} events, "
            f"fewer than the batch size {options.batch_size} x {world_size} processes"
        )
    validation = (
        Windows(split.validation, options.window_size, options.window_size)
        if split.validation
        else None
    )

    if session is None:
        config = ModelConfig(**dict(options.model_params, event_dim=codec.size))
        torch.manual_seed(options.seed)
        model = PerformanceRNN.from_config(config)
        step, best, seed = 0, None, options.seed
    else:
        model = build_model(session)
        step, best = session.step, session.best_val_loss
        seed = int(session.extra.get("seed", options.seed))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    if session is not None and session.optimizer_state and not options.reset_optimizer:
        optimizer.load_state_dict(session.optimizer_state)
        for group in optimizer.param_groups:
            group["lr"] = options.learning_rate
    # Dropout and init noise differ per rank; a resumed run continues its saved RNG.
    torch.manual_seed(seed * 1000 + rank + step)
    if session is not None and session.rng and world_size == 1:
        restore_rng(session.rng)
    schedule = _schedule(options, session)
    net = model
    if world_size > 1:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return Run(
        options,
        codec,
        train,
        validation,
        model,
        net,
        optimizer,
        device,
        step,
        best,
        seed,
        record,
        schedule,
        rank,
        world_size,
        autocast,
    )


def _schedule(options: TrainOptions, session: Session | None) -> Schedule:
    """The run's learning-rate schedule: the one its session recorded (a resumed run keeps its
    curve, at the peak now asked for), or a new one spanning --max-steps when given."""
    if options.lr_schedule not in ("cosine", "constant"):
        raise UsageError(f"--lr-schedule {options.lr_schedule}: choose cosine or constant")
    recorded = Schedule.from_dict(session.extra.get("lr_schedule")) if session else None
    if recorded is not None and recorded.kind == options.lr_schedule:
        return replace(recorded, peak=options.learning_rate)
    return Schedule(
        options.learning_rate, options.lr_schedule, options.warmup_steps, horizon=options.max_steps
    )


def save(run: Run, path: Path | None = None) -> None:
    Session(
        config=run.model.config,
        model_state=run.model.state_dict(),
        optimizer_state=run.optimizer.state_dict(),
        codec=run.codec.name,
        step=run.step,
        best_val_loss=run.best_val_loss,
        rng=capture_rng(),
        data=run.data,
        extra={"seed": run.seed, "lr_schedule": run.schedule.to_dict()},
    ).save(path or run.options.session)


def to_tensors(run: Run, events: np.ndarray, compact: np.ndarray, rng: np.random.Generator):
    """A numpy batch -> (events [T, B] long, controls [T, B, 24] float or None) on the device."""
    if run.options.use_transposition:
        events, compact = augment.transpose_windows(events, compact, run.codec, rng)
    use_controls = rng.random() < run.options.control_ratio
    events = torch.from_numpy(events).to(run.device)
    controls = torch.from_numpy(ctl.expand(compact)).to(run.device) if use_controls else None
    return events, controls


def loss_of(
    run: Run, events: torch.Tensor, controls, init: torch.Tensor, generator
) -> torch.Tensor:
    with torch.autocast(run.device.type, dtype=run.autocast, enabled=run.autocast is not None):
        logits = run.net(init, events, controls, run.options.teacher_forcing_ratio, generator)
    return F.cross_entropy(logits.float().flatten(0, 1), events.flatten())


def validate(run: Run) -> float | None:
    """Mean loss per event over fixed validation windows, zero init, eval mode."""
    if run.validation is None or len(run.validation) == 0:
        return None
    starts = run.validation.evenly(run.options.val_batches * run.options.batch_size)
    return mean_loss(run.model, run.validation, starts, run.options.batch_size, run.device)


class StopFlag:
    """Set by SIGINT/SIGTERM while training: the loop finishes its step, saves and exits."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.raised = False

    def __enter__(self) -> StopFlag:
        self._previous = [signal.signal(sig, self._set) for sig in self.SIGNALS]
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in zip(self.SIGNALS, self._previous):
            signal.signal(sig, handler)

    def _set(self, signum, frame) -> None:
        self.raised = True


def agreed(run: Run, flag: bool) -> bool:
    """True on every rank when it is true on any: ranks stop at the same step."""
    if run.world_size == 1:
        return flag
    value = torch.tensor([float(flag)], device=run.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def train(run: Run, log=print) -> Run:
    """Trains until --max-steps, --max-time or a signal; returns the run at its last step."""
    o, main = run.options, run.rank == 0
    writer = _writer(run) if o.enable_logging and main else None
    run.model.train()
    bar = progress(itertools.count(), total=o.max_steps, desc="train", quiet=o.quiet or not main)
    with StopFlag() as stop:
        _loop(run, bar, stop, writer, log)
    if main:
        _evaluate(run, writer, log)
        save(run)
        log(f"saved {o.session} at step {run.step}")
        if writer:
            writer.close()
    return run


def train_step(run: Run) -> tuple[float, float]:
    """One optimizer step on the batch of `run.step`; returns (loss, gradient norm)."""
    o = run.options
    rng = np.random.default_rng([run.seed, run.step])
    batch = run.train.batch(run.step, o.batch_size, run.seed, run.rank, run.world_size)
    events, controls = to_tensors(run, *batch, rng)
    init = torch.randn(events.shape[1], run.model.config.init_dim, device=run.device)
    coins = torch.Generator().manual_seed(run.seed * 1_000_003 + run.step)  # teacher forcing
    loss = loss_of(run, events, controls, init, coins)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), o.clip_norm)
    for group in run.optimizer.param_groups:
        group["lr"] = run.schedule.rate(run.step)
    run.optimizer.step()
    run.step += 1
    return loss.item(), norm.item()


def _loop(run: Run, bar, stop: StopFlag, writer, log) -> None:
    o, main = run.options, run.rank == 0
    started = last_save = time.monotonic()
    first_step = run.step
    # A --max-time run sets its cosine's length itself, unless its session recorded one.
    timed = (
        run.schedule.kind == "cosine" and run.schedule.horizon is None and o.max_time is not None
    )
    events_per_step = o.batch_size * o.window_size * run.world_size
    for _ in bar:
        now = time.monotonic()
        done = (o.max_steps is not None and run.step >= o.max_steps) or (
            o.max_time is not None and now - started >= o.max_time
        )
        if agreed(run, done or stop.raised):
            break
        if run.step % o.val_interval == 0 and run.step > 0 and main:
            _evaluate(run, writer, log)
        if main and now - last_save >= o.saving_interval:
            save(run)
            last_save = now

        tick = time.perf_counter()
        loss, norm = train_step(run)
        took = time.perf_counter() - tick
        speed = events_per_step / took
        if timed:
            _estimate_horizon(run, run.step - first_step, started, log)
        if main:
            bar.set_postfix(loss=f"{loss:.3f}")
            if writer:
                for name, value in (
                    ("loss", loss),
                    ("grad_norm", norm),
                    ("learning_rate", run.schedule.rate(run.step - 1)),
                    ("events_per_s", speed),
                ):
                    writer.add_scalar(f"train/{name}", value, run.step)
            if run.step % 50 == 0 or run.step == 1:
                log(f"step {run.step} loss {loss:.4f} grad {norm:.2f} {speed:,.0f} events/s")


def _estimate_horizon(run: Run, steps_done: int, started: float, log) -> None:
    """For a --max-time run, the length of the cosine from the speed so far: first from the
    steps after TIMED_STEPS[0] (the steps before it still map memory), then again after every
    step, validations and saves included, so that the decay ends with the run even when a
    shared machine slows down. The same on every rank."""
    first, last = TIMED_STEPS
    now = time.monotonic()
    if steps_done == first:
        run.timed_since = (steps_done, now)
    if steps_done < last:
        return
    since_step, since = run.timed_since
    per_step = (now - since) / (steps_done - since_step)
    left = run.options.max_time - (now - started)
    estimate = float(estimated_horizon(run.step, per_step, left))
    horizon = torch.tensor([estimate], device=run.device)
    if run.world_size > 1:
        dist.all_reduce(horizon, op=dist.ReduceOp.MIN)
    run.schedule = run.schedule.with_horizon(int(horizon.item()))
    if steps_done == last and run.rank == 0:
        log(f"learning rate: cosine over {run.schedule.horizon} steps ({per_step:.2f} s/step)")


def _evaluate(run: Run, writer, log) -> None:
    loss = validate(run)
    if loss is None:
        return
    log(f"step {run.step} validation loss {loss:.4f} perplexity {math.exp(loss):.3f}")
    if writer:
        writer.add_scalar("validation/loss", loss, run.step)
        writer.add_scalar("validation/perplexity", math.exp(loss), run.step)
    if run.best_val_loss is None or loss < run.best_val_loss:
        run.best_val_loss = loss
        save(run, best_path(run.options.session))


def best_path(session: Path) -> Path:
    """Where the weights with the best validation loss so far are kept: NAME.best.sess."""
    return session.with_name(session.stem + ".best" + session.suffix)


def _writer(run: Run):
    from torch.utils.tensorboard import SummaryWriter  # slow import: only when asked for

    return SummaryWriter(log_dir=str(run.options.log_dir / run.options.session.stem))


def distributed_context() -> tuple[int, int]:
    """(rank, world size) under torchrun, after joining the process group; (0, 1) otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), world_size
