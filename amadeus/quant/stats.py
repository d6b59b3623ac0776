"""Calibration statistics in Distiller's YAML schema, so files written by the original Amadeus
(with Distiller) and ours read alike:

    module.name:
      inputs:
        0: {min, max, avg_min, avg_max, mean, std, shape}
        1: ...                      # as many as the module takes
      output: {min, max, avg_min, avg_max, mean, std, shape}

avg_min/avg_max: per call, the mean over rows (every position but the last axis) of each row's
min/max, then averaged over calls: the range quantization clips activations to. A module that
never ran has only an output record with min 1.797e308, max -1.797e308 and shape ''.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from torch import Tensor, nn

from amadeus.atomic import write_bytes
from amadeus.errors import StatsError

_NUMBERS = ("min", "max", "avg_min", "avg_max", "mean", "std")
_NEVER = 1.7976931348623157e308  # Distiller's min (and -max) of a module that never ran


@dataclass(frozen=True)
class Record:
    """Statistics of one tensor slot (an input or the output) of one module."""

    min: float
    max: float
    avg_min: float
    avg_max: float
    mean: float
    std: float
    shape: tuple[int, ...] | None  # of the last call; None: never ran

    @classmethod
    def never_ran(cls) -> Record:
        return cls(_NEVER, -_NEVER, 0, 0, 0, 0, None)

    @property
    def ran(self) -> bool:
        return self.shape is not None

    @property
    def avg_range(self) -> tuple[float, float]:
        """The clipping range of Distiller's AVG mode."""
        return self.avg_min, self.avg_max

    @classmethod
    def from_yaml(cls, raw: object) -> Record:
        """Parse one record; ValueError says what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError("is not a mapping")
        missing = [key for key in (*_NUMBERS, "shape") if key not in raw]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        numbers = {key: _number(raw[key], key) for key in _NUMBERS}
        shape = _shape(raw["shape"])
        if numbers["min"] > numbers["max"]:  # Distiller's mark of a module that never ran
            shape = None
        return cls(**numbers, shape=shape)

    def to_yaml(self) -> dict:
        shape = "" if self.shape is None else str(tuple(self.shape))
        return {key: getattr(self, key) for key in _NUMBERS} | {"shape": shape}


@dataclass(frozen=True)
class ModuleStats:
    inputs: dict[int, Record]
    output: Record

    @property
    def ran(self) -> bool:
        return self.output.ran and all(r.ran for r in self.inputs.values())

    def to_yaml(self) -> dict:
        inputs = {"inputs": {i: r.to_yaml() for i, r in self.inputs.items()}} if self.inputs else {}
        return inputs | {"output": self.output.to_yaml()}


class Stats(dict):
    """Module name -> ModuleStats, remembering the file it came from for error messages."""

    def __init__(self, modules: dict[str, ModuleStats], source: str | Path = "<calibration>"):
        super().__init__(modules)
        self.source = str(source)

    def require(self, name: str) -> ModuleStats:
        """The statistics of a module the quantizer needs: present, and from a module that ran."""
        if name not in self:
            raise StatsError(f"{self.source}: no statistics for module {name}")
        module = self[name]
        if not module.ran:
            raise StatsError(f"{self.source}: module {name} never ran during calibration")
        for slot, record in [*module.inputs.items(), ("output", module.output)]:
            if not all(math.isfinite(v) for v in record.avg_range):
                raise StatsError(f"{self.source}: module {name} {slot}: avg range is not finite")
        return module


def load_stats(path: str | Path) -> Stats:
    """Read a statistics file (ours or Distiller's). Modules that never ran load, flagged; the
    quantizer's `require` refuses them."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise StatsError(f"{path}: cannot read ({e.strerror or e})") from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise StatsError(f"{path}: not a YAML file ({str(e).splitlines()[0]})") from e
    if not isinstance(raw, dict) or not raw:
        raise StatsError(f"{path}: not a statistics file (expected a mapping of module names)")
    return Stats({str(name): _module(path, str(name), entry) for name, entry in raw.items()}, path)


def save_stats(stats: dict[str, ModuleStats], path: str | Path) -> None:
    """Write atomically, in the layout and number style of Distiller's files."""
    path = Path(path)
    text = yaml.safe_dump(
        {name: module.to_yaml() for name, module in stats.items()},
        sort_keys=False,
        default_flow_style=False,
    )
    write_bytes(path, text.encode(), durable=True)


def _module(path: Path, name: str, entry: object) -> ModuleStats:
    if not isinstance(entry, dict) or "output" not in entry:
        raise StatsError(f"{path}: module {name}: expected a mapping with an output record")
    inputs = entry.get("inputs") or {}
    if not isinstance(inputs, dict) or not all(isinstance(i, int) for i in inputs):
        raise StatsError(f"{path}: module {name}: inputs must map input numbers to records")
    records = {i: _record(path, name, f"input {i}", raw) for i, raw in inputs.items()}
    output = _record(path, name, "output", entry["output"])
    return ModuleStats(dict(sorted(records.items())), output)


def _record(path: Path, name: str, where: str, raw: object) -> Record:
    try:
        return Record.from_yaml(raw)
    except ValueError as e:
        raise StatsError(f"{path}: module {name}: {where} record {e}") from e


def _number(value: object, key: str) -> float:
    # PyYAML reads 1e-05 (no dot) as a string: YAML 1.2 writers emit it, so accept it.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"has a non-numeric {key}: {value!r}")
    try:
        return value if isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise ValueError(f"has a non-numeric {key}: {value!r}") from None


def _shape(value: object) -> tuple[int, ...] | None:
    if value in ("", None):
        return None
    parts = value.strip().strip("()[]").split(",") if isinstance(value, str) else value
    try:
        return tuple(int(v) for v in parts if not isinstance(v, str) or v.strip())
    except (TypeError, ValueError):
        raise ValueError(f"has a malformed shape: {value!r}") from None


class _Running:
    """Distiller's statistics of one tensor slot, accumulated over calls (float64)."""

    def __init__(self) -> None:
        self.calls = 0
        self.count = 0  # elements seen
        self.mean = self.m2 = 0.0  # Chan's parallel update of mean and sum of squared deviations
        self.min, self.max = math.inf, -math.inf
        self.sum_avg_min = self.sum_avg_max = 0.0
        self.shape: tuple[int, ...] = ()

    def update(self, t: Tensor) -> None:
        t = t.detach().double()
        rows = t.reshape(-1, t.shape[-1]) if t.dim() > 1 else t.reshape(1, -1)  # [R, last]
        if rows.numel() == 0:
            return
        n, mean = rows.numel(), rows.mean().item()
        m2 = ((rows - mean) ** 2).sum().item()
        delta, total = mean - self.mean, self.count + n
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.min = min(self.min, rows.min().item())
        self.max = max(self.max, rows.max().item())
        self.sum_avg_min += rows.amin(1).mean().item()
        self.sum_avg_max += rows.amax(1).mean().item()
        self.calls += 1
        self.shape = tuple(t.shape)

    def record(self) -> Record:
        if not self.calls:
            return Record.never_ran()
        avg_min, avg_max = self.sum_avg_min / self.calls, self.sum_avg_max / self.calls
        std = math.sqrt(self.m2 / self.count)
        return Record(self.min, self.max, avg_min, avg_max, self.mean, std, self.shape)


class StatsCollector:
    """Records the inputs and output of a model's modules, by forward hooks while used as a
    context manager (`with StatsCollector(model) as c: model(...)`), or by explicit `record` calls.

    By default every leaf module is watched: with the GRU split into cells, those are exactly the
    modules the quantizer needs.
    """

    def __init__(self, model: nn.Module, names: Iterable[str] | None = None) -> None:
        modules = dict(model.named_modules())
        if names is None:
            names = [n for n, m in modules.items() if n and not any(m.children())]
        self.modules = {name: modules[name] for name in names}
        self.inputs: dict[str, dict[int, _Running]] = {name: {} for name in self.modules}
        self.outputs = {name: _Running() for name in self.modules}
        self._hooks: list = []

    def record(self, name: str, inputs: Sequence[object], output: object) -> None:
        """Fold one call of module `name` into its statistics; non-tensor arguments are skipped."""
        for i, x in enumerate(inputs):
            if isinstance(x, Tensor):
                self.inputs[name].setdefault(i, _Running()).update(x)
        if isinstance(output, (tuple, list)):  # e.g. nn.GRU's (output, h_n): the first
            output = next((o for o in output if isinstance(o, Tensor)), None)
        if isinstance(output, Tensor):
            self.outputs[name].update(output)

    def stats(self) -> Stats:
        """Everything recorded so far; watched modules that never ran get Distiller's mark."""
        result = {}
        for name in self.modules:
            inputs = {i: r.record() for i, r in sorted(self.inputs[name].items())}
            result[name] = ModuleStats(inputs, self.outputs[name].record())
        return Stats(result)

    def __enter__(self) -> StatsCollector:
        for name, module in self.modules.items():
            self._hooks.append(module.register_forward_hook(functools.partial(self._hook, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def _hook(self, name: str, _module: nn.Module, inputs: tuple, output: object) -> None:
        self.record(name, inputs, output)
