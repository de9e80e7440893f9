"""Numbers in words a reader expects: the one copy of each formatter the messages, the reports
and the exports share, so "81,834" in a check's message is "81,834" in the report's table too.

Example::

    >>> fmt_int(1250000), fmt_pct(0.6234), fmt_number(1e-05), fmt_points(7.5), fmt_signed(-1536)
    ('1,250,000', '62.3%', '1e-05', '7.5', '−1,536')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt_count", "fmt_int", "fmt_number", "fmt_pct", "fmt_percent", "fmt_points", "fmt_signed"]


def fmt_int(value: int | float) -> str:
    """``1250000`` → ``'1,250,000'``; floats that are whole numbers print as integers."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"


def fmt_pct(value: float) -> str:
    """``0.62`` → ``'62%'``; ``0.6234`` → ``'62.3%'``."""
    percent = value * 100
    if abs(percent - round(percent)) < 0.05:
        return f"{round(percent)}%"
    return f"{percent:.1f}%"


def fmt_number(value: Any) -> str:
    """Integers with thousands separators, small floats compactly (``1e-05``, ``0.01``)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return fmt_int(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fmt_points(value: float | None) -> str:
    """Points as people write them: ``7.5``, ``8``, ``0.33``; ``–`` for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_count(value: int | None) -> str:
    """``81834`` → ``'81,834'``; ``–`` for none."""
    return "–" if value is None else f"{value:,}"


def fmt_signed(value: int) -> str:
    """``+2,494,480`` or ``−1,536`` (a real minus sign)."""
    return f"{value:+,}".replace("-", "−")


def fmt_percent(value: float | None) -> str:
    """A fraction as a percentage, the way every accuracy is shown: ``0.581`` → ``58.1%``; ``–``
    for none."""
    if value is None or not math.isfinite(value):
        return "–"
    return fmt_pct(value)
