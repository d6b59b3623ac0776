"""The compiled GRU cell (amadeus.quant.native) is built for the tests into .pytest_cache, not
the user's ~/.cache; fresh interpreters started by tests inherit the same place."""

import os
from pathlib import Path

os.environ["XDG_CACHE_HOME"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache")
