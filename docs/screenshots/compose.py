"""Compose a report screenshot from the chart PNGs the report embeds, laid out as the page shows them.

Used where no headless browser is at hand (the other screenshots are Chromium captures of the page).
Run from the repository root:  .venv/bin/python docs/screenshots/compose.py
It renders the synthetic study of tests/report/_synthetic.py (seeded) with the current reglab.report code.
"""

from __future__ import annotations

import base64
import io
import sys
import textwrap
from pathlib import Path

import matplotlib.image as mpimg
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from reglab.report import html, plots  # noqa: E402
from tests.report._synthetic import synthetic_study  # noqa: E402

WIDTH, MARGIN, DPI = 1280, 50, 96


def _png(fig) -> object:
    data = plots.to_data_uri(fig).split(",", 1)[1]
    return mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")


def compose(sections: list[tuple[str, object, str]], out: Path) -> None:
    """Each section: a heading, its chart (an RGBA array at the page's 96 dpi) and its caption."""
    head, gap, cap = 44, 18, 50
    height = 20 + sum(head + img.shape[0] + 2 + gap + cap + 18 * (len(textwrap.wrap(c, 165)) - 1)
                      for _, img, c in sections)
    fig = Figure(figsize=(WIDTH / DPI, height / DPI), dpi=DPI, facecolor="white")
    y = height - 20
    for title, img, caption in sections:
        fig.text(MARGIN / WIDTH, (y - 26) / height, title, fontsize=13, fontweight="bold", color="#1a1a1a")
        fig.add_artist(_rule(fig, y - head + 6, height))
        y -= head
        h, w = img.shape[:2]
        fig.figimage(img, xo=MARGIN + 1, yo=y - h - 1, origin="upper", zorder=2)
        fig.patches.append(_box(fig, MARGIN, y - h - 2, w + 2, h + 2))
        y -= h + 2 + gap
        lines = textwrap.wrap(caption, 165)
        fig.text(MARGIN / WIDTH, y / height, "\n".join(lines), fontsize=9.5, color="#444444", va="top",
                 linespacing=1.5)
        y -= cap + 18 * (len(lines) - 1)
    fig.savefig(out, dpi=DPI)


def _rule(fig, y: float, height: float):
    from matplotlib.lines import Line2D

    return Line2D([MARGIN / WIDTH, 1 - MARGIN / WIDTH], [y / height] * 2, color="#cccccc", linewidth=1,
                  transform=fig.transFigure)


def _box(fig, x: float, y: float, w: float, h: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor="#dddddd", linewidth=1, transform=None)


def main() -> None:
    data = synthetic_study()
    charts = [("paths", "Regularization paths", plots.regularization_paths),
              ("weights", "Weight histograms", plots.weight_histograms),
              ("norms", "Convergence with and without normalization", plots.convergence_by_norm)]
    sections = [(title, _png(make(data)), html._CAPTIONS[key]) for key, title, make in charts]
    compose(sections, ROOT / "docs" / "screenshots" / "report-paths-weights-norms.png")
    charts = [("curves", "Learning curves", plots.learning_curves),
              ("gap", "Generalization gap", plots.generalization_gap)]
    sections = [(title, _png(make(data)), html._CAPTIONS[key]) for key, title, make in charts]
    compose(sections, ROOT / "docs" / "screenshots" / "report-curves-gap.png")


if __name__ == "__main__":
    main()
