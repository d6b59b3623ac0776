"""The design's layering rules, checked in a fresh interpreter (a module imported by an earlier
test would hide a violation): the codec side loads no torch, generation loads no quantization,
and reading or writing MIDI loads no pretty_midi."""

import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize("module", ["amadeus.codec", "amadeus.controls", "amadeus.notes"])
def test_the_codec_side_loads_no_torch(module):
    modules = loaded_after(f"import {module}")
    assert module in modules
    assert "torch" not in modules


def test_generation_loads_nothing_of_quantization():
    modules = loaded_after("import amadeus.generation")
    assert "amadeus.generation" in modules
    assert not {m for m in modules if m.startswith("amadeus.quant")}


def test_reading_and_writing_midi_loads_no_pretty_midi(tmp_path):
    path = tmp_path / "a.mid"
    statement = (
        "from amadeus import midi; from amadeus.notes import Notes; "
        f"midi.write(Notes.build([0], [1], [60], [64]), {str(path)!r}); midi.read({str(path)!r})"
    )
    modules = loaded_after(statement)
    assert "symusic" in modules
    assert "pretty_midi" not in modules
