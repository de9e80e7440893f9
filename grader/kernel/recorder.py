"""The recorder: runs inside the student's kernel and writes down every model it trains.

It is installed before the first student cell and records, at the moment they happen, every
``Model.fit`` (architecture, compile settings, fit arguments, history epoch by epoch, trained
weights as ``.keras``), every ``Model.evaluate``, and weights loaded from files. Recording at fit
time matters: students reuse ``model`` and ``history`` for every question and build models in
functions, so the globals left at the end say little.

Keep this module small and standalone: it imports only the standard library and numpy at import
time, and keras lazily, once the student's code has imported it (an import hook notices). It is
copied into the submission's working folder as the package ``nn_grader_kernel`` and never imports
the ``grader`` package. What it writes is untrusted by the grader: JSON lines in
``events.jsonl`` and ``.keras`` files, read back with schema and size checks.

The grader side uses :func:`describe_model` too, on models it builds itself.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import inspect
import json
import os
import re
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Callable

# Captured before any student code runs: a student who monkeypatches these later does not
# change what the recorder measures with.
_ORIGINAL: dict[str, Callable[..., Any]] = {}
_RECORDER: "Recorder | None" = None

_CONFIG_KEYS = ("units", "filters", "kernel_size", "strides", "padding", "pool_size", "rate",
                "momentum", "use_bias", "dilation_rate", "axis")


# ---------------------------------------------------------------------------------------------
# Describing models (also used by the grader on models it builds)


def _count(weights: Any) -> int:
    total = 0
    for w in weights:
        size = 1
        for dim in w.shape:
            size *= int(dim)
        total += size
    return total


def _shape(tensor_or_shape: Any) -> list[int | None] | None:
    try:
        shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
        return [None if d is None else int(d) for d in shape]
    except Exception:
        return None


def _activation_name(layer: Any) -> str | None:
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    name = getattr(act, "__name__", None) or type(act).__name__
    return None if name == "linear" and type(layer).__name__ != "Activation" else name


def describe_layer(layer: Any) -> dict[str, Any]:
    class_name = type(layer).__name__
    info: dict[str, Any] = {
        "name": str(getattr(layer, "name", "")),
        "class_name": class_name,
        "output_shape": None,
        "params": 0,
        "trainable_params": 0,
        "non_trainable_params": 0,
        "activation": _activation_name(layer),
        "config": {},
        "trainable": bool(getattr(layer, "trainable", True)),
        "layers": [],
    }
    try:
        info["output_shape"] = _shape(layer.output)
    except Exception:
        pass
    try:
        trainable = _count(layer.trainable_weights)
        non_trainable = _count(layer.non_trainable_weights)
        info.update(params=trainable + non_trainable, trainable_params=trainable,
                    non_trainable_params=non_trainable)
    except Exception:
        pass
    config: dict[str, Any] = {}
    try:
        raw = layer.get_config()
        for key in _CONFIG_KEYS:
            if key in raw and _jsonable(raw[key]):
                config[key] = list(raw[key]) if isinstance(raw[key], tuple) else raw[key]
    except Exception:
        pass
    kernel = getattr(layer, "kernel", None)
    if kernel is not None and getattr(kernel, "shape", None) is not None:
        shape = [int(d) for d in kernel.shape]
        if class_name == "Dense" and len(shape) == 2:
            config["input_dim"] = shape[0]
        elif len(shape) >= 3:
            config["in_channels"] = shape[-2]
    if "BatchNormalization" in class_name or "LayerNormalization" in class_name:
        gamma = getattr(layer, "moving_mean", None)
        if gamma is not None:
            config["channels"] = int(gamma.shape[0])
    info["config"] = config
    if hasattr(layer, "layers") and hasattr(layer, "trainable_weights") and _is_model(layer):
        info["layers"] = [describe_layer(sub) for sub in layer.layers if type(sub).__name__ != "InputLayer"]
    return info


def _is_model(obj: Any) -> bool:
    return any(cls.__name__ == "Model" and cls.__module__.startswith("keras") for cls in type(obj).__mro__)


def _jsonable(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, type(None))) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str, type(None))) for v in value)
    )


def describe_model(model: Any) -> dict[str, Any]:
    """The JSON form of :class:`grader.model.evidence.Architecture` for a Keras model.

    Parameter figures are counted from the weight shapes, not with ``count_params``, which a
    student can monkeypatch.
    """
    layers = [describe_layer(layer) for layer in model.layers if type(layer).__name__ != "InputLayer"]
    trainable = non_trainable = 0
    try:
        trainable = _count(model.trainable_weights)
        non_trainable = _count(model.non_trainable_weights)
    except Exception:
        pass
    input_shape = output_shape = None
    try:
        input_shape = _shape(model.inputs[0]) if model.inputs else None
        output_shape = _shape(model.outputs[0]) if model.outputs else None
    except Exception:
        pass
    return {
        "name": str(getattr(model, "name", "")),
        "class_name": type(model).__name__,
        "layers": layers,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "input_shape": input_shape,
        "output_shape": output_shape,
    }


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _serialized_name(obj: Any) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        name = obj.get("class_name") or obj.get("config", {}).get("name")
        if name == "function":
            return str(obj.get("config"))
        return _snake(str(name)) if name and name[0].isupper() else str(name)
    name = getattr(obj, "__name__", None) or type(obj).__name__
    return _snake(name) if name[0].isupper() else name


def describe_compile(model: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"optimizer": None, "learning_rate": None, "loss": None, "metrics": [],
                            "optimizer_config": {}}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        info["optimizer"] = type(optimizer).__name__
        try:
            config = optimizer.get_config()
            lr = config.get("learning_rate")
            if isinstance(lr, dict):  # a schedule
                info["optimizer_config"]["learning_rate_schedule"] = lr.get("class_name")
                lr = (lr.get("config") or {}).get("initial_learning_rate")
            if isinstance(lr, (int, float)):
                info["learning_rate"] = float(f"{float(lr):.7g}")  # float32 storage: 0.01 not 0.0099999998
            info["optimizer_config"].update(
                {k: v for k, v in config.items() if k in ("momentum", "nesterov", "beta_1", "beta_2", "weight_decay", "rho") and _jsonable(v)}
            )
        except Exception:
            pass
    try:
        compile_config = model.get_compile_config() or {}
    except Exception:
        compile_config = {}
    loss = compile_config.get("loss", getattr(model, "loss", None))
    if isinstance(loss, (list, tuple)):
        loss = loss[0] if loss else None
    info["loss"] = _serialized_name(loss)
    metrics = compile_config.get("metrics") or []
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    info["metrics"] = [m for m in (_serialized_name(m) for m in metrics) if m]
    return info


def fingerprint(x: Any, max_rows_for_stats: int = 2000) -> dict[str, Any] | None:
    """Shape and value statistics of an array passed to fit/evaluate (never the data itself)."""
    try:
        import numpy as np

        if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
            x = x[0]
        if not hasattr(x, "shape") or not hasattr(x, "__len__"):
            return None
        arr = np.asarray(x[:max_rows_for_stats])
        return {
            "samples": int(len(x)),
            "shape": _shape(x),
            "dtype": str(arr.dtype),
            "minimum": float(arr.min()) if arr.size else None,
            "maximum": float(arr.max()) if arr.size else None,
            "mean": float(arr.mean()) if arr.size else None,
            "row_hashes": [],
        }
    except Exception:
        return None


SIGNATURE_ROWS = 256  # training rows sampled per fit to recognise test images among them


def rank_signatures(x: Any, *, rows: int | None = SIGNATURE_ROWS, train_fraction: float = 1.0,
                    flatten: bool = False) -> list[str]:
    """Signatures of evenly spaced rows of ``x`` that survive the student's rescaling of pixels.

    Each value is replaced by its dense rank within its row (per channel for channels-last
    images, ``"r3:..."``; over the whole row otherwise, ``"r1:..."``), and the ranks are hashed.
    Any increasing map applied to every pixel alike (``x / 255``, ``(x - mean) / std``,
    ``astype("float32")``, per-channel standardization of 4-D images) keeps the ranks, so the
    grader, which hashes its own raw test images the same way (:mod:`grader.findings.integrity`), can
    count test images among the training rows without knowing the preprocessing.
    ``train_fraction`` leaves out the rows Keras holds out for ``validation_split`` (the last ones).
    """
    try:
        arr = _sample_rows(x, rows, train_fraction)
        return [] if arr is None else _rank_hashes(arr, flatten)
    except Exception:
        return []


def _sample_rows(x: Any, rows: int | None, train_fraction: float = 1.0) -> Any:
    """Evenly spaced rows of an array (the first ``train_fraction`` of it), as numpy; None when
    ``x`` is no array of rows or cannot take an index array (a tensor of some backends)."""
    import numpy as np

    if isinstance(x, (list, tuple, dict)) or len(getattr(x, "shape", ())) < 2:
        return None
    usable = int(int(x.shape[0]) * train_fraction)
    if usable <= 0:
        return None
    if rows is None or rows >= usable:
        index = np.arange(usable)
    else:
        index = np.unique(np.linspace(0, usable - 1, rows).round().astype(np.int64))
    if type(x).__module__.startswith("tensorflow") and "tensorflow" in sys.modules:  # a tf.Tensor takes no index array
        return sys.modules["tensorflow"].gather(x, index).numpy()
    return np.asarray(x[index])


def _rank_hashes(arr: Any, flatten: bool = False) -> list[str]:
    import numpy as np

    channels = arr.shape[-1] if arr.ndim == 4 and not flatten else 1
    signatures: list[str] = []
    for start in range(0, len(arr), 1024):  # bounded memory for the grader's 10,000 test rows
        part = arr[start:start + 1024]
        n = len(part)
        flat = part.reshape(n, -1, channels).transpose(0, 2, 1).reshape(n * channels, -1)
        order = np.argsort(flat, axis=1, kind="stable")
        ordered = np.take_along_axis(flat, order, axis=1)
        steps = np.zeros(flat.shape, dtype=np.int32)
        steps[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        np.cumsum(steps, axis=1, out=steps)
        ranks = np.empty_like(steps)
        np.put_along_axis(ranks, order, steps, axis=1)
        ranks = ranks.astype(np.uint32 if flat.shape[1] > 65535 else np.uint16).reshape(n, -1)
        signatures += [f"r{channels}:" + hashlib.blake2b(row.tobytes(), digest_size=8).hexdigest() for row in ranks]
    return signatures


# The sketch of a row: the means of an 8x8 grid of blocks per channel (64 segments of a flat row),
# standardized within the row and channel, in steps of 1/16 of a standard deviation (int8).
SKETCH_GRID = 8
SKETCH_STEPS = 16
# A row whose block means hardly vary against its pixels (a blank image) has no usable sketch.
_FLAT_SKETCH = 0.02


def row_sketches(x: Any, *, rows: int | None = SIGNATURE_ROWS, train_fraction: float = 1.0,
                 flatten: bool = False) -> list[str]:
    """Coarse sketches of the rows :func:`rank_signatures` samples, in the same order, that survive
    small noise as well as rescaling.

    Each row becomes the means of an 8x8 grid of blocks (per channel for images with 2 or 3
    dimensions per row, ``"s32x32x3:..."``; 64 consecutive segments of a flat row,
    ``"f3072:..."``), standardized within the row and channel and quantised to 1/16 of a standard
    deviation. Any affine map of the pixels with a positive factor per channel (``x / 255``,
    standardization) leaves the sketch as it is, and added noise of a few percent of the pixels'
    spread moves it by a few steps; the grader matches sketches to its test images' with a tolerance
    (:class:`grader.findings.integrity.TestImages`). A blank row gives ``"<kind>:-"``.
    """
    try:
        arr = _sample_rows(x, rows, train_fraction)
        return [] if arr is None else _sketches(arr, flatten)
    except Exception:
        return []


def _sketches(arr: Any, flatten: bool = False) -> list[str]:
    import base64

    import numpy as np

    if arr.ndim == 3 and not flatten:
        arr = arr[..., None]  # grey images (28x28)
    out: list[str] = []
    for start in range(0, len(arr), 1024):
        part = np.asarray(arr[start:start + 1024], dtype=np.float64)
        n = len(part)
        if part.ndim == 4 and not flatten:
            h, w, c = part.shape[1:]
            kind = f"s{h}x{w}x{c}"
            rows_at = np.linspace(0, h, min(SKETCH_GRID, h) + 1).astype(np.int64)
            cols_at = np.linspace(0, w, min(SKETCH_GRID, w) + 1).astype(np.int64)
            sums = np.add.reduceat(np.add.reduceat(part, rows_at[:-1], axis=1), cols_at[:-1], axis=2)
            sizes = np.outer(np.diff(rows_at), np.diff(cols_at))[None, :, :, None]
            blocks = (sums / sizes).reshape(n, -1, c)  # (rows, blocks, channels)
            pixels = part.reshape(n, -1, c)
        else:
            flat = part.reshape(n, -1)
            kind = f"f{flat.shape[1]}"
            at = np.linspace(0, flat.shape[1], min(SKETCH_GRID * SKETCH_GRID, flat.shape[1]) + 1).astype(np.int64)
            blocks = (np.add.reduceat(flat, at[:-1], axis=1) / np.diff(at))[..., None]
            pixels = flat[..., None]
        spread = blocks.std(axis=1, keepdims=True)
        z = (blocks - blocks.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
        q = np.clip(np.rint(z * SKETCH_STEPS), -127, 127).astype(np.int8).transpose(0, 2, 1).reshape(n, -1)
        blank = ((spread <= _FLAT_SKETCH * pixels.std(axis=1, keepdims=True)) | ~np.isfinite(spread)).any(axis=(1, 2))
        out += [f"{kind}:-" if flat_row else f"{kind}:" + base64.b64encode(row.tobytes()).decode("ascii")
                for row, flat_row in zip(q, blank)]
    return out


# Batches of a dataset or generator read for signatures when its arrays cannot be reached.
SIGNATURE_BATCHES = 8
SIGNATURE_SECONDS = 2.0


def training_rows(x: Any, *, train_fraction: float = 1.0, rows: int = SIGNATURE_ROWS) -> tuple[Any, str | None]:
    """Up to ``rows`` training rows of whatever ``fit`` was given, as numpy, and where they came from.

    Arrays (also a dict or list of them: the largest) give evenly spaced rows. A ``tf.data``
    dataset gives evenly spaced rows of the arrays it was made from (``from_tensor_slices``, found
    beneath its maps, shuffles, batches and repeats); a dataset without such arrays gives its first
    few batches, read through a new iterator (so the student's own iteration is untouched), unless
    it may wrap a Python generator. A ``keras.utils.PyDataset`` (or ``ImageDataGenerator.flow``)
    gives its arrays or its first few batches by index. A Python generator gives nothing: reading
    it would take batches from training. Bounded: at most :data:`SIGNATURE_BATCHES` batches and
    about :data:`SIGNATURE_SECONDS` seconds.
    """
    try:
        arrays = _largest_array(x)
        if arrays is not None:
            return _sample_rows(arrays, rows, train_fraction), "arrays"
        if _is_tf_dataset(x):
            source = _dataset_source(x)
            if source is not None:
                import tensorflow as tf

                n = int(source.shape[0])
                index = list(range(n)) if rows >= n else sorted({round(i * (n - 1) / max(1, rows - 1)) for i in range(rows)})
                return tf.gather(source, index).numpy(), "dataset arrays"
            if _dataset_may_wrap_generator(x):
                return None, "dataset from a generator"
            return _first_batches(iter(x.take(SIGNATURE_BATCHES)), rows), "dataset batches"
        inner = getattr(x, "x", None)  # ImageDataGenerator.flow keeps its arrays
        if _is_array(inner) and hasattr(x, "__len__"):
            return _sample_rows(inner, rows), "generator arrays"
        if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not isinstance(x, (str, bytes)):
            count = min(len(x), SIGNATURE_BATCHES)
            return _first_batches((x[i] for i in range(count)), rows), "sequence batches"
        return None, None
    except Exception:
        return None, None


def _is_array(x: Any) -> bool:
    return x is not None and not isinstance(x, (list, tuple, dict)) and len(getattr(x, "shape", ()) or ()) >= 2


def _largest_array(x: Any) -> Any:
    """``x`` if it is an array of rows; the largest array of a dict or list of them (the images
    of a model with several inputs); else None."""
    if _is_array(x):
        return x
    values = list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, (list, tuple)) else []
    candidates = [v for v in values if _is_array(v)]
    return max(candidates, key=lambda v: _size(v.shape), default=None)


def _size(shape: Any) -> int:
    total = 1
    for dim in shape:
        total *= int(dim or 0)
    return total


def _is_tf_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec") and hasattr(x, "_inputs")


def _dataset_nodes(ds: Any, limit: int = 64) -> list[Any]:
    """The datasets ``ds`` is built from, itself first, breadth first (at most ``limit``)."""
    seen, queue = [], [ds]
    while queue and len(seen) < limit:
        node = queue.pop(0)
        seen.append(node)
        try:
            queue += list(node._inputs())
        except Exception:
            pass
    return seen


def _dataset_source(ds: Any) -> Any:
    """The largest array of rows (2 or more dimensions) a dataset was sliced from, or None."""
    found = []
    for node in _dataset_nodes(ds):
        if "TensorSlice" in type(node).__name__:
            found += [t for t in getattr(node, "_tensors", []) if len(getattr(t, "shape", ())) >= 2
                      and getattr(getattr(t, "dtype", None), "is_numeric", True) and t.shape[0]]
    return max(found, key=lambda t: _size(t.shape), default=None)


def _dataset_may_wrap_generator(ds: Any) -> bool:
    # from_generator is a flat map over a generator: a new iterator may share the student's generator
    return any(name in type(node).__name__ for node in _dataset_nodes(ds)
               for name in ("FlatMap", "Generator", "Interleave"))


def _first_batches(batches: Any, rows: int) -> Any:
    import numpy as np

    started = time.perf_counter()
    found, count = [], 0
    for batch in batches:
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
        inputs = _largest_array(inputs.numpy() if hasattr(inputs, "numpy") else inputs)
        if inputs is None:
            break
        found.append(np.asarray(inputs))
        count += len(found[-1])
        if count >= rows or time.perf_counter() - started > SIGNATURE_SECONDS:
            break
    if not found or len({a.shape[1:] for a in found}) != 1:
        return None
    return np.concatenate(found)[:rows]


def batches_per_pass(x: Any, *, batch_size: int | None, validation_split: float | None = None) -> float | None:
    """Batches (training steps) in one pass over the training data ``fit`` was given, or None
    when that cannot be read without reading the data.

    Arrays: their rows (less a ``validation_split``) over the batch size. A ``tf.data`` dataset:
    the cardinality of what its lowest ``repeat()`` repeats (over the batch sizes applied above
    it), else its own cardinality. A ``PyDataset`` or ``Sequence``: its length.
    """
    try:
        import math

        arrays = _largest_array(x)
        if arrays is not None:
            rows = int(arrays.shape[0])
            rows -= int(rows * (validation_split or 0.0))
            return float(max(1, math.ceil(rows / (batch_size or 32)))) if rows > 0 else None
        if _is_tf_dataset(x):
            return _dataset_batches_per_pass(x)
        if hasattr(x, "__len__") and hasattr(x, "__getitem__") and not isinstance(x, (str, bytes)):
            return float(len(x)) if len(x) > 0 else None
    except Exception:
        pass
    return None


# Dataset transformations that keep one element per element: they do not change what a pass is.
_ONE_TO_ONE = ("Map", "Prefetch", "Shuffle", "Cache", "Options", "AssertCardinality", "Ignore", "MaxIntraOp",
               "PrivateThreadPool", "Snapshot", "AutoShard")


def _dataset_batches_per_pass(ds: Any) -> float | None:
    chain, node = [], ds
    for _ in range(64):
        chain.append(node)
        inputs = list(node._inputs())
        if len(inputs) != 1:
            break
        node = inputs[0]
    repeats = [i for i, n in enumerate(chain) if "Repeat" in type(n).__name__]
    if not repeats:
        card = int(ds.cardinality())
        return float(card) if card > 0 else None
    lowest = repeats[-1]
    elements_per_step = 1.0
    for n in chain[:lowest]:
        name = type(n).__name__
        if "Batch" in name and "Unbatch" not in name and hasattr(n, "_batch_size"):
            elements_per_step *= float(int(n._batch_size))
        elif not ("Repeat" in name or any(word in name for word in _ONE_TO_ONE)):
            return None  # take, filter, unbatch above the repeat: the ratio is unknown
    card = int(chain[lowest + 1].cardinality()) if lowest + 1 < len(chain) else -2
    return card / elements_per_step if card > 0 else None


def training_facts(x: Any, fit_info: dict[str, Any]) -> dict[str, Any]:
    """What the fit hook records about its training data beside :func:`fingerprint`: signatures and
    sketches of sampled training rows (in ``fit_info["x"]`` for arrays, else under ``"rows"``) and
    the passes over the data one epoch asked for (``batches_per_pass``, ``passes_per_epoch``).
    Never raises: what cannot be read is left out."""
    facts: dict[str, Any] = {}
    try:
        split = fit_info.get("validation_split") or 0.0
        sample, source = training_rows(x, train_fraction=1.0 - split)
        if sample is not None and len(sample):
            signed = {"row_hashes": _rank_hashes(sample), "sketches": _sketches(sample)}
            if source == "arrays" and fit_info.get("x") is not None and _is_array(x):
                fit_info["x"].update(signed)
            else:
                facts["rows"] = {"samples": None, "shape": _shape(sample), "dtype": str(sample.dtype), "source": source,
                                 **signed}
        elif source:
            facts["rows"] = {"source": source}
        per_pass = batches_per_pass(x, batch_size=fit_info.get("batch_size"), validation_split=split)
        facts["batches_per_pass"] = per_pass
        asked = fit_info.get("steps_per_epoch")
        top = per_pass if _largest_array(x) is not None else None
        if top is None and _is_tf_dataset(x):
            card = int(x.cardinality())
            top = float(card) if card > 0 else (float("inf") if card == -1 else None)
        elif top is None and per_pass is not None:
            top = per_pass  # a PyDataset: its length is an epoch
        steps = min(float(asked), top) if asked and top is not None else (float(asked) if asked else top)
        if per_pass and steps is not None and steps != float("inf"):
            facts["passes_per_epoch"] = steps / per_pass
    except Exception:
        pass
    return facts


def _steps_callback() -> Any:
    """A Keras callback that counts the training steps that ran (one per batch)."""
    try:
        import keras
    except Exception:
        return None

    class _Steps(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.steps = 0
            self.in_epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.in_epoch = 0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            # with steps_per_execution > 1 Keras calls this once per execution, with the last step's index
            self.in_epoch = max(self.in_epoch, int(batch) + 1)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.steps += self.in_epoch
            self.in_epoch = 0

        def on_train_end(self, logs: dict | None = None) -> None:
            self.steps += self.in_epoch  # an epoch cut short
            self.in_epoch = 0

    return _Steps()


def _row_hashes(x: Any, limit: int = 200_000) -> set[bytes]:
    try:
        import numpy as np

        if not hasattr(x, "shape") or len(x) > limit:
            return set()
        arr = np.ascontiguousarray(np.asarray(x))
        rows = arr.reshape(len(arr), -1)
        return {hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows}
    except Exception:
        return set()


# ---------------------------------------------------------------------------------------------
# The recorder


class Recorder:
    """Writes events to ``bundle_dir/events.jsonl`` and model files to ``bundle_dir/models``.

    ``fast`` caps training: ``{"epochs": 1, "train_samples": 512, "steps_per_epoch": 8,
    "test_samples": 512}``; ``None`` leaves training as the student wrote it.
    """

    def __init__(self, bundle_dir: str, *, fast: dict[str, int] | None = None, compat: bool = True,
                 datasets: dict[str, str] | None = None, seed: int | None = 0, witness: str | None = None):
        self.bundle = Path(bundle_dir)
        (self.bundle / "models").mkdir(parents=True, exist_ok=True)
        self.fast = fast
        self.compat = compat
        self.datasets = datasets or {}
        self.seed = seed
        self.cell_id: str | None = None
        self._events = open(self.bundle / "events.jsonl", "ab")
        # The grader's copy of the log (grader.execute.witness): a named pipe it reads as the
        # kernel runs. Its name is removed once it is open, so no cell can open it again.
        self._witness: int | None = None
        self._witness_id: tuple[int, int] | None = None
        if witness:
            try:
                fd = os.open(witness, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                os.unlink(witness)
                info = os.fstat(fd)
                self._witness, self._witness_id = fd, (info.st_dev, info.st_ino)
            except OSError:
                self._witness = None
        # Model ids come from a counter that only grows: numbering by the size of a weak map
        # reused the id of a garbage-collected model for the next one (`model` rebound in every
        # section gave m1 m2 m3 m2 m3), which merged two models' fits, epochs and weights.
        self._ids: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
        self._strong: list[tuple[Any, str]] = []  # models that cannot be weakly referenced: kept alive
        self._next_model = 0
        self._fit_count = 0
        self._eval_count = 0
        # optimizer -> its step count when the recorder last saw it: steps taken between two
        # recorded fits were taken outside any fit the recorder saw
        self._optimizer_steps: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._keras_ready = False
        self._train_rows: dict[int, set[bytes]] = {}
        self.emit("start", python=sys.version.split()[0], fast=fast, compat=compat)

    # -- plumbing
    def emit(self, event: str, **data: Any) -> None:
        data.update(event=event, cell_id=self.cell_id, time=time.time())
        line = (json.dumps(data, default=_json_default) + "\n").encode("utf-8", "replace")
        self._send(line)  # first down the pipe: a kernel stopped between the two leaves the file short
        self._events.write(line)
        self._events.flush()

    def _send(self, line: bytes) -> None:
        fd = self._witness
        if fd is None:
            return
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != self._witness_id:  # closed by a cell, the number reused
                self._witness = None
                return
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        except OSError:  # closed by a cell: the grader reads the rest from the file, and says so
            self._witness = None

    def model_id(self, model: Any) -> str:
        """The id of ``model`` for the whole run: the same object always gets the same id, and
        no two objects ever share one, even after the first is garbage-collected."""
        try:
            mid = self._ids.get(model)
        except TypeError:  # not weak-referenceable: hold it, so that its id() is never reused
            for held, mid in self._strong:
                if held is model:
                    return mid
            mid = self._new_model_id()
            self._strong.append((model, mid))
            return mid
        if mid is None:
            mid = self._new_model_id()
            self._ids[model] = mid
        return mid

    def _new_model_id(self) -> str:
        self._next_model += 1
        return f"m{self._next_model}"

    def pre_run_cell(self, info: Any) -> None:
        self.cell_id = getattr(info, "cell_id", None)

    # -- installation
    def install(self) -> None:
        try:
            ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
            ip.events.register("pre_run_cell", self.pre_run_cell)
        except NameError:
            ip = None
        from . import compat  # Colab-only cells come before `import keras`: neutralised from the start

        compat.install_colab(lambda f: self.emit("finding", **f), ip)
        if "keras" in sys.modules and hasattr(sys.modules["keras"], "Model"):
            self.on_keras_imported()
        else:
            sys.meta_path.insert(0, _KerasImportHook(self.on_keras_imported))

    def on_keras_imported(self) -> None:
        if self._keras_ready:
            return
        self._keras_ready = True
        import keras

        if self.seed is not None:
            # The same submission gets the same grade on every run; a notebook that seeds itself
            # later overrides this.
            keras.utils.set_random_seed(self.seed)
        model_cls = keras.Model
        _ORIGINAL.setdefault("fit", model_cls.fit)
        _ORIGINAL.setdefault("evaluate", model_cls.evaluate)
        _ORIGINAL.setdefault("save", model_cls.save)
        _ORIGINAL.setdefault("load_weights", model_cls.load_weights)
        model_cls.fit = _wrap(_ORIGINAL["fit"], self.record_fit)
        model_cls.evaluate = _wrap(_ORIGINAL["evaluate"], self.record_evaluate)
        model_cls.load_weights = _wrap(_ORIGINAL["load_weights"], self.record_load_weights)
        for module in (keras.models, getattr(keras.saving, "__dict__", None) and keras.saving):
            if module is not None and hasattr(module, "load_model"):
                original = module.load_model
                module.load_model = _wrap_function(original, self.record_load_model)
        # After the recorder's own wrappers: compat wraps them in turn, so what the recorder sees
        # is already the Keras 3 spelling (epochs, not nb_epoch).
        from . import datasets_shim

        datasets_shim.install(self.datasets, report=lambda f: self.emit("finding", **f))
        if self.compat:
            try:
                from . import compat
            except ImportError as exc:
                self.emit("finding", kind="internal", severity="warning",
                          message=f"compatibility with older Keras is not available: {exc}")
            else:
                compat.install(lambda f: self.emit("finding", **f))
        self.emit("keras", version=getattr(keras, "__version__", "?"), backend=keras.backend.backend(), seed=self.seed)

    # -- fit
    def record_fit(self, original: Callable[..., Any], model: Any, args: tuple, kwargs: dict) -> Any:
        if _inside_recorded_call():
            return original(model, *args, **kwargs)
        bound = _bind(original, model, args, kwargs)
        params = bound.arguments
        requested = {
            "epochs": params.get("epochs", 1),
            "initial_epoch": params.get("initial_epoch", 0) or 0,
            "batch_size": params.get("batch_size"),
            "steps_per_epoch": params.get("steps_per_epoch"),
            "validation_split": params.get("validation_split") or None,
        }
        x = params.get("x")
        validation_data = params.get("validation_data")
        fit_info: dict[str, Any] = {
            "epochs": requested["epochs"],
            "initial_epoch": requested["initial_epoch"],
            "batch_size": requested["batch_size"],
            "steps_per_epoch": requested["steps_per_epoch"],
            "validation_split": requested["validation_split"],
            "train_samples": _length(x),
            "validation_samples": _length(validation_data[0]) if isinstance(validation_data, (tuple, list)) and validation_data else None,
            "x": fingerprint(x),
            "capped": {},
        }
        fit_info.update(training_facts(x, fit_info))  # before the fast-mode caps: the student's data
        if self.fast:
            self._apply_fast_caps(params, fit_info)
        index = self._fit_count
        self._fit_count += 1
        mid = self.model_id(model)
        rows = _row_hashes(params.get("x"))
        if rows:
            self._train_rows[index] = rows
        callback = _history_callback(self, index, mid)
        callbacks = list(params.get("callbacks") or [])
        if callback is not None:
            callbacks.append(callback)
        budget = _budget_callback(float(self.fast.get("fit_seconds", FAST_FIT_SECONDS))) if self.fast else None
        if budget is not None:
            callbacks.append(budget)
        steps = _steps_callback()
        if steps is not None:
            callbacks.append(steps)
        if callbacks:
            params["callbacks"] = callbacks
        self.emit("fit_start", index=index, model_id=mid, fit=fit_info,
                  architecture=_safe(describe_model, model) if getattr(model, "built", False) else None)
        self._check_optimizer_steps(model, mid)
        started = time.perf_counter()
        error = None
        history = None
        try:
            history = original(*bound.args, **bound.kwargs)
            return history
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._note_optimizer_steps(model)
            duration = time.perf_counter() - started
            # The recorder's own callback saw every epoch as Keras computed it; the History object
            # that fit returns is a class the student can patch, so it is only compared.
            returned = _history_dict(history) if history is not None else {}
            seen = callback.logs if callback is not None else {}
            hist = seen or returned
            fit_info["epochs_run"] = callback.epochs if callback is not None else max((len(v) for v in hist.values()), default=0)
            fit_info["steps_run"] = steps.steps if steps is not None else None
            if budget is not None and budget.stopped:
                # Architecture and compile are recorded exactly; only the amount of training was cut.
                fit_info["capped"]["time_budget"] = {"budget_s": budget.budget_s, "steps_run": budget.steps,
                                                     "epochs_run": fit_info["epochs_run"],
                                                     "message": f"stopped after {budget.steps} steps: fast-mode budget of {budget.budget_s:g} s"}
            if seen and returned and _differs(seen, returned):
                self.emit("finding", kind="history", severity="warning",
                          message=f"the History that fit #{index + 1} returned differs from the epochs the grader "
                                  "recorded (the History class may have been changed); the recorded epochs are used")
            record: dict[str, Any] = {
                "index": index,
                "model_id": mid,
                "architecture": _safe(describe_model, model),
                "compile": _safe(describe_compile, model),
                "fit": fit_info,
                "history": hist,
                "duration_s": duration,
                "error": error,
                "fast_mode": bool(self.fast),
            }
            record["weights_file"] = self._save_model(model, mid)
            record["weights_sha256"] = _file_sha256(self.bundle / record["weights_file"]) if record["weights_file"] else None
            self.emit("fit", **record)

    def _apply_fast_caps(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        caps = self.fast or {}
        epochs, initial = params.get("epochs", 1) or 1, params.get("initial_epoch", 0) or 0
        cap = caps.get("epochs")
        if cap and epochs - initial > cap:
            params["epochs"] = initial + cap
            info["capped"]["epochs"] = [epochs, initial + cap]
        n = caps.get("train_samples")
        x = params.get("x")
        if n and _sliceable(x) and len(x) > n:
            info["capped"]["train_samples"] = [len(x), n]
            for key in ("x", "y", "sample_weight"):
                if _sliceable(params.get(key)):
                    params[key] = params[key][:n]
        elif _sliceable(params.get("x")) is False and x is not None:
            steps = caps.get("steps_per_epoch")
            asked = params.get("steps_per_epoch")
            if steps and (asked is None or asked > steps):
                params["steps_per_epoch"] = steps
                info["capped"]["steps_per_epoch"] = [asked, steps]
        validation = params.get("validation_data")
        m = caps.get("test_samples")
        if m and isinstance(validation, (tuple, list)) and validation and _sliceable(validation[0]) and len(validation[0]) > m:
            params["validation_data"] = tuple(v[:m] if _sliceable(v) else v for v in validation)
            info["capped"]["validation_samples"] = [len(validation[0]), m]
        elif validation is not None and not isinstance(validation, (tuple, list)):
            steps = caps.get("steps_per_epoch")
            if steps and (params.get("validation_steps") is None or params["validation_steps"] > steps):
                params["validation_steps"] = steps
                info["capped"]["validation_steps"] = [None, steps]

    def _save_model(self, model: Any, mid: str) -> str | None:
        path = self.bundle / "models" / f"{mid}.keras"
        try:
            _ORIGINAL["save"](model, str(path))
            return f"models/{mid}.keras"
        except Exception as exc:
            self.emit("finding", kind="save_failed", severity="warning",
                      message=f"the trained model could not be saved for verification: {type(exc).__name__}: {exc}"[:500])
            return None

    # -- training the recorder did not see
    def _check_optimizer_steps(self, model: Any, mid: str) -> None:
        """Say so when the model's optimizer took steps since the recorder last saw it: training
        outside any recorded fit (the fit hook bypassed, a fit hidden from the recorder, a custom
        loop), which the epochs of the recorded fits do not count."""
        optimizer, steps = _optimizer_steps(model)
        if optimizer is None:
            return
        try:
            seen = self._optimizer_steps.get(optimizer, 0)
        except TypeError:
            return
        if steps > seen:
            self.emit("finding", kind="hidden_training", severity="error", model_id=mid,
                      message=f"before this fit the model's optimizer had taken {steps - seen:,} training step(s) that no "
                              "fit the grader recorded took: the model was trained outside the recorded fits, and the "
                              "epochs counted do not include that training")

    def _note_optimizer_steps(self, model: Any) -> None:
        optimizer, steps = _optimizer_steps(model)
        if optimizer is not None:
            try:
                self._optimizer_steps[optimizer] = steps
            except TypeError:
                pass

    # -- evaluate
    def record_evaluate(self, original: Callable[..., Any], model: Any, args: tuple, kwargs: dict) -> Any:
        if _inside_recorded_call():
            return original(model, *args, **kwargs)
        bound = _bind(original, model, args, kwargs)
        params = bound.arguments
        x = params.get("x")
        info = {"x": fingerprint(x), "samples": _length(x), "capped": {}}
        if self.fast:
            m = self.fast.get("test_samples")
            if m and _sliceable(x) and len(x) > m:
                info["capped"]["samples"] = [len(x), m]
                for key in ("x", "y", "sample_weight"):
                    if _sliceable(params.get(key)):
                        params[key] = params[key][:m]
            elif x is not None and not _sliceable(x) and self.fast.get("steps_per_epoch"):
                params["steps"] = min(params.get("steps") or 10**9, self.fast["steps_per_epoch"])
        index = self._eval_count
        self._eval_count += 1
        overlap = self._test_overlap(params.get("x"))
        result = original(*bound.args, **bound.kwargs)
        results: dict[str, float] = {}
        try:
            named = model.get_metrics_result() if hasattr(model, "get_metrics_result") else None
        except Exception:
            named = None
        try:
            if isinstance(named, dict) and named and all(_is_number(v) for v in named.values()):
                results = {str(k): float(v) for k, v in named.items()}
            elif isinstance(result, dict):
                results = {k: float(v) for k, v in result.items()}
            elif isinstance(result, (list, tuple)):
                names = list(getattr(model, "metrics_names", []) or [])
                if len(names) != len(result):
                    names = ["loss"] + [f"metric_{i}" for i in range(1, len(result))]
                results = {n: float(v) for n, v in zip(names, result)}
            else:
                results = {"loss": float(result)}
        except Exception:
            pass
        self.emit("evaluate", index=index, model_id=self.model_id(model), results=results,
                  fast_mode=bool(self.fast), overlap=overlap, **info)
        return result

    def _test_overlap(self, x: Any) -> list[dict[str, int]]:
        """Rows of this evaluation set that were also passed to an earlier fit."""
        rows = _row_hashes(x)
        found = []
        for fit_index, train in self._train_rows.items():
            shared = len(rows & train)
            if shared:
                found.append({"fit": fit_index, "rows": shared, "of": len(rows)})
        return found

    # -- weights from files
    def record_load_weights(self, original: Callable[..., Any], model: Any, args: tuple, kwargs: dict) -> Any:
        path = args[0] if args else kwargs.get("filepath")
        self.emit("finding", kind="load_weights", severity="warning",
                  message=f"weights were loaded from a file ({str(path)[:200]}) into model {self.model_id(model)}")
        return original(model, *args, **kwargs)

    def record_load_model(self, original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        path = args[0] if args else kwargs.get("filepath")
        model = original(*args, **kwargs)
        self._note_optimizer_steps(model)  # the file's optimizer state: steps taken where it was trained
        self.emit("finding", kind="load_model", severity="warning",
                  message=f"a saved model was loaded from {str(path)[:200]}; its training is not part of this notebook",
                  model_id=self.model_id(model))
        return model

    # -- the end of the run
    def finalize(self, namespace: dict[str, Any], functions: list[str] = (), variables: list[str] = ()) -> None:
        """Record the models bound to globals, call the rubric's model-building functions, and
        write the plain-valued variables the rubric asks about."""
        if "keras" in sys.modules:
            import keras

            for name, value in list(namespace.items()):
                if name.startswith("_") or not isinstance(value, keras.Model):
                    continue
                self.emit("model", model_id=self.model_id(value), variable=name,
                          architecture=_safe(describe_model, value), compile=_safe(describe_compile, value),
                          built_by=None)
            for fname in functions:
                func = namespace.get(fname)
                if not callable(func):
                    self.emit("function", name=fname, error=f"no function named {fname} at the end of the run")
                    continue
                try:
                    model = _unrecorded(func)  # a function that trains is not a new training run
                except BaseException as exc:  # the student's function failed: that is evidence
                    self.emit("function", name=fname, error=f"{type(exc).__name__}: {exc}"[:1000])
                    continue
                if isinstance(model, (tuple, list)):
                    model = next((m for m in model if isinstance(m, keras.Model)), None)
                if not isinstance(model, keras.Model):
                    self.emit("function", name=fname, error=f"{fname}() returned {type(model).__name__}, not a Keras model")
                    continue
                self.emit("model", model_id=self.model_id(model), variable=None, built_by=fname,
                          architecture=_safe(describe_model, model), compile=_safe(describe_compile, model))
        for vname in variables:
            if vname in namespace:
                value = namespace[vname]
                if isinstance(value, (int, float, str, bool)) and not (isinstance(value, str) and len(value) > 10_000):
                    self.emit("variable", name=vname, value=value, type_name=type(value).__name__)
                else:
                    self.emit("variable", name=vname, value=repr(value)[:1000], type_name=type(value).__name__)
        self.emit("end")
        self._events.flush()


# Wall-clock seconds one fit may train in fast mode: caps on epochs and steps alone let a 20M-parameter
# model train for minutes, since each of its steps is huge.
FAST_FIT_SECONDS = 8.0


def _budget_callback(budget_s: float) -> Any:
    """A Keras callback that sets ``stop_training`` once a fit has trained ``budget_s`` seconds."""
    try:
        import keras
    except Exception:
        return None

    class _Budget(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.budget_s = budget_s
            self.steps = 0
            self.stopped = False
            self.started = time.perf_counter()

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.steps += 1
            if not self.stopped and time.perf_counter() - self.started > self.budget_s:
                self.stopped = True
                self.model.stop_training = True

    return _Budget()


def _history_callback(recorder: Recorder, index: int, mid: str) -> Any:
    """A Keras callback that writes each epoch's logs as they come, so a run that times out or a
    kernel that dies mid-training still leaves its history."""
    try:
        import keras
    except Exception:
        return None

    class _EpochLog(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.logs: dict[str, list[float]] = {}
            self.epochs = 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.epochs += 1
            values = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
            for k, v in values.items():
                self.logs.setdefault(k, []).append(v)
            recorder.emit("epoch", index=index, model_id=mid, epoch=epoch, logs=values)

    return _EpochLog()


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Calls ``callback`` once ``import keras`` has finished, however the student imports it
    (``import keras``, ``from tensorflow import keras``, ``tf.keras``)."""

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self.busy = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "keras" or self.busy:
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        loader = spec.loader
        original = loader.exec_module
        hook = self

        def exec_module(module: Any) -> None:
            original(module)
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)
            try:
                hook.callback()
            except Exception as exc:  # the recorder must never break the student's import
                sys.stderr.write(f"[nn-grader] recorder could not attach to keras: {exc}\n")

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _optimizer_steps(model: Any) -> tuple[Any, int]:
    """The model's optimizer and the steps it has taken (``None, 0`` when it has none yet)."""
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    if iterations is None:
        return None, 0
    try:
        import numpy as np

        return optimizer, int(np.asarray(iterations.numpy() if hasattr(iterations, "numpy") else iterations))
    except Exception:
        return None, 0


def _unrecorded(func: Callable[[], Any]) -> Any:
    """Call ``func`` with fit and evaluate passed straight through (see :func:`_inside_recorded_call`)."""
    return func()


def _inside_recorded_call() -> bool:
    """True when a fit or evaluate the recorder is recording (or :func:`_unrecorded`) is already on
    this thread's stack: Keras's fit calls evaluate for the validation data, and that is part of
    the fit. Read from the call stack, not from a counter a cell could change to hide a fit."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code in _RECORDING_CODES:
            return True
        frame = frame.f_back
    return False


def _wrap(original: Callable[..., Any], handler: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return handler(original, self, args, kwargs)

    method.__nn_grader_original__ = original  # type: ignore[attr-defined]
    return method


def _wrap_function(original: Callable[..., Any], handler: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def function(*args: Any, **kwargs: Any) -> Any:
        return handler(original, args, kwargs)

    return function


def _bind(original: Callable[..., Any], model: Any, args: tuple, kwargs: dict) -> inspect.BoundArguments:
    try:
        bound = inspect.signature(original).bind(model, *args, **kwargs)
        bound.apply_defaults()
    except TypeError:
        # Let Keras raise its own error for a wrong call: bind loosely.
        bound = inspect.signature(lambda self, *a, **k: None).bind(model, *args, **kwargs)
    return bound


def _sliceable(x: Any) -> bool:
    return x is not None and hasattr(x, "shape") and hasattr(x, "__getitem__") and hasattr(x, "__len__") and len(getattr(x, "shape", ())) > 0


def _length(x: Any) -> int | None:
    if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        x = x[0]
    if hasattr(x, "shape") and getattr(x, "shape", None) is not None and len(x.shape) > 0:
        try:
            return int(x.shape[0])
        except (TypeError, ValueError):
            return None
    return None


def _history_dict(history: Any) -> dict[str, list[float]]:
    data = getattr(history, "history", None)
    if not isinstance(data, dict):
        return {}
    return {str(k): [float(v) for v in values if _is_number(v)] for k, values in data.items() if isinstance(values, (list, tuple))}


def _differs(seen: dict[str, list[float]], returned: dict[str, list[float]]) -> bool:
    """Whether a returned history contradicts the recorded one on a key both have. (A callback
    may add a key such as ``learning_rate`` after History has read the logs: not a contradiction.)"""
    for key in set(seen) & set(returned):
        a, b = seen[key], returned[key]
        if len(a) != len(b) or any(abs(x - y) > 1e-6 * max(1.0, abs(x)) for x, y in zip(a, b) if x == x or y == y):
            return True
    return False


def _file_sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def _is_number(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _safe(func: Callable[[Any], Any], model: Any) -> Any:
    try:
        return func(model)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def _json_default(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)[:200]


def install(bundle_dir: str, **options: Any) -> Recorder:
    """Create the recorder for this kernel and attach it (called by the grader's setup cell)."""
    global _RECORDER
    _RECORDER = Recorder(bundle_dir, **options)
    _RECORDER.install()
    return _RECORDER


def recorder() -> Recorder | None:
    return _RECORDER


_RECORDING_CODES = frozenset({Recorder.record_fit.__code__, Recorder.record_evaluate.__code__, _unrecorded.__code__})


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
