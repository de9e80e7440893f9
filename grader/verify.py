"""Clean verification: the grader measures accuracy itself, outside the student's kernel.

A :class:`Verifier` is one long-lived worker process (``python -m grader.verify``) that has never
run student code. It imports Keras once per batch, then for each saved model: loads the ``.keras``
file with ``safe_mode=True`` (a Lambda layer or other unsafe deserialization is reported as such,
never executed), counts its parameters, and evaluates it on the grader's copy of the test data
— or the instructor's hidden test set — which the student's kernel never had.

The same worker retrains a model on request (:mod:`grader.retrain`), so a batch imports Keras
once for both. Requests and answers travel as JSON lines over the worker's stdin/stdout: nothing
is pickled.

The kernel that wrote the model file ran student code and could rewrite the file after the fit.
The recorder notes the file's SHA-256 when it saves it; the worker hashes the bytes it reads and
loads those very bytes from a private copy, so a file changed afterwards is reported as
``tampered`` instead of measured.

The input preprocessing the student applied before ``fit`` is not known to the grader. The rubric
may state it (``preprocess: {scale: 255}``, ``standardize``); otherwise it is inferred from the
value range the recorder saw at ``fit`` time (0–1: divided by 255; negative values: standardized
with the training set's mean and deviation; 0–255: unchanged) and the inference is reported with
the figure.

Example::

    with Verifier() as verifier:
        answer = verifier.verify(VerifyRequest(model_path="bundle/models/m1.keras", data_path="cifar10.npz"))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.evidence import Figure, Level, Verification

if TYPE_CHECKING:
    from grader.retrain import RetrainRequest, Retraining

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRAIN_TIMEOUT_S = 4 * 3600.0  # full training of a course model on a CPU


@dataclass
class VerifyRequest:
    model_path: str
    data_path: str  # .npz with x_test, y_test (and x_train for standardization statistics)
    model_id: str = ""
    preprocess: str = "auto"  # auto | none | scale255 | standardize
    observed: dict[str, float | None] = field(default_factory=dict)  # min/max/mean the kernel fed to fit
    max_samples: int | None = None
    class_names: list[str] = field(default_factory=list)
    expected_sha256: str | None = None  # what the recorder saw when it saved the file


class Verifier:
    """A clean worker process. Start it early: its Keras import overlaps the notebook's run."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None):
        self.timeout_s = timeout_s
        self._env = env
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> "Verifier":
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **(self._env or {}))
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "grader.verify"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1,
            )
        return self

    def verify(self, request: VerifyRequest) -> Verification:
        answer = self._ask(asdict(request), self.timeout_s, "loading this model")
        return _verification(request.model_id, answer)

    def retrain(self, request: "RetrainRequest", *, timeout_s: float = DEFAULT_RETRAIN_TIMEOUT_S) -> "Retraining":
        """Train the request's architecture afresh in the worker (see :func:`grader.retrain.retrain`)."""
        from grader.retrain import retraining_from_json

        answer = self._ask(asdict(request), timeout_s, "retraining this model")
        return retraining_from_json(request.model_id, answer)

    def _ask(self, payload: dict[str, Any], timeout_s: float, doing: str) -> dict[str, Any]:
        """One request, one answer; a worker that dies or overruns is replaced for the next one."""
        with self._lock:
            self.start()
            assert self._proc and self._proc.stdin and self._proc.stdout
            try:
                self._proc.stdin.write(json.dumps(payload) + "\n")
                self._proc.stdin.flush()
                line = _readline(self._proc, timeout_s)
            except TimeoutError:
                self.close()
                return {"status": "error", "message": f"the verifier stopped after {timeout_s:,.0f} s while {doing}"}
            except BrokenPipeError:
                self.close()
                return {"status": "error", "message": "the verifier stopped: BrokenPipeError"}
            if not line:
                self.close()
                return {"status": "error", "message": f"the verifier process exited while {doing}"}
        return json.loads(line)

    def close(self) -> None:
        if self._proc is not None:
            try:
                if self._proc.stdin:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except Exception:
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> "Verifier":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()
        raise TimeoutError
    return result[0] if result else ""


def _verification(model_id: str, answer: dict[str, Any]) -> Verification:
    status = answer.get("status", "error")
    verification = Verification(model_id, status, answer.get("message", ""))
    if status == "ok":
        source = f"clean re-evaluation on {answer['samples']:,} test samples ({answer.get('preprocess_note', '')})"
        verification.test_accuracy = Figure(answer["accuracy"], Level.VERIFIED, source)
        if answer.get("loss") is not None:
            verification.test_loss = Figure(answer["loss"], Level.VERIFIED, source)
        verification.samples = answer["samples"]
        verification.confusion = answer.get("confusion")
        verification.class_names = answer.get("class_names")
    for key in ("total_params", "trainable_params", "non_trainable_params"):
        setattr(verification, key, answer.get(key))
    return verification


# ---------------------------------------------------------------------------------------------
# The worker side


def prepare_inputs(np: Any, x: Any, request: dict[str, Any], x_train: Any, input_shape: Any) -> tuple[Any, str]:
    """``x`` scaled as the notebook scaled its training inputs (``request["preprocess"]``, or
    inferred from ``request["observed"]``) and reshaped to the model's input; and a note saying how."""
    mode = request.get("preprocess") or "auto"
    observed = request.get("observed") or {}
    x = x.astype("float32")
    if mode == "auto":
        low, high = observed.get("minimum"), observed.get("maximum")
        if low is not None and low < -0.01:
            mode = "standardize"
        elif high is not None and high <= 1.0 + 1e-6:
            mode = "scale255"
        elif high is not None:
            mode = "none"
        else:
            mode = "scale255"
    note = {"none": "raw pixel values", "scale255": "pixels divided by 255",
            "standardize": "standardized with the training set's mean and deviation"}.get(mode, mode)
    if mode == "scale255":
        x = x / 255.0
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
    be used: ``tampered`` (its bytes are not those the recorder saved), ``unsafe``, ``error``.

    The file is read once; its hash is taken over those bytes and Keras loads a private copy of
    them, so a process still writing to the bundle cannot swap the file in between."""
    import keras

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, {"status": "error", "message": f"the saved model could not be read: {exc.strerror or exc}"}
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        return None, {"status": "tampered", "message": "the model file was changed after the grader's recorder saved "
                      "it at the end of training (something in the notebook rewrote it); it was not measured"}
    private = Path(tempfile.mkdtemp(prefix="nn-grader-model-"))
    try:
        copy = private / "model.keras"
        copy.write_bytes(data)
        return keras.saving.load_model(copy, safe_mode=True, compile=False), None
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "safe_mode" in text or "Lambda" in text:
            return None, {"status": "unsafe", "message": "the model needs unsafe deserialization (a Lambda layer or "
                          "arbitrary code); the grader does not execute it outside the sandbox"}
        if "Could not locate" in text or "custom" in text.lower():
            return None, {"status": "error", "message": "the model uses a custom layer or function whose code is not "
                          f"available to the clean verifier ({text[:300]})"}
        return None, {"status": "error", "message": f"the saved model could not be loaded: {text[:500]}"}
    finally:
        shutil.rmtree(private, ignore_errors=True)


def integer_labels(y: Any) -> Any:
    """Class indices from labels stored as a column, a flat vector or one-hot rows."""
    labels = y.reshape(len(y), -1)
    return labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0]


def measure(np: Any, model: Any, x: Any, labels: Any) -> dict[str, Any]:
    """Accuracy, loss, and the confusion matrix of ``model`` on prepared inputs ``x`` with class
    indices ``labels``; ``{"status": "error", ...}`` when the model cannot predict them."""
    try:
        probs = np.asarray(model.predict(x, batch_size=256, verbose=0))
    except Exception as exc:
        return {"status": "error", "message": f"the model could not be evaluated on the test data: {type(exc).__name__}: {str(exc)[:400]}"}
    probs = probs.reshape(len(probs), -1)
    if probs.shape[1] == 1:
        predicted = (probs[:, 0] > 0.5).astype(int)
        classes = 2
    else:
        predicted = probs.argmax(axis=1)
        classes = probs.shape[1]
    known = int(labels.max()) + 1 if len(labels) else 0
    if classes < known:
        return {"status": "error", "message": f"the model predicts {classes} classes but the test data has {known}"}
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels.astype(int), predicted.astype(int)), 1)
    loss = None
    if probs.shape[1] > 1:
        picked = probs[np.arange(len(probs)), labels.astype(int)]
        loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    return {"status": "ok", "accuracy": float((predicted == labels).mean()), "loss": loss, "samples": int(len(labels)),
            "confusion": confusion.tolist()}


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    if request.get("kind") == "retrain":
        from grader.retrain import serve_request

        return serve_request(request)
    import numpy as np

    model, problem = load_saved_model(request["model_path"], request.get("expected_sha256"))
    if problem is not None:
        return problem
    answer: dict[str, Any] = {
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
    }
    answer["total_params"] = answer["trainable_params"] + answer["non_trainable_params"]
    with np.load(request["data_path"], allow_pickle=False) as data:
        x_test, y_test = data["x_test"], data["y_test"]
        x_train = data["x_train"][:5000] if "x_train" in data.files else None
    if request.get("max_samples"):
        x_test, y_test = x_test[: request["max_samples"]], y_test[: request["max_samples"]]
    labels = integer_labels(y_test)
    try:
        input_shape = model.inputs[0].shape if model.inputs else None
        x, note = prepare_inputs(np, x_test, request, x_train, input_shape)
    except Exception as exc:
        return dict(answer, status="error", message=f"the model could not be evaluated on the test data: {type(exc).__name__}: {str(exc)[:400]}")
    measured = measure(np, model, x, labels)
    answer.update(measured)
    if measured["status"] == "ok":
        answer.update(preprocess_note=note, class_names=request.get("class_names") or None)
    return answer


def serve() -> None:
    """The worker loop: one JSON request per line on stdin, one JSON answer per line on stdout."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever Keras prints goes to stderr, never into the answer channel
    sys.stdout = sys.stderr
    for line in sys.stdin:
        try:
            answer = _handle(json.loads(line))
        except Exception as exc:  # one bad model must not stop the batch's verifier
            answer = {"status": "error", "message": f"{type(exc).__name__}: {str(exc)[:500]}"}
        out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    serve()
