"""The house's plan, checked: amadeus/ holds one folder per stage of the pipeline, and a stage
imports only the stages before it. Imports are read from the source (every `import`, at the top
or inside a function), so a lazy import cannot hide an arrow that runs back up. Then, in a fresh
interpreter (a module imported by an earlier test would hide a violation): the codec side loads
no torch, the generation algorithms load nothing of quantization, and reading or writing MIDI
loads no pretty_midi."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "amadeus"
# The pipeline, in order: a stage may import the stages before it, never one after it. Train
# and quant both build on the model and know nothing of each other; generation opens either
# kind of model (amadeus.generate.loaded), so it comes after quant.
STAGES = ("data", "model", "train", "quant", "generate", "evaluation", "live")
SHARED = ("errors", "atomic", "progress", "cli")  # plumbing every stage may use
SERVER = "amadeus.live.server"
SERVER_USERS = {"amadeus.live.playing"}  # play.py's path: the web server is imported only there


def module_names() -> dict[str, Path]:
    return {
        ".".join(("amadeus", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): path
        for path in PACKAGE.rglob("*.py")
    }


def imports(path: Path) -> set[str]:
    """Every amadeus module `path` imports: `from amadeus.x import y` counts as amadeus.x.y
    when y is a module, else as amadeus.x."""
    known = module_names()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return {name for name in found if name == "amadeus" or name.startswith("amadeus.")}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_package_is_one_folder_per_stage():
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(STAGES)
    assert entries == set(STAGES) | {f"{name}.py" for name in SHARED} | {"__init__.py"}
    assert len(entries) <= 12
    for stage in STAGES:
        docstring = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
        assert docstring and "import" in docstring.lower(), (
            f"{stage}/__init__.py says what it may import"
        )


def test_no_stage_imports_a_later_one():
    wrong = []
    for module, path in module_names().items():
        own = stage_of(module)
        rank = STAGES.index(own) if own else -1  # shared plumbing imports no stage at all
        for imported in imports(path):
            other = stage_of(imported)
            if other is not None and STAGES.index(other) > rank:
                wrong.append(f"{module} -> {imported}")
    assert not wrong


def test_only_play_imports_the_web_server():
    users = {m for m, path in module_names().items() if SERVER in imports(path)}
    assert users == SERVER_USERS


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "module", ["amadeus.data.codec", "amadeus.data.controls", "amadeus.data.notes"]
)
def test_the_codec_side_loads_no_torch(module):
    modules = loaded_after(f"import {module}")
    assert module in modules
    assert "torch" not in modules


def test_the_generation_algorithms_load_nothing_of_quantization():
    modules = loaded_after("import amadeus.generate.search, amadeus.generate.sampling")
    assert "amadeus.generate.search" in modules
    assert not {m for m in modules if m.startswith("amadeus.quant")}


def test_reading_and_writing_midi_loads_no_pretty_midi(tmp_path):
    path = tmp_path / "a.mid"
    statement = (
        "from amadeus.data import midi; from amadeus.data.notes import Notes; "
        f"midi.write(Notes.build([0], [1], [60], [64]), {str(path)!r}); midi.read({str(path)!r})"
    )
    modules = loaded_after(statement)
    assert "symusic" in modules
    assert "pretty_midi" not in modules
