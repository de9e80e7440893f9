"""Retraining: the grader trains the student's recorded architecture itself.

A clean re-evaluation (:mod:`grader.clean.measure`) measures the weights the notebook saved; those
weights came out of a kernel that ran student code, which could have loaded them from anywhere
or rewritten the file. Retraining removes that doubt: the architecture is rebuilt from the saved
model's configuration alone (``safe_mode=True``, fresh weights from the layers' initializers, no
student code), compiled with the recorded compile settings (optimizer class and learning rate,
loss), trained with the recorded fit arguments (epochs over every ``fit`` of the model, batch
size, validation split, as many training images as the notebook used) on the grader's own copy
of the training data, with a fixed seed, and measured on the grader's test data. The figure is
``verified`` and its source says how it was obtained::

    retrained by the grader: seed 0, 25 epochs, batch 64, 50,000 training images, SGD lr 0.01;
    10,000 test images (pixels divided by 255); on gpu:0, 312 s

Epochs of several passes over the training data (``repeat()`` with a larger ``steps_per_epoch``)
are retrained as that many epochs of one pass (:func:`planned_epochs`), and epochs of part of a
pass with as many steps; a ``steps_per_epoch`` over a generator whose pass is unknown is not
retrained (status ``skipped``, with the reason): its amount of training cannot be reproduced.

What retraining does not reproduce, and says so in ``Retraining.notes``: data augmentation
(generators are retrained on the plain arrays), callbacks (early stopping, learning-rate
schedules: the initial rate is kept), validation data other than a split. A model with frozen
layers (a pretrained base) is not retrained: from scratch it would be a different model.

It runs in the verifier's worker process (a ``"retrain"`` request, :mod:`grader.clean.worker`), so
a batch imports Keras once, and uses Keras only (no TensorFlow import): it runs on any Keras
backend, on a GPU when the backend sees one. Seeds are fixed, so two retrainings on a CPU give the same figure; GPU
kernels may still differ in the last digits.

Which models to retrain is the caller's choice (``--retrain``, or the checks that ask for it:
:func:`grader.checks.retraining.models_to_retrain`); this module retrains what it is asked to.

Example (:class:`~grader.clean.client.Verifier`)::

    with Verifier() as verifier:
        request = retrain_request(evidence, run, train_data="cifar10.npz", test_data="cifar10.npz")
        retraining = verifier.retrain(request)
        retraining.accuracy  # Figure(0.61, Level.VERIFIED, "retrained by the grader: seed 0, ...")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.clean.measure import integer_labels, load_saved_model, measure, prepare_inputs
from grader.clean.protocol import DEFAULT_SEED, RetrainRequest, Retraining
from grader.model.evidence import (
    Evidence,
    Figure,
    Level,
    RetrainingStatus,
    TrainingRun,
    Verification,
    VerificationStatus,
    from_json,
    to_json,
)

if TYPE_CHECKING:
    from grader.data.dataset import Dataset

__all__ = ["apply_retraining", "planned_epochs", "retrain", "retrain_request", "serve_request"]

# Recorded loss names whose labels are class indices rather than one-hot rows.
_SPARSE_LOSSES = ("sparse_categorical_crossentropy",)
# Losses that take probabilities by default; fed logits (a linear last layer) they need from_logits.
_LOGIT_LOSSES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
}
_OPTIMIZER_KEYS = ("momentum", "nesterov", "beta_1", "beta_2", "weight_decay", "rho")


# ---------------------------------------------------------------------------------------------
# The grader's side: how to ask for a retraining, and what to do with its answer


def planned_epochs(runs: list[TrainingRun]) -> int:
    """Epochs the notebook asked for over ``runs`` (every fit of one model): what retraining trains.

    An epoch of several passes over the training data (``repeat()`` with a ``steps_per_epoch``
    above one pass) counts its passes, as the ``epochs`` check does: the grader's retraining on
    arrays makes one pass per epoch, so it trains as many passes as the notebook did.
    """
    total = 0
    for run in runs:
        asked = max(0, run.fit.epochs - (run.fit.initial_epoch or 0)) if run.fit.epochs is not None else run.epochs_trained
        passes = asked * run.fit.passes_per_epoch if run.fit.passes_per_epoch is not None else None
        total += round(passes) if passes is not None and round(passes) > asked else asked
    return total


def retrain_request(evidence: Evidence, run: TrainingRun, *, train_data: str | Path, test_data: str | Path,
                    seed: int = DEFAULT_SEED, caps: dict[str, int] | None = None,
                    preprocess: str = "auto") -> RetrainRequest:
    """The request that retrains the model of ``run`` (its last fit, whose file holds its final
    state) for as many epochs as all its fits up to ``run`` asked for."""
    runs = [r for r in evidence.runs_of(run.model_id) if r.index <= run.index]
    return RetrainRequest(
        model_path=str(run.weights_file or ""), train_data=str(train_data), test_data=str(test_data),
        run=to_json(run), model_id=run.model_id, epochs=planned_epochs(runs) or None, seed=seed, caps=caps,
        preprocess=preprocess, expected_sha256=run.weights_sha256,
    )


def apply_retraining(verification: Verification, retraining: Retraining) -> None:
    """Put a retraining's figure (or why there is none) on the model's verification."""
    verification.retrain_seed = retraining.seed
    done = retraining.status is RetrainingStatus.OK
    verification.retrained_accuracy = retraining.accuracy if done else None
    if not done:
        verification.retrain_message = f"not retrained ({retraining.status.title}): {retraining.message}"
    else:
        verification.retrain_message = "; ".join(retraining.notes)


def serve_request(request: dict[str, Any]) -> dict[str, Any]:
    """The worker's handler for a ``"retrain"`` request: JSON in, JSON out."""
    import numpy as np

    from grader.data.dataset import Dataset

    run = from_json(TrainingRun, request["run"])
    with np.load(request["train_data"], allow_pickle=False) as npz:
        if "x_train" not in npz.files or "y_train" not in npz.files:
            return {"status": RetrainingStatus.ERROR, "message": f"{request['train_data']} has no training data (x_train, y_train)"}
        x_train, y_train = npz["x_train"], npz["y_train"]
    with np.load(request["test_data"], allow_pickle=False) as npz:
        x_test, y_test = npz["x_test"], npz["y_test"]
    data = Dataset("retrain", x_train, y_train, x_test, y_test, source=f"npz:{request['train_data']}")
    result = retrain(run, data, seed=int(request.get("seed", DEFAULT_SEED)), epochs=request.get("epochs"),
                     caps=request.get("caps"), preprocess=request.get("preprocess") or "auto",
                     model_path=request.get("model_path") or None, expected_sha256=request.get("expected_sha256"))
    answer = to_json(result)
    answer.pop("model_id", None)
    return answer


# ---------------------------------------------------------------------------------------------
# The training itself (in a process that may import Keras)


def retrain(run: TrainingRun, data: Dataset, *, seed: int = DEFAULT_SEED, epochs: int | None = None,
            caps: dict[str, int] | None = None, preprocess: str = "auto", model_path: str | None = None,
            expected_sha256: str | None = None) -> Retraining:
    """Train the architecture saved for ``run`` afresh on ``data`` and measure it on its test split.

    ``epochs`` defaults to the run's own fit (pass :func:`planned_epochs` of every fit of the
    model); ``caps`` (fast mode) bounds ``epochs``, ``train_samples`` and ``test_samples``.
    ``model_path`` defaults to ``run.weights_file``. Never raises for a model it cannot retrain:
    the result says why (status ``skipped``, ``unsafe``, ``tampered`` or ``error``).
    """
    started = time.perf_counter()

    def outcome(status: RetrainingStatus, message: str) -> Retraining:
        return Retraining(run.model_id, status, message, seed=seed, duration_s=time.perf_counter() - started)

    path = model_path or run.weights_file
    if not path:
        return outcome(RetrainingStatus.SKIPPED, "no saved model to take the architecture from")
    if not run.compile.optimizer or not run.compile.loss:
        return outcome(RetrainingStatus.SKIPPED, "the notebook's optimizer and loss were not recorded")
    import keras
    import numpy as np

    saved, problem = load_saved_model(path, expected_sha256)
    if problem is not None:
        return outcome(RetrainingStatus(problem["status"]), problem["message"])
    frozen = [layer.name for layer in _layers(saved) if not layer.trainable and layer.weights]
    if frozen:
        return outcome(RetrainingStatus.SKIPPED, f"{len(frozen)} layer(s) are frozen ({', '.join(frozen[:3])}): a pretrained base, "
                                  "which training from scratch would not reproduce")
    notes: list[str] = []
    keras.utils.set_random_seed(seed)
    try:
        model = keras.models.clone_model(saved)  # the same layers with newly initialized weights
    except Exception as exc:
        return outcome(RetrainingStatus.ERROR, f"the architecture could not be rebuilt from its saved configuration: "
                                f"{type(exc).__name__}: {str(exc)[:300]}")
    try:
        optimizer, optimizer_words = _optimizer(keras, run)
        loss, loss_name = _loss(keras, run.compile.loss, model, notes)
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    except (ValueError, TypeError) as exc:
        return outcome(RetrainingStatus.SKIPPED, str(exc)[:500])

    caps = caps or {}
    n_train = len(data.x_train)
    if run.fit.train_samples and run.fit.train_samples < n_train:
        n_train = run.fit.train_samples  # students who train on x_train[:10000] slice from the front
        notes.append(f"trained on the first {n_train:,} training images, as many as the notebook used")
    if caps.get("train_samples"):
        n_train = min(n_train, int(caps["train_samples"]))
    x_test, y_test = data.x_test, data.y_test
    if caps.get("test_samples"):
        x_test, y_test = x_test[: int(caps["test_samples"])], y_test[: int(caps["test_samples"])]
    epochs = int(epochs if epochs is not None else planned_epochs([run]) if run.fit.epochs is not None
                 else max(0, 1 - (run.fit.initial_epoch or 0)))
    if caps.get("epochs"):
        epochs = min(epochs, int(caps["epochs"]))
    if epochs < 1:
        return outcome(RetrainingStatus.SKIPPED, "the notebook asked for no epochs of training")
    per_epoch = run.fit.passes_per_epoch
    if run.fit.x is None and run.fit.steps_per_epoch and per_epoch is None:
        return outcome(RetrainingStatus.SKIPPED, f"fit #{run.index + 1} ran {run.fit.steps_per_epoch:,} steps per epoch over a "
                                                 "generator or dataset whose size the grader could not read, so the passes "
                                                 "over the training data it made, which retraining must reproduce, are unknown")
    batch_size = run.fit.batch_size or 32
    split = float(run.fit.validation_split or 0.0)
    steps_per_epoch = None
    if per_epoch is not None and per_epoch > 1.0 and epochs > max(0, (run.fit.epochs or 0) - (run.fit.initial_epoch or 0)):
        notes.append(f"each of the notebook's epochs was {per_epoch:.3g} passes over its training data (steps_per_epoch "
                     f"over a repeated dataset): retrained for as many passes, one per epoch")
    elif per_epoch is not None and per_epoch < 1.0:
        batches = -(-int((n_train - int(n_train * split))) // batch_size)
        steps_per_epoch = max(1, round(per_epoch * batches))
        notes.append(f"each of the notebook's epochs was {per_epoch:.3g} of a pass over its training data: retrained with "
                     f"{steps_per_epoch:,} steps per epoch")
    if run.fit.x is None:
        notes.append("the notebook trained from a generator or dataset (augmentation is not reproduced); "
                     "retrained on the plain arrays")
    if run.fit.validation_samples:
        notes.append("its validation data is not reproduced (the grader trains without it)")
    schedule = run.compile.optimizer_config.get("learning_rate_schedule")
    if schedule:
        notes.append(f"its {schedule} learning-rate schedule is not reproduced: the initial rate is kept")

    observed = {}
    if run.fit.x is not None:
        observed = {"minimum": run.fit.x.minimum, "maximum": run.fit.x.maximum, "mean": run.fit.x.mean}
    how = {"preprocess": preprocess, "observed": observed}
    try:
        input_shape = model.inputs[0].shape if model.inputs else None
        x_fit, preprocess_note = prepare_inputs(np, data.x_train[:n_train], how, data.x_train[:5000], input_shape)
        x_eval, _ = prepare_inputs(np, x_test, how, data.x_train[:5000], input_shape)
        y_fit = _targets(keras, np, integer_labels(data.y_train[:n_train]), model, loss_name)
    except ValueError as exc:
        return outcome(RetrainingStatus.ERROR, str(exc)[:500])
    differs = _inputs_differ(np, x_fit, observed)
    if differs:
        return outcome(RetrainingStatus.SKIPPED, f"the notebook's preprocessing was not reproduced: {differs}; state it "
                                                 "with the rubric's `preprocess:` to retrain this model")
    try:
        history = model.fit(x_fit, y_fit, epochs=epochs, batch_size=batch_size, validation_split=split,
                            steps_per_epoch=steps_per_epoch, verbose=0)
    except Exception as exc:
        return outcome(RetrainingStatus.ERROR, f"training failed: {type(exc).__name__}: {str(exc)[:400]}")
    measured = measure(np, model, x_eval, integer_labels(y_test))
    if measured["status"] != VerificationStatus.OK:
        return outcome(RetrainingStatus.ERROR, measured["message"])
    device = _device(keras)
    duration = time.perf_counter() - started
    words = [f"seed {seed}", f"{epochs} epoch{'s' if epochs != 1 else ''}", f"batch {batch_size}",
             f"{n_train:,} training images"]
    if split:
        words.append(f"validation split {split:g}")
    source = (f"retrained by the grader: {', '.join(words)}, {optimizer_words}; {measured['samples']:,} test images "
              f"({preprocess_note}); on {device}, {duration:.0f} s")
    return Retraining(
        run.model_id, RetrainingStatus.OK, accuracy=Figure(measured["accuracy"], Level.VERIFIED, source), loss=measured["loss"],
        seed=seed, epochs=epochs, batch_size=batch_size, train_samples=n_train, test_samples=measured["samples"],
        history={k: [float(v) for v in values] for k, values in history.history.items()}, device=device,
        duration_s=duration, notes=notes,
    )


def _layers(model: Any) -> list[Any]:
    """Every layer, nested models' layers included (a frozen VGG16 base is one layer of its model)."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _layers(layer)
    return found


def _optimizer(keras: Any, run: TrainingRun) -> tuple[Any, str]:
    config: dict[str, Any] = {k: v for k, v in run.compile.optimizer_config.items() if k in _OPTIMIZER_KEYS}
    if run.compile.learning_rate is not None:
        config["learning_rate"] = run.compile.learning_rate
    name = run.compile.optimizer
    try:
        optimizer = keras.optimizers.get({"class_name": name, "config": config})
    except Exception:
        raise ValueError(f"the optimizer {name} is not one Keras knows, so the training cannot be reproduced") from None
    try:
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:  # a backend whose variables do not convert: the recorded rate is what was set
        rate = float(config.get("learning_rate") or 0.0)
    return optimizer, f"{name} lr {rate:.3g}"


def _loss(keras: Any, name: str | None, model: Any, notes: list[str]) -> tuple[Any, str]:
    key = (name or "").lower()
    if key in _LOGIT_LOSSES and _outputs_logits(model):
        notes.append(f"the last layer has no softmax or sigmoid, so {key} was computed from logits")
        return getattr(keras.losses, _LOGIT_LOSSES[key])(from_logits=True), key
    try:
        return keras.losses.get(key), key
    except Exception:
        raise ValueError(f"the loss {name} is not one Keras knows (a custom loss?), so the training cannot be "
                         "reproduced") from None


def _outputs_logits(model: Any) -> bool:
    """Whether the last layer with an activation is linear (layers such as Dropout have none)."""
    for layer in reversed(getattr(model, "layers", [])):
        if type(layer).__name__ == "Softmax":
            return False
        activation = getattr(layer, "activation", None)
        if activation is not None:
            return getattr(activation, "__name__", "") == "linear"
    return False


def _targets(keras: Any, np: Any, labels: Any, model: Any, loss_name: str) -> Any:
    """Labels in the form the loss takes: class indices for sparse losses and one-unit outputs,
    one-hot rows otherwise."""
    units = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else 1
    classes = int(labels.max()) + 1 if len(labels) else 0
    if units > 1 and classes > units:
        raise ValueError(f"the model predicts {units} classes but the training data has {classes}")
    if loss_name in _SPARSE_LOSSES or units == 1:
        return labels.astype("int32")
    return keras.utils.to_categorical(labels, units)


def _inputs_differ(np: Any, x_fit: Any, observed: dict[str, Any]) -> str | None:
    """Words saying how the inputs the grader prepared differ from what the notebook fed to
    ``fit`` (its minimum, maximum and mean), or ``None`` when they agree within a tenth of the
    notebook's value range."""
    low, high, mean = observed.get("minimum"), observed.get("maximum"), observed.get("mean")
    if low is None or high is None:
        return None
    sample = np.asarray(x_fit[:2000], dtype="float64")
    if not sample.size:
        return None
    tolerance = max(0.1 * (high - low), 1e-3)
    ours = {"minimum": float(sample.min()), "maximum": float(sample.max()), "mean": float(sample.mean())}
    theirs = {"minimum": low, "maximum": high, "mean": mean}
    off = [k for k in ("minimum", "maximum", "mean") if theirs[k] is not None and abs(ours[k] - theirs[k]) > tolerance]
    if not off:
        return None
    return ", ".join(f"{k} {ours[k]:.3g} where the notebook's was {theirs[k]:.3g}" for k in off)


def _device(keras: Any) -> str:
    try:
        devices = [str(d).lower() for d in keras.distribution.list_devices()]
    except Exception:
        return "the default device"
    accelerators = [d for d in devices if not d.startswith("cpu")]
    return accelerators[0] if accelerators else "the CPU"
