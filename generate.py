#!/usr/bin/env python3
"""Generates piano performances with a trained session: sampled, beam-searched, conditioned on
controls, or continuing a phrase you played (-i)."""

import argparse
from pathlib import Path

from amadeus import cli
from amadeus.data.codec import PRESETS
from amadeus.generate import shipped
from amadeus.generate.inputs import DEFAULT_LENGTH
from amadeus.generate.loaded import load
from amadeus.generate.pieces import GenerateOptions, run

USER_DEFAULT = Path("save/train.sess")  # train.py's default session


def parse_args() -> GenerateOptions:
    d = GenerateOptions()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "-s",
        "--session",
        type=Path,
        default=None,
        help=f"a .sess from train.py or the original project, or an .int8.sess (default "
        f"{USER_DEFAULT} when you trained it, else the shipped model in models/)",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=d.output_dir,
        help="receives <session name>-NNN.mid, numbered on from the files already there "
        f"(default {d.output_dir})",
    )
    p.add_argument(
        "-b",
        "--batch-size",
        type=cli.positive_int,
        default=d.batch_size,
        help=f"pieces to generate at once (default {d.batch_size})",
    )
    p.add_argument(
        "-l",
        "--max-length",
        type=cli.int_arg,
        default=None,
        metavar="EVENTS",
        help=f"events per piece (default {DEFAULT_LENGTH}, or the length of a "
        "control file, which it may not exceed; 0 means that length)",
    )
    p.add_argument(
        "-c",
        "--control",
        default=None,
        help="'h0,...,h11;d': 12 pitch-class weights (C, C#, ..., B; normalised) and a "
        "note-density bin 0-11 held for the whole piece, ';d' alone for a uniform "
        "histogram; or a .data file (or a folder: one picked at random) whose "
        "controls vary over time. Default: unconditioned",
    )
    p.add_argument(
        "-g",
        "--greedy-ratio",
        type=cli.unit_float,
        default=d.greedy_ratio,
        help="chance, per event and piece, of taking the likeliest event instead of "
        "sampling: 0 samples always (default), 1 is argmax only, which repeats "
        "itself (the original's default)",
    )
    p.add_argument(
        "-T",
        "--temperature",
        type=cli.positive_float,
        default=d.temperature,
        help="divides the logits before sampling: below 1 safer and more repetitive, "
        f"above 1 more adventurous (default {d.temperature:g})",
    )
    p.add_argument(
        "--top-p",
        type=cli.share,
        default=d.top_p,
        help="nucleus sampling: draw only from the likeliest events holding this share of the "
        f"probability (default {d.top_p:g}; 1: all of it)",
    )
    p.add_argument(
        "--max-note-seconds",
        type=cli.positive_float,
        default=None,
        metavar="SECONDS",
        help="end every note by this length (default: the longest note of the session's "
        "training data, as it records)",
    )
    p.add_argument(
        "--unconstrained",
        action="store_true",
        help="sample any event the model offers: also note-offs of silent pitches and "
        "note-ons of sounding ones, and no limit on note length (the original's way)",
    )
    p.add_argument(
        "-B",
        "--beam-size",
        type=cli.int_arg,
        default=d.beam_size,
        help="beam search with this many beams per piece; 0 samples (default)",
    )
    p.add_argument(
        "-S",
        "--stochastic-beam-search",
        action="store_true",
        help="draw the beams at random (Gumbel top-k) instead of keeping the best",
    )
    p.add_argument(
        "-z",
        "--init-zero",
        action="store_true",
        help="start from a zero initial state instead of seeded noise",
    )
    p.add_argument(
        "-i",
        "--input-midi-file",
        dest="primer",
        type=Path,
        default=None,
        metavar="MIDI",
        help="a phrase to continue; each piece is its own continuation",
    )
    p.add_argument(
        "--primer-seconds",
        type=cli.positive_float,
        default=None,
        metavar="SECONDS",
        help="continue only the first SECONDS of the phrase (default: all of it)",
    )
    p.add_argument(
        "--with-primer",
        action="store_true",
        help="write the phrase before the response (default: the response only)",
    )
    p.add_argument(
        "-q",
        "--stats-file",
        type=Path,
        default=None,
        help="calibration stats: quantize the session to int8 on the fly",
    )
    p.add_argument(
        "--codec",
        choices=sorted(PRESETS),
        default=None,
        help="check that the session uses this token layout",
    )
    p.add_argument(
        "--wav",
        action="store_true",
        help="also render .wav (needs the fluidsynth and fluid-soundfont-gm packages)",
    )
    p.add_argument("--png", action="store_true", help="also draw a piano roll .png")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="number the pieces from 000, replacing earlier ones (default: after them)",
    )
    cli.add_device(p)
    cli.add_seed(p, d.seed, "the music: the same seed, the same music")
    cli.add_quiet(p)
    return cli.options(GenerateOptions, p.parse_args())


def main() -> None:
    options = parse_args()
    session = options.session or shipped.for_generation(USER_DEFAULT)
    run(load(session, options.stats_file), options)


if __name__ == "__main__":
    cli.run(main)
