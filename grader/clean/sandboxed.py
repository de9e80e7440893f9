"""A saved model that needs unsafe deserialization, run in a sandbox for its predictions only.

A Lambda layer (``Lambda(lambda x: x / 255)``) is Python bytecode inside the ``.keras`` file:
loading it with ``safe_mode=False`` runs the student's code. The clean process never does that
itself (:func:`grader.clean.measure.load_saved_model` refuses it). Where bubblewrap runs
(:func:`grader.execute.sandbox.probe_bwrap`), :func:`predict` starts one process for the model
in a sandbox (:func:`grader.execute.sandbox.one_shot_command`) that sees the system and Python
folders read-only, a copy of the model file and the prepared test images read-only, a small
private ``/tmp``, and nothing else: no network, no test labels, none of the grader's data,
bundles, output or home, no writable folder of the host, and a minimal environment. Its memory
is that of the model's process (the limit is inherited), its time the model's limit, or in fast
mode the evaluation budget plus :data:`START_SECONDS`. It loads the model with
``safe_mode=False``, predicts, and writes the predictions to its standard output as ``.npy``.

Everything that comes back is untrusted: the student's code ran there and could have written
anything. :func:`read_answer` accepts only a float32 ``.npy`` array of one row per test image
(under a fast-mode budget the first rows, at least one batch) and 1 to :data:`MAX_COLUMNS`
columns, read within a size cap fixed before the process starts; anything else is ``refused``
with what was wrong. The grader scores the rows against the labels it kept
(:func:`grader.clean.measure.score`): the sandboxed process never saw them, so whatever its
code does it cannot do better than a model that predicts honestly.

Example::

    problem = unavailable()                      # None where bubblewrap runs
    probs, problem = predict(model_bytes, x, budget_s=None, seconds=600)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from grader.clean.pipes import read_bounded
from grader.model.evidence import VerificationStatus

__all__ = ["MAX_COLUMNS", "PREDICT", "START_SECONDS", "answer_cap", "predict", "read_answer", "unavailable"]

# Outputs per image the grader accepts: a course's class count, with room (ImageNet's 1,000).
MAX_COLUMNS = 1000
# Fast mode: the sandboxed process may take this long beyond the evaluation budget to start
# Python, import Keras (3-5 s on two cores) and load the model.
START_SECONDS = 60.0
_HEADER_BYTES = 4096  # a .npy header is under 200 bytes; numpy itself reads at most 10,000
_NPY_MAGIC = b"\x93NUMPY"
_TASKS = 512  # threads and processes of the sandboxed user (TensorFlow starts a few dozen)
_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH",
                "OMP_NUM_THREADS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")

# The program of the sandboxed process. It cannot import the grader (the sandbox does not show
# it), so it repeats two small pieces of grader.clean.measure: the reshape of prepare_inputs to
# the model's input, and predict_within's batches under a budget.
PREDICT = r"""
import io, json, os, sys, time
cfg = json.loads(sys.argv[1])
out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr
try:
    import numpy as np
    import keras
    x = np.load(cfg["images"], allow_pickle=False)
    model = keras.saving.load_model(cfg["model"], safe_mode=False, compile=False)
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    if shape is not None:
        wanted = tuple(int(d) for d in shape[1:] if d is not None)
        if len(wanted) == len(shape) - 1 and x.shape[1:] != wanted and int(np.prod(x.shape[1:])) == int(np.prod(wanted)):
            x = x.reshape((len(x), *wanted))
    budget, batch = cfg["budget_s"], cfg["batch"]
    if budget is None:
        y = np.asarray(model.predict(x, batch_size=256, verbose=0))
    else:
        parts, done, started = [], 0, time.perf_counter()
        while done < len(x):
            parts.append(np.asarray(model.predict_on_batch(x[done:done + batch])))
            done += len(parts[-1])
            if time.perf_counter() - started >= budget:
                break
        y = np.concatenate(parts)
    answer = io.BytesIO()  # not straight to the pipe: numpy writes arrays to a file by its position
    np.save(answer, np.ascontiguousarray(np.asarray(y, dtype="<f4").reshape(len(y), -1)), allow_pickle=False)
    out.write(answer.getvalue())
except BaseException as exc:
    out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:1000]}).encode())
out.close()
"""


def unavailable() -> str | None:
    """None where a sandbox can run here; otherwise why not (bubblewrap missing, user namespaces off)."""
    from grader.execute.sandbox import probe_bwrap

    return probe_bwrap()


def answer_cap(rows: int) -> int:
    """The most bytes an answer for ``rows`` test images may have: float32 rows of at most
    :data:`MAX_COLUMNS` values, and a header."""
    return _HEADER_BYTES + rows * MAX_COLUMNS * 4


def predict(model_bytes: bytes, images: Any, *, budget_s: float | None, seconds: float | None,
            batch: int = 32, hidden: list[Path] | None = None) -> tuple[Any, dict[str, Any] | None]:
    """``(predictions, None)``: the model's float32 outputs for ``images`` (prepared as the notebook
    prepared its inputs), one row per image, computed in a sandbox; or ``(None, answer)`` with the
    status and message of a model whose predictions could not be had.

    ``budget_s`` is fast mode's evaluation budget (the first batch always, further batches while
    it lasts); ``seconds`` the wall-clock limit of the whole sandboxed run. ``hidden`` are paths
    masked should they lie in a folder the sandbox shows (the grader's test data)."""
    import numpy as np

    from grader.execute.sandbox import SandboxSpec, one_shot_command, private_uid

    if budget_s is not None:
        seconds = min(seconds, budget_s + START_SECONDS) if seconds else budget_s + START_SECONDS
    folder = Path(tempfile.mkdtemp(prefix="nn-grader-sandboxed-"))
    try:
        model_path, images_path = folder / "model.keras", folder / "images.npy"
        model_path.write_bytes(model_bytes)
        np.save(images_path, images, allow_pickle=False)
        for path in (model_path, images_path):  # readable by the sandbox's own user
            os.chmod(path, 0o644)
        spec = SandboxSpec(readable=[model_path, images_path], hidden=list(hidden or []))
        uid = private_uid() if spec.as_root else None
        rlimits = {"RLIMIT_CORE": 0}
        if uid is not None:  # its own user: the count is of its own tasks only
            rlimits["RLIMIT_NPROC"] = _TASKS
        config = {"model": str(model_path), "images": str(images_path), "budget_s": budget_s, "batch": batch}
        command = one_shot_command(spec, [sys.executable, "-I", "-c", PREDICT, json.dumps(config)],
                                   rlimits=rlimits, uid=uid)
        cap = answer_cap(len(images))
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=_environment(), cwd="/")
        except OSError as exc:
            return None, {"status": VerificationStatus.ERROR, "message": f"the sandbox could not be started: {exc}"}
        raw, stopped = _read_bounded(proc, cap, seconds)
        code = proc.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if stopped == "time":
        return None, {"status": VerificationStatus.LIMIT, "message": "loading and evaluating this model in the sandbox took "
                      f"longer than the limit of {seconds:,.4g} s; it was stopped"}
    if stopped == "size":
        return None, _refused(f"it was over {cap:,} bytes, more than {len(images):,} rows of predictions can be")
    return read_answer(raw, rows=len(images), budget=budget_s is not None, batch=batch, code=code)


def read_answer(raw: bytes, *, rows: int, budget: bool = False, batch: int = 32,
                code: int = 0) -> tuple[Any, dict[str, Any] | None]:
    """The predictions in the sandboxed process's answer ``raw``, or why it is refused.

    Accepted: a float32 C-ordered ``.npy`` array of shape ``(rows, k)`` with 1 ≤ k ≤
    :data:`MAX_COLUMNS` (under a ``budget``, its first rows: at least ``min(rows, batch)``), and
    exactly as many data bytes as its shape says. Its header is checked before any data is read,
    so a header that claims a huge array allocates nothing. An ``{"error": ...}`` answer is the
    model's failure in the sandbox; an empty one, the process's exit ``code``."""
    import io

    import numpy as np
    from numpy.lib import format as npy

    if not raw:
        return None, _died(code)
    if not raw.startswith(_NPY_MAGIC):
        try:
            said = json.loads(raw[:4096].decode("utf-8"))
        except ValueError:
            said = None
        if isinstance(said, dict) and isinstance(said.get("error"), str):
            return None, {"status": VerificationStatus.ERROR,
                          "message": f"the model could not be evaluated in the sandbox: {_printable(said['error'])}"}
        return None, _refused("it is not a .npy array of predictions")
    if len(raw) > answer_cap(rows):
        return None, _refused(f"it was over {answer_cap(rows):,} bytes")
    stream = io.BytesIO(raw)
    try:
        version = npy.read_magic(stream)
        header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = header(stream, max_header_size=_HEADER_BYTES)
    except (ValueError, TypeError, SyntaxError) as exc:
        return None, _refused(f"its .npy header is not valid ({_printable(str(exc))})")
    if dtype != np.dtype("<f4") or fortran:
        return None, _refused(f"it holds {dtype} values{' in Fortran order' if fortran else ''}, not float32 predictions")
    if len(shape) != 2:
        return None, _refused(f"it has shape {shape}, not one row of predictions per test image")
    got, columns = shape
    least = min(rows, batch) if budget else rows
    if not least <= got <= rows:
        wanted = f"{rows:,}" if not budget else f"{least:,} to {rows:,}"
        return None, _refused(f"it has {got:,} rows of predictions for {rows:,} test images ({wanted} expected)")
    if not 1 <= columns <= MAX_COLUMNS:
        return None, _refused(f"it has {columns:,} outputs per image (1 to {MAX_COLUMNS:,} expected)")
    data = raw[stream.tell():]
    if len(data) != got * columns * 4:
        return None, _refused(f"it holds {len(data):,} bytes of data where its shape says {got * columns * 4:,}")
    return np.frombuffer(data, dtype="<f4").reshape(got, columns), None


# ---------------------------------------------------------------------------------------------


def _read_bounded(proc: subprocess.Popen, cap: int, seconds: float | None) -> tuple[bytes, str | None]:
    """``proc``'s standard output, and what stopped it (``"time"``, ``"size"``) or None."""
    assert proc.stdout is not None
    try:
        data, stopped = read_bounded(proc.stdout.fileno(), cap=cap, seconds=seconds, poll_s=0.5)
        if stopped:
            proc.kill()  # bwrap's --die-with-parent takes everything in the sandbox with it
    finally:
        proc.stdout.close()
    return data, stopped


def _environment() -> dict[str, str]:
    """What the sandboxed process is told: nothing of the grader's (tokens, keys), a private home."""
    env = {name: os.environ[name] for name in _ENVIRONMENT if name in os.environ}
    env.update(HOME="/tmp", TMPDIR="/tmp", TF_CPP_MIN_LOG_LEVEL="3", TF_FORCE_GPU_ALLOW_GROWTH="true")
    return env


def _refused(why: str) -> dict[str, Any]:
    return {"status": VerificationStatus.REFUSED, "message": f"the answer of the sandboxed process that ran this model was "
            f"refused: {why}; the model ran its own code there, so only well-formed predictions are scored"}


def _died(code: int) -> dict[str, Any]:
    signal_number = -code if code < 0 else code - 128 if code > 128 else 0
    if signal_number in (6, 9, 11):  # SIGABRT, SIGKILL, SIGSEGV: how an allocation past the limit ends
        return {"status": VerificationStatus.LIMIT, "message": f"the sandboxed process evaluating this model died (signal "
                f"{signal_number}), most likely at the verifier's memory limit; it was stopped"}
    return {"status": VerificationStatus.ERROR, "message": f"the sandboxed process evaluating this model exited with code "
            f"{code} and no answer"}


def _printable(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()[:400]
