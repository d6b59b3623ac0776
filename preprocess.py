#!/usr/bin/env python3
"""Converts a folder of MIDI files into `.data` event sequences for training."""

import argparse
from pathlib import Path

from amadeus import cli
from amadeus.data.codec import PRESETS
from amadeus.data.dataset import DEFAULT_MAX_SILENCE
from amadeus.data.preprocessing import PreprocessOptions, run


def parse_args() -> PreprocessOptions:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("midi_dir", type=Path, help="folder searched recursively for .mid/.midi")
    parser.add_argument("out_dir", type=Path, help="folder that receives one .data per MIDI file")
    parser.add_argument(
        "-j",
        "--jobs",
        type=cli.positive_int,
        default=None,
        help="worker processes (default: all cores)",
    )
    parser.add_argument(
        "--codec",
        choices=sorted(PRESETS),
        default="prnn",
        help="token layout (default prnn, the original checkpoints' 240 tokens)",
    )
    parser.add_argument(
        "--no-sustain",
        dest="sustain",
        action="store_false",
        help="ignore the sustain pedal (CC64) instead of lengthening notes",
    )
    parser.add_argument(
        "--max-silence",
        type=cli.positive_float,
        default=DEFAULT_MAX_SILENCE,
        metavar="SECONDS",
        help=f"shorten longer silences to this (default {DEFAULT_MAX_SILENCE})",
    )
    cli.add_quiet(parser)
    return cli.options(PreprocessOptions, parser.parse_args())


def main() -> int:
    return run(parse_args())


if __name__ == "__main__":
    cli.run(main)
