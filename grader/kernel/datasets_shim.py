"""Replaces ``keras.datasets.<name>.load_data`` inside the student's kernel with a read of the
``.npz`` file the grader prepared in the working folder, so notebooks run offline and on the
data (full, subset or synthetic) the grader chose.

Standalone like the recorder: standard library and numpy only. Every spelling students use reaches
the same module objects (``keras.datasets.cifar10``, ``from keras.datasets import cifar10``,
``tf.keras.datasets.cifar10``), so patching the attribute on each of them covers them all.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

_MODULE_PATHS = ("keras.datasets.{}", "keras._tf_keras.keras.datasets.{}", "keras.src.datasets.{}")


def install(datasets: dict[str, str], report: Callable[[dict], None]) -> list[str]:
    """``datasets`` maps a dataset name (``cifar10``) to the ``.npz`` path to serve instead."""
    patched = []
    for name, path in datasets.items():
        loader = _make_loader(name, path, report)
        for template in _MODULE_PATHS:
            try:
                module = importlib.import_module(template.format(name))
            except Exception:
                continue
            if hasattr(module, "load_data"):
                module.load_data = loader
                patched.append(template.format(name))
    return patched


def _make_loader(name: str, path: str, report: Callable[[dict], None]) -> Callable[..., Any]:
    reported = []

    def load_data(*args: Any, **kwargs: Any) -> Any:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            splits = ((data["x_train"], data["y_train"]), (data["x_test"], data["y_test"]))
        if not reported:
            reported.append(True)
            report({"kind": "dataset", "severity": "info",
                    "message": f"{name}.load_data() served the grader's copy: {len(splits[0][0]):,} training "
                               f"and {len(splits[1][0]):,} test images"})
        return splits

    load_data.__doc__ = f"The grader's copy of {name} (offline)."
    return load_data
