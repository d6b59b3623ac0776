#!/usr/bin/env python3
"""Play a phrase and hear Amadeus answer, live: in the browser (a MIDI keyboard through Web MIDI,
or the page's own keyboard), or on MIDI ports with --midi-in and --midi-out."""

import argparse
from pathlib import Path

from amadeus import cli
from amadeus.live.playing import DEFAULT_PORT, PlayOptions, run
from amadeus.live.settings import LiveSettings

LIVE_FLAGS = ("silence", "answer_seconds", "temperature", "conditioning")  # LiveSettings' fields


def parse_args() -> PlayOptions:
    d, live = PlayOptions(), LiveSettings()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "-s",
        "--session",
        type=Path,
        default=None,
        help="a .sess or .int8.sess (default: the shipped model in models/, else the one "
        "make demo trained); an .int8.sess beside a .sess is played instead",
    )
    p.add_argument("--fp32", action="store_true", help="play the float model, not its int8 one")
    p.add_argument(
        "--port", type=cli.positive_int, default=DEFAULT_PORT, help="default %(default)s"
    )
    p.add_argument(
        "--host",
        default=d.host,
        help="address to listen on (default 127.0.0.1: this computer only)",
    )
    p.add_argument("--no-browser", action="store_true", help="print the address, open nothing")
    p.add_argument("--midi-in", default=None, metavar="NAME", help="play on MIDI ports: the input")
    p.add_argument("--midi-out", default=None, metavar="NAME", help="and the output")
    p.add_argument("--list-ports", action="store_true", help="list the MIDI ports and exit")
    cli.add_seed(p, d.seed, "the answers' random draws")
    p.add_argument(
        "--silence",
        type=cli.positive_float,
        default=live.silence,
        metavar="SECONDS",
        help="keys and pedal up this long end a phrase (default %(default)s)",
    )
    p.add_argument(
        "--answer-seconds",
        type=cli.positive_float,
        default=None,
        help=f"answer length (default: as long as the phrase, {live.shortest:g} to "
        f"{live.longest:g} s)",
    )
    p.add_argument("--temperature", type=cli.positive_float, default=live.temperature)
    p.add_argument(
        "--no-conditioning",
        dest="conditioning",
        action="store_false",
        help="answer without the phrase's key and density as controls",
    )
    values = vars(p.parse_args())
    settings = LiveSettings(**{name: values.pop(name) for name in LIVE_FLAGS})
    return cli.options(PlayOptions, argparse.Namespace(**values, live=settings))


def main() -> None:
    run(parse_args())


if __name__ == "__main__":
    cli.run(main)
