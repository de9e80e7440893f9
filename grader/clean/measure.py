"""Measuring a saved model in the clean process: load it safely, prepare the test inputs, evaluate.

These run in the process of one model (:mod:`grader.clean.worker` starts it), never in the grader
itself: Keras is imported only inside the functions. :func:`load_saved_model` reads the file once,
checks the SHA-256 the recorder noted and the parameters its ``config.json`` declares
(:mod:`grader.clean.model_files`) before Keras sees it, and loads a private copy with
``safe_mode=True``. :func:`prepare_inputs` scales the test images as the notebook scaled its
training inputs (stated by the rubric, or inferred from the value range the recorder saw at
``fit`` time); :func:`measure` gives accuracy, loss and the confusion matrix, within a time
budget in fast mode. Retraining (:mod:`grader.clean.retrain`) uses the same four.
:func:`serve_request` refuses a model with more than one input (``inputs``) and sends one that
needs unsafe deserialization to a sandbox for its predictions (:mod:`grader.clean.sandboxed`),
which :func:`score` scores here, against labels the sandbox never had.

Example::

    model, problem = load_saved_model("bundle/models/m1.keras", expected_sha256)
    x, note = prepare_inputs(np, x_test, {"preprocess": "auto", "observed": {"maximum": 1.0}}, x_train, model.inputs[0].shape)
    measure(np, model, x, integer_labels(y_test))["accuracy"]
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.model.evidence import VerificationStatus

__all__ = ["BUDGET_BATCH", "MAX_MODEL_FILE_BYTES", "UNSAFE_WORDS", "integer_labels", "load_model_bytes",
           "load_saved_model", "measure", "predict_within", "prepare_inputs", "read_model_file", "score",
           "serve_request", "several_inputs"]

# Under a budget the model predicts in batches this large, the first one always, so there is a
# figure and a measured time per sample; later batches only while the budget lasts.
BUDGET_BATCH = 32
MAX_MODEL_FILE_BYTES = 2 * 2**30  # the result channel's cap on one model file
UNSAFE_WORDS = "the model needs unsafe deserialization (a Lambda layer or arbitrary code)"
_SANDBOX_MARGIN_S = 5.0


PREPROCESS_NOTES = {
    "none": "raw pixel values",
    "scale255": "pixels divided by 255",
    "symmetric": "pixels scaled to -1..1 (divided by 127.5, minus 1)",
    "center": "pixels divided by 255, minus the training set's mean image",
    "center_raw": "the training set's mean image subtracted from the raw pixels",
    "standardize": "standardized with the training set's mean and deviation",
}


def infer_preprocess(low: float | None, high: float | None) -> str:
    """The preprocessing whose value range matches what the notebook fed to ``fit``: 0–1 is
    ``scale255``; exactly -1..1 ``symmetric``; negative values within -1..1 the mean image
    subtracted after /255 (``center``); large ones on both sides the mean image subtracted from raw
    pixels (``center_raw``); other negative values ``standardize``; anything above 1 raw."""
    if low is not None and low < -0.01:
        if high is not None and high <= 1.0 + 1e-6 and low >= -1.0 - 1e-6:
            return "symmetric" if low < -0.98 and high > 0.98 else "center"
        if high is not None and high > 20 and low < -20:
            return "center_raw"
        return "standardize"
    if high is not None and high > 1.0 + 1e-6:
        return "none"
    return "scale255"


def prepare_inputs(np: Any, x: Any, request: dict[str, Any], x_train: Any, input_shape: Any) -> tuple[Any, str]:
    """``x`` scaled as the notebook scaled its training inputs (``request["preprocess"]``, or
    inferred from ``request["observed"]``) and reshaped to the model's input; and a note saying how."""
    mode = request.get("preprocess") or "auto"
    observed = request.get("observed") or {}
    x = x.astype("float32")
    if mode == "auto":
        mode = infer_preprocess(observed.get("minimum"), observed.get("maximum"))
    note = PREPROCESS_NOTES.get(mode, mode)
    if mode == "scale255":
        x = x / 255.0
    elif mode == "symmetric":
        x = x / 127.5 - 1.0
    elif mode in ("center", "center_raw"):
        ref = (x_train if x_train is not None else x).astype("float32")
        scale = 255.0 if mode == "center" else 1.0
        x = x / scale - ref.mean(axis=0) / scale  # the mean training image, pixel by pixel
    elif mode == "standardize":
        ref = x_train.astype("float32") if x_train is not None else x
        x = (x - ref.mean()) / (ref.std() + 1e-7)
    if input_shape is not None:
        wanted = tuple(int(d) for d in input_shape[1:] if d is not None)
        if len(wanted) == len(input_shape) - 1 and x.shape[1:] != wanted and int(np.prod(x.shape[1:])) == int(np.prod(wanted)):
            x = x.reshape((len(x), *wanted))
    return x, note


def _count(weights: Any) -> int:
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in weights))


def load_saved_model(path: str | Path, expected_sha256: str | None = None) -> tuple[Any, dict[str, Any] | None]:
    """``(model, None)``, or ``(None, answer)`` with the status and message of a model that cannot
    be used: ``tampered`` (its bytes are not those the recorder saved), ``refused`` (it declares
    more than the grader's caps), ``unsafe``, ``error``.

    The file is read once; its hash is taken over those bytes and Keras loads a private copy of
    them, so a process still writing to the bundle cannot swap the file in between.

    Before Keras sees the file its configuration is read as plain JSON and the parameters it
    declares are checked against the grader's caps (:mod:`grader.clean.model_files`): a model that is
    over them is ``refused`` without anything being built."""
    data, _, problem = read_model_file(path, expected_sha256)
    if problem is not None:
        return None, problem
    assert data is not None
    return load_model_bytes(data)


def read_model_file(path: str | Path, expected_sha256: str | None = None) -> tuple[bytes | None, Any, dict[str, Any] | None]:
    """``(bytes, declared, None)``: the file's bytes, checked against the recorder's hash and the
    grader's caps, and what its configuration declares (a
    :class:`~grader.clean.model_files.DeclaredModel`); or ``(None, None, answer)`` saying why not."""
    from grader.clean.model_files import ModelFileRefused, inspect_keras_bytes

    try:
        size = Path(path).stat().st_size
        if size > MAX_MODEL_FILE_BYTES:
            return None, None, {"status": VerificationStatus.REFUSED, "message": f"the saved model file is {size / 2**30:.1f} GiB, "
                                f"over the grader's cap of {MAX_MODEL_FILE_BYTES / 2**30:.0f} GiB; it was not loaded"}
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, None, {"status": VerificationStatus.ERROR, "message": f"the saved model could not be read: {exc.strerror or exc}"}
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        return None, None, {"status": VerificationStatus.TAMPERED, "message": "the model file was changed after the grader's recorder "
                            "saved it at the end of training (something in the notebook rewrote it); it was not measured"}
    try:
        declared = inspect_keras_bytes(data)
    except ModelFileRefused as refusal:
        return None, None, {"status": VerificationStatus.REFUSED, "message": str(refusal)}
    return data, declared, None


def load_model_bytes(data: bytes) -> tuple[Any, dict[str, Any] | None]:
    """A ``.keras`` file's bytes (checked by :func:`read_model_file`) loaded with ``safe_mode=True``:
    ``(model, None)`` or ``(None, answer)``; ``unsafe`` when it needs unsafe deserialization."""
    import keras

    private = Path(tempfile.mkdtemp(prefix="nn-grader-model-"))
    try:
        copy = private / "model.keras"
        copy.write_bytes(data)
        return keras.saving.load_model(copy, safe_mode=True, compile=False), None
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "safe_mode" in text or "Lambda" in text:
            return None, {"status": VerificationStatus.UNSAFE, "message": UNSAFE_WORDS + "; the grader does not execute it "
                          "outside a sandbox"}
        if "Could not locate" in text or "custom" in text.lower():
            return None, {"status": VerificationStatus.ERROR, "message": "the model uses a custom layer or function whose code is not "
                          f"available to the clean verifier ({text[:300]})"}
        return None, {"status": VerificationStatus.ERROR, "message": f"the saved model could not be loaded: {text[:500]}"}
    finally:
        shutil.rmtree(private, ignore_errors=True)


def integer_labels(y: Any) -> Any:
    """Class indices from labels stored as a column, a flat vector or one-hot rows."""
    labels = y.reshape(len(y), -1)
    return labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0]


def predict_within(np: Any, model: Any, x: Any, budget_s: float, *, batch: int = BUDGET_BATCH,
                   clock: Any = None) -> Any:
    """``model``'s outputs for the first samples of ``x`` that fit in ``budget_s`` seconds.

    The first batch is always evaluated (a budget of 0 gives exactly ``batch`` samples); each
    further batch only while time is left. ``clock`` is for tests (default ``perf_counter``)."""
    import time

    clock = clock or time.perf_counter
    started = clock()
    parts = []
    done = 0
    while done < len(x):
        parts.append(np.asarray(model.predict_on_batch(x[done: done + batch])))
        done += len(parts[-1])
        if clock() - started >= budget_s:
            break
    return np.concatenate(parts) if parts else np.zeros((0, 1))


def measure(np: Any, model: Any, x: Any, labels: Any, *, budget_s: float | None = None,
            batch: int = BUDGET_BATCH) -> dict[str, Any]:
    """Accuracy, loss, and the confusion matrix of ``model`` on prepared inputs ``x`` with class
    indices ``labels``; ``{"status": "error", ...}`` when the model cannot predict them.

    With ``budget_s`` (fast mode) evaluation stops once that many seconds are spent (see
    :func:`predict_within`): the figures are those of the samples evaluated, ``samples`` says
    how many, and ``budget`` (only when it cut) how many were asked for and why it stopped."""
    try:
        if budget_s is None:
            probs = np.asarray(model.predict(x, batch_size=256, verbose=0))
        else:
            probs = predict_within(np, model, x, budget_s, batch=batch)
    except Exception as exc:
        return {"status": VerificationStatus.ERROR, "message": f"the model could not be evaluated on the test data: {type(exc).__name__}: {str(exc)[:400]}"}
    return score(np, probs, labels, budget_s=budget_s)


def score(np: Any, probs: Any, labels: Any, *, budget_s: float | None = None) -> dict[str, Any]:
    """Accuracy, loss and confusion matrix of predictions ``probs`` (one row per sample, the first
    rows of the test data under a budget) against class indices ``labels``."""
    requested = len(labels)
    labels = labels[: len(probs)]
    probs = probs.reshape(len(probs), -1)
    if probs.shape[1] == 1:
        predicted = (probs[:, 0] > 0.5).astype(int)
        classes = 2
    else:
        predicted = probs.argmax(axis=1)
        classes = probs.shape[1]
    known = int(labels.max()) + 1 if len(labels) else 0
    if classes < known:
        return {"status": VerificationStatus.ERROR, "message": f"the model predicts {classes} classes but the test data has {known}"}
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels.astype(int), predicted.astype(int)), 1)
    loss = None
    if probs.shape[1] > 1:
        picked = probs[np.arange(len(probs)), labels.astype(int)]
        loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    answer = {"status": VerificationStatus.OK, "accuracy": float((predicted == labels).mean()), "loss": loss, "samples": int(len(labels)),
              "confusion": confusion.tolist()}
    if len(labels) < requested:
        answer["budget"] = {
            "budget_s": budget_s, "requested": int(requested),
            "message": f"fast mode: evaluated {len(labels):,} of {requested:,} test samples within the time budget of "
                       f"{budget_s:g} s per model (accuracy on those samples only; the full run evaluates all)",
        }
    return answer


def several_inputs(count: int) -> dict[str, Any]:
    """The answer for a model that takes ``count`` > 1 inputs: the grader feeds only the test images
    (a model given the labels as a second input can reach any accuracy), so it is not measured."""
    return {"status": VerificationStatus.INPUTS, "message": f"the model takes {count} inputs; the grader feeds only the test "
            "images, so its accuracy was not measured (a model that is also given the labels can reach any accuracy)"}


def serve_request(request: dict[str, Any]) -> dict[str, Any]:
    """The worker's handler for a ``"verify"`` request (:class:`~grader.clean.protocol.VerifyRequest`
    as JSON): load the saved model, count its parameters, measure it on the request's test data.

    A model that takes more than one input is not fed anything but the images: ``inputs``. One
    that needs unsafe deserialization is evaluated in a sandbox where there is one
    (:func:`_serve_in_sandbox`), and stays ``unsafe`` where there is none."""
    import numpy as np

    started = time.monotonic()
    data, declared, problem = read_model_file(request["model_path"], request.get("expected_sha256"))
    if problem is not None:
        return problem
    assert data is not None
    if declared.inputs is not None and declared.inputs > 1:
        return several_inputs(declared.inputs)
    model, problem = load_model_bytes(data)
    if problem is not None and problem["status"] is VerificationStatus.UNSAFE:
        return _serve_in_sandbox(np, request, data, started)
    if problem is not None:
        return problem
    answer: dict[str, Any] = {
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
    }
    answer["total_params"] = answer["trainable_params"] + answer["non_trainable_params"]
    if len(model.inputs or []) > 1:
        return dict(answer, **several_inputs(len(model.inputs)))
    x_test, labels, x_train = _test_data(np, request)
    try:
        input_shape = model.inputs[0].shape if model.inputs else None
        x, note = prepare_inputs(np, x_test, request, x_train, input_shape)
    except Exception as exc:
        return dict(answer, status=VerificationStatus.ERROR, message=f"the model could not be evaluated on the test data: {type(exc).__name__}: {str(exc)[:400]}")
    budget = request.get("time_budget_s")
    measured = measure(np, model, x, labels, budget_s=float(budget) if budget is not None else None)
    answer.update(measured)
    if measured["status"] is VerificationStatus.OK:
        answer.update(preprocess_note=note, class_names=request.get("class_names") or None)
    return answer


def _test_data(np: Any, request: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The request's test images, their class indices, and training images for standardization."""
    with np.load(request["data_path"], allow_pickle=False) as data:
        x_test, y_test = data["x_test"], data["y_test"]
        x_train = data["x_train"][:5000] if "x_train" in data.files else None
    if request.get("max_samples"):
        x_test, y_test = x_test[: request["max_samples"]], y_test[: request["max_samples"]]
    return x_test, integer_labels(y_test), x_train


def _serve_in_sandbox(np: Any, request: dict[str, Any], data: bytes, started: float) -> dict[str, Any]:
    """A model that needs unsafe deserialization: its predictions made in a sandbox that has the
    model and the prepared test images only (:mod:`grader.clean.sandboxed`), scored here against
    the labels. Without a sandbox it stays ``unsafe``, saying what would allow verifying it."""
    from grader.clean import sandboxed

    why = sandboxed.unavailable()
    if why is not None:
        return {"status": VerificationStatus.UNSAFE, "message": f"{UNSAFE_WORDS}; the grader runs such a model only in a "
                f"sandbox, and none is available here ({why}): installing bubblewrap (the package 'bubblewrap') "
                "would allow verifying it"}
    x_test, labels, x_train = _test_data(np, request)
    try:
        x, note = prepare_inputs(np, x_test, request, x_train, None)  # the sandbox reshapes to the model's input
    except Exception as exc:
        return {"status": VerificationStatus.ERROR, "message": f"the test data could not be prepared: {type(exc).__name__}: {str(exc)[:400]}"}
    budget = request.get("time_budget_s")
    budget = float(budget) if budget is not None else None
    limit = (request.get("limits") or {}).get("seconds")
    # The model's process is stopped at its limit: the sandbox's run ends a little before, to say so.
    seconds = max(1.0, float(limit) - (time.monotonic() - started) - _SANDBOX_MARGIN_S) if limit else None
    probs, problem = sandboxed.predict(data, x, budget_s=budget, seconds=seconds, batch=BUDGET_BATCH,
                                       hidden=[Path(request["data_path"])])
    if problem is not None:
        return problem
    answer = score(np, probs, labels, budget_s=budget)
    if answer["status"] is VerificationStatus.OK:
        answer.update(preprocess_note=note, class_names=request.get("class_names") or None, method="sandbox")
    return answer
