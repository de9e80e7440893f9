"""The side-by-side layer table: a student's layers paired with the reference model's.

Example::

    >>> from grader.model.evidence import LayerInfo
    >>> [row.status for row in align_layers([LayerInfo(name="d", class_name="Dense")], [])]
    ['extra']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from grader.model.evidence import LayerInfo
from grader.model.format import fmt_signed
from grader.report.text import clean_text


def _size(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return str(value)


def layer_config(layer: LayerInfo) -> str:
    """The few settings that tell one layer of a class from another: ``32 filters 5×5, relu``."""
    config = layer.config if isinstance(layer.config, dict) else {}
    parts = []
    if "filters" in config:
        text = f"{config['filters']} filters"
        if "kernel_size" in config:
            text += f" {_size(config['kernel_size'])}"
        parts.append(text)
    elif "kernel_size" in config:
        parts.append(f"kernel {_size(config['kernel_size'])}")
    if "units" in config:
        parts.append(f"{config['units']} units")
    if "pool_size" in config:
        parts.append(f"pool {_size(config['pool_size'])}")
    strides = config.get("strides")
    if strides not in (None, 1, [1, 1], (1, 1)) and "pool_size" not in config:
        parts.append(f"stride {_size(strides)}")
    if config.get("padding") == "same":
        parts.append("same padding")
    if "rate" in config:
        parts.append(f"rate {config['rate']}")
    if layer.activation and layer.activation not in ("linear", "None"):
        parts.append(str(layer.activation))
    return clean_text(", ".join(parts))[:80]


@dataclass
class LayerRow:
    """One line of the side-by-side layer table."""

    student: LayerInfo | None
    reference: LayerInfo | None
    compared: bool = True  # False when there is no reference model to compare with
    counts: bool = True  # False when the student's layer counts are unknown: compared by class only

    @property
    def status(self) -> str:
        if not self.compared:
            return "plain"
        if self.reference is None:
            return "extra"
        if self.student is None:
            return "missing"
        if self.counts and self.student.params != self.reference.params:
            return "params"
        return "same"

    @property
    def note(self) -> str:
        if self.status == "extra":
            return "extra"
        if self.status == "missing":
            return "missing"
        if self.status == "params":
            return fmt_signed(self.student.params - self.reference.params)  # type: ignore[union-attr]
        return ""


def align_layers(student: Sequence[LayerInfo], reference: Sequence[LayerInfo]) -> list[LayerRow]:
    """Pair the student's layers with the reference's by their class names.

    A longest common subsequence of class names decides which layers correspond; the rest are
    extra (only the student's model has them) or missing (only the reference has them). Layer
    names are never compared: Keras numbers them per process.
    """
    a = [layer.class_name for layer in student]
    b = [layer.class_name for layer in reference]
    n, m = len(a), len(b)
    # lcs[i][j]: length of the LCS of a[i:] and b[j:]
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            lcs[i][j] = lcs[i + 1][j + 1] + 1 if a[i] == b[j] else max(lcs[i + 1][j], lcs[i][j + 1])
    rows: list[LayerRow] = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            rows.append(LayerRow(student[i], reference[j]))
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            rows.append(LayerRow(student[i], None))
            i += 1
        else:
            rows.append(LayerRow(None, reference[j]))
            j += 1
    rows.extend(LayerRow(layer, None) for layer in student[i:])
    rows.extend(LayerRow(None, layer) for layer in reference[j:])
    return rows
