"""`gru_cell.cpp`, compiled on first use: the int8 stepper's fp16 GRU cell as one op.

In TorchScript each of the cell's dozen torch calls costs a few microseconds, on cold caches
(every step streams the int8 weights through them), which was more than half an int8 step at
batch 8. The op does the same arithmetic, bit for bit, in one pass.

It is built with the C++ compiler (`$CXX`, else `c++`) against torch's own headers, in about five
seconds, into `$XDG_CACHE_HOME/amadeus` (else ~/.cache/amadeus), keyed by the source, the command
and torch's version, and reused from then on. Only where torch runs its AVX512 kernels: the op
computes sigmoid with the same vector exp as torch's, and tanh from a table of torch's own
results, which is what makes it exact. Anywhere else, with no compiler, or with AMADEUS_NATIVE=0,
the stepper keeps the TorchScript cell; a compiler that fails says so once on stderr.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import torch
from torch import Tensor

from amadeus.atomic import replacing

SOURCE = Path(__file__).with_name("gru_cell.cpp")
ABI = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"  # as torch was built
# No contraction: every product is rounded to fp16 on its own, as torch does.
FLAGS = ["-O2", "-std=c++20", "-shared", "-fPIC", "-ffp-contract=off", "-mavx512f",
         "-mavx512bw", "-mavx512vl", ABI]  # fmt: skip
BUILD_SECONDS = 300
ONE = 0x3C00  # fp16 bits of 1.0
_lock = threading.Lock()


def supported() -> bool:
    """Whether the op can be built here: torch on its AVX512 kernels, a C++ compiler, and not
    switched off with AMADEUS_NATIVE=0 (or false, no, off)."""
    if os.environ.get("AMADEUS_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and compiler() is not None


def available() -> bool:
    """Whether torch.ops.amadeus.gru_cell_fp16 is loaded, building it first if need be."""
    with _lock:  # two threads must not build into the same temporary file
        return _load()


@functools.cache
def _load() -> bool:
    if not supported():
        return False
    command = compiler()
    try:
        tanh_table()
        library = _build(command)
        try:
            torch.ops.load_library(str(library))
        except OSError:  # a cached file gone bad (say, emptied by a crash): build it again
            library.unlink(missing_ok=True)
            torch.ops.load_library(str(_build(command)))
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or b"").decode(errors="replace").strip().splitlines() or ["no output"]
        _warn(f"{SOURCE}: build failed ({lines[-1][:200]})")
        return False
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        _warn(f"{SOURCE}: cannot build or load ({e})")
        return False
    return True


def _warn(reason: str) -> None:
    print(
        f"warning: {reason}; int8 generation runs as slower torch calls "
        "(AMADEUS_NATIVE=0 silences this)",
        file=sys.stderr,
    )


@functools.cache
def tanh_table() -> tuple[Tensor, int]:
    """(fp16 bits of tanh for magnitude bits from..., from) for the op's tanh: torch's tanh of
    every fp16 value, rounded to fp16. Checked against all 63,490 values that are not NaN: odd,
    x itself below the table, 1 above it (so only 7,485 entries, 15 KB, few enough to stay in
    cache). The op keeps NaN as NaN."""
    bits = torch.arange(1 << 15, dtype=torch.int32).to(torch.int16)  # the positive halves
    x = bits.view(torch.float16)
    y, negative = _fp16_tanh(x), _fp16_tanh(-x)
    finite = ~x.isnan()
    if not torch.equal(negative[finite], y[finite] | -0x8000):  # tanh(-x) == -tanh(x), bitwise
        raise RuntimeError("torch's fp16 tanh is not odd")
    differs = (y != bits).nonzero()
    start = int(differs[0]) if len(differs) else len(bits)
    not_one = (finite & (y != ONE)).nonzero()
    end = int(not_one[-1]) + 1
    table = torch.cat([y[start:end], torch.tensor([ONE], dtype=torch.int16)])  # one to pad
    return table, start


def _fp16_tanh(x: Tensor) -> Tensor:
    """torch's tanh of fp16 values, in pieces small enough for torch to compute in the calling
    thread: the first multi-threaded tanh of a process was seen to return some values off by
    one fp16 step in its second thread's share."""
    return torch.cat([torch.tanh(part.float()) for part in x.split(1024)]).half().view(torch.int16)


def compiler() -> list[str] | None:
    """The C++ compiler command ($CXX, which may hold arguments such as `ccache g++`), if found."""
    command = shlex.split(os.environ.get("CXX") or "c++")
    path = shutil.which(command[0]) if command else None
    return None if path is None else [path, *command[1:]]


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/amadeus, or ~/.cache/amadeus (XDG: a relative $XDG_CACHE_HOME is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "amadeus"


def _build(command: list[str]) -> Path:
    """The compiled library, from the cache when it holds this source built the same way."""
    torch_dir = os.path.dirname(torch.__file__)  # its include/ holds ATen, c10, torch/library.h
    torch_lib = os.path.join(torch_dir, "lib")
    command = [*command, *FLAGS, f"-I{os.path.join(torch_dir, 'include')}", str(SOURCE),
               f"-L{torch_lib}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{torch_lib}"]  # fmt: skip
    key = hashlib.sha256("\0".join([SOURCE.read_text(), *command, torch.__version__]).encode())
    library = cache_folder() / f"gru_cell-{key.hexdigest()[:16]}.so"
    if library.exists():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with replacing(library) as tmp:
        subprocess.run(
            [*command, "-o", str(tmp)], check=True, capture_output=True, timeout=BUILD_SECONDS
        )
        with open(tmp, "rb") as f:  # on the disk before the rename: a crash leaves no empty file
            os.fsync(f.fileno())
    return library
