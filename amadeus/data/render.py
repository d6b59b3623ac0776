"""Extras for people: audio through FluidSynth and a piano-roll picture.

Neither is needed to generate: FluidSynth and its soundfont are system packages, looked for at
run time; matplotlib is imported only when a picture is asked for.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from amadeus.atomic import replacing
from amadeus.data.notes import Notes
from amadeus.errors import UsageError

SOUNDFONTS = (  # General MIDI soundfonts, first found wins (Debian: fluid-soundfont-gm)
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
SAMPLE_RATE = 44100
INSTALL = "install them with: apt-get install fluidsynth fluid-soundfont-gm"


def find_fluidsynth() -> tuple[str, Path]:
    """(fluidsynth binary, soundfont), or a UsageError naming the packages to install."""
    binary = shutil.which("fluidsynth")
    soundfont = next((p for p in SOUNDFONTS if p.is_file()), None)
    if binary is None or soundfont is None:
        missing = "the fluidsynth program" if binary is None else "a General MIDI soundfont"
        raise UsageError(
            f"--wav needs FluidSynth and a General MIDI soundfont; {missing} was "
            f"not found ({INSTALL})"
        )
    return binary, soundfont


def to_wav(midi_path: Path, wav_path: Path, fluidsynth: tuple[str, Path] | None = None) -> None:
    """Renders a MIDI file to 16-bit stereo WAV, written atomically."""
    binary, soundfont = fluidsynth or find_fluidsynth()
    with replacing(wav_path) as temp:
        command = [binary, "-ni", "-q", "-T", "wav", "-F", str(temp), "-r", str(SAMPLE_RATE)]
        result = subprocess.run(
            [*command, str(soundfont), str(midi_path)], capture_output=True, text=True
        )
        if result.returncode != 0 or not temp.is_file():
            reason = (result.stderr or result.stdout).strip().splitlines()
            raise UsageError(f"{wav_path}: fluidsynth failed ({reason[-1] if reason else '?'})")


def piano_roll(notes: Notes, png_path: Path, title: str = "") -> None:
    """One bar per note (time in seconds against pitch), darker when louder; written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    width = min(max(notes.duration, 4.0), 60.0) * 0.5 + 2
    figure = Figure(figsize=(width, 4), dpi=100)
    draw_piano_roll(figure.add_subplot(), notes, title)
    figure.tight_layout()
    save_png(figure, png_path)


def draw_piano_roll(ax, notes: Notes, title: str = "", rgb=(0.1, 0.2, 0.5)) -> None:
    """Draws `notes` on matplotlib axes `ax`: one bar per note, more opaque when louder."""
    from matplotlib.collections import PolyCollection

    bars = [
        [(s, p - 0.4), (e, p - 0.4), (e, p + 0.4), (s, p + 0.4)]
        for s, e, p in zip(notes.start.tolist(), notes.end.tolist(), notes.pitch.tolist())
    ]
    shade = [(*rgb, 0.3 + 0.7 * v / 127) for v in notes.velocity.tolist()]
    # A thin white edge keeps repeated notes on one key apart.
    ax.add_collection(PolyCollection(bars, facecolors=shade, edgecolors="white", linewidths=0.5))
    low, high = (int(notes.pitch.min()), int(notes.pitch.max())) if len(notes) else (60, 72)
    ax.set_xlim(0, max(notes.duration, 1.0))
    ax.set_ylim(low - 2, high + 2)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)


def save_png(figure, png_path: Path) -> None:
    """A matplotlib figure to PNG, written atomically."""
    with replacing(png_path) as temp:
        figure.savefig(temp, format="png")
