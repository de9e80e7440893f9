"""The grader's side of the clean process: a :class:`Verifier` starts the worker and asks it.

Clean verification is the grader measuring accuracy itself, outside the student's kernel. A
:class:`Verifier` is one long-lived worker process (``python -m grader.clean.worker``, see
:mod:`grader.clean.worker`) that has never run student code. It imports Keras once per batch,
then for each saved model: loads the ``.keras`` file with ``safe_mode=True``, counts its
parameters, and evaluates it on the grader's copy of the test data — or the instructor's hidden
test set — which the student's kernel never had (:mod:`grader.clean.measure`). A model that
needs unsafe deserialization (a Lambda layer) is never executed here: where bubblewrap runs, a
sandboxed process that sees only the model file and the test images makes its predictions and
the worker scores them against the labels (:mod:`grader.clean.sandboxed`); elsewhere it stays
``unsafe``. A model that takes more than one input is not fed anything but the images
(``inputs``). The same worker retrains a
model on request (:mod:`grader.clean.retrain`), so a batch imports Keras once for both.

Each request runs in a process of its own with a memory limit (default 4 GiB per verification,
8 GiB per retraining) and a time limit (the Verifier's ``timeout_s``); a model over them gets
status ``limit`` while the worker goes on with the next. A worker that dies or overruns is
replaced for the next request. Requests and answers are the messages of
:mod:`grader.clean.protocol`.

The kernel that wrote the model file ran student code and could rewrite the file after the fit.
The recorder notes the file's SHA-256 when it saves it; the worker hashes the bytes it reads, so
a file changed afterwards is reported as ``tampered`` instead of measured.

The input preprocessing the student applied before ``fit`` is not known to the grader. The rubric
may state it (``preprocess: {scale: 255}``, ``standardize``); otherwise it is inferred from the
value range the recorder saw at ``fit`` time (:func:`grader.clean.measure.infer_preprocess`: 0–1:
divided by 255; -1..1 exactly: scaled to it; smaller negative values: minus the mean training
image after /255; large values on both sides: minus the mean image of raw pixels; other negative
values: standardized with the training set's mean and deviation; 0–255: unchanged) and the
inference is reported with the figure.

Example::

    with Verifier() as verifier:
        answer = verifier.verify(VerifyRequest(model_path="bundle/models/m1.keras", data_path="cifar10.npz"))
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

from grader.clean.protocol import (
    METHOD_VARIABLE,
    RetrainRequest,
    Retraining,
    VerifyRequest,
    request_json,
    retraining_from_json,
    verification_from_json,
)
from grader.model.evidence import Verification, VerificationStatus

__all__ = ["DEFAULT_MODEL_MEMORY", "DEFAULT_RETRAIN_MEMORY", "DEFAULT_RETRAIN_TIMEOUT_S", "DEFAULT_TIMEOUT_S",
           "FAST_VERIFY_SECONDS", "Verifier"]

DEFAULT_TIMEOUT_S = 600.0
# Fast mode's wall-clock budget for evaluating one saved model: with a few models per notebook
# `grade check` stays within a minute even when one forward pass of a large net takes seconds.
# It bounds the predictions made in a sandbox too (grader.clean.sandboxed.START_SECONDS more
# for that process to start).
FAST_VERIFY_SECONDS = 10.0
DEFAULT_RETRAIN_TIMEOUT_S = 4 * 3600.0  # full training of a course model on a CPU
# Each model is loaded, evaluated or retrained in a process of its own, allowed this much memory
# beyond what the worker holds (its Keras import): a file that makes Keras allocate past it costs
# that model's verification ("limit"), never the batch's verifier. Evaluating a model within
# the parameter cap (grader.clean.model_files) needs well under 4 GiB; training on CIFAR-10 ~2.4 GB.
DEFAULT_MODEL_MEMORY = 4 * 2**30
DEFAULT_RETRAIN_MEMORY = 8 * 2**30
# The driver waits this long past the worker's own per-model limit before it replaces the worker.
_GRACE_S = 30.0


class Verifier:
    """A clean worker process. Start it early: its Keras import overlaps the notebook's run.

    ``timeout_s`` and ``memory_limit`` bound each model's verification, ``retrain_memory_limit``
    each retraining (the time limit of a retraining is :meth:`retrain`'s ``timeout_s``): a model
    over them gets status ``limit`` and the worker goes on with the next one. ``start_method``
    (``fork`` or ``spawn``) chooses how the process for one model starts (see
    :func:`grader.clean.worker.run_limited`); the default is ``fork`` on Linux."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None,
                 memory_limit: int = DEFAULT_MODEL_MEMORY, retrain_memory_limit: int = DEFAULT_RETRAIN_MEMORY,
                 start_method: str | None = None):
        self.timeout_s = timeout_s
        self.memory_limit = memory_limit
        self.retrain_memory_limit = retrain_memory_limit
        self._env = dict(env or {})
        if start_method is not None:
            self._env[METHOD_VARIABLE] = start_method
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> "Verifier":
        if self._proc is None or self._proc.poll() is not None:
            # Growth, so that the verifier does not take the GPU memory the notebooks' kernels need.
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", TF_FORCE_GPU_ALLOW_GROWTH="true")
            env.update(self._env)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "grader.clean.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1,
            )
        return self

    def verify(self, request: VerifyRequest) -> Verification:
        """Measure the request's saved model in the worker (see :mod:`grader.clean.measure`)."""
        payload = request_json(request, memory=request.memory_limit or self.memory_limit, seconds=self.timeout_s)
        answer = self._ask(payload, self.timeout_s + _GRACE_S, "loading this model")
        return verification_from_json(request.model_id, answer)

    def retrain(self, request: RetrainRequest, *, timeout_s: float = DEFAULT_RETRAIN_TIMEOUT_S) -> Retraining:
        """Train the request's architecture afresh in the worker (see :func:`grader.clean.retrain.retrain`)."""
        payload = request_json(request, memory=self.retrain_memory_limit, seconds=timeout_s)
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
                return {"status": VerificationStatus.ERROR,
                        "message": f"the verifier stopped after {timeout_s:,.0f} s while {doing}"}
            except BrokenPipeError:
                self.close()
                return {"status": VerificationStatus.ERROR, "message": "the verifier stopped: BrokenPipeError"}
            if not line:
                self.close()
                return {"status": VerificationStatus.ERROR, "message": f"the verifier process exited while {doing}"}
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
