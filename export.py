#!/usr/bin/env python3
"""Exports a session for the page that plays by itself (no server): FOLDER/NAME.onnx, one
generation step of the model as an ONNX graph (int8 for an .int8.sess, float32 for a .sess), and
FOLDER/NAME.json, everything else the page's engine must know (codec, encoding, controls,
sampling rules, live settings, protocol) with the graph's size, checksum and shapes."""

import argparse
from pathlib import Path

from amadeus import cli
from amadeus.atomic import writable_folder
from amadeus.errors import UsageError
from amadeus.generate.loaded import load
from amadeus.live.onnx_export import export_page_model


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "-s", "--session", type=Path, required=True, help="a .sess, or an .int8.sess (int8)"
    )
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="folder to write into")
    p.add_argument(
        "--name",
        default=None,
        help="file names' stem (default: the session's, without .int8: bach for bach.int8.sess)",
    )
    return p.parse_args()


def default_name(session: Path) -> str:
    return session.name.removesuffix(".sess").removesuffix(".int8")


def main() -> None:
    args = parse_args()
    name = args.name or default_name(args.session)
    if Path(name).name != name or name in (".", ".."):
        raise UsageError(f"--name {name!r}: a file name's stem, without a folder")
    loaded = load(args.session)
    writable_folder(args.output_dir)
    path, manifest = export_page_model(loaded, args.output_dir, name)
    model, graph = manifest["model"], manifest["onnx"]
    print(
        f"{path.with_name(graph['file'])} ({graph['bytes'] / 1e6:.2f} MB, {model['precision']}, "
        f"{model['layers']} x {model['hidden']}) and {path}"
    )


if __name__ == "__main__":
    cli.run(main)
