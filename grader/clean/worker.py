"""The clean process itself: ``python -m grader.clean.worker``, serving the grader's requests.

The worker has never run student code. It imports Keras once per batch, reads one JSON request
per line on stdin (:mod:`grader.clean.protocol`) and writes one JSON answer per line on stdout;
whatever Keras prints goes to stderr, never into the answer channel. Each request kind has its
handler (:data:`HANDLERS`): ``verify`` measures a saved model (:mod:`grader.clean.measure`),
``retrain`` trains its architecture afresh (:mod:`grader.clean.retrain`).

The model files come out of a student's kernel, and Keras allocates every weight a configuration
declares before it reads any saved weight. So the worker itself never loads a model: each
request runs in a process of its own (forked from the worker, whose Keras is imported but has
never run an operation; see :func:`run_limited`) with a memory limit (``RLIMIT_DATA``) and a time
limit, both carried by the request (which the handler sees too, as ``request["limits"]``); a
model over them gets status ``limit`` while the worker goes on with the next. A model that needs
unsafe deserialization is run further in a sandbox of its own (:mod:`grader.clean.sandboxed`),
within the same limits.

The process's own outcomes (``limit``, ``error``) are words of both answer vocabularies
(:class:`~grader.model.evidence.VerificationStatus` and
:class:`~grader.model.evidence.RetrainingStatus` share them), so they serve every kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Callable

from grader.clean import measure, retrain
from grader.clean.pipes import read_bounded
from grader.clean.protocol import METHOD_VARIABLE
from grader.model.evidence import VerificationStatus

__all__ = ["HANDLERS", "MAX_ANSWER_BYTES", "run_limited", "serve", "serve_one", "start_method"]

MAX_ANSWER_BYTES = 64 * 2**20

# One handler per request kind (the request's ``kind``; a request without one is a verification).
HANDLERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "verify": measure.serve_request,
    "retrain": retrain.serve_request,
}


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request, by its kind's handler (in the process of its model)."""
    kind = request.get("kind") or "verify"
    handler = HANDLERS.get(kind)
    if handler is None:
        return {"status": VerificationStatus.ERROR, "message": f"the clean process has no handler for {kind!r} requests"}
    return handler(request)


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
    chosen = os.environ.get(METHOD_VARIABLE, "").strip().lower()
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
    grader.clean.worker --one``)."""
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
                answer = _answer_of(handler, payload, memory)  # with its limits: a handler may run a process of its own
                _write_all(write_fd, json.dumps(answer).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        child: Any = _ForkedChild(pid)
    else:
        baseline = 2**30  # the fresh interpreter's own Keras import, about 0.6 GB
        proc = subprocess.Popen([sys.executable, "-m", "grader.clean.worker", "--one"], stdin=subprocess.PIPE,
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
    """The child's answer bytes, and what stopped it (``"memory"``, ``"time"``, ``"size"``) or None."""
    import psutil

    try:
        watched: Any = psutil.Process(child.pid)
    except psutil.Error:
        watched = None

    def memory() -> str | None:
        nonlocal watched
        if rss_cap is None or watched is None:
            return None
        try:
            return "memory" if watched.memory_info().rss > rss_cap else None
        except psutil.Error:
            watched = None
            return None

    try:
        data, stopped = read_bounded(fd, cap=MAX_ANSWER_BYTES, seconds=seconds, check=memory, chunk=1 << 16)
        if stopped:
            child.kill()
    finally:
        os.close(fd)
    return data, stopped


def _outcome(raw: bytes, stopped: str | None, code: int, memory: int | None, seconds: float | None) -> dict[str, Any]:
    limit_words = f"the verifier's memory limit of {_gib(memory)} per model" if memory else "the memory available"
    if stopped == "time":
        return {"status": VerificationStatus.LIMIT, "message": f"loading and evaluating this model took longer than the verifier's "
                f"limit of {seconds:,.0f} s per model; it was stopped"}
    if stopped == "memory":
        return {"status": VerificationStatus.LIMIT, "message": f"this model needed more than {limit_words}; it was stopped"}
    if stopped == "size":
        return {"status": VerificationStatus.ERROR, "message": f"the verifier's answer for this model was over {_gib(MAX_ANSWER_BYTES)}"}
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
            return {"status": VerificationStatus.LIMIT, "message": f"the process verifying this model died ({name}) under {limit_words} "
                    "(an allocation past the limit ends that way); it was stopped"}
        return {"status": VerificationStatus.ERROR, "message": f"the process verifying this model died ({name})"}
    return {"status": VerificationStatus.ERROR, "message": f"the process verifying this model exited with code {code} and no answer"}


# Errors Keras, TensorFlow and NumPy raise when an allocation fails.
_MEMORY_WORDS = ("MemoryError", "OOM when allocating", "ResourceExhaustedError", "Unable to allocate",
                 "bad_alloc", "Cannot allocate memory", "out of memory")


def _answer_of(handler: Any, request: dict[str, Any], memory: int | None) -> dict[str, Any]:
    try:
        answer = handler(request)
    except MemoryError:
        answer = {"status": VerificationStatus.ERROR, "message": "MemoryError"}
    except BaseException as exc:  # one bad model must not stop the batch's verifier
        answer = {"status": VerificationStatus.ERROR, "message": f"{type(exc).__name__}: {str(exc)[:500]}"}
    message = str(answer.get("message", ""))
    if answer.get("status") == VerificationStatus.ERROR and any(word in message for word in _MEMORY_WORDS):
        limit_words = f"the verifier's memory limit of {_gib(memory)} per model" if memory else "the memory available"
        answer = dict(answer, status=VerificationStatus.LIMIT, message=f"this model needed more than {limit_words} ({message[:300]})")
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
    """``python -m grader.clean.worker --one``: one request on stdin, its answer on stdout (the child
    process of :func:`run_limited` with ``method="spawn"``)."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.buffer.read())
    limits = request.get("limits") or {}
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
            answer = {"status": VerificationStatus.ERROR, "message": f"{type(exc).__name__}: {str(exc)[:500]}"}
        out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    from grader.execute.sandbox import make_undumpable

    make_undumpable()  # the hidden test set it holds stays out of reach of a kernel of the same user
    if "--one" in sys.argv[1:]:
        serve_one()
    else:
        serve()
