"""Clean verification: the grader measures accuracy itself, outside the student's kernel.

A :class:`Verifier` is one long-lived worker process (``python -m grader.clean.verify``) that has never
run student code. It imports Keras once per batch, then for each saved model: loads the ``.keras``
file with ``safe_mode=True`` (a Lambda layer or other unsafe deserialization is reported as such,
never executed), counts its parameters, and evaluates it on the grader's copy of the test data
— or the instructor's hidden test set — which the student's kernel never had.

The same worker retrains a model on request (:mod:`grader.clean.retrain`), so a batch imports Keras
once for both. Requests and answers travel as JSON lines over the worker's stdin/stdout: nothing
is pickled.

The model files come out of a student's kernel, and Keras allocates every weight a configuration
declares before it reads any saved weight. So the worker itself never loads a model: each
request runs in a process of its own (forked from the worker, whose Keras is imported but has
never run an operation; see :func:`run_limited`) with a memory limit (``RLIMIT_DATA``, default
4 GiB per verification, 8 GiB per retraining) and a time limit (the Verifier's ``timeout_s``),
and a model over them gets status ``limit`` while the worker goes on with the next. Before Keras
sees a file, the parameters its ``config.json`` declares are checked against a cap without Keras
(:mod:`grader.clean.model_files`); a file over it is ``refused``.

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

from grader.model.evidence import Figure, Level, Verification

if TYPE_CHECKING:
    from grader.clean.retrain import RetrainRequest, Retraining

DEFAULT_TIMEOUT_S = 600.0
# Fast mode's wall-clock budget for evaluating one saved model: with a few models per notebook
# `grade check` stays within a minute even when one forward pass of a large net takes seconds.
FAST_VERIFY_SECONDS = 10.0
# Under a budget the model predicts in batches this large, the first one always, so there is a
# figure and a measured time per sample; later batches only while the budget lasts.
BUDGET_BATCH = 32
DEFAULT_RETRAIN_TIMEOUT_S = 4 * 3600.0  # full training of a course model on a CPU
# Each model is loaded, evaluated or retrained in a process of its own, allowed this much memory
# beyond what the worker holds (its Keras import): a file that makes Keras allocate past it costs
# that model's verification ("limit"), never the batch's verifier. Evaluating a model within
# the parameter cap (grader.clean.model_files) needs well under 4 GiB; training on CIFAR-10 ~2.4 GB.
DEFAULT_MODEL_MEMORY = 4 * 2**30
DEFAULT_RETRAIN_MEMORY = 8 * 2**30
MAX_MODEL_FILE_BYTES = 2 * 2**30  # the result channel's cap on one model file
MAX_ANSWER_BYTES = 64 * 2**20
# The driver waits this long past the worker's own per-model limit before it replaces the worker.
_GRACE_S = 30.0
# NN_GRADER_MODEL_PROCESS=fork|spawn: how the worker starts the process for one model (see run_limited).
_METHOD_VARIABLE = "NN_GRADER_MODEL_PROCESS"


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
    # Seconds of evaluation (fast mode): past it the accuracy is that of the samples evaluated,
    # and the answer says how many of how many. None: every sample, however long it takes.
    time_budget_s: float | None = None
    # Bytes this model's process may allocate (beyond the worker's own); None: the Verifier's.
    memory_limit: int | None = None


class Verifier:
    """A clean worker process. Start it early: its Keras import overlaps the notebook's run.

    ``timeout_s`` and ``memory_limit`` bound each model's verification, ``retrain_memory_limit``
    each retraining (the time limit of a retraining is :meth:`retrain`'s ``timeout_s``): a model
    over them gets status ``limit`` and the worker goes on with the next one. ``start_method``
    (``fork`` or ``spawn``) chooses how the process for one model starts (see
    :func:`run_limited`); the default is ``fork`` on Linux."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None,
                 memory_limit: int = DEFAULT_MODEL_MEMORY, retrain_memory_limit: int = DEFAULT_RETRAIN_MEMORY,
                 start_method: str | None = None):
        self.timeout_s = timeout_s
        self.memory_limit = memory_limit
        self.retrain_memory_limit = retrain_memory_limit
        self._env = dict(env or {})
        if start_method is not None:
            self._env[_METHOD_VARIABLE] = start_method
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> "Verifier":
        if self._proc is None or self._proc.poll() is not None:
            # Growth, so that the verifier does not take the GPU memory the notebooks' kernels need.
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", TF_FORCE_GPU_ALLOW_GROWTH="true")
            env.update(self._env)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "grader.clean.verify"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1,
            )
        return self

    def verify(self, request: VerifyRequest) -> Verification:
        payload = asdict(request)
        payload["limits"] = {"memory": request.memory_limit or self.memory_limit, "seconds": self.timeout_s}
        answer = self._ask(payload, self.timeout_s + _GRACE_S, "loading this model")
        return _verification(request.model_id, answer)

    def retrain(self, request: "RetrainRequest", *, timeout_s: float = DEFAULT_RETRAIN_TIMEOUT_S) -> "Retraining":
        """Train the request's architecture afresh in the worker (see :func:`grader.clean.retrain.retrain`)."""
        from grader.clean.retrain import retraining_from_json

        payload = asdict(request)
        payload["limits"] = {"memory": self.retrain_memory_limit, "seconds": timeout_s}
        answer = self._ask(payload, timeout_s + _GRACE_S, "retraining this model")
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
        cut = answer.get("budget") or {}
        counted = (f"{answer['samples']:,} of {cut['requested']:,} test samples, stopped at the fast-mode budget of "
                   f"{cut['budget_s']:g} s" if cut else f"{answer['samples']:,} test samples")
        source = f"clean re-evaluation on {counted} ({answer.get('preprocess_note', '')})"
        if cut:
            verification.message = cut["message"]
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
    be used: ``tampered`` (its bytes are not those the recorder saved), ``refused`` (it declares
    more than the grader's caps), ``unsafe``, ``error``.

    The file is read once; its hash is taken over those bytes and Keras loads a private copy of
    them, so a process still writing to the bundle cannot swap the file in between.

    Before Keras sees the file its configuration is read as plain JSON and the parameters it
    declares are checked against the grader's caps (:mod:`grader.clean.model_files`): a model that is
    over them is ``refused`` without anything being built."""
    from grader.clean.model_files import ModelFileRefused, inspect_keras_bytes

    try:
        size = Path(path).stat().st_size
        if size > MAX_MODEL_FILE_BYTES:
            return None, {"status": "refused", "message": f"the saved model file is {size / 2**30:.1f} GiB, over the "
                          f"grader's cap of {MAX_MODEL_FILE_BYTES / 2**30:.0f} GiB; it was not loaded"}
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, {"status": "error", "message": f"the saved model could not be read: {exc.strerror or exc}"}
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        return None, {"status": "tampered", "message": "the model file was changed after the grader's recorder saved "
                      "it at the end of training (something in the notebook rewrote it); it was not measured"}
    try:
        inspect_keras_bytes(data)
    except ModelFileRefused as refusal:
        return None, {"status": "refused", "message": str(refusal)}
    import keras

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
        return {"status": "error", "message": f"the model could not be evaluated on the test data: {type(exc).__name__}: {str(exc)[:400]}"}
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
        return {"status": "error", "message": f"the model predicts {classes} classes but the test data has {known}"}
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels.astype(int), predicted.astype(int)), 1)
    loss = None
    if probs.shape[1] > 1:
        picked = probs[np.arange(len(probs)), labels.astype(int)]
        loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    answer = {"status": "ok", "accuracy": float((predicted == labels).mean()), "loss": loss, "samples": int(len(labels)),
              "confusion": confusion.tolist()}
    if len(labels) < requested:
        answer["budget"] = {
            "budget_s": budget_s, "requested": int(requested),
            "message": f"fast mode: evaluated {len(labels):,} of {requested:,} test samples within the time budget of "
                       f"{budget_s:g} s per model (accuracy on those samples only; the full run evaluates all)",
        }
    return answer


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    if request.get("kind") == "retrain":
        from grader.clean.retrain import serve_request

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
    budget = request.get("time_budget_s")
    measured = measure(np, model, x, labels, budget_s=float(budget) if budget is not None else None)
    answer.update(measured)
    if measured["status"] == "ok":
        answer.update(preprocess_note=note, class_names=request.get("class_names") or None)
    return answer


# ---------------------------------------------------------------------------------------------
# One process per model, under its own limits


def start_method() -> str:
    """``fork`` or ``spawn``: how the worker starts the process for one model.

    ``fork`` (the default on Linux) copies the worker, whose Keras is already imported, so a
    model costs a fraction of a second instead of a fresh Keras import (seconds). It is safe
    because the worker itself never runs a TensorFlow operation: it only imports Keras, so no
    runtime, thread pool or device exists yet to be copied half-initialized; each model's
    process creates its own and exits. ``spawn`` starts a fresh interpreter per model (macOS,
    where forking a process that loaded TensorFlow's libraries is unsafe, and on request)."""
    chosen = os.environ.get(_METHOD_VARIABLE, "").strip().lower()
    if chosen in ("fork", "spawn"):
        return chosen
    return "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "spawn"


def run_limited(handler: Any, request: dict[str, Any], *, memory: int | None = None,
                seconds: float | None = None, method: str | None = None) -> dict[str, Any]:
    """``handler(request)``'s JSON answer, computed in a child process limited to ``memory``
    bytes beyond the worker's own (``RLIMIT_DATA`` on Linux, and the child's resident memory
    watched from here everywhere) and ``seconds`` of wall time.

    A child stopped by a limit, or that runs out of memory, gives ``{"status": "limit", ...}``
    saying which; one that crashes, ``{"status": "error", ...}``. The worker goes on either way.
    With ``method="spawn"`` the handler must be :func:`_handle` (the child is ``python -m
    grader.clean.verify --one``)."""
    method = method or start_method()
    payload = dict(request, limits={"memory": memory, "seconds": seconds})
    if method == "fork":
        read_fd, write_fd = os.pipe()
        baseline = _resident()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                os.close(read_fd)
                _die_with(parent)
                import faulthandler

                faulthandler.disable()  # a crash here is this model's outcome, reported as such, not a traceback
                _limit_self(memory)
                answer = _answer_of(handler, request, memory)
                _write_all(write_fd, json.dumps(answer).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        child: Any = _ForkedChild(pid)
    else:
        baseline = 2**30  # the fresh interpreter's own Keras import, about 0.6 GB
        proc = subprocess.Popen([sys.executable, "-m", "grader.clean.verify", "--one"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdin and proc.stdout
        try:
            proc.stdin.write(json.dumps(payload).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        read_fd = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        child = proc
    raw, stopped = _collect(child, read_fd, rss_cap=baseline + memory if memory else None, seconds=seconds)
    return _outcome(raw, stopped, child.wait(), memory, seconds)


class _ForkedChild:
    def __init__(self, pid: int):
        self.pid = pid
        self._code: int | None = None

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        if self._code is None:
            _, status = os.waitpid(self.pid, 0)
            self._code = os.waitstatus_to_exitcode(status)
        return self._code


def _collect(child: Any, fd: int, *, rss_cap: int | None, seconds: float | None) -> tuple[bytes, str | None]:
    """The child's answer bytes, and what stopped it (``"memory"``, ``"time"``, ``"answer"``) or None."""
    import select
    import time

    import psutil

    deadline = time.monotonic() + seconds if seconds else None
    try:
        watched = psutil.Process(child.pid)
    except psutil.Error:
        watched = None
    chunks: list[bytes] = []
    size = 0
    stopped = None
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    stopped = "answer"
            if stopped is None and deadline is not None and time.monotonic() > deadline:
                stopped = "time"
            if stopped is None and rss_cap is not None and watched is not None:
                try:
                    if watched.memory_info().rss > rss_cap:
                        stopped = "memory"
                except psutil.Error:
                    watched = None
            if stopped:
                child.kill()
                break
    finally:
        os.close(fd)
    return b"".join(chunks), stopped


def _outcome(raw: bytes, stopped: str | None, code: int, memory: int | None, seconds: float | None) -> dict[str, Any]:
    limit_words = f"the verifier's memory limit of {_gib(memory)} per model" if memory else "the memory available"
    if stopped == "time":
        return {"status": "limit", "message": f"loading and evaluating this model took longer than the verifier's "
                f"limit of {seconds:,.0f} s per model; it was stopped"}
    if stopped == "memory":
        return {"status": "limit", "message": f"this model needed more than {limit_words}; it was stopped"}
    if stopped == "answer":
        return {"status": "error", "message": f"the verifier's answer for this model was over {_gib(MAX_ANSWER_BYTES)}"}
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        return answer
    if code < 0:
        import signal

        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        if memory and -code in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGKILL):
            return {"status": "limit", "message": f"the process verifying this model died ({name}) under {limit_words} "
                    "(an allocation past the limit ends that way); it was stopped"}
        return {"status": "error", "message": f"the process verifying this model died ({name})"}
    return {"status": "error", "message": f"the process verifying this model exited with code {code} and no answer"}


# Errors Keras, TensorFlow and NumPy raise when an allocation fails.
_MEMORY_WORDS = ("MemoryError", "OOM when allocating", "ResourceExhaustedError", "Unable to allocate",
                 "bad_alloc", "Cannot allocate memory", "out of memory")


def _answer_of(handler: Any, request: dict[str, Any], memory: int | None) -> dict[str, Any]:
    try:
        answer = handler(request)
    except MemoryError:
        answer = {"status": "error", "message": "MemoryError"}
    except BaseException as exc:  # one bad model must not stop the batch's verifier
        answer = {"status": "error", "message": f"{type(exc).__name__}: {str(exc)[:500]}"}
    message = str(answer.get("message", ""))
    if answer.get("status") == "error" and any(word in message for word in _MEMORY_WORDS):
        limit_words = f"the verifier's memory limit of {_gib(memory)} per model" if memory else "the memory available"
        answer = dict(answer, status="limit", message=f"this model needed more than {limit_words} ({message[:300]})")
    return answer


def _die_with(parent: int) -> None:
    """End this process when ``parent`` (the worker) ends, killed or not (Linux): a model's
    process must not go on computing for its whole time limit after the batch is gone."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the time limit still ends it
        return
    if os.getppid() != parent:  # the worker ended before the signal was set up
        os._exit(1)


def _limit_self(memory: int | None) -> None:
    """Limit this process to ``memory`` bytes of data beyond what it holds now, and no core dumps.

    ``RLIMIT_DATA`` (Linux 4.7+) counts private writable memory only; ``RLIMIT_AS`` would count
    the address space TensorFlow and CUDA reserve without using it, and break them."""
    try:
        import resource
    except ImportError:  # not a Unix: the parent's watch of resident memory is the limit
        return
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    held = _data_bytes()
    if memory and held is not None:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        wanted = held + int(memory)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (wanted, wanted))
        except (ValueError, OSError):
            pass


def _data_bytes() -> int | None:
    """This process's private writable memory (``VmData``), or None where /proc has no such line."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _resident() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)


def _gib(n: int | None) -> str:
    if not n:
        return "none"
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def serve_one() -> None:
    """``python -m grader.clean.verify --one``: one request on stdin, its answer on stdout (the child
    process of :func:`run_limited` with ``method="spawn"``)."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.buffer.read())
    limits = request.pop("limits", None) or {}
    try:
        import keras  # noqa: F401  (the grader's own import is not the model's memory)
    except Exception:
        pass
    if sys.platform.startswith("linux"):
        _die_with(os.getppid())
    _limit_self(limits.get("memory"))
    answer = _answer_of(_handle, request, limits.get("memory"))
    out.write(json.dumps(answer).encode())
    out.flush()


def serve() -> None:
    """The worker loop: one JSON request per line on stdin, one JSON answer per line on stdout.

    Every request runs in a process of its own under the request's ``limits``
    (:func:`run_limited`); this process only reads requests and starts those."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever Keras prints goes to stderr, never into the answer channel
    sys.stdout = sys.stderr
    method = start_method()
    if method == "fork":
        try:
            import keras  # noqa: F401  (imported once here, so that each forked model starts at once)
        except Exception:  # each model's process reports it
            pass
    for line in sys.stdin:
        try:
            request = json.loads(line)
            limits = request.pop("limits", None) or {}
            answer = run_limited(_handle, request, memory=limits.get("memory"), seconds=limits.get("seconds"),
                                 method=method)
        except Exception as exc:  # one bad model must not stop the batch's verifier
            answer = {"status": "error", "message": f"{type(exc).__name__}: {str(exc)[:500]}"}
        out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    if "--one" in sys.argv[1:]:
        serve_one()
    else:
        serve()
