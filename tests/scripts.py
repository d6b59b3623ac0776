"""Running the top-level scripts from tests: in this process (`cli.run(main)` with its own argv,
about 100x cheaper than a process), and checking that a user's mistake is one line, exit 2."""

import importlib.util
import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest

from amadeus import cli

ROOT = Path(__file__).resolve().parents[1]


def in_process(script: str, args: list) -> tuple[int, str, str]:
    """`script`'s `cli.run(main)` here, on the CPU: (exit status, stdout, stderr)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, err = io.StringIO(), io.StringIO()
    argv = [script, "--device", "cpu", *map(str, args)]
    patch_argv = mock.patch.object(sys, "argv", argv)
    with patch_argv, redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        cli.run(module.main)
    return exit_.value.code, out.getvalue(), err.getvalue()


def assert_one_error(code: int, stderr: str, fragment: str) -> None:
    """Exit 2 and a single `error: ...` line holding `fragment`."""
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert fragment in lines[0], lines[0]
