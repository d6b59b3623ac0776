"""Code run in a fresh interpreter where every warning is an error: torch warns once per process
(quantized tensors, torch.jit.script), so only a new process can show that a user sees none."""

import subprocess
import sys


def assert_warns_nobody(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
