"""Small helpers the builders share. Keras is imported inside each function, never at import time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from grader.errors import ReferenceModelError


class LayerNames:
    """Layer names numbered per model, as the seeds' summaries show them (``conv2d_1``, ``dense_2``).

    Keras numbers layers per process (``dense_7`` after a few builds), so two builds of one
    reference would differ by name; the stored architectures must not.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def __call__(self, kind: str) -> str:
        self._counts[kind] += 1
        return f"{kind}_{self._counts[kind]}"


def load_weights(model: Any, weights: str | Path | None) -> Any:
    """Load a local weights file into ``model``; a file that does not fit says so plainly."""
    if weights is None:
        return model
    path = Path(weights)
    if not path.is_file():
        raise ReferenceModelError(f"weights file {path} does not exist (nothing is downloaded: put the file there first)")
    try:
        if path.suffix == ".keras":
            import keras

            source = keras.models.load_model(path, compile=False, safe_mode=True)
            model.set_weights(source.get_weights())
        else:
            model.load_weights(path)
    except Exception as exc:  # Keras raises ValueError, OSError, KeyError... all mean "wrong file"
        raise ReferenceModelError(f"cannot load {path} into {model.name}: {type(exc).__name__}: {exc}") from None
    return model
