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
        import numpy as np

        if isinstance(x, (list, tuple, dict)) or len(getattr(x, "shape", ())) < 2:
            return []
        usable = int(int(x.shape[0]) * train_fraction)
        if usable <= 0:
            return []
        if rows is None or rows >= usable:
            index = np.arange(usable)
        else:
            index = np.unique(np.linspace(0, usable - 1, rows).round().astype(np.int64))
        arr = np.asarray(x[index])  # a tensor that cannot take an index array gives no signatures
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
    except Exception:
        return []


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
                 datasets: dict[str, str] | None = None, seed: int | None = 0):
        self.bundle = Path(bundle_dir)
        (self.bundle / "models").mkdir(parents=True, exist_ok=True)
        self.fast = fast
        self.compat = compat
        self.datasets = datasets or {}
        self.seed = seed
        self.cell_id: str | None = None
        self._events = open(self.bundle / "events.jsonl", "a", encoding="utf-8")
        # Model ids come from a counter that only grows: numbering by the size of a weak map
        # reused the id of a garbage-collected model for the next one (`model` rebound in every
        # section gave m1 m2 m3 m2 m3), which merged two models' fits, epochs and weights.
        self._ids: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
        self._strong: list[tuple[Any, str]] = []  # models that cannot be weakly referenced: kept alive
        self._next_model = 0
        self._fit_count = 0
        self._eval_count = 0
        self._depth = 0
        self._keras_ready = False
        self._train_rows: dict[int, set[bytes]] = {}
        self.emit("start", python=sys.version.split()[0], fast=fast, compat=compat)

    # -- plumbing
    def emit(self, event: str, **data: Any) -> None:
        data.update(event=event, cell_id=self.cell_id, time=time.time())
        self._events.write(json.dumps(data, default=_json_default) + "\n")
        self._events.flush()

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
        if self._depth:
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
        if fit_info["x"] is not None:
            fit_info["x"]["row_hashes"] = rank_signatures(x, train_fraction=1.0 - (requested["validation_split"] or 0.0))
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
        if callbacks:
            params["callbacks"] = callbacks
        self.emit("fit_start", index=index, model_id=mid, fit=fit_info,
                  architecture=_safe(describe_model, model) if getattr(model, "built", False) else None)
        started = time.perf_counter()
        self._depth += 1
        error = None
        history = None
        try:
            history = original(*bound.args, **bound.kwargs)
            return history
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._depth -= 1
            duration = time.perf_counter() - started
            # The recorder's own callback saw every epoch as Keras computed it; the History object
            # that fit returns is a class the student can patch, so it is only compared.
            returned = _history_dict(history) if history is not None else {}
            seen = callback.logs if callback is not None else {}
            hist = seen or returned
            fit_info["epochs_run"] = callback.epochs if callback is not None else max((len(v) for v in hist.values()), default=0)
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

    # -- evaluate
    def record_evaluate(self, original: Callable[..., Any], model: Any, args: tuple, kwargs: dict) -> Any:
        if self._depth:
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
        self._depth += 1
        try:
            result = original(*bound.args, **bound.kwargs)
        finally:
            self._depth -= 1
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
                    self._depth += 1  # a function that trains is not a new training run
                    model = func()
                except BaseException as exc:  # the student's function failed: that is evidence
                    self.emit("function", name=fname, error=f"{type(exc).__name__}: {exc}"[:1000])
                    continue
                finally:
                    self._depth -= 1
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


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
