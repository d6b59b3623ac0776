"""evaluate.py's pictures: each feature's distribution, real against generated, and a piano roll
of a real and a generated piece. matplotlib is imported only here, when a report is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amadeus.data.notes import Notes
from amadeus.data.render import draw_piano_roll, save_png
from amadeus.evaluation import features as ft

REAL, GENERATED = (0.15, 0.35, 0.7), (0.85, 0.4, 0.1)
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def distributions(
    real: dict[str, np.ndarray],
    generated: dict[str, np.ndarray],
    overlaps: dict[str, float],
    histograms: tuple[np.ndarray, np.ndarray],
    path: Path,
) -> None:
    """One panel per feature (density estimates of both sets, log axis for times) and one for
    the pitch-class histograms."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(16, 8), dpi=90)
    axes = figure.subplots(2, 4).ravel()
    for ax, feature in zip(axes, ft.FEATURES):
        _density_panel(ax, feature, real[feature.name], generated[feature.name])
        ax.set_title(f"{feature.name}: overlap {overlaps[feature.name]:.2f}")
        ax.set_xlabel(f"{feature.unit}{' (log scale)' if feature.log else ''}")
    ax, x = axes[-1], np.arange(12)
    ax.bar(x - 0.2, histograms[0], 0.4, color=REAL, label="real")
    ax.bar(x + 0.2, histograms[1], 0.4, color=GENERATED, label="generated")
    ax.set_xticks(x, PITCH_CLASSES, fontsize=8)
    ax.set_title(f"pitch classes: overlap {ft.histogram_overlap(*histograms):.2f}")
    ax.legend()
    figure.tight_layout()
    save_png(figure, path)


def _density_panel(ax, feature: ft.Feature, real: np.ndarray, generated: np.ndarray) -> None:
    transform = (lambda v: np.log(np.maximum(v, 1e-3))) if feature.log else (lambda v: v)
    a, b = transform(real), transform(generated)
    both = np.concatenate([a, b])
    if len(a) == 0 or len(b) == 0:
        return
    bandwidth = max(ft.silverman(both), feature.smallest_bandwidth)
    grid = np.linspace(both.min() - 3 * bandwidth, both.max() + 3 * bandwidth, 256)
    for sample, color in ((a, REAL), (b, GENERATED)):
        curve = ft.density(sample, grid, bandwidth)
        x = np.exp(grid) if feature.log else grid
        ax.plot(x, curve, color=color)
        ax.fill_between(x, curve, color=color, alpha=0.2)
    if feature.log:
        ax.set_xscale("log")


def piano_rolls(real: Notes, generated: Notes, path: Path, seconds: float = 30.0) -> None:
    """The first `seconds` of a real and a generated piece, one above the other."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 7), dpi=90)
    top, bottom = figure.subplots(2, 1)
    for ax, notes, title, rgb in (
        (top, real, "real (validation)", REAL),
        (bottom, generated, "generated", GENERATED),
    ):
        draw_piano_roll(ax, notes.select(notes.start < seconds), title, rgb)
        ax.set_xlim(0, seconds)
    figure.tight_layout()
    save_png(figure, path)
