"""The README's commands stay true: every script it runs exists and accepts every flag it is
shown with, and the cheap ones run as written on data made here."""

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def commands() -> list[list[str]]:
    """`python3 SCRIPT ...` lines of the README's sh blocks, as argument lists."""
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    found = []
    for line in lines:
        words = shlex.split(line)
        if "python3" in words:
            found.append(words[words.index("python3") + 1 :])
    return found


@functools.cache
def help_text(script: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command", commands(), ids=lambda c: " ".join(c)[:60])
def test_readme_command_flags_exist(command):
    script, *args = command
    assert (ROOT / script).is_file(), script
    text = help_text(script)
    for flag in (a.split("=")[0] for a in args if a.startswith("-")):
        assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text), f"{script} has no {flag}"


def test_readme_names_every_script():
    for script in (
        "preprocess.py",
        "train.py",
        "quantize.py",
        "generate.py",
        "evaluate.py",
        "play.py",
    ):
        assert any(c[0] == script for c in commands()), script


def held_out(*args) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "dataset/scripts/held_out.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, CI="true"),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_held_out_command_runs(tmp_path):
    from amadeus.train.loop import prepare, train
    from tests.test_training import make_dataset, options

    data = make_dataset(tmp_path / "data", files=10)
    assert len(held_out(data)) == 1  # 10% of 10 files
    assert len(held_out(data, "--val-fraction", "0.2")) == 2
    train(prepare(options(tmp_path, max_steps=1, val_fraction=0.3)), log=lambda _: None)
    assert len(held_out(tmp_path / "m.sess")) == 3  # the session's own split
