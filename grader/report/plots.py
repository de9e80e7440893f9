"""Figures for the reports, drawn with matplotlib and returned as ``data:`` URIs.

Every figure is an SVG, so it stays sharp on a phone and on paper, and travels inside the one HTML
file (the report's Content-Security-Policy allows images from ``data:`` only). matplotlib is
imported on first use: grading a notebook never pays for it, and the Agg backend needs no display.

All figures share one style (:data:`_STYLE`), so a report reads as one document, and the lines are
told apart by dash pattern and marker as well as by colour.

Example::

    >>> uri = learning_curve({"accuracy": [0.4, 0.6], "val_accuracy": [0.38, 0.5]}, "accuracy")
    >>> uri.startswith("data:image/svg+xml;base64,")
    True
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

from grader.model.evidence import history_values

# Colour-blind-safe pair (Okabe–Ito blue and vermillion); training is solid, validation dashed.
TRAIN_COLOUR = "#0072B2"
VAL_COLOUR = "#D55E00"
THRESHOLD_COLOUR = "#1a7f37"
INK = "#24292f"
MUTED = "#57606a"

_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.labelcolor": MUTED,
    "axes.edgecolor": "#d0d7de",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#eaeef2",
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    # Text stays text (smaller files, selectable); fixed ids keep the output reproducible.
    "svg.fonttype": "none",
    "svg.hashsalt": "nn-grader",
}


@dataclass
class Threshold:
    """A target line: ``Threshold(0.62, "accuracy", "test accuracy ≥ 62%")``."""

    value: float
    metric: str  # "accuracy" or "loss": the panel it is drawn on
    label: str


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _to_data_uri(fig) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fixed_margins(fig, *, top: float = 0.3, left: float = 0.55) -> None:
    # Margins in inches, converted to fractions: tight_layout would measure every label and
    # draw the figure twice, which more than doubles the time per plot.
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - 0.15 / width, bottom=0.45 / height,
                        top=1 - top / height)


def _finite(values: Sequence[float]) -> list[float]:
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else math.nan for v in values]


def learning_curve(
    history: dict[str, list[float]],
    metric: str,
    *,
    thresholds: Sequence[Threshold] = (),
    run_starts: Sequence[int] = (),
) -> str | None:
    """Training and validation ``metric`` (``"accuracy"`` or ``"loss"``) per epoch, as a data URI.

    ``history`` uses Keras's keys in any generation's spelling (``acc``/``accuracy``). On the
    accuracy plot the gap between training and validation is shaded, so overfitting shows at a
    glance; each threshold on this metric is a horizontal line. ``run_starts`` are the epochs at
    which a further ``fit`` call continued training the same model (dotted vertical lines).
    Returns ``None`` when the history has neither series of this metric.

    One image per metric rather than one with two panels: on a phone they stack.
    """
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', not {metric!r}")
    train = _finite(history_values(history, metric))
    val = _finite(history_values(history, f"val_{metric}"))
    if not train and not val:
        return None
    plt = _pyplot()
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 2.9))
        _draw_curve(ax, metric, train, val, [t for t in thresholds if t.metric == metric], run_starts)
        _fixed_margins(fig, top=0.5, left=0.68)
        return _to_data_uri(fig)


def _draw_curve(ax, metric, train, val, thresholds, run_starts) -> None:
    many = max(len(train), len(val)) > 30
    marker = None if many else "o"
    if train:
        ax.plot(range(1, len(train) + 1), train, color=TRAIN_COLOUR, lw=1.8, marker=marker, ms=3,
                label="training")
    if val:
        ax.plot(range(1, len(val) + 1), val, color=VAL_COLOUR, lw=1.8, ls=(0, (4, 2)),
                marker="s" if marker else None, ms=3, label="validation")
    if metric == "accuracy" and train and val:
        # The overfitting gap: shaded where training is ahead, and its final size written out.
        n = min(len(train), len(val))
        xs = list(range(1, n + 1))
        ahead = [t >= v for t, v in zip(train[:n], val[:n])]
        ax.fill_between(xs, train[:n], val[:n], where=ahead, color=VAL_COLOUR, alpha=0.10, lw=0,
                        interpolate=True, label="gap")
        gap = train[n - 1] - val[n - 1]
        if math.isfinite(gap) and gap >= 0.02:  # a smaller gap has no room between the curves
            ax.annotate(f"gap {gap:+.2f}", xy=(n, (train[n - 1] + val[n - 1]) / 2), xytext=(-5, 0),
                        textcoords="offset points", ha="right", va="center", fontsize=8.5, color=MUTED)
    for threshold in thresholds:
        ax.axhline(threshold.value, color=THRESHOLD_COLOUR, lw=1.3, ls=(0, (1, 1.2)),
                   label=f"target: {threshold.label}")
    for start in run_starts:
        ax.axvline(start + 0.5, color=MUTED, lw=0.8, ls=":")
    ax.set_ylabel(metric)
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(len(train), len(val)) + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if metric == "accuracy":
        values = [v for v in train + val if math.isfinite(v)] + [t.value for t in thresholds]
        if values and 0 <= min(values) and max(values) <= 1:
            low = max(0.0, math.floor(min(values) * 10) / 10 - 0.05)
            ax.set_ylim(low, min(1.02, max(values) + 0.05))
    # Above the plot, so it never hides a curve.
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.03), ncol=2, borderaxespad=0, handlelength=2.4,
              columnspacing=1.2)


def score_histogram(
    scores: Sequence[float], *, max_score: float, pass_mark: float | None = None
) -> str | None:
    """How the class scored: a histogram over 0..max_score with the pass mark as a line."""
    if not scores or max_score <= 0:
        return None
    plt = _pyplot()
    bins = _score_bins(max_score)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7.2, 2.6))
        counts, edges, patches = ax.hist(list(scores), bins=bins, color=TRAIN_COLOUR,
                                         edgecolor="white", linewidth=1.0)
        for count, patch in zip(counts, patches):
            if count:
                ax.annotate(f"{int(count)}", xy=(patch.get_x() + patch.get_width() / 2, count),
                            xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8,
                            color=MUTED)
        if pass_mark is not None:
            ax.axvline(pass_mark, color=THRESHOLD_COLOUR, lw=1.4, ls=(0, (4, 2)))
            ax.annotate(f"pass mark {pass_mark:g}", xy=(pass_mark, 1), xycoords=("data", "axes fraction"),
                        xytext=(4, -10), textcoords="offset points", fontsize=8.5,
                        color=THRESHOLD_COLOUR)
        ax.set_xlim(0, max_score)
        ax.set_xlabel(f"score (out of {max_score:g})")
        ax.set_ylabel("students")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(0, max(counts.max() * 1.18, 1))
        ax.grid(axis="x", visible=False)
        _fixed_margins(fig)
        return _to_data_uri(fig)


def _score_bins(max_score: float) -> list[float]:
    # Whole points when the scale is small, else about twenty bins of a round width.
    width = 1.0 if max_score <= 25 else max(1.0, round(max_score / 20))
    count = max(1, math.ceil(max_score / width))
    return [min(i * width, max_score) for i in range(count + 1)]
