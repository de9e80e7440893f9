"""Execution: runs one submission's notebook in a fresh kernel with the recorder attached.

The stage is split in two so a batch can overlap them: :func:`prepare` makes the working folder,
starts the kernel and installs the recorder (about a second, mostly kernel start-up), and
:func:`run` executes the student's cells, then the grader's closing cell, and hands the kernel
to a background shutdown. A batch prepares the next submission while the current one runs.

Per-cell timeouts come from nbclient (``interrupt_on_timeout``, so a slow cell does not make
every later cell time out); the whole-notebook timeout and a kernel that ignores interrupts are
handled here, by killing the kernel. A failing cell does not stop the run (``allow_errors``); a
dead kernel is detected and recorded.

Example::

    settings = ExecutionSettings(cell_timeout=120, fast={"epochs": 1, "train_samples": 512})
    execution = run_notebook(nb, Path("work/alice"), settings)
    execution.cell_errors, execution.kernel_died
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from grader.execute.limits import file_size_hit
from grader.execute.sandbox import IsolatedKernelManager, kernel_manager, seal_bundle
from grader.execute.settings import ExecutionSettings
from grader.execute.witness import Witness, reconcile
from grader.model.kinds import SandboxMode
from grader.model.evidence import CellError, CellRef

KERNEL_LIB = "nn_grader_kernel"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Environment the kernel inherits; everything else (tokens, LMS credentials, grader secrets) is dropped.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CUDA_VISIBLE_DEVICES", "KERAS_BACKEND",
             "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "SYSTEMROOT")
# Grace after an interrupt before the kernel is killed (a kernel may ignore SIGINT).
_INTERRUPT_GRACE_S = 20.0


@dataclass
class Execution:
    notebook: nbformat.NotebookNode  # with the outputs of the grader's run
    workdir: Path
    bundle_dir: Path
    cell_errors: list[CellError] = field(default_factory=list)
    kernel_died: str | None = None
    timed_out: str | None = None
    setup_error: str | None = None  # the recorder could not be installed
    duration_s: float = 0.0
    cells_run: int = 0
    limit_hit: str | None = None  # "memory limit 8 GiB reached in cell 14"
    sandbox: SandboxMode = SandboxMode.NONE  # how the kernel ran: bwrap | none
    tampered: str | None = None  # the bundle was swapped for a link: nothing of it is used
    rewritten: str | None = None  # the kernel's log differs from what the recorder sent the grader
    # The grader's closing cell failed after the notebook's own cells ran: what the notebook did
    # to its kernel broke the recorder. The submission's outcome, never "the grader failed".
    closing_error: str | None = None


# Who is told, as the run goes, which cell runs (grader.report.terminal's progress line). A context variable,
# not a setting: it changes nothing of the result, and the tasks of one asyncio.run inherit it.
_LISTENER: contextvars.ContextVar[Any] = contextvars.ContextVar("nn_grader_execution_listener", default=None)


@contextlib.contextmanager
def listening(listener: Any) -> Iterator[None]:
    """Tell ``listener`` what every run inside this block does: ``kernel_starting()``,
    ``notebook_started(nb, bundle_dir)``, ``cell_started(index)``, ``closing()`` (the grader's
    closing cell) and ``notebook_finished()``,
    each called from the event loop and only if the listener has it. A listener that raises is
    ignored: progress on a terminal never changes a grade."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def _tell(event: str, *args: Any) -> None:
    listener = _LISTENER.get()
    method = getattr(listener, event, None) if listener is not None else None
    if method is None:
        return
    try:
        method(*args)
    except Exception:
        pass


class _GradingClient(NotebookClient):
    """An nbclient client that tells the kernel which cell runs.

    nbclient does not send a cell id with ``execute_request``; ipykernel reads ``cellId`` from the
    request's metadata and hands it to ``pre_run_cell`` handlers, which is how the recorder learns
    the index of the cell that calls ``fit`` without a round trip per cell.
    """

    current_cell: int = -1
    # Set when nbclient's per-cell timeout fired: nbclient then interrupts the kernel and makes up
    # an error reply, with no output in the cell, so the run loop would not see it otherwise.
    timeout_hit: bool = False

    def __init__(self, *args: Any, max_output_bytes: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_output_bytes = max_output_bytes  # per cell; 0: no cap
        self._output_bytes: dict[int, int] = {}  # per cell index, what its outputs held so far

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
        self.timeout_hit = True
        return await super()._async_handle_timeout(timeout, cell)

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        client = self

        def execute(code: str, silent: bool = False, store_history: bool = True,
                    user_expressions: dict | None = None, allow_stdin: bool | None = None,
                    stop_on_error: bool = True) -> str:
            content = dict(code=code, silent=silent, store_history=store_history,
                           user_expressions=user_expressions or {}, allow_stdin=False,
                           stop_on_error=stop_on_error)
            msg = kc.session.msg("execute_request", content, metadata={"cellId": str(client.current_cell)})
            kc.shell_channel.send(msg)
            return msg["header"]["msg_id"]

        kc.execute = execute
        return kc

    def output(self, outs: list, msg: dict, display_id: str, cell_index: int) -> Any:
        # Keep memory bounded when a cell prints without end: drop outputs past the cap.
        size = self._output_bytes.get(cell_index, 0)
        content = msg.get("content", {})
        add = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._output_bytes[cell_index] = size + add
        limit = self.max_output_bytes
        if limit and size + add > limit:
            if size <= limit:
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[nn-grader] output of this cell cut at {limit // 1024:,} KiB\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class PreparedRun:
    """A started kernel with the recorder installed, waiting for its notebook."""

    nb: nbformat.NotebookNode
    settings: ExecutionSettings
    workdir: Path
    bundle_dir: Path
    km: IsolatedKernelManager
    client: _GradingClient
    setup_error: str | None = None
    started: float = 0.0
    witness: Witness | None = None  # the grader's copy of the recorder's log, read as the kernel runs


def kernel_environment(workdir: Path, settings: ExecutionSettings) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's own environment but what a kernel needs."""
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir / ".tmp"),
        KERAS_HOME=str(workdir / ".keras"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        MPLCONFIGDIR=str(workdir / ".tmp" / "matplotlib"),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(settings.env)
    return env


def make_workdir(workdir: Path, settings: ExecutionSettings) -> Path:
    """A fresh working folder with the support files and the kernel-side modules in it."""
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / ".tmp").mkdir(parents=True)
    for support in settings.support_files:
        target = workdir / support.name
        if support.is_dir():
            shutil.copytree(support, target)
        else:
            shutil.copy2(support, target)
    lib = workdir / ".nn-grader" / "lib" / KERNEL_LIB
    lib.mkdir(parents=True)
    source_dir = Path(__file__).parent.parent / "kernel"
    for source in source_dir.glob("*.py"):
        if source.name != "__init__.py":
            shutil.copy2(source, lib / source.name)
    (lib / "__init__.py").write_text('"""nn-grader recorder, copied here by the grader."""\n')
    (workdir / ".nn-grader" / "bundle").mkdir(parents=True)
    return workdir


def _bootstrap_code(workdir: Path, settings: ExecutionSettings, witness: Witness | None = None) -> str:
    lib_parent = str(workdir / ".nn-grader" / "lib")
    bundle = str(workdir / ".nn-grader" / "bundle")
    channel = str(witness.path) if witness is not None and witness.available else None
    datasets = {name: str(path) for name, path in settings.datasets.items()}
    return (
        "import sys as _nn_sys\n"
        f"_nn_sys.path.insert(0, {lib_parent!r})\n"
        f"import {KERNEL_LIB}.recorder as _nn_recorder\n"
        f"_nn_sys.path.remove({lib_parent!r})\n"
        f"_nn_recorder.install({bundle!r}, fast={settings.fast!r}, compat={settings.compat!r}, datasets={datasets!r}, "
        f"witness={channel!r})\n"
        "del _nn_sys, _nn_recorder\n"
    )


def _finalize_code(settings: ExecutionSettings) -> str:
    return (
        f"import {KERNEL_LIB}.recorder as _nn_recorder\n"
        f"_nn_recorder.recorder().finalize(globals(), {settings.functions!r}, {settings.variables!r})\n"
        "del _nn_recorder\n"
    )


def _new_kernel_manager(settings: ExecutionSettings, workdir: Path) -> IsolatedKernelManager:
    # This Python's own ipykernel (or the rubric's kernelspec), in the sandbox and under the
    # limits the settings ask for: grader.execute.sandbox builds the command and watches the kernel.
    return kernel_manager(settings, workdir)


async def prepare(nb: nbformat.NotebookNode, workdir: Path, settings: ExecutionSettings) -> PreparedRun:
    """Make the working folder, start the kernel and install the recorder."""
    started = time.perf_counter()
    _tell("kernel_starting")
    make_workdir(workdir, settings)
    witness = Witness.create(workdir / ".nn-grader")
    witness.start()
    km = _new_kernel_manager(settings, workdir)
    # The kernel's own stderr (TensorFlow's start-up lines, ipykernel warnings) goes to a log per
    # submission, not into the grader's terminal.
    log = open(workdir / ".nn-grader" / "kernel.log", "ab")
    try:
        await km.start_kernel(cwd=str(workdir), env=kernel_environment(workdir, settings), stdout=log, stderr=log)
    finally:
        log.close()  # the kernel process holds its own descriptor
    client = _GradingClient(
        nb, km=km, max_output_bytes=settings.max_output_bytes, timeout=int(settings.cell_timeout),
        interrupt_on_timeout=True, allow_errors=True,
        record_timing=False, iopub_timeout=10, resources={"metadata": {"path": str(workdir)}},
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"the cell ran longer than the {settings.cell_timeout:.0f} s limit and was interrupted",
                          "traceback": []},
    )
    km.current_cell = lambda: client.current_cell  # the limit watcher names the cell it stopped
    await client.async_start_new_kernel_client()
    prepared = PreparedRun(nb, settings, workdir, workdir / ".nn-grader" / "bundle", km, client, started=started,
                           witness=witness)
    try:
        error = await _run_grader_cell(client, _bootstrap_code(workdir, settings, witness), timeout=120)
        if error:
            prepared.setup_error = f"the recorder could not be installed: {error}"
    except (DeadKernelError, asyncio.TimeoutError, RuntimeError) as exc:
        prepared.setup_error = f"the kernel did not start cleanly: {type(exc).__name__}: {exc}"
    return prepared


async def _answers(client: _GradingClient) -> bool:
    """True when the kernel runs a trivial cell within the interrupt grace: the interrupt after a
    timeout stopped the cell. False when it still runs it (SIGINT ignored or caught)."""
    client.timeout_hit = False
    try:
        await _run_grader_cell(client, "pass", timeout=_INTERRUPT_GRACE_S)
    except (asyncio.TimeoutError, DeadKernelError):
        return False
    answered = not client.timeout_hit
    client.timeout_hit = False
    return answered


async def _run_grader_cell(client: _GradingClient, source: str, timeout: float) -> str | None:
    """Run one of the grader's own cells; returns the error it raised, if any.

    nbclient writes an executed cell back into ``nb.cells[cell_index]``, so the grader's cells
    run against a one-cell notebook of their own and never touch the student's.
    """
    cell = nbformat.v4.new_code_cell(source)
    students_nb = client.nb
    client.nb = nbformat.v4.new_notebook(cells=[cell])
    client.current_cell = -1
    try:
        await asyncio.wait_for(client.async_execute_cell(cell, 0, store_history=False), timeout=timeout)
    finally:
        client.nb = students_nb
    for output in cell.outputs:
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


async def run(prepared: PreparedRun) -> Execution:
    """Execute every cell; never raises for anything the notebook does."""
    settings, client, nb = prepared.settings, prepared.client, prepared.nb
    execution = Execution(nb, prepared.workdir, prepared.bundle_dir, setup_error=prepared.setup_error)
    deadline = time.monotonic() + settings.notebook_timeout
    _tell("notebook_started", nb, prepared.bundle_dir)
    try:
        if prepared.setup_error is None:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    execution.timed_out = f"the notebook ran longer than the {settings.notebook_timeout:.0f} s limit; cells from {index + 1} on were not run"
                    break
                client.current_cell = index
                client.timeout_hit = False
                _tell("cell_started", index)
                started = time.monotonic()
                # Not asyncio.wait_for: nbclient turns any cancellation into DeadKernelError, so
                # the grader's own time limit must be told apart before it cancels the cell.
                task = asyncio.ensure_future(
                    client.async_execute_cell(cell, index, execution_count=execution.cells_run + 1))
                done, _ = await asyncio.wait({task}, timeout=min(remaining, settings.cell_timeout + _INTERRUPT_GRACE_S))
                try:
                    if not done:
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                        raise asyncio.TimeoutError
                    task.result()
                    if client.timeout_hit:
                        execution.cell_errors.append(CellError(
                            CellRef(index), "CellTimeoutError",
                            f"the cell ran longer than the {settings.cell_timeout:.0f} s limit and was interrupted", "",
                            cell.source))
                        if not await _answers(client):  # the notebook ignores interrupts: stop here
                            execution.cell_errors.pop()
                            raise asyncio.TimeoutError
                except asyncio.TimeoutError:
                    elapsed = time.monotonic() - started
                    what = "notebook" if remaining < settings.cell_timeout + _INTERRUPT_GRACE_S else "cell"
                    limit = settings.notebook_timeout if what == "notebook" else settings.cell_timeout
                    execution.timed_out = (
                        f"cell {index + 1} was still running after {elapsed:.0f} s ({what} limit {limit:.0f} s) "
                        "and did not stop when interrupted; the kernel was stopped"
                    )
                    execution.cell_errors.append(CellError(CellRef(index), "TimeoutError", execution.timed_out, "", cell.source))
                    break
                except DeadKernelError:
                    execution.kernel_died = await _why_dead(prepared.km, index)
                    execution.cell_errors.append(CellError(CellRef(index), "DeadKernelError", execution.kernel_died, "", cell.source))
                    break
                execution.cells_run += 1
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        execution.cell_errors.append(_cell_error(index, cell, output))
                        break
            if execution.kernel_died is None and execution.timed_out is None:
                _tell("closing")
                try:
                    error = await _run_grader_cell(client, _finalize_code(settings), timeout=max(settings.cell_timeout, 30))
                    if error:
                        execution.closing_error = f"the grader's closing cell failed after the notebook ran: {error}"
                except (DeadKernelError, asyncio.TimeoutError) as exc:
                    execution.closing_error = (f"the grader's closing cell did not finish after the notebook ran "
                                               f"({type(exc).__name__})")
    finally:
        _tell("notebook_finished")
        execution.duration_s = time.perf_counter() - prepared.started
        _report_limit(prepared, execution)
        _seal(prepared, execution)
        shutdown_in_background(prepared, stopping=_stopping())
    return execution


def _report_limit(prepared: PreparedRun, execution: Execution) -> None:
    """Name the limit the run ran into, if any: the watcher's, or a write past the file size limit."""
    execution.sandbox = prepared.km.sandbox_mode
    hit = prepared.km.limit_hit or file_size_hit(execution.cell_errors, prepared.settings.limits)
    if hit is None:
        return
    execution.limit_hit = hit.message
    if hit.kind == "cpu_time" and execution.kernel_died:  # a time limit, told as one
        execution.timed_out, execution.kernel_died = execution.kernel_died, None


def _seal(prepared: PreparedRun, execution: Execution) -> None:
    """Stop the kernel's processes now and move the bundle out of their reach, so that what the
    grader reads is what the run recorded (see grader.execute.sandbox.seal_bundle)."""
    prepared.km.stop_now()
    execution.bundle_dir, execution.tampered = seal_bundle(prepared.workdir, prepared.bundle_dir)
    witnessed = prepared.witness.close() if prepared.witness is not None else b""
    if execution.tampered:  # the grader's closing cell failed because of it: say what happened instead
        execution.setup_error = execution.closing_error = None
    elif witnessed and prepared.setup_error is None:
        # The lines the recorder sent as it ran replace the kernel's file (grader.execute.witness).
        execution.rewritten = reconcile(witnessed, execution.bundle_dir / "events.jsonl",
                                        overflow=prepared.witness.overflow)


async def _why_dead(km: IsolatedKernelManager, index: int) -> str:
    hit = km.limit_hit
    if hit is not None:
        return f"{hit.message}; the kernel was stopped"
    code = None
    try:
        provisioner = km.provisioner
        if provisioner is not None:
            code = await provisioner.poll()
    except Exception:
        pass
    if code in (-9, 137):
        return f"the kernel was killed (signal 9) during cell {index + 1}: usually the memory limit or the machine running out of memory"
    if code is not None:
        return f"the kernel exited with status {code} during cell {index + 1} (os._exit, sys.exit in a thread, or a crash)"
    return f"the kernel died during cell {index + 1}"


def _cell_error(index: int, cell: nbformat.NotebookNode, output: dict) -> CellError:
    traceback = _ANSI.sub("", "\n".join(output.get("traceback", [])))
    if len(traceback) > 8000:
        traceback = traceback[:2000] + "\n[… traceback trimmed …]\n" + traceback[-5000:]
    return CellError(CellRef(index), str(output.get("ename", "Error")), _ANSI.sub("", str(output.get("evalue", "")))[:2000],
                     traceback, cell.source)


_SHUTDOWNS: set[asyncio.Task] = set()
_STOP_CHANNELS_S = 10.0


# The client's channels that are plain zmq sockets polled by the event loop (jupyter_client's
# names); the heartbeat channel is a thread with its own socket.
_SOCKET_CHANNELS = ("_shell_channel", "_iopub_channel", "_stdin_channel", "_control_channel")


def _close_sockets(kc: Any) -> None:
    """Close the client's sockets in the event loop's thread, the one that polls them: a zmq socket
    closed from another thread while the loop (a cancelled cell's tasks, on Ctrl-C) still uses it
    aborts the whole grader (libzmq: "Assertion failed: pfd.revents & POLLIN")."""
    for name in _SOCKET_CHANNELS:
        channel = getattr(kc, name, None)
        if channel is not None:
            try:
                channel.close()
            except Exception:
                pass


def _stop_channels(kc: Any, end_context: bool) -> None:
    """The rest of ``stop_channels``, in a daemon thread of its own: the heartbeat thread joined
    (it can wait for ever for a reply from a killed kernel) and, with ``end_context``, the
    client's own zmq context ended (its I/O thread) once no socket of it is left. Never touches a
    channel that does not exist yet (the client's properties would create it, with a new socket,
    in this thread)."""
    try:
        heartbeat = getattr(kc, "_hb_channel", None)
        if heartbeat is not None and heartbeat.is_alive():
            heartbeat.stop()
        if end_context and getattr(kc, "_created_context", False) and not kc.context.closed:
            kc.context.destroy(linger=100)
    except Exception:
        pass


def shutdown_in_background(prepared: PreparedRun, *, stopping: bool = False) -> None:
    """Stop the kernel without waiting for it: the result does not depend on a graceful exit.

    ``stopping``: the grader is stopping (Ctrl-C): the cancelled cell's tasks may still use the
    client's context, and ending it under them aborts the process (libzmq); it is left to the exit."""

    async def stop() -> None:
        kc = prepared.client.kc
        _close_sockets(kc)
        # The rest must not hold up the event loop that runs the other notebooks, nor the
        # grader's exit (a daemon thread, not an executor).
        stopper = threading.Thread(target=_stop_channels, args=(kc, not stopping), daemon=True,
                                   name="nn-grader-stop-channels")
        stopper.start()
        deadline = time.monotonic() + _STOP_CHANNELS_S
        while stopper.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        try:
            await prepared.km.shutdown_kernel(now=True)
        except Exception:
            pass

    task = asyncio.ensure_future(stop())
    _SHUTDOWNS.add(task)
    task.add_done_callback(_SHUTDOWNS.discard)


def _stopping() -> bool:
    """In a ``finally``: is the grader being stopped (Ctrl-C cancels the running notebooks)?"""
    return isinstance(sys.exc_info()[1], (asyncio.CancelledError, KeyboardInterrupt))


async def drain_shutdowns() -> None:
    """Wait for every background kernel shutdown (at the end of a batch, or on Ctrl-C)."""
    while _SHUTDOWNS:
        await asyncio.gather(*list(_SHUTDOWNS), return_exceptions=True)


async def execute_notebook(nb: nbformat.NotebookNode, workdir: Path, settings: ExecutionSettings) -> Execution:
    prepared = await prepare(nb, workdir, settings)
    return await run(prepared)


def run_notebook(nb: nbformat.NotebookNode, workdir: Path, settings: ExecutionSettings) -> Execution:
    """Synchronous :func:`execute_notebook` that also waits for the kernel to be gone."""

    async def main() -> Execution:
        try:
            return await execute_notebook(nb, workdir, settings)
        finally:
            await drain_shutdowns()

    return asyncio.run(main())
