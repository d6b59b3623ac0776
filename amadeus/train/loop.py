"""The training loop: teacher-forced windows, validation, TensorBoard, periodic saving, resume,
and DistributedDataParallel under torchrun.

It reads top to bottom as nanoGPT's train.py does. `prepare` checks every input, then builds the
`Run`: device and precision, the session if it exists, the data and its record, the windows, the
model, optimizer and RNG state, the learning-rate schedule, DDP. `train` is the step loop, each
step in this order: stop? -> validate and keep the best -> save on the interval -> one optimizer
step (`train_step`: rate, batch, forward, backward, clip, step) -> renew the --max-time horizon
-> log. The helpers follow in the order the loop calls them.

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from amadeus.atomic import writable_folder
from amadeus.data import augment, dynamics
from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import DataRecord, Split, Windows, load_split, longest_note
from amadeus.errors import DatasetError, UsageError
from amadeus.model.device import autocast_dtype, keep_freed_memory, resolve_device
from amadeus.model.loss import mean_loss
from amadeus.model.network import ModelConfig, PerformanceRNN
from amadeus.model.session import Session, build_model, capture_rng, restore_rng
from amadeus.progress import progress
from amadeus.train.schedule import TIMED_STEPS, Schedule, estimated_horizon


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
    lr_schedule: str = "cosine"  # or constant: see amadeus.train.schedule
    warmup_steps: int = 10
    restart_schedule: bool = False  # a resumed run starts a new curve from its step
    model_params: dict = field(default_factory=dict)  # overrides of ModelConfig for a new model
    output_dropout: float | None = None  # on the states output_fc reads; None: the session's, or 0
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


@dataclass(kw_only=True)
class Run:
    """Everything one training run holds: what `prepare` built, then what training advances."""

    options: TrainOptions
    device: torch.device
    autocast: torch.dtype | None = None  # products' type in training steps; None: float32
    codec: EventCodec
    data: DataRecord  # how the data was cut and made, saved in every session
    train: Windows
    validation: Windows | None
    model: PerformanceRNN
    net: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    seed: int
    rank: int = 0
    world_size: int = 1
    # What changes as the run trains:
    step: int  # optimizer steps taken
    best_val_loss: float | None  # the loss of the weights in NAME.best.sess
    schedule: Schedule  # a --max-time run's cosine is renewed after every step
    timed_since: tuple[int, float] | None = None  # (steps done, time): a --max-time run's clock


def prepare(options: TrainOptions, rank: int = 0, world_size: int = 1) -> Run:
    """Checks every input before anything is written (flags, the session folder, the session, the
    data), then builds the run: a new model, or the session's, resumed where it stopped."""
    # Device and precision: a bad --device or --precision fails here.
    device = resolve_device(options.device)
    autocast = autocast_dtype(device, options.precision)
    keep_freed_memory()
    # A run must not learn for hours, then fail to save.
    writable_folder(options.session.parent)
    # The session to resume, if it exists: it fixes the codec the data must have.
    session = Session.load(options.session) if options.session.exists() else None
    # The data split by file, and the record of it that every session keeps.
    split = load_split(options.dataset, options.val_fraction, session.codec if session else None)
    codec = EventCodec(split.settings.codec)
    record = _data_record(options, split, codec)
    # Windows of --window-size events: enough for a batch on every rank, or an error.
    train, validation = _windows(options, split, codec, world_size)
    # The model, new or resumed, with its step, best validation loss and seed.
    model, step, best, seed = _model(options, session, codec)
    model.to(device)
    optimizer = _optimizer(options, session, model)
    # Dropout and init noise differ per rank; a resumed run continues its saved RNG.
    _seed_torch(session, seed, rank, step, world_size)
    schedule = _schedule(options, session)
    # Under torchrun, DDP averages the gradients of the ranks.
    net = _distributed(model, device) if world_size > 1 else model
    return Run(
        options=options,
        device=device,
        autocast=autocast,
        codec=codec,
        data=record,
        train=train,
        validation=validation,
        model=model,
        net=net,
        optimizer=optimizer,
        seed=seed,
        rank=rank,
        world_size=world_size,
        step=step,
        best_val_loss=best,
        schedule=schedule,
    )


def _data_record(options: TrainOptions, split: Split, codec: EventCodec) -> DataRecord:
    """How the data was cut and made, as the session records it."""
    return DataRecord(
        dataset=str(options.dataset),
        window=options.window_size,
        stride=options.stride_size,
        val_fraction=options.val_fraction,
        settings=split.settings,
        longest_note=longest_note(split.train, codec),
        dataset_resolved=str(options.dataset.resolve()),  # found from any folder later
        velocities=dynamics.recorded(split.train, codec),  # a player's loudness is mapped in
    )


def _windows(
    options: TrainOptions, split: Split, codec: EventCodec, world_size: int
) -> tuple[Windows, Windows | None]:
    """Training windows every --stride-size events (over the time-stretched pieces when asked),
    and validation windows side by side; DatasetError when a step cannot fill its batches."""
    pieces = augment.time_stretched(split.train, codec) if options.time_stretch else split.train
    train = Windows(pieces, options.window_size, options.stride_size)
    if train.batches_per_epoch(options.batch_size, world_size) == 0:
        raise DatasetError(
            f"{options.dataset}: {len(train)} training windows of {options.window_size} events, "
            f"fewer than the batch size {options.batch_size} x {world_size} processes"
        )
    if not split.validation:
        return train, None
    return train, Windows(split.validation, options.window_size, options.window_size)


def _model(
    options: TrainOptions, session: Session | None, codec: EventCodec
) -> tuple[PerformanceRNN, int, float | None, int]:
    """(model, step, best validation loss, seed): a new model from --model-params and --seed,
    or the session's, with the progress and seed it recorded. A resumed model's shape is its
    session's; its regularization (gru_dropout, --output-dropout) may change."""
    if session is None:
        config = _config(ModelConfig(event_dim=codec.size), options.model_params)
        torch.manual_seed(options.seed)  # the initial weights
        model, step, best, seed = PerformanceRNN.from_config(config), 0, None, options.seed
    else:
        session.config = _resumed_config(options, session)
        seed = int(session.extra.get("seed", options.seed))
        model, step, best = build_model(session), session.step, session.best_val_loss
    model.output_dropout = _output_dropout(options, session)
    return model, step, best, seed


def _config(config: ModelConfig, params: dict) -> ModelConfig:
    """`config` with -p's values, or UsageError naming the bad one."""
    try:
        return replace(config, **params)
    except ValueError as e:
        raise UsageError(f"-p: {e}") from None


def _resumed_config(options: TrainOptions, session: Session) -> ModelConfig:
    """The session's config with -p's gru_dropout; any other -p must be what it has already
    (so the command line that started a run also resumes it)."""
    shape = asdict(session.config)
    reshaped = [
        f"{key}={value}"
        for key, value in options.model_params.items()
        if key != "gru_dropout" and value != shape[key]
    ]
    if reshaped:
        raise UsageError(
            f"-p {','.join(reshaped)}: {options.session} has its shape already "
            "(resuming, -p may change only gru_dropout)"
        )
    return _config(session.config, options.model_params)


def _output_dropout(options: TrainOptions, session: Session | None) -> float:
    """--output-dropout, else the session's record of it, else 0."""
    recorded = session.extra.get("output_dropout", 0.0) if session else 0.0
    value = recorded if options.output_dropout is None else options.output_dropout
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UsageError(f"--output-dropout {value!r}: must be a number at least 0 and below 1")
    return float(value)


def _optimizer(
    options: TrainOptions, session: Session | None, model: PerformanceRNN
) -> torch.optim.Optimizer:
    """Adam, with the session's moments unless --reset-optimizer; the peak rate is the flag's."""
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    if session is not None and session.optimizer_state and not options.reset_optimizer:
        optimizer.load_state_dict(session.optimizer_state)
        for group in optimizer.param_groups:
            group["lr"] = options.learning_rate
    return optimizer


def _seed_torch(session: Session | None, seed: int, rank: int, step: int, world_size: int) -> None:
    """Torch's RNG for init noise and dropout: seeded per rank and step, or, resuming a
    one-process run, the state its session saved."""
    torch.manual_seed(seed * 1000 + rank + step)
    if session is not None and session.rng and world_size == 1:
        restore_rng(session.rng)


def _schedule(options: TrainOptions, session: Session | None) -> Schedule:
    """The run's learning-rate schedule: the one its session recorded (a resumed run keeps its
    curve, at the peak now asked for), or a new one from the session's step (a new session's: 0)
    to --max-steps when given."""
    if options.lr_schedule not in ("cosine", "constant"):
        raise UsageError(f"--lr-schedule {options.lr_schedule}: choose cosine or constant")
    recorded = Schedule.from_dict(session.extra.get("lr_schedule")) if session else None
    going_on = recorded is not None and recorded.kind == options.lr_schedule
    if going_on and not options.restart_schedule:
        return replace(recorded, peak=options.learning_rate)
    return Schedule(
        options.learning_rate,
        options.lr_schedule,
        options.warmup_steps,
        horizon=options.max_steps,
        start=session.step if session else 0,
    )


def _distributed(model: PerformanceRNN, device: torch.device) -> DistributedDataParallel:
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def train(run: Run, log=print) -> Run:
    """Trains until --max-steps, --max-time or a signal; returns the run at its last step."""
    o, main = run.options, run.rank == 0
    writer = _writer(run) if o.enable_logging and main else None
    run.model.train()
    bar = progress(itertools.count(), total=o.max_steps, desc="train", quiet=o.quiet or not main)
    # A --max-time run sets its cosine's length itself, unless its session recorded one.
    timed = (
        run.schedule.kind == "cosine" and run.schedule.horizon is None and o.max_time is not None
    )
    events_per_step = o.batch_size * o.window_size * run.world_size
    with StopFlag() as stop:
        started = last_save = time.monotonic()
        first_step = run.step
        for _ in bar:
            # Stop? At --max-steps, at --max-time or on a signal: every rank at the same step.
            now = time.monotonic()
            if agreed(run, _finished(o, run.step, now - started) or stop.raised):
                break
            # Validate every --val-interval steps, keeping the best weights in NAME.best.sess.
            if main and run.step > 0 and run.step % o.val_interval == 0:
                _evaluate(run, writer, log)
            # Save every --saving-interval seconds: a crash loses no more than that.
            if main and now - last_save >= o.saving_interval:
                save(run)
                last_save = now
            # One optimizer step: rate from the schedule, forward, backward, clip, step.
            tick = time.perf_counter()
            loss, norm = train_step(run)
            speed = events_per_step / (time.perf_counter() - tick)
            # A --max-time run's cosine ends with the run: its length renewed after every step.
            if timed:
                _estimate_horizon(run, run.step - first_step, started, log)
            # Log on rank 0: the bar, TensorBoard's scalars, a line every 50 steps.
            if main:
                _log_step(run, bar, writer, log, loss, norm, speed)
    # The last step's weights: validated, saved and said, on rank 0.
    if main:
        _evaluate(run, writer, log)
        save(run)
        log(f"saved {o.session} at step {run.step}")
        if writer:
            writer.close()
    return run


def _finished(options: TrainOptions, step: int, seconds: float) -> bool:
    """--max-steps reached, or --max-time spent (`seconds` since the loop began)."""
    if options.max_steps is not None and step >= options.max_steps:
        return True
    return options.max_time is not None and seconds >= options.max_time


def train_step(run: Run) -> tuple[float, float]:
    """One optimizer step on the batch of `run.step`; returns (loss, gradient norm)."""
    o = run.options
    # The rate of this step: the schedule's, so a resumed run picks up its curve.
    for group in run.optimizer.param_groups:
        group["lr"] = run.schedule.rate(run.step)
    # The batch of this step and its augmentation: functions of (seed, step) alone.
    rng = np.random.default_rng([run.seed, run.step])
    batch = run.train.batch(run.step, o.batch_size, run.seed, run.rank, run.world_size)
    events, controls = to_tensors(run, *batch, rng)  # [T, B], [T, B, 24] or None
    # The initial state's noise [B, init_dim] from torch's RNG; teacher forcing's coins.
    init = torch.randn(events.shape[1], run.model.config.init_dim, device=run.device)
    coins = torch.Generator().manual_seed(run.seed * 1_000_003 + run.step)
    # Forward, backward, clip, step.
    loss = loss_of(run, events, controls, init, coins)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), o.clip_norm)
    run.optimizer.step()
    run.step += 1
    return loss.item(), norm.item()


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
    """Mean cross-entropy per event of the window's next-event logits [T, B, event_dim]."""
    with torch.autocast(run.device.type, dtype=run.autocast, enabled=run.autocast is not None):
        logits = run.net(init, events, controls, run.options.teacher_forcing_ratio, generator)
    return F.cross_entropy(logits.float().flatten(0, 1), events.flatten())


def _evaluate(run: Run, writer, log) -> None:
    """Validates, says so, and keeps the weights in NAME.best.sess when they are the best yet."""
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


def validate(run: Run) -> float | None:
    """Mean loss per event over fixed validation windows, zero init, eval mode."""
    if run.validation is None or len(run.validation) == 0:
        return None
    starts = run.validation.evenly(run.options.val_batches * run.options.batch_size)
    return mean_loss(run.model, run.validation, starts, run.options.batch_size, run.device)


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
        extra={
            "seed": run.seed,
            "lr_schedule": run.schedule.to_dict(),
            "output_dropout": run.model.output_dropout,
        },
    ).save(path or run.options.session)


def best_path(session: Path) -> Path:
    """Where the weights with the best validation loss so far are kept: NAME.best.sess."""
    return session.with_name(session.stem + ".best" + session.suffix)


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


def _log_step(run: Run, bar, writer, log, loss: float, norm: float, speed: float) -> None:
    """Rank 0's account of a step: the bar, TensorBoard's scalars, and a line every 50 steps."""
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
