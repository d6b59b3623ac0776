"""Calibration statistics: Distiller's YAML schema, the original's file, our collector."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from amadeus.errors import StatsError
from amadeus.quant.gru import EltwiseAdd
from amadeus.quant.linear import activation_params
from amadeus.quant.stats import Record, StatsCollector, load_stats, save_stats

FIXTURE = (
    Path(__file__).resolve().parents[1] / "../shared/fixtures/distiller_stats_performance_rnn.yaml"
)


@pytest.fixture(scope="module")
def distiller():
    return load_stats(FIXTURE)


def test_reads_the_originals_file(distiller):
    assert len(distiller) == 29
    inithid = distiller.require("inithid_fc")
    assert inithid.inputs[0].avg_range == (-2.0635503113269813, 2.11538649559021)
    assert inithid.inputs[0].shape == (2, 32)
    assert inithid.output.shape == (2, 1536)
    scale, zero_point = activation_params(*inithid.output.avg_range)
    assert (round(scale, 4), zero_point) == (37.8976, -16)
    add = distiller.require("gru.cells.2.eltwiseadd_gate")
    assert set(add.inputs) == {0, 1}
    assert distiller["event_embedding"].inputs[0].max == 239


def test_module_that_never_ran(distiller):
    never = distiller["output_fc_activation"]
    assert not never.ran and never.inputs == {}
    assert never.output == Record.never_ran()
    with pytest.raises(
        StatsError, match=re.escape(f"{FIXTURE}: module output_fc_activation never ran")
    ):
        distiller.require("output_fc_activation")
    with pytest.raises(
        StatsError, match=re.escape(f"{FIXTURE}: no statistics for module gru.cells.3.act_r")
    ):
        distiller.require("gru.cells.3.act_r")


def test_writes_the_originals_file_back_byte_for_byte(distiller, tmp_path):
    path = tmp_path / "copy.yaml"
    save_stats(distiller, path)
    assert path.read_text() == FIXTURE.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["copy.yaml"]  # no temporary left behind


def test_non_finite_range_is_refused(tmp_path):
    path = tmp_path / "nan.yaml"
    rec = "min: -1.0\nmax: 1.0\navg_min: .nan\navg_max: 1.0\nmean: 0\nstd: 1\nshape: (1, 2)"
    path.write_text("fc:\n  output:\n" + "".join(f"    {line}\n" for line in rec.split("\n")))
    with pytest.raises(StatsError, match="module fc output: avg range is not finite"):
        load_stats(path).require("fc")


GOOD = {
    "min": -1.5,
    "max": 2.0,
    "avg_min": -1.0,
    "avg_max": 1.0e-05,
    "mean": 0.1,
    "std": 0.5,
    "shape": "(2, 3)",
}


def _file(tmp_path, text):
    path = tmp_path / "stats.yaml"
    path.write_text(text)
    return path


def _entry(**changes):
    rec = "".join(f"      {k}: {v}\n" for k, v in (GOOD | changes).items() if v is not None)
    return f"fc:\n  inputs:\n    0:\n{rec}  output:\n{rec.replace('      ', '    ')}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("fc: [1, 2", "not a YAML file"),
        ("", "not a statistics file"),
        ("- 1\n- 2\n", "not a statistics file"),
        ("fc: 3\n", "module fc: expected a mapping with an output record"),
        ("fc:\n  inputs: {}\n", "module fc: expected a mapping with an output record"),
        ("fc:\n  inputs: [1]\n  output: {}\n", "module fc: inputs must map input numbers"),
        (_entry(avg_max=None), "module fc: input 0 record lacks avg_max"),
        (_entry(mean="high"), "module fc: input 0 record has a non-numeric mean: 'high'"),
        (_entry(shape="(2, x)"), "module fc: input 0 record has a malformed shape"),
        ("fc:\n  output: 7\n", "module fc: output record is not a mapping"),
    ],
)
def test_bad_files(tmp_path, text, reason):
    path = _file(tmp_path, text)
    with pytest.raises(StatsError, match=f"^{re.escape(str(path))}: {re.escape(reason)}"):
        load_stats(path)


def test_missing_file(tmp_path):
    with pytest.raises(StatsError, match=f"^{re.escape(str(tmp_path))}/none.yaml: cannot read"):
        load_stats(tmp_path / "none.yaml")


def test_good_entry_and_numbers_without_a_dot(tmp_path):
    # PyYAML reads 1e-05 as a string; YAML 1.2 writers emit it that way
    stats = load_stats(_file(tmp_path, _entry(avg_max="1e-05")))
    assert stats.require("fc").inputs[0] == Record(-1.5, 2.0, -1.0, 1e-05, 0.1, 0.5, (2, 3))
    assert stats.source == str(tmp_path / "stats.yaml")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.add = EltwiseAdd()
        self.unused = nn.Tanh()

    def forward(self, x):
        y = self.fc(x)
        return self.add(y, y * 2)


def test_collector_values():
    torch.manual_seed(0)
    model = Tiny()
    calls = [torch.randn(5, 3), torch.randn(2, 7, 3) * 3]
    with StatsCollector(model) as collector, torch.no_grad():
        outputs = [model(x) for x in calls]
    assert not model.fc._forward_hooks  # hooks gone
    stats = collector.stats()
    assert set(stats) == {"fc", "add", "unused"}
    rec = stats["fc"].inputs[0]
    everything = torch.cat([x.reshape(-1) for x in calls]).double()
    assert rec.min == everything.min().item() and rec.max == everything.max().item()
    assert rec.mean == pytest.approx(everything.mean().item(), abs=1e-12)
    assert rec.std == pytest.approx(everything.std(unbiased=False).item(), abs=1e-12)
    rows = [x.reshape(-1, 3).double() for x in calls]  # each call: mean of its rows' minima
    assert rec.avg_min == pytest.approx(sum(r.amin(1).mean().item() for r in rows) / 2, abs=1e-12)
    assert rec.avg_max == pytest.approx(sum(r.amax(1).mean().item() for r in rows) / 2, abs=1e-12)
    assert rec.shape == (2, 7, 3)  # of the last call
    add = stats["add"]
    assert set(add.inputs) == {0, 1}
    assert add.output.max == pytest.approx(max(o.max().item() for o in outputs), abs=1e-6)
    assert stats["unused"].output == Record.never_ran() and not stats["unused"].ran


def test_collector_round_trip(tmp_path):
    model = Tiny()
    collector = StatsCollector(model, names=["fc", "unused"])
    with torch.no_grad():  # explicit calls, without hooks
        x = torch.randn(4, 3)
        collector.record("fc", (x, None), model.fc(x))
    stats = collector.stats()
    path = tmp_path / "ours.yaml"
    save_stats(stats, path)
    loaded = load_stats(path)
    assert dict(loaded) == dict(stats)  # floats survive YAML exactly
    assert set(loaded["fc"].inputs) == {0}
    assert "shape: (4, 3)" in path.read_text()
    with pytest.raises(StatsError, match="module unused never ran"):
        loaded.require("unused")
