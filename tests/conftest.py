"""The compiled GRU cell (amadeus.quant.native) is built for the tests into .pytest_cache, not
the user's ~/.cache; fresh interpreters started by tests inherit the same place."""

import os
from pathlib import Path

os.environ["XDG_CACHE_HOME"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache")


import pytest  # noqa: E402
import torch  # noqa: E402

from amadeus.model.network import PerformanceRNN  # noqa: E402
from amadeus.model.session import Session  # noqa: E402


@pytest.fixture(scope="session")
def tiny_session(tmp_path_factory) -> Path:
    """A small random 2 x 32 model's .sess (prnn, 240 tokens): the live tests' player."""
    torch.manual_seed(0)
    model = PerformanceRNN(240, 24, 8, 32, 2)
    path = tmp_path_factory.mktemp("tiny") / "tiny.sess"
    Session(model.config, model.state_dict()).save(path)
    return path
