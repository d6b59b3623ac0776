"""`gru_cell.cpp`, compiled on first use: the int8 stepper's fp16 GRU cell as one op.

In TorchScript each of the cell's dozen torch calls costs a few microseconds, on cold caches
(every step streams the int8 weights through them), which was more than half an int8 step at
batch 8. The op does the same arithmetic, bit for bit, in one pass.

It is built with the C++ compiler (`$CXX`, else `c++`) against torch's own headers, in about five
seconds, into `$XDG_CACHE_HOME/amadeus` (else ~/.cache/amadeus), keyed by the source, the flags
and torch's version, and reused from then on. Only where torch runs its AVX512 kernels: the op
computes sigmoid with the same vector exp as torch's, and tanh from a table of torch's own
results, which is what makes it exact. Anywhere else, with no compiler, or with
AMADEUS_NATIVE=0, the stepper keeps the TorchScript cell.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import torch
from torch import Tensor
from torch.utils import cpp_extension

from amadeus.atomic import replacing

SOURCE = Path(__file__).with_name("gru_cell.cpp")
ABI = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"  # as torch was built
FLAGS = ["-O2", "-std=c++20", "-shared", "-fPIC", "-mavx512f", "-mavx512bw", "-mavx512vl",
         "-mavx512dq", "-mf16c", "-mfma", ABI]  # fmt: skip
BUILD_SECONDS = 300
ONE = 0x3C00  # fp16 bits of 1.0


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "amadeus"


@functools.cache
def available() -> bool:
    """Whether torch.ops.amadeus.gru_cell_fp16 is loaded (building it first if need be)."""
    if os.environ.get("AMADEUS_NATIVE", "1") == "0":
        return False
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    path = compiler()
    if path is None:
        return False
    try:
        tanh_table()
        torch.ops.load_library(str(_build(path)))
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return False  # no usable compiler or cache: the TorchScript cell does the same work
    return True


@functools.cache
def tanh_table() -> tuple[Tensor, int]:
    """(fp16 bits of tanh for magnitude bits from..., from) for the op's tanh: torch's tanh of
    every fp16 value, rounded to fp16. Checked against all 65536 of them: odd, x itself below the
    table, 1 above it (so only 7,485 entries, 15 KB, few enough to stay in cache)."""
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
    """torch's tanh of fp16 values as generation computes it, in one thread: in chunks smaller
    than torch's parallel grain (the first parallel tanh of a process was seen to return values
    5e-5 off in part of its second thread's share)."""
    return torch.cat([torch.tanh(part.float()) for part in x.split(4096)]).half().view(torch.int16)


def compiler() -> str | None:
    """The C++ compiler's path, if there is one."""
    return shutil.which(os.environ.get("CXX", "c++"))


def _build(compiler: str) -> Path:
    """The compiled library, from the cache when it holds this source built with these flags."""
    key = hashlib.sha256(
        "\0".join([SOURCE.read_text(), compiler, *FLAGS, torch.__version__]).encode()
    ).hexdigest()[:16]
    library = cache_folder() / f"gru_cell-{key}.so"
    if library.exists():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    include = [f"-I{path}" for path in cpp_extension.include_paths()]
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    command = [compiler, *FLAGS, *include, str(SOURCE), f"-L{torch_lib}", "-lc10", "-ltorch_cpu",
               f"-Wl,-rpath,{torch_lib}"]  # fmt: skip
    with replacing(library) as tmp:
        subprocess.run(
            [*command, "-o", str(tmp)], check=True, capture_output=True, timeout=BUILD_SECONDS
        )
    return library
