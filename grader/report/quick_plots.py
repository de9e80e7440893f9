"""Learning curves and the class histogram written as SVG text, without matplotlib, for reports
graded from saved outputs.

``grade run --static`` grades a class in seconds; drawing two matplotlib figures per model took
ten times longer than grading (about 0.15 s a figure, ten figures a lab, and a second to import
matplotlib for the class histogram). These curves show what
:func:`grader.report.plots.learning_curve` shows — both series, the shaded overfitting gap and its
size, every threshold of the metric, each further ``fit`` call, the same colours, dash patterns,
markers and legend — as lines and text placed here, in well under a millisecond.

Example::

    >>> uri = quick_learning_curve({"accuracy": [0.4, 0.6], "val_accuracy": [0.38, 0.5]}, "accuracy")
    >>> uri.startswith("data:image/svg+xml;base64,")
    True
"""

from __future__ import annotations

import base64
import math
from typing import Sequence
from xml.sax.saxutils import escape

from grader.model.evidence import history_values
from grader.report.plots import (INK, MUTED, THRESHOLD_COLOUR, TRAIN_COLOUR, VAL_COLOUR, Threshold, _finite,
                                 _score_bins)

__all__ = ["quick_learning_curve", "quick_score_histogram"]

# The matplotlib figure's geometry (4.2 × 2.9 inches, the margins of plots._fixed_margins) at 100 px an inch.
WIDTH, HEIGHT = 420, 290
LEFT, RIGHT, TOP, BOTTOM = 68, WIDTH - 15, 50, HEIGHT - 45
FONT = 13.2  # 9.5 pt
SMALL = 11.8  # 8.5 pt


def _nice_ticks(low: float, high: float, *, integer: bool = False, most: int = 6) -> list[float]:
    """Round tick values inside [low, high], as matplotlib's MaxNLocator picks them."""
    span = high - low
    if not (math.isfinite(span) and math.isfinite(low)) or span <= 0 or span / most <= 0:
        return [low] if math.isfinite(low) else []
    raw = span / most
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if integer and step == 2.5:
            continue
        if step * magnitude >= raw:
            break
    step = step * magnitude
    if integer:
        step = max(1.0, round(step))
    if not step > 0:
        return []
    # By index, not by adding steps: near 1e300 adding a step changes nothing.
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    if last - first > 4 * most:
        return []
    return [round(n * step, 10) for n in range(first, last + 1)]


def _labels(ticks: list[float]) -> list[str]:
    """Tick labels with the decimals the step needs, all alike (``1.0 1.5 2.0``), minus as ``−``."""
    decimals = 0
    while decimals < 6 and any(abs(round(t, decimals) - t) > 1e-9 for t in ticks):
        decimals += 1
    return [f"{t:.{decimals}f}".replace("-", "\u2212") for t in ticks]


def _limits(metric: str, train: list[float], val: list[float], thresholds: Sequence[Threshold]) -> tuple[float, float]:
    values = [v for v in train + val if math.isfinite(v)] + [t.value for t in thresholds]
    if not values:
        return 0.0, 1.0
    if metric == "accuracy" and 0 <= min(values) and max(values) <= 1:
        return max(0.0, math.floor(min(values) * 10) / 10 - 0.05), min(1.02, max(values) + 0.05)
    low, high = min(values), max(values)
    margin = (high - low) * 0.05 or abs(low) * 0.05 or 0.05
    return low - margin, high + margin


def quick_learning_curve(
    history: dict[str, list[float]],
    metric: str,
    *,
    thresholds: Sequence[Threshold] = (),
    run_starts: Sequence[int] = (),
) -> str | None:
    """Training and validation ``metric`` per epoch, as an SVG data URI (the arguments and the
    ``None`` of :func:`grader.report.plots.learning_curve`)."""
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', not {metric!r}")
    train = _finite(history_values(history, metric))
    val = _finite(history_values(history, f"val_{metric}"))
    if not train and not val:
        return None
    thresholds = [t for t in thresholds if t.metric == metric]
    epochs = max(len(train), len(val))
    x_low, x_high = 0.5, epochs + 0.5
    y_low, y_high = _limits(metric, train, val, thresholds)

    def x(epoch: float) -> float:
        return LEFT + (epoch - x_low) / (x_high - x_low) * (RIGHT - LEFT)

    def y(value: float) -> float:
        return BOTTOM - (value - y_low) / (y_high - y_low) * (BOTTOM - TOP)

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'font-family="DejaVu Sans, sans-serif" font-size="{FONT}" fill="{INK}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    # Grid and ticks.
    ticks = _nice_ticks(x_low, x_high, integer=True, most=8)
    for tick, label in zip(ticks, _labels(ticks)):
        px = x(tick)
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{BOTTOM}" stroke="#eaeef2" stroke-width="1.1"/>'
                     f'<text x="{px:.1f}" y="{BOTTOM + 17}" text-anchor="middle" fill="{MUTED}">{label}</text>')
    ticks = _nice_ticks(y_low, y_high)
    for tick, label in zip(ticks, _labels(ticks)):
        py = y(tick)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{RIGHT}" y2="{py:.1f}" stroke="#eaeef2" stroke-width="1.1"/>'
                     f'<text x="{LEFT - 6}" y="{py + 4.5:.1f}" text-anchor="end" fill="{MUTED}">{label}</text>')
    parts.append(f'<path d="M{LEFT} {TOP}V{BOTTOM}H{RIGHT}" fill="none" stroke="#d0d7de" stroke-width="1.1"/>')
    parts.append(f'<text x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle" fill="{MUTED}">epoch</text>')
    parts.append(f'<text transform="translate(16 {(TOP + BOTTOM) / 2}) rotate(-90)" text-anchor="middle" '
                 f'fill="{MUTED}">{escape(metric)}</text>')
    parts.append(f'<svg x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" '
                 f'viewBox="{LEFT} {TOP} {RIGHT - LEFT} {BOTTOM - TOP}" overflow="hidden">')
    if metric == "accuracy" and train and val:
        parts += _gap(train, val, x, y)
    for threshold in thresholds:
        py = y(threshold.value)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{RIGHT}" y2="{py:.1f}" stroke="{THRESHOLD_COLOUR}" '
                     f'stroke-width="1.8" stroke-dasharray="1.8 2.2"/>')
    for start in run_starts:
        px = x(start + 0.5)
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{BOTTOM}" stroke="{MUTED}" '
                     f'stroke-width="1.1" stroke-dasharray="1.1 1.8"/>')
    markers = epochs <= 30
    parts += _series(train, TRAIN_COLOUR, "", "circle" if markers else "", x, y)
    parts += _series(val, VAL_COLOUR, ' stroke-dasharray="10 5"', "square" if markers else "", x, y)
    parts.append("</svg>")
    if metric == "accuracy" and train and val:
        n = min(len(train), len(val))
        gap = train[n - 1] - val[n - 1]
        if math.isfinite(gap) and gap >= 0.02:
            parts.append(f'<text x="{x(n) - 7:.1f}" y="{y((train[n - 1] + val[n - 1]) / 2) + 4:.1f}" text-anchor="end" '
                         f'font-size="{SMALL}" fill="{MUTED}">gap {gap:+.2f}</text>')
    parts += _legend(train, val, metric, thresholds)
    parts.append("</svg>")
    svg = "".join(parts)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _pieces(values: list[float]) -> list[list[tuple[int, float]]]:
    """Runs of finite values (a NaN breaks the line, as in matplotlib)."""
    pieces: list[list[tuple[int, float]]] = [[]]
    for epoch, value in enumerate(values, start=1):
        if math.isfinite(value):
            pieces[-1].append((epoch, value))
        elif pieces[-1]:
            pieces.append([])
    return [piece for piece in pieces if piece]


def _series(values: list[float], colour: str, dash: str, marker: str, x, y) -> list[str]:
    out = []
    for piece in _pieces(values):
        points = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in piece)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"{dash} '
                   'stroke-linejoin="round" stroke-linecap="round"/>')
        for e, v in piece if marker else ():
            if marker == "circle":
                out.append(f'<circle cx="{x(e):.1f}" cy="{y(v):.1f}" r="2.8" fill="{colour}"/>')
            else:
                out.append(f'<rect x="{x(e) - 2.6:.1f}" y="{y(v) - 2.6:.1f}" width="5.2" height="5.2" fill="{colour}"/>')
    return out


def _gap(train: list[float], val: list[float], x, y) -> list[str]:
    """The shaded region where training is ahead of validation, crossings interpolated."""
    n = min(len(train), len(val))
    polygons: list[list[tuple[float, float, float]]] = []  # (epoch, train, val) corners
    current: list[tuple[float, float, float]] = []
    for i in range(n):
        t, v = train[i], val[i]
        if not (math.isfinite(t) and math.isfinite(v)):
            if current:
                polygons.append(current)
            current = []
            continue
        if i and current and t < v:  # the curves cross between i-1 and i: close at the crossing
            e0, t0, v0 = current[-1]
            share = (t0 - v0) / ((t0 - v0) - (t - v))
            value = t0 + share * (t - t0)
            current.append((e0 + share, value, value))
            polygons.append(current)
            current = []
        elif t >= v and not current and i and math.isfinite(train[i - 1]) and math.isfinite(val[i - 1]):
            t0, v0 = train[i - 1], val[i - 1]
            share = (t0 - v0) / ((t0 - v0) - (t - v)) if t0 < v0 else 0.0
            value = t0 + share * (t - t0)
            current.append((i + share, value, value))
        if t >= v:
            current.append((i + 1.0, t, v))
    if current:
        polygons.append(current)
    out = []
    for corners in polygons:
        if len(corners) < 2:
            continue
        top = [f"{x(e):.1f},{y(t):.1f}" for e, t, _ in corners]
        bottom = [f"{x(e):.1f},{y(v):.1f}" for e, _, v in reversed(corners)]
        out.append(f'<polygon points="{" ".join(top + bottom)}" fill="{VAL_COLOUR}" fill-opacity="0.1"/>')
    return out


def _legend(train: list[float], val: list[float], metric: str, thresholds: Sequence[Threshold]) -> list[str]:
    """Above the plot in two columns, filled column by column, as the matplotlib figures have it."""
    entries: list[str] = []
    if train:
        entries.append(f'<line x1="0" y1="-4" x2="32" y2="-4" stroke="{TRAIN_COLOUR}" stroke-width="2.5"/>')
    if val:
        entries.append(f'<line x1="0" y1="-4" x2="32" y2="-4" stroke="{VAL_COLOUR}" stroke-width="2.5" '
                       'stroke-dasharray="10 5"/>')
    if metric == "accuracy" and train and val:
        entries.append(f'<rect x="0" y="-9" width="32" height="10" fill="{VAL_COLOUR}" fill-opacity="0.1"/>')
    entries += [f'<line x1="0" y1="-4" x2="32" y2="-4" stroke="{THRESHOLD_COLOUR}" stroke-width="1.8" '
                'stroke-dasharray="1.8 2.2"/>' for _ in thresholds]
    labels = (["training"] if train else []) + (["validation"] if val else [])
    labels += ["gap"] if metric == "accuracy" and train and val else []
    labels += [f"target: {t.label}" for t in thresholds]
    rows = math.ceil(len(labels) / 2)
    out = []
    for index, (symbol, label) in enumerate(zip(entries, labels)):
        column, row = divmod(index, rows)
        left = LEFT + column * 148
        top = TOP - 10 - (rows - 1 - row) * 17
        out.append(f'<g transform="translate({left:.1f} {top:.1f})">{symbol}'
                   f'<text x="38" y="0" font-size="{SMALL}">{escape(label)}</text></g>')
    return out


def quick_score_histogram(scores: Sequence[float], *, max_score: float, pass_mark: float | None = None) -> str | None:
    """How the class scored, as :func:`grader.report.plots.score_histogram` draws it (the same bins,
    counts over the bars and pass-mark line), as an SVG data URI."""
    if not scores or max_score <= 0:
        return None
    width, height = 720, 260
    left, right, top, bottom = 55, width - 15, 30, height - 45
    edges = _score_bins(max_score)
    counts = [0] * (len(edges) - 1)
    for score in scores:
        if not isinstance(score, (int, float)) or not math.isfinite(score) or not edges[0] <= score <= edges[-1]:
            continue
        index = next(i for i in range(len(counts)) if score < edges[i + 1] or i == len(counts) - 1)
        counts[index] += 1
    y_high = max(max(counts) * 1.18, 1)

    def x(value: float) -> float:
        return left + value / max_score * (right - left)

    def y(count: float) -> float:
        return bottom - count / y_high * (bottom - top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'font-family="DejaVu Sans, sans-serif" font-size="{FONT}" fill="{INK}">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    ticks = [t for t in _nice_ticks(0, y_high, integer=True) if t <= y_high]
    for tick, label in zip(ticks, _labels(ticks)):
        parts.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" stroke="#eaeef2" stroke-width="1.1"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4.5:.1f}" text-anchor="end" fill="{MUTED}">{label}</text>')
    ticks = _nice_ticks(0, max_score, most=10)
    for tick, label in zip(ticks, _labels(ticks)):
        parts.append(f'<text x="{x(tick):.1f}" y="{bottom + 17}" text-anchor="middle" fill="{MUTED}">{label}</text>')
    for count, low, high in zip(counts, edges, edges[1:]):
        if not count:
            continue
        parts.append(f'<rect x="{x(low) + 0.7:.1f}" y="{y(count):.1f}" width="{max(x(high) - x(low) - 1.4, 0.5):.1f}" '
                     f'height="{bottom - y(count):.1f}" fill="{TRAIN_COLOUR}"/>'
                     f'<text x="{(x(low) + x(high)) / 2:.1f}" y="{y(count) - 4:.1f}" text-anchor="middle" '
                     f'font-size="11.1" fill="{MUTED}">{count}</text>')
    parts.append(f'<path d="M{left} {top}V{bottom}H{right}" fill="none" stroke="#d0d7de" stroke-width="1.1"/>')
    if pass_mark is not None:
        parts.append(f'<line x1="{x(pass_mark):.1f}" y1="{top}" x2="{x(pass_mark):.1f}" y2="{bottom}" '
                     f'stroke="{THRESHOLD_COLOUR}" stroke-width="1.9" stroke-dasharray="10 5"/>'
                     f'<text x="{x(pass_mark) + 5:.1f}" y="{top + 13}" font-size="{SMALL}" '
                     f'fill="{THRESHOLD_COLOUR}">pass mark {pass_mark:g}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{height - 8}" text-anchor="middle" fill="{MUTED}">'
                 f'score (out of {max_score:g})</text>')
    parts.append(f'<text transform="translate(16 {(top + bottom) / 2}) rotate(-90)" text-anchor="middle" '
                 f'fill="{MUTED}">students</text></svg>')
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode("utf-8")).decode("ascii")
