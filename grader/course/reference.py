"""Reference models for course authors: list them, show them, and retrain them over several seeds.

``grade reference list`` and ``grade reference show NAME`` describe the architectures of
:mod:`reference_models` with the figures the course documents. ``grade reference train NAME
--seeds 3`` trains one on the grader's copy of its dataset (:func:`grader.data.load.load_dataset`)
once per seed and reports the mean ± standard deviation of its test accuracy; ``grade calibrate``
(:mod:`grader.course.calibrate`) does the same for a rubric's reference solutions and compares the result
with the rubric's thresholds.

Training uses only the ``keras`` API, so it runs on any Keras backend (``KERAS_BACKEND=jax`` on a
GPU machine without TensorFlow, say), on a GPU whenever the backend sees one. Every seed's result
is cached on disk, keyed by the model's architecture and settings, the data's fingerprint and
the seed: a second run of the same command reads the cache instead of training again.

Example::

    >>> report = train_reference("cifar10_cnn", seeds=[0, 1], epochs=1, data_source="synthetic",
    ...                          train_size=500, test_size=100)        # doctest: +SKIP
    >>> print(format_train_report(report))                              # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import reference_models
from grader.data.dataset import Dataset
from grader.data.load import load_dataset
from grader.data.registry import SPECS
from grader.errors import DatasetError, ReferenceModelError
from grader.model.evidence import accuracy_of, from_json, to_json
from grader.model.words import plural

if TYPE_CHECKING:  # pragma: no cover
    from reference_models import ReferenceModel

CACHE_ENV = "NN_GRADER_CACHE"
# Bump when the training procedure changes in a way that changes results: old cache entries
# then no longer match.
TRAINING_VERSION = 1


# ---------------------------------------------------------------------------------------------
# list and show


@dataclass
class ReferenceRow:
    """One line of ``grade reference list``."""

    name: str
    seed: str
    title: str
    dataset: str
    total: int
    trainable: int
    non_trainable: int
    trainable_here: bool  # the grader can load its dataset, so `train` works


def list_references() -> list[ReferenceRow]:
    """Every reference model with its documented figures (no Keras import)."""
    return [
        ReferenceRow(ref.name, ref.seed, ref.title, ref.dataset, ref.figures.total, ref.figures.trainable,
                     ref.figures.non_trainable, ref.dataset in SPECS)
        for ref in reference_models.REGISTRY.values()
    ]


def format_reference_list(rows: Iterable[ReferenceRow]) -> str:
    """The rows as an aligned text table."""
    header = ("seed", "name", "dataset", "total", "trainable", "non-trainable", "title")
    lines = [header] + [
        (row.seed, row.name, row.dataset + ("" if row.trainable_here else " *"), f"{row.total:,}",
         f"{row.trainable:,}", f"{row.non_trainable:,}", row.title)
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    right = {3, 4, 5}
    text = []
    for line in lines:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))]
        text.append("  ".join(cells + [line[-1]]).rstrip())
    text.append("* the grader cannot load this dataset offline yet: show works, train does not")
    return "\n".join(text)


def show_reference(name: str, *, weights: str | Path | None = None) -> str:
    """The model's summary as Keras prints it, then the documented figures beside the built ones."""
    ref = reference_models.get(name)
    model = ref.build(weights=weights)
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    built = _count_params(model)
    documented = (ref.figures.total, ref.figures.trainable, ref.figures.non_trainable)
    verdict = "matches" if built == documented else "DIFFERS FROM"
    out = [
        f"{ref.name} — {ref.title} (seed {ref.seed})",
        ref.description,
        "",
        *lines,
        f"Documented ({ref.figures.source}): total {documented[0]:,}, trainable {documented[1]:,}, "
        f"non-trainable {documented[2]:,}; this build {verdict} it.",
        f"Dataset: {ref.dataset}" + ("" if ref.dataset in SPECS else " (not loadable offline by the grader yet)"),
        f"Compile: {ref.compile.describe()}",
        f"Training: {ref.training.epochs} epochs, batch {ref.training.batch_size}, preprocessing "
        f"{ref.training.preprocess}" + (f", {ref.training.train_size:,} training images" if ref.training.train_size else "")
        + (f" ({ref.training.source})" if ref.training.source else ""),
    ]
    if ref.documented_accuracy:
        out.append(f"The course reports: {ref.documented_accuracy}")
    from grader.model.arithmetic import explain_architecture

    out += ["", "Parameters, layer by layer:", *(f"  {line}" for line in explain_architecture(
        reference_models.architecture(ref.name)))]
    return "\n".join(out)


def _count_params(model: Any) -> tuple[int, int, int]:
    def count(weights: Any) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in weights)

    trainable, frozen = count(model.trainable_weights), count(model.non_trainable_weights)
    return trainable + frozen, trainable, frozen


# ---------------------------------------------------------------------------------------------
# train


@dataclass
class SeedRun:
    """One training of a reference with one seed."""

    seed: int
    test_accuracy: float
    test_loss: float
    epochs: int
    duration_s: float
    device: str  # "GPU" | "CPU"
    history: dict[str, list[float]] = field(default_factory=dict)
    cached: bool = False  # read from the cache, not trained by this call


@dataclass
class TrainReport:
    """What ``grade reference train`` measured: test accuracy over several seeds."""

    model: str
    dataset: str
    data_source: str
    data_fingerprint: str
    train_samples: int
    test_samples: int
    epochs: int
    batch_size: int
    backend: str
    device: str  # where this call trained: "GPU" or "CPU" as the backend sees it
    runs: list[SeedRun] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def accuracies(self) -> list[float]:
        return [run.test_accuracy for run in self.runs]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies) if self.runs else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over the seeds (0 for a single seed)."""
        return statistics.stdev(self.accuracies) if len(self.runs) > 1 else 0.0

    def to_json(self) -> dict[str, Any]:
        data = to_json(self)
        data.update(mean_test_accuracy=self.mean, std_test_accuracy=self.std)
        return data


@dataclass
class TrainingProgress:
    """What a ``progress`` hook receives: after each epoch, and when a run starts or ends."""

    model: str
    seed: int
    run: int  # 1-based index of this seed among the seeds
    runs: int
    phase: str  # "start" | "epoch" | "done" | "cached"
    epoch: int = 0
    epochs: int = 0
    logs: dict[str, float] = field(default_factory=dict)


ProgressHook = Callable[[TrainingProgress], None]


def default_cache_dir() -> Path:
    """``$NN_GRADER_CACHE``, else ``$XDG_CACHE_HOME/nn-grader``, else ``~/.cache/nn-grader``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nn-grader"


def reference_dataset(
    ref: "ReferenceModel", *, data_source: str = "auto", train_size: int | None = None, test_size: int | None = None
) -> Dataset:
    """The reference's dataset from ``data_source``, cut to the sizes the course (or the caller) uses.

    Raises :class:`DatasetError` that says which file to put where when the data is not available.
    """
    if ref.dataset not in SPECS:
        raise DatasetError(
            f"{ref.name} trains on {ref.dataset}, which the grader cannot load (it knows "
            f"{', '.join(sorted(SPECS))}): `grade reference show {ref.name}` works, training it does not yet."
        )
    return load_dataset(ref.dataset, source=data_source, train_size=train_size or ref.training.train_size,
                        test_size=test_size)


def train_reference(
    name: str,
    *,
    seeds: Iterable[int] = (0, 1, 2),
    epochs: int | None = None,
    batch_size: int | None = None,
    data_source: str = "auto",
    train_size: int | None = None,
    test_size: int | None = None,
    data: Dataset | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: ProgressHook | None = None,
) -> TrainReport:
    """Train reference ``name`` once per seed and measure its test accuracy.

    ``epochs`` and ``batch_size`` default to the reference's own training settings;
    ``data_source`` is ``"auto"`` (the Keras cache), ``"synthetic"`` or an ``.npz`` path (see
    :func:`grader.data.load.load_dataset`), or pass a loaded ``data`` (then the source and sizes
    are not used). Results are cached per seed under ``cache_dir`` (:func:`default_cache_dir`);
    ``use_cache=False`` neither reads nor writes the cache.
    """
    ref = reference_models.get(name)
    seeds = list(seeds)
    if not seeds:
        raise ReferenceModelError("give at least one seed")
    if epochs is not None and epochs < 1:
        raise ReferenceModelError(f"epochs must be at least 1, not {epochs}")
    if data is None:
        data = reference_dataset(ref, data_source=data_source, train_size=train_size, test_size=test_size)
    epochs = epochs or ref.training.epochs
    batch_size = batch_size or ref.training.batch_size
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    started = time.perf_counter()
    fingerprint = data.fingerprint()
    settings = _settings(ref, fingerprint, epochs=epochs, batch_size=batch_size)
    prepared: tuple[Any, ...] | None = None  # arrays are prepared once, only if something trains
    device = backend = ""
    runs: list[SeedRun] = []
    for index, seed in enumerate(seeds, start=1):
        key_path = _cache_path(cache, ref.name, settings, seed)
        run = _read_cached(key_path) if use_cache else None
        if run is not None:
            runs.append(run)
            if progress:
                progress(TrainingProgress(ref.name, seed, index, len(seeds), "cached", epochs, epochs,
                                          {"test_accuracy": run.test_accuracy}))
            continue
        if prepared is None:
            backend, device = training_device()
            prepared = prepare_arrays(ref, data)
        run = _train_once(ref, prepared, seed=seed, epochs=epochs, batch_size=batch_size, device=device,
                          progress=progress, run_index=index, runs=len(seeds))
        runs.append(run)
        if use_cache:
            _write_cached(key_path, run, settings, seed)
    if not backend:  # every seed came from the cache: report where those runs trained
        backend, device = settings["backend"], runs[0].device
    return TrainReport(
        model=ref.name, dataset=data.name, data_source=data.source, data_fingerprint=fingerprint,
        train_samples=len(data.x_train), test_samples=len(data.x_test), epochs=epochs, batch_size=batch_size,
        backend=backend, device=device, runs=runs, duration_s=time.perf_counter() - started,
    )


def training_device() -> tuple[str, str]:
    """``(backend, "GPU" | "CPU")``: where Keras will train, as its backend sees it.

    On TensorFlow, GPU memory growth is switched on first, so several grader processes can share
    one GPU.
    """
    import keras

    backend = keras.backend.backend()
    gpu = False
    # Several reference models train in one process: TensorFlow warns about retracing each time.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            for device in gpus:
                try:
                    tf.config.experimental.set_memory_growth(device, True)
                except RuntimeError:  # already initialised: growth cannot change any more
                    pass
            gpu = bool(gpus)
        elif backend == "jax":
            import jax

            gpu = any(d.platform in ("gpu", "cuda", "rocm") for d in jax.devices())
        elif backend == "torch":
            import torch

            gpu = bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install: the backend trains on the CPU, so say that
        gpu = False
    return backend, "GPU" if gpu else "CPU"


def prepare_arrays(ref: "ReferenceModel", data: Dataset) -> tuple[Any, Any, Any, Any]:
    """``(x_train, y_train, x_test, y_test)`` as the reference model takes them.

    Pixels become float32 in [0, 1] (or standardized with the training set's mean and standard
    deviation), images are reshaped to the model's input (784 values for the MNIST FC net), and
    labels are one-hot for categorical crossentropy, 0/1 for binary.
    """
    import numpy as np

    input_shape = _input_shape(ref)
    x_train = data.x_train.astype("float32")
    x_test = data.x_test.astype("float32")
    if ref.training.preprocess == "standardize":
        mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    else:
        x_train, x_test = x_train / 255.0, x_test / 255.0
    per_sample = math.prod(x_train.shape[1:])
    if per_sample != math.prod(input_shape):
        raise ReferenceModelError(
            f"{ref.name} takes inputs of shape {input_shape}, but {data.name} images have shape "
            f"{tuple(x_train.shape[1:])}"
        )
    x_train = x_train.reshape((len(x_train), *input_shape))
    x_test = x_test.reshape((len(x_test), *input_shape))
    y_train, y_test = (np.asarray(y).reshape(len(y), -1)[:, 0].astype("int64") for y in (data.y_train, data.y_test))
    classes = data.classes
    loss = ref.compile.loss
    if loss == "binary_crossentropy":
        if classes != 2:
            raise ReferenceModelError(f"{ref.name} is a binary classifier; {data.name} has {classes} classes")
        return x_train, y_train.astype("float32"), x_test, y_test.astype("float32")
    if loss == "categorical_crossentropy":
        eye = np.eye(classes, dtype="float32")
        return x_train, eye[y_train], x_test, eye[y_test]
    return x_train, y_train, x_test, y_test


def _input_shape(ref: "ReferenceModel") -> tuple[int, ...]:
    arch = reference_models.architecture(ref.name)
    if not arch.input_shape:
        raise ReferenceModelError(f"the stored architecture of {ref.name} has no input shape")
    return tuple(int(d) for d in arch.input_shape[1:] if d is not None)


def _train_once(
    ref: "ReferenceModel", arrays: tuple[Any, ...], *, seed: int, epochs: int, batch_size: int, device: str,
    progress: ProgressHook | None, run_index: int, runs: int,
) -> SeedRun:
    import keras

    x_train, y_train, x_test, y_test = arrays
    keras.utils.set_random_seed(seed)  # Python, NumPy and backend seeds: initial weights, shuffling, dropout
    model = ref.build(compiled=True)
    callbacks = []
    if progress:
        progress(TrainingProgress(ref.name, seed, run_index, runs, "start", 0, epochs))
        callbacks.append(_progress_callback(progress, TrainingProgress(ref.name, seed, run_index, runs, "epoch", 0, epochs)))
    started = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                        callbacks=callbacks)
    scores = model.evaluate(x_test, y_test, batch_size=max(batch_size, 256), verbose=0, return_dict=True)
    duration = time.perf_counter() - started
    found = accuracy_of(scores)
    accuracy = math.nan if found is None else found
    run = SeedRun(
        seed=seed, test_accuracy=accuracy, test_loss=float(scores.get("loss", math.nan)),
        epochs=len(next(iter(history.history.values()), [])), duration_s=duration, device=device,
        history={k: [float(v) for v in values] for k, values in history.history.items()},
    )
    del model
    keras.backend.clear_session()  # free the graph and memory before the next seed
    if progress:
        progress(TrainingProgress(ref.name, seed, run_index, runs, "done", epochs, epochs,
                                  {"test_accuracy": accuracy}))
    return run


def _progress_callback(hook: ProgressHook, template: TrainingProgress) -> Any:
    """A Keras callback that reports each finished epoch to ``hook`` (the class needs Keras: built here)."""
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            hook(TrainingProgress(template.model, template.seed, template.run, template.runs, "epoch", epoch + 1,
                                  template.epochs, {k: float(v) for k, v in (logs or {}).items()}))

    return ProgressCallback()


# ---------------------------------------------------------------------------------------------
# cache


def _settings(ref: "ReferenceModel", fingerprint: str, *, epochs: int, batch_size: int) -> dict[str, Any]:
    import keras

    arch_file = reference_models.ARCHITECTURES_DIR / f"{ref.name}.json"
    return {
        "model": ref.name,
        "architecture": hashlib.sha256(arch_file.read_bytes()).hexdigest()[:16],
        "compile": ref.compile.describe(),
        "preprocess": ref.training.preprocess,
        "data": fingerprint,
        "epochs": epochs,
        "batch_size": batch_size,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "training_version": TRAINING_VERSION,
    }


def _cache_path(cache: Path, name: str, settings: dict[str, Any], seed: int) -> Path:
    key = hashlib.sha256(json.dumps({**settings, "seed": seed}, sort_keys=True).encode()).hexdigest()[:20]
    return cache / "reference" / f"{name}-{key}.json"


def _read_cached(path: Path) -> SeedRun | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        run = from_json(SeedRun, data["run"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: train again and overwrite
    run.cached = True
    return run


def _write_cached(path: Path, run: SeedRun, settings: dict[str, Any], seed: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": settings, "seed": seed, "run": to_json(run)}, indent=1), encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves half a file that looks valid
    except OSError:
        pass  # an unwritable cache costs a retraining later, never the result


# ---------------------------------------------------------------------------------------------
# text


def percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def format_train_report(report: TrainReport) -> str:
    """A short table: one line per seed, then mean ± std, data and device."""
    lines = [
        f"{report.model} on {report.dataset} ({report.data_source}, {report.train_samples:,} train / "
        f"{report.test_samples:,} test images, data {report.data_fingerprint}), {plural(report.epochs, 'epoch')}, "
        f"batch {report.batch_size}",
        f"{'seed':>6}  {'test acc':>9}  {'test loss':>9}  {'epochs':>6}  {'time':>8}  device",
    ]
    for run in report.runs:
        lines.append(f"{run.seed:>6}  {percent(run.test_accuracy):>9}  {run.test_loss:>9.4f}  {run.epochs:>6}  "
                     f"{run.duration_s:>7.1f}s  {run.device}{' (cached)' if run.cached else ''}")
    lines.append(f"test accuracy {percent(report.mean)} ± {100 * report.std:.1f} points over "
                 f"{plural(len(report.runs), 'seed')}; {report.duration_s:.1f} s on {report.device} ({report.backend} backend)")
    return "\n".join(lines)

