"""quantize.py end to end on a tiny model trained in the test: statistics, int8 session,
perplexities on train.py's validation windows, --evaluate, and every bad input as one line, exit 2.

A real process runs the calibration (the whole contract: exit status, files across processes);
the other runs call the same `cli.run(main)` in this process. One fixture runs them all.
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import scripts
import torch
import yaml
from test_quant_quantizer import distiller_names
from test_training import make_dataset, options

from amadeus.data.dataset import Windows, load_split
from amadeus.generate.loaded import load
from amadeus.model.loss import mean_loss
from amadeus.model.session import Session, build_model
from amadeus.quant.models import Int8PerformanceRNN
from amadeus.quant.quantizer import quantize
from amadeus.quant.stats import load_stats
from amadeus.train.loop import prepare, train, validate

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "../shared/fixtures/distiller_stats_performance_rnn.yaml"
WINDOW, BATCH, VAL_WINDOWS = 32, 4, 16  # 16 = train.py's val_batches (4) x batch size
NEVER_RAN = {"min": 1.7976931348623157e308, "max": -1.7976931348623157e308, "shape": ""}


def inputs(tmp: Path) -> dict[str, Path]:
    """A tiny trained session, its dataset, a dataset of another codec, a corrupt session."""
    make_dataset(tmp / "data")
    make_dataset(tmp / "magenta", files=2, codec="magenta")
    train(prepare(options(tmp, max_steps=40, learning_rate=1e-2)), log=lambda _: None)
    (tmp / "corrupt.sess").write_bytes(b"PK\x03\x04 not really a zip")
    older = Session.load(tmp / "m.sess")
    older.data = None  # as sessions were before they recorded their data
    older.save(tmp / "older.sess")
    (tmp / "out").mkdir()
    return {"sess": tmp / "m.sess", "data": tmp / "data", "out": tmp / "out", "tmp": tmp}


def recorded(f: dict, stats: Path, *extra) -> list:
    """Only the session: its dataset, window and split come from its record."""
    common = ["-b", BATCH, "--val-windows", VAL_WINDOWS, "--batches", 6, "--quiet"]
    return ["-s", f["sess"], "-q", stats, *common, *extra]


def args(f: dict, stats: Path, *extra) -> list:
    common = ["-b", BATCH, "-w", WINDOW, "--val-windows", VAL_WINDOWS, "--batches", 6, "--quiet"]
    return ["-s", f["sess"], "-q", stats, "-d", f["data"], *common, *extra]


def bad_stats(f: dict) -> dict[str, Path]:
    """Statistics files spoiled one way each, made from the good run's file."""
    good = yaml.safe_load((f["out"] / "m.yaml").read_text())
    spoiled = {}
    missing = {k: v for k, v in good.items() if k != "gru.cells.1.fc_gate_h"}
    never = dict(good, **{"gru.cells.0.fc_gate_x": {"output": {**good["output_fc"]["output"]}}})
    never["gru.cells.0.fc_gate_x"]["output"].update(NEVER_RAN)
    for name, content in [("missing_module", missing), ("never_ran", never)]:
        spoiled[name] = f["tmp"] / f"{name}.yaml"
        spoiled[name].write_text(yaml.safe_dump(content, sort_keys=False))
    spoiled["not_yaml"] = f["tmp"] / "not_yaml.yaml"
    spoiled["not_yaml"].write_text("inithid_fc: [unclosed\n")
    return spoiled


def bad_runs(f: dict, spoiled: dict) -> dict[str, tuple[list, str]]:
    """name: (arguments, the error line's text after 'error: '). None writes bad.yaml or
    bad.int8.sess."""
    out = f["out"]
    output = ["-o", out / "bad.int8.sess"]
    calibrating = args(f, out / "bad.yaml", *output)

    def evaluating(stats):
        return args(f, stats, "--evaluate", *output)

    return {
        "stats missing": (evaluating(out / "none.yaml"), f"{out / 'none.yaml'}: cannot read"),
        "stats not YAML": (evaluating(spoiled["not_yaml"]), f"{spoiled['not_yaml']}: not a YAML"),
        "stats missing a module": (
            evaluating(spoiled["missing_module"]),
            f"{spoiled['missing_module']}: no statistics for module gru.cells.1.fc_gate_h",
        ),
        "stats of another architecture": (
            evaluating(FIXTURE),
            f"{FIXTURE}: module inithid_fc output has 1536 features, the model 48: "
            "statistics from another architecture",
        ),
        "module that never ran": (
            evaluating(spoiled["never_ran"]),
            f"{spoiled['never_ran']}: module gru.cells.0.fc_gate_x never ran during calibration",
        ),
        "codec mismatch": (
            [*calibrating[:4], "-d", f["tmp"] / "magenta", *calibrating[6:]],
            f"{f['tmp'] / 'magenta'}: made with codec 'magenta', but {f['sess']} reads codec "
            "'prnn'",
        ),
        "session missing": (
            [calibrating[0], out / "none.sess", *calibrating[2:]],
            f"{out / 'none.sess'}: no such file",
        ),
        "session corrupt": (
            [calibrating[0], f["tmp"] / "corrupt.sess", *calibrating[2:]],
            f"{f['tmp'] / 'corrupt.sess'}: corrupt or not a torch file",
        ),
        "stats folder missing": (
            args(f, out / "no" / "bad.yaml", *output),
            f"{out / 'no' / 'bad.yaml'}: folder {out / 'no'} does not exist",
        ),
        "output over the session": (
            args(f, out / "bad.yaml", "-o", f["sess"]),
            f"--output {f['sess']}: would overwrite the float session",
        ),
        "older session without a dataset": (
            [calibrating[0], f["tmp"] / "older.sess", *calibrating[2:4], *calibrating[6:]],
            f"{f['tmp'] / 'older.sess'}: the session does not record its dataset",
        ),
        "windows longer than the music": (
            [*evaluating(out / "m.yaml"), "-w", "100000"],
            f"{f['data']}: no validation window of 100000 events",
        ),
    }


def in_process(arguments: list) -> tuple[int, str, str]:
    return scripts.in_process("quantize.py", arguments)


def in_subprocess(arguments: list) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "quantize.py"), "--device", "cpu", *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, CI="true", OMP_NUM_THREADS="1"),  # as this process: same bytes
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny products: threads only add overhead on a shared machine
    try:
        f = inputs(tmp_path_factory.mktemp("quantize"))
        out = f["out"]
        results = {"calibrate": in_subprocess(args(f, out / "m.yaml", "-o", out / "m.int8.sess"))}
        results["evaluate"] = in_process(args(f, out / "m.yaml", "--evaluate"))
        results["again"] = in_process(args(f, out / "again.yaml"))
        results["other seed"] = in_process(args(f, out / "other.yaml", "--seed", "1"))
        results["recorded"] = in_process(recorded(f, out / "recorded.yaml"))
        overridden = recorded(f, out / "overridden.yaml", "--val-fraction", "0.5", "-w", WINDOW)
        results["overridden"] = in_process(overridden)
        bad = bad_runs(f, bad_stats(f))
        results |= {name: in_process(arguments) for name, (arguments, _) in bad.items()}
        yield {"files": f, "results": results, "bad": bad}
    finally:
        torch.set_num_threads(threads)


def ok(world, name) -> str:
    code, stdout, stderr = world["results"][name]
    assert code == 0, stderr
    return stdout


def perplexities(stdout: str) -> tuple[float, float, float]:
    """(fp32, int8, printed difference in %) from quantize.py's report."""
    fp32 = float(re.search(r"fp32\s+([\d.]+)", stdout)[1])
    int8, diff = re.search(r"int8\s+([\d.]+)\s+\(([-+][\d.]+)%\)", stdout).groups()
    return fp32, float(int8), float(diff)


def test_statistics_file(world):
    ok(world, "calibrate")
    stats = load_stats(world["files"]["out"] / "m.yaml")
    assert list(stats) == distiller_names(2)
    assert all(module.ran for module in stats.values())
    assert stats["output_fc"].inputs[0].shape == (WINDOW, BATCH, 2 * 24)  # [T, B, L*H]
    for k in range(2):  # eval mode: no dropout in the hidden state, bounded by tanh
        gate_h = stats[f"gru.cells.{k}.fc_gate_h"].inputs[0]
        assert -1 <= gate_h.min < 0 < gate_h.max <= 1
    # the init noise is drawn as generation draws it: standard normal
    assert stats["inithid_fc"].inputs[0].std == pytest.approx(1, abs=0.2)


def test_calibration_is_seeded(world):
    ok(world, "again")
    ok(world, "other seed")
    out = world["files"]["out"]
    first = (out / "m.yaml").read_bytes()
    assert (out / "again.yaml").read_bytes() == first
    assert (out / "other.yaml").read_bytes() != first


def test_int8_session_holds_the_quantized_model(world):
    f = world["files"]
    model = build_model(Session.load(f["sess"])).eval()
    want = quantize(model, load_stats(f["out"] / "m.yaml"))
    loaded = load(f["out"] / "m.int8.sess")
    assert loaded.data == Session.load(f["sess"]).data and loaded.data is not None
    loaded, codec = loaded.model, loaded.codec
    assert isinstance(loaded, Int8PerformanceRNN) and codec == "prnn"
    assert loaded.state_dict().keys() == want.state_dict().keys()
    assert all(torch.equal(v, want.state_dict()[k]) for k, v in loaded.state_dict().items())
    stdout = ok(world, "calibrate")
    line = next(line for line in stdout.splitlines() if line.startswith(f"{f['out']}/m.int8"))
    size = (f["out"] / "m.int8.sess").stat().st_size
    assert f"{size / 1e6:.2f} MB" in line and "% of the fp32 weights" in line


def test_perplexity_on_train_py_validation_windows(world):
    f = world["files"]
    fp32, int8, diff = perplexities(ok(world, "calibrate"))
    # train.py's own validation of this session reports the same fp32 figure
    run = prepare(options(f["tmp"], batch_size=BATCH, window_size=WINDOW))
    assert fp32 == pytest.approx(math.exp(validate(run)), abs=1e-4)
    # and the int8 figure is the int8 session's, on the same windows
    validation = load_split(f["data"], 0.1).validation
    windows = Windows(validation, WINDOW, WINDOW)
    starts = windows.evenly(VAL_WINDOWS)
    model = load(f["out"] / "m.int8.sess").model
    assert int8 == pytest.approx(math.exp(mean_loss(model, windows, starts, BATCH)), abs=1e-4)
    assert diff == pytest.approx(100 * (int8 / fp32 - 1), abs=0.01)
    assert abs(diff) < 2  # int8 within 2% of fp32 even on this tiny model
    assert "16 validation windows of 32 events, zero init" in ok(world, "calibrate")


def test_data_comes_from_the_session(world):
    out = world["files"]["out"]
    stdout = ok(world, "recorded")
    assert "note:" not in stdout
    assert (out / "recorded.yaml").read_bytes() == (out / "m.yaml").read_bytes()
    assert perplexities(stdout) == perplexities(ok(world, "calibrate"))


def test_a_flag_that_differs_from_the_session_says_so(world):
    lines = ok(world, "overridden").splitlines()
    notes = [line for line in lines if line.startswith("note:")]
    assert notes == ["note: --val-fraction 0.5 differs from the session's 0.1: using 0.5"]


def test_evaluate_reuses_the_statistics(world):
    stdout = ok(world, "evaluate")
    assert perplexities(stdout) == perplexities(ok(world, "calibrate"))
    assert "modules" not in stdout  # no calibration line: the file was read, not written


@pytest.mark.parametrize(
    "name",
    [
        "stats missing",
        "stats not YAML",
        "stats missing a module",
        "stats of another architecture",
        "module that never ran",
        "codec mismatch",
        "session missing",
        "session corrupt",
        "stats folder missing",
        "output over the session",
        "older session without a dataset",
        "windows longer than the music",
    ],
)
def test_bad_input(world, name):
    code, _, stderr = world["results"][name]
    scripts.assert_one_error(code, stderr, world["bad"][name][1])
    out = world["files"]["out"]
    assert not (out / "bad.yaml").exists() and not (out / "bad.int8.sess").exists()
