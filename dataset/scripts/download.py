#!/usr/bin/env python3
"""Downloads a piano MIDI dataset into dataset/midi/NAME (resumable, verified, safe to re-run).

maestro    MAESTRO v3.0.0, MIDI only: 1276 performances from the International
           Piano-e-Competition, ~200 h, 58 MB zip (CC BY-NC-SA 4.0, Google LLC).
yamaha     The Yamaha / Minnesota International Piano-e-Competition MIDI pages, scraped as
           the original Performance-RNN-PyTorch did; one folder per competition year.
giantmidi  GiantMIDI-Piano: no stable archive URL (Google Drive behind a disclaimer), so this
           only says how to get it by hand.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as `python dataset/scripts/download.py`: find `amadeus`

from fetch import (  # noqa: E402
    DownloadError,
    Unreachable,
    download,
    extract_zip,
    fetch_text,
    links,
    url_filename,
)

from amadeus import cli  # noqa: E402
from amadeus.progress import progress  # noqa: E402

MIDI_ROOT = ROOT / "dataset" / "midi"
MIDI_MAGIC = b"MThd"  # first bytes of every Standard MIDI File; an HTML error page is not one


@dataclass(frozen=True)
class Archive:
    """One zip file with its published checksum."""

    url: str
    checksums: dict[str, str]
    strip: str  # top folder inside the zip, dropped so files land directly in OUT_DIR
    note: str


@dataclass(frozen=True)
class Pages:
    """Web pages whose links to .mid files are downloaded, each page into its own subfolder."""

    pages: dict[str, str]  # subfolder -> page URL
    note: str


@dataclass(frozen=True)
class Manual:
    """A dataset with no stable URL to automate: the message says how to get it."""

    how: str


YAMAHA_YEARS = (2002, 2004, 2006, 2008, 2009, 2011, 2013, 2014, 2015, 2017, 2018)

DATASETS: dict[str, Archive | Pages | Manual] = {
    "maestro": Archive(
        url="https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/"
        "maestro-v3.0.0-midi.zip",
        # 58,416,533 bytes. The sha256 as muspy (salu133445/muspy) and other projects record it
        # for the MIDI-only v3.0.0 zip; they say it is the one on the dataset's page.
        checksums={"sha256": "70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c"},
        strip="maestro-v3.0.0/",
        note="MAESTRO v3.0.0 is licensed CC BY-NC-SA 4.0 by Google LLC; "
        "see https://magenta.tensorflow.org/datasets/maestro",
    ),
    "yamaha": Pages(
        pages={
            str(year): f"https://www.piano-e-competition.com/midi_{year}.asp"
            for year in YAMAHA_YEARS
        },
        note="these performances belong to the Piano-e-Competition; check its terms of use "
        "(MAESTRO is a curated, aligned selection of the 2004-2018 competitions)",
    ),
    "giantmidi": Manual(
        how="GiantMIDI-Piano has no stable archive URL to automate: agree to the disclaimer at "
        "https://github.com/bytedance/GiantMIDI-Piano/blob/master/disclaimer.md, download the "
        "zip from the Google Drive folder it links (193 MB, CC BY 4.0) and unzip it into "
        "dataset/midi/giantmidi"
    ),
}


def fetch_archive(source: Archive, out_dir: Path, quiet: bool) -> list[str]:
    """Downloads and extracts the zip; the zip stays in out_dir so a re-run needs no network."""
    archive = download(
        source.url, out_dir / url_filename(source.url), checksums=source.checksums, quiet=quiet
    )
    written = extract_zip(archive, out_dir, strip=source.strip, quiet=quiet)
    return [f"{archive.name}: verified, {written} files extracted into {out_dir}", source.note]


def fetch_pages(source: Pages, out_dir: Path, quiet: bool) -> list[str]:
    """Downloads every .mid a page links to; a missing or non-MIDI file is skipped with a reason.

    No answer from the host stops everything (it would fail for every file the same way).
    """
    fetched, present, skipped = 0, 0, []
    for folder, page in source.pages.items():
        try:
            urls = links(page, fetch_text(page), (".mid", ".midi"))
        except Unreachable:
            raise
        except DownloadError as e:
            skipped.append(f"skipped page {e}")
            continue
        for url in progress(urls, desc=folder, quiet=quiet):
            dest = out_dir / folder / url_filename(url)
            if dest.exists():
                present += 1
                continue
            reason = _fetch_midi(url, dest)
            if reason:
                skipped.append(f"skipped {url}: {reason}")
            else:
                fetched += 1
    if not fetched and not present:
        raise DownloadError(f"no MIDI file could be downloaded from {len(source.pages)} pages")
    summary = f"{fetched} files downloaded into {out_dir} ({present} already there, "
    summary += f"{len(skipped)} skipped)"
    return [*skipped, summary, source.note]


def _fetch_midi(url: str, dest: Path) -> str | None:
    """Downloads one file; returns why it was not kept, or None."""
    try:
        download(url, dest, quiet=True)
    except Unreachable:
        raise
    except DownloadError as e:
        return str(e).removeprefix(f"{url}: ")
    with dest.open("rb") as f:
        if f.read(len(MIDI_MAGIC)) != MIDI_MAGIC:
            dest.unlink()
            return "not a Standard MIDI File"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(DATASETS), help="which dataset")
    parser.add_argument(
        "out_dir", type=Path, nargs="?", help="where the MIDI files go (default dataset/midi/NAME)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    source = DATASETS[args.name]
    out_dir = args.out_dir or MIDI_ROOT / args.name
    if isinstance(source, Manual):
        raise DownloadError(f"{args.name}: {source.how}")
    get = fetch_archive if isinstance(source, Archive) else fetch_pages
    for line in get(source, out_dir, args.quiet):
        print(line)
    return 0


if __name__ == "__main__":
    cli.run(main)
