"""Grading many submissions: overlap, parallelism, GPUs, a cluster, and nothing lost on a crash.

``workers`` notebooks run at once, each in its own kernel process; one more kernel is started
ahead, so its start-up (about a second) overlaps the notebooks that are running, and finished
kernels are shut down in the background. Every result is stored atomically as soon as it is
known, so a batch that is killed and started again skips what was finished (the store reuses
the evidence of every execution that completed; see :mod:`grader.store.result_store`).

On a machine with NVIDIA GPUs (found with ``nvidia-smi``: the grader itself never imports
TensorFlow) the kernels share them: each kernel sees one GPU (``CUDA_VISIBLE_DEVICES``), in
turn, and allocates its memory as it grows instead of all at once, so several fit on one GPU.
With ``dask_scheduler`` the same per-submission job runs on a dask.distributed cluster
(:mod:`grader.batch.dask`); results come back and are stored here, by this process.

Next to each ``result.json`` a ``grading.log`` says what happened to the submission (the time
of each stage, cell errors, limits), one entry per run: a resumed batch appends its re-check
below the execution's entry, and the result keeps the execution's run time (:func:`keep_execution`).
``kernel.log`` keeps what its kernel printed.

A kernel without a sandbox can write in the output folder and leave processes behind: every
stored file the batch writes is sealed, stored evidence is reused only when it verifies, what a
kernel left running is killed, and before the batch returns what changed behind its back is put
right and said on the result (:mod:`grader.store.seal`).

Example::

    results = grade_batch(submissions, rubric, Path("out"), workers=2)
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader.errors import UsageError
from grader.execute.client import drain_shutdowns, shutdown_in_background
from grader.pipeline.submission import GradingOptions, GradingSession, _Started
from grader.execute.preflight import mark_environment_problem, run_preflight, shared_environment_errors
from grader.printable import printable
from grader.model.results import GradeResult, SubmissionProblem
from grader.store.seal import RUN_MARKER, RunSeal, Tampering, sweep, verify_store
from grader.store.result_store import write_atomic
from grader.collect.submissions import Submission

__all__ = ["Gpu", "detect_gpus", "choose_gpus", "default_workers", "gpu_environment", "kernel_environments",
           "grade_submissions", "grade_batch", "pending_executions", "failed_result", "write_submission_log",
           "read_log_tail", "keep_execution", "GPU_MEMORY_PER_KERNEL", "GPU_GROWTH_ENV"]

# A kernel that trains a course model takes about 2.4 GB of host memory (design notes), and
# one CIFAR-10-sized model with memory growth a few GiB of GPU memory at most.
HOST_MEMORY_PER_KERNEL = 3 * 2**30
GPU_MEMORY_PER_KERNEL = 6 * 2**30
# Variables that make a kernel allocate GPU memory as it needs it: TensorFlow's memory growth,
# and JAX's (Keras 3 on JAX would otherwise take 75% of the GPU for the first kernel alone).
GPU_GROWTH_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
# What is kept of a kernel's own log next to the result: its end, where the crash is.
KERNEL_LOG_BYTES = 1 << 20
# grading.log gains an entry per run; past this size the middle entries go (see _bounded_log).
GRADING_LOG_BYTES = 1 << 20
RUN_SEPARATOR = "===="
# Beside the results: what a kernel without a sandbox changed in the output folder, run by run.
TAMPERING_LOG = "tampering.log"

OnStart = Callable[[Submission], None]
OnResult = Callable[[Submission, GradeResult], None]


# ---------------------------------------------------------------------------------------------
# Resources: GPUs and the default number of workers


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` lists it."""

    index: str  # what CUDA_VISIBLE_DEVICES takes: "0", "1", or a UUID
    name: str = ""
    memory_bytes: int = 0


def detect_gpus(nvidia_smi: str = "nvidia-smi") -> list[Gpu]:
    """The NVIDIA GPUs this process may use: those ``nvidia-smi`` lists, narrowed to
    ``CUDA_VISIBLE_DEVICES`` when that is set. An empty list when there is no GPU, no driver, or
    ``nvidia-smi`` fails: the batch then runs on the CPU."""
    executable = shutil.which(nvidia_smi)
    if executable is None:
        return []
    try:
        done = subprocess.run([executable, "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    gpus = []
    for line in done.stdout.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        try:
            memory = int(float(parts[3]) * 2**20)  # MiB
        except ValueError:
            memory = 0
        gpus.append((Gpu(parts[0], parts[2], memory), parts[1]))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [gpu for gpu, _ in gpus]
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    chosen = []
    for value in wanted:  # CUDA's order, by index or by UUID
        for gpu, uuid in gpus:
            if value in (gpu.index, uuid) or (value.startswith("GPU-") and uuid.startswith(value)):
                chosen.append(gpu)
    return chosen


def choose_gpus(spec: str | None, detected: list[Gpu] | None = None) -> list[Gpu]:
    """The GPUs kernels run on, from ``--gpus``: ``None`` or ``"all"`` every detected GPU,
    ``"none"`` (or ``""``) no GPU at all, or a comma-separated list of indices (``"0,1"``).

    Raises :class:`~grader.errors.UsageError` for a GPU that is not there."""
    if spec is not None and spec.strip().lower() in ("none", "", "cpu"):
        return []
    found = detect_gpus() if detected is None else detected
    if spec is None or spec.strip().lower() == "all":
        return found
    by_index = {gpu.index: gpu for gpu in found}
    chosen = []
    for value in (v.strip() for v in spec.split(",")):
        if not value:
            continue
        if value in by_index:
            chosen.append(by_index[value])
        elif not found and (value.isdigit() or value.startswith("GPU-")):
            # nvidia-smi is missing or says nothing (a container, a MIG slice): take the word
            # of the user, who may know better than the tools here.
            chosen.append(Gpu(value))
        else:
            have = ", ".join(sorted(by_index)) or "none"
            raise UsageError(f"--gpus {spec}: there is no GPU {value!r} here (GPUs found: {have})")
    return chosen


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_workers(gpus: list[Gpu] | None = None) -> int:
    """How many notebooks to run at once.

    Without a GPU: one kernel per core, at most one per 3 GiB of memory (a TensorFlow kernel
    that trains takes about 2.4 GB). Notebooks spend much of their time outside training
    (start-up, imports, saving, plotting), so two on two cores finish sooner than one after the
    other. With GPUs: one kernel per 6 GiB of GPU memory (kernels grow their memory as they
    need it), still at most one per core and per 3 GiB of host memory.
    """
    cores = os.cpu_count() or 1
    limit = max(1, min(cores, _host_memory() // HOST_MEMORY_PER_KERNEL))
    if not gpus:
        return limit
    per_gpu = [max(1, gpu.memory_bytes // GPU_MEMORY_PER_KERNEL) if gpu.memory_bytes else 1 for gpu in gpus]
    return max(1, min(limit, sum(per_gpu)))


def gpu_environment(gpu: Gpu | None) -> dict[str, str]:
    """Variables for a kernel that runs on ``gpu`` (``None``: a kernel that must not use one)."""
    if gpu is None:
        return {"CUDA_VISIBLE_DEVICES": ""}
    return {"CUDA_VISIBLE_DEVICES": gpu.index, **GPU_GROWTH_ENV}


def kernel_environments(slots: int, gpus: list[Gpu] | None) -> list[dict[str, str]]:
    """Extra variables for each of ``slots`` kernel slots: the GPUs dealt out in turn.

    Without GPUs every slot gets nothing extra (the kernel inherits the grader's
    ``CUDA_VISIBLE_DEVICES``, if any)."""
    if not gpus:
        return [{} for _ in range(slots)]
    return [gpu_environment(gpus[slot % len(gpus)]) for slot in range(slots)]


# ---------------------------------------------------------------------------------------------
# One machine


async def grade_submissions(
    session: GradingSession,
    submissions: list[Submission],
    *,
    workers: int = 1,
    kernel_env: list[dict[str, str]] | None = None,
    on_start: OnStart | None = None,
    on_result: OnResult | None = None,
    marker: str | None = None,
) -> list[GradeResult]:
    """Grade ``submissions`` with ``workers`` kernels running and one starting ahead.

    ``kernel_env`` gives extra variables per kernel slot (``workers + 1`` of them; see
    :func:`kernel_environments`). Each result is stored, with its log, as soon as it is known.
    Cancelled (Ctrl-C), it stops every kernel it started before it returns. With ``marker`` (the
    run's id, :class:`grader.store.seal.RunSeal`) every kernel carries ``NN_GRADER_RUN=<marker>.<n>``,
    and what a kernel left running is killed as soon as its notebook has run, before the next
    notebook starts (:func:`grader.store.seal.sweep`).
    """
    workers = max(1, int(workers))
    envs = kernel_env or [{} for _ in range(workers + 1)]
    slots: asyncio.Queue[int] = asyncio.Queue()
    for slot in range(workers + 1):  # kernels in existence: running + the one started ahead
        slots.put_nowait(slot)
    running = asyncio.Semaphore(workers)
    results: dict[int, GradeResult] = {}
    cleanups: set[asyncio.Task] = set()

    async def job(position: int, submission: Submission) -> None:
        slot = await slots.get()
        held = {"slot": True, "running": False}

        def release() -> None:
            # As soon as the notebook has run: its kernel is shutting down, and verifying and
            # checking it must not keep the next notebook from running.
            if held["running"]:
                held["running"] = False
                running.release()
            if held["slot"]:
                held["slot"] = False
                slots.put_nowait(slot)

        env = envs[slot % len(envs)]
        if marker is not None:
            env = {**env, RUN_MARKER: f"{marker}.{position}"}
        try:
            try:
                started = await _start(session, submission, env)
            except Exception as exc:  # the kernel could not be started at all: this submission only
                started = _Started(submission, time.perf_counter())
                result = failed_result(session, submission, f"its kernel could not be started: {type(exc).__name__}: {exc}",
                                       traceback.format_exc()[-4000:])
            else:
                def executed() -> None:
                    try:
                        if marker is not None:  # daemons that left the kernel's tree, before the next notebook runs
                            sweep(env[RUN_MARKER])
                    except Exception:  # the sweep at the end of the batch tries again
                        logging.getLogger(__name__).exception("could not look for processes the notebook left")
                    finally:
                        release()

                started.on_executed = executed
                try:
                    await running.acquire()
                    held["running"] = True
                    if on_start:
                        on_start(submission)
                    result = await session.finish(started)
                except asyncio.CancelledError:
                    if started.prepared is not None:
                        shutdown_in_background(started.prepared)
                    raise
        finally:
            release()
        execution = keep_execution(session.store, started.key, result, started.timings, reused=started.cached,
                                   executed=started.prepared is not None)
        session.store.save_result(result)
        _keep_logs(session, started, result, gpu=env.get("CUDA_VISIBLE_DEVICES"), execution=execution)
        if started.prepared is not None and started.workdir is not None:
            task = asyncio.ensure_future(_remove_when_stopped(started))
            cleanups.add(task)
            task.add_done_callback(cleanups.discard)
        results[position] = result
        if on_result:
            on_result(submission, result)

    try:
        await asyncio.gather(*(job(i, s) for i, s in enumerate(submissions)))
    except asyncio.CancelledError:
        _quiet_stopped_cells(asyncio.get_running_loop())
        raise
    finally:
        await drain_shutdowns()
        # Every kernel is gone now: what is left of their folders goes in one piece with the
        # session's working folder (GradingSession.close), without waiting here.
        for task in list(cleanups):
            task.cancel()
        if cleanups:
            await asyncio.gather(*list(cleanups), return_exceptions=True)
    return [results[i] for i in sorted(results)]


def _quiet_stopped_cells(loop: asyncio.AbstractEventLoop) -> None:
    """After Ctrl-C, the cells that were running end with "kernel died" (their kernels were
    stopped on purpose); asyncio would print each as an unretrieved task error."""
    from nbclient.exceptions import DeadKernelError

    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if isinstance(context.get("exception"), DeadKernelError):
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def _start(session: GradingSession, submission: Submission, env: dict[str, str]) -> _Started:
    """:meth:`GradingSession.start`, but a cancellation while the kernel starts still stops it.

    Cancelled half-way, ``start`` would leave a kernel that nobody holds; so it runs to its end
    (a few seconds at most) and its kernel is shut down before the cancellation goes on."""
    task = asyncio.ensure_future(session.start(submission, env=env))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            started = await asyncio.wait_for(task, timeout=60)
        except BaseException:
            task.cancel()
            raise asyncio.CancelledError from None
        if started.prepared is not None:
            shutdown_in_background(started.prepared)
        raise


async def _remove_when_stopped(started: _Started, wait_s: float = 60.0) -> None:
    """Remove a kernel's working folder once the kernel is gone: the evidence and its files are
    in the store by now, and a batch of a thousand notebooks must not fill the disk."""
    assert started.prepared is not None and started.workdir is not None
    km = started.prepared.km
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        try:
            if not await km.is_alive():
                break
        except Exception:
            break
        await asyncio.sleep(0.2)
    for folder in (started.workdir, started.workdir.parent / ".sealed" / started.workdir.name):  # and its sealed bundle
        await loop.run_in_executor(None, shutil.rmtree, folder, True)


# ---------------------------------------------------------------------------------------------
# The log of one submission


def _keep_logs(session: GradingSession, started: _Started, result: GradeResult, *, gpu: str | None = None,
               execution: dict | None = None) -> None:
    folder = session.store.result_path(result.student.key).parent
    kernel_log = None
    if started.workdir is not None:
        kernel_log = started.workdir / ".nn-grader" / "kernel.log"
        _copy_tail(kernel_log, folder / "kernel.log", KERNEL_LOG_BYTES)
    write_submission_log(folder / "grading.log", result, key=started.key, timings=started.timings,
                         reused=started.cached, gpu=gpu or None, execution=execution,
                         kernel_log=folder / "kernel.log" if kernel_log is not None else None)


def keep_execution(store, key: str, result: GradeResult, timings: dict[str, float], *, reused: bool,
                   executed: bool) -> dict | None:
    """Keep the run time of the execution that recorded a result's evidence.

    A result re-checked from stored evidence (``reused``: a resumed batch, a rubric change)
    gets that execution's wall time and time of day from the store (:meth:`ResultStore.load_execution`),
    not the second its re-check took; evidence stored before run times were recorded gives
    the notebook's own execution time instead. A notebook that ran now (``executed``) has its
    run time recorded beside its evidence for later re-checks. Returns the stored record for a
    reused result (what ``grading.log`` says about it), None otherwise.
    """
    if not key or result.mode != "executed":
        return None
    if reused:
        result.evidence_reused = True
        record = store.load_execution(key)
        if record is None and result.evidence is not None and result.evidence.duration_s is not None:
            record = {"duration_s": result.evidence.duration_s, "timings": {}, "executed_at": "", "approximate": True}
        if record is not None:
            result.duration_s = record["duration_s"]
            result.executed_at = record["executed_at"]
        return record
    if executed and result.duration_s is not None:
        result.executed_at = result.graded_at
        store.save_execution(key, duration_s=result.duration_s, timings=timings, executed_at=result.executed_at)
    return None


def read_log_tail(source: Path, limit: int = KERNEL_LOG_BYTES) -> bytes | None:
    """The last ``limit`` bytes of a kernel's log (None when there is none), never through a
    link: the kernel could have put one in place of its log."""
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
            data = handle.read(limit)
    except OSError:
        return None
    if size > limit:
        data = f"[nn-grader: the first {size - limit:,} bytes of this log were left out]\n".encode() + data
    return data


def _copy_tail(source: Path, target: Path, limit: int) -> None:
    data = read_log_tail(source, limit)
    if data is not None:
        write_atomic(target, data)


def write_submission_log(path: Path, result: GradeResult, *, key: str = "", timings: dict[str, float] | None = None,
                         reused: bool = False, gpu: str | None = None, kernel_log: Path | None = None,
                         where: str | None = None, execution: dict | None = None, append: bool = True) -> Path:
    """Add this run's entry to ``grading.log``: what happened to one submission, for an
    instructor who wonders why.

    The stages with their seconds, whether the notebook was executed or its stored evidence
    reused (then the run time kept from that execution, ``execution`` as
    :func:`keep_execution` returns it), cell errors, limits, timeouts, a dead kernel, and the
    problems and score of the result.

    Each run appends an entry under a ``==== <time> · <what happened> ====`` line, so a resumed
    batch or a rubric change adds its re-check below the entry of the execution, whose stages,
    cell errors and limits stay as they were. ``append=False`` starts the file afresh.
    """
    student = result.student
    who = student.key + "".join(f" · {v}" for v in (student.name, student.student_id and f"id {student.student_id}") if v)
    lines = [_run_separator(result, reused),
             f"nn-grader {result.grader_version} · {who}{' · late' if student.late else ''}",
             f"submission: {result.path}"]
    if student.note:
        lines.append(f"note: {student.note}")
    if key:
        lines.append(f"result key: {key}")
    mode = result.mode + (" (fast mode)" if result.fast_mode else "")
    lines.append(f"mode: {mode} · sandbox {result.sandbox}" + (f" · GPU {gpu}" if gpu else "") + (f" · {where}" if where else ""))
    if result.mode == "executed":
        evidence = result.evidence
        if reused:
            lines.append("evidence: reused from the store (the notebook and the settings are unchanged): not executed again")
        elif evidence is not None and evidence.cells:
            lines.append(f"evidence: executed now, {len(evidence.runs)} training run(s) recorded")
    if reused and result.mode == "executed":
        lines.append(_kept_run_time(execution))
        if timings:
            lines.append("stages of this re-check (seconds):")
            lines += [f"  {stage:<24}{seconds:8.2f}" for stage, seconds in timings.items()]
            lines.append(f"  {'total':<24}{sum(timings.values()):8.2f}")
    else:
        if timings:
            lines.append("stages (seconds):")
            lines += [f"  {stage:<24}{seconds:8.2f}" for stage, seconds in timings.items()]
        if result.duration_s is not None:
            lines.append(f"  {'total':<24}{result.duration_s:8.2f}")
    evidence = result.evidence
    if evidence is not None:
        if evidence.cell_errors:
            lines.append("cell errors:")
            lines += [f"  cell {e.cell.number}: {e.ename}: {_one_line(e.evalue)}" for e in evidence.cell_errors]
        for finding in evidence.findings:
            if finding.kind in ("limit", "setup", "bundle", "verification", "mismatch"):
                lines.append(f"{finding.kind}: {_one_line(finding.message)}")
        if evidence.timed_out:
            lines.append(f"timeout: {_one_line(evidence.timed_out)}")
        if evidence.kernel_died:
            lines.append(f"kernel died: {_one_line(evidence.kernel_died)}")
    if result.problems:
        lines.append("problems:")
        lines += [f"  [{p.kind}] {_one_line(p.message)}" for p in result.problems]
    score = f"score: {result.score:g}/{result.max_score:g}"
    if result.passed is not None:
        score += " (passed)" if result.passed else " (not passed)"
    lines.append(score)
    if kernel_log is not None:
        lines.append(f"kernel output: {kernel_log.name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name or message holding a newline or an escape code must not forge a line (or an entry) of the log.
    entry = ("\n".join(printable(line) for line in lines) + "\n").encode("utf-8")
    earlier = b""
    if append:
        try:
            earlier = path.read_bytes()
        except OSError:  # the first run, or a log that cannot be read: start afresh
            earlier = b""
        if earlier and not earlier.endswith(b"\n"):
            earlier += b"\n"
        if earlier:
            earlier += b"\n"
    write_atomic(path, _bounded_log(earlier, entry, GRADING_LOG_BYTES))
    return path


def _run_separator(result: GradeResult, reused: bool) -> str:
    when = result.graded_at or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    if result.mode == "static":
        what = "graded from the outputs saved in the notebook"
    elif reused:
        what = "re-checked from the stored execution (not executed again)"
    elif result.evidence is not None and result.evidence.cells:
        what = "executed"
    else:
        what = "graded"
    return f"{RUN_SEPARATOR} {when} · {what} {RUN_SEPARATOR}"


def _kept_run_time(execution: dict | None) -> str:
    if execution is None:
        return "run time: unknown (the stored execution does not record it)"
    seconds = float(execution["duration_s"])
    if execution.get("approximate"):
        return (f"run time: {seconds:.2f} s, the notebook's execution as stored with its evidence "
                "(stored before run times were recorded)")
    when = execution.get("executed_at") or "an earlier run"
    stages = ", ".join(f"{stage} {value:.2f} s" for stage, value in (execution.get("timings") or {}).items()
                       if value >= 0.005)
    return f"run time: {seconds:.2f} s, kept from the execution of {when}" + (f" ({stages})" if stages else "")


def _bounded_log(earlier: bytes, entry: bytes, limit: int) -> bytes:
    """``earlier`` + ``entry``, at most about ``limit`` bytes: past it, the first entry (the
    execution, usually) and the newest ones are kept, and a line says how much was left out."""
    if len(earlier) + len(entry) <= limit:
        return earlier + entry
    marker = RUN_SEPARATOR.encode() + b" "
    second = earlier.find(b"\n" + marker, len(marker))
    first = earlier[: second + 1] if 0 < second < limit // 2 else earlier[: limit // 4]
    room = max(0, limit - len(first) - len(entry))
    tail = earlier[len(earlier) - room:] if room else b""
    start = tail.find(b"\n" + marker)  # an entry's first line, not "==== " inside a message
    tail = tail[start + 1:] if start >= 0 else b""
    left_out = len(earlier) - len(first) - len(tail)
    note = f"[nn-grader: {left_out:,} bytes of earlier runs' entries were left out]\n\n".encode()
    return first.rstrip(b"\n") + b"\n\n" + note + tail + entry


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The batch


def pending_executions(session: GradingSession, submissions: list[Submission]) -> list[Submission]:
    """The submissions whose notebook must run: those without stored evidence (all with
    ``force``; none in static mode). A file that cannot be read needs no kernel either."""
    if session.options.static:
        return []
    if session.options.force:
        return list(submissions)
    settings = session.settings()
    pending = []
    for submission in submissions:
        try:
            key = session.key_for(submission, settings)
        except OSError:
            continue
        if not session.store.has_evidence(key):
            pending.append(submission)
    return pending


def grade_batch(
    submissions: list[Submission],
    rubric,
    out_dir: Path,
    *,
    options: GradingOptions | None = None,
    workers: int = 1,
    gpus: list[Gpu] | None = None,
    dask_scheduler: str | object | None = None,
    on_start: OnStart | None = None,
    on_result: OnResult | None = None,
    on_tampering: Callable[[list[Tampering]], None] | None = None,
) -> list[GradeResult]:
    """Grade a batch into ``out_dir`` and return the results in the order given.

    ``on_tampering`` is told what in the output folder changed while kernels ran (a planted
    student's result, say), after the folder is put right; the class overview lists it.

    Prepares the data once, starts the verifier and checks the environment (the preflight)
    only when some notebook must run, grades — here with ``workers`` kernels (spread over
    ``gpus``), or on the dask cluster at ``dask_scheduler`` (an address, or a
    ``distributed.Client``) — and cleans up. One batch per output folder at a time.
    """
    session = GradingSession(rubric, out_dir, options)
    seal = RunSeal()
    with session.store.lock():  # one batch per output folder; a killed batch's lock is released
        session.store.clean_leftovers()
        # Before any kernel starts: what lies in the output folder now is what this run trusts.
        seal.take_manifest(session.store.out_dir)
        session.store.seal = seal
        results: list[GradeResult] | None = None
        try:
            session.prepare_data(start_verifier=False)
            options = session.options
            pending = pending_executions(session, submissions)
            if dask_scheduler is not None:
                from grader.batch.dask import grade_on_cluster

                results = grade_on_cluster(session, submissions, dask_scheduler, pending=pending,
                                           on_start=on_start, on_result=on_result)
            else:
                if pending:
                    session.start_verifier()  # its Keras import overlaps the first notebooks
                    if options.preflight:
                        run_preflight(session.settings(), list(getattr(rubric, "packages", [])))
                envs = kernel_environments(workers + 1, gpus)
                # Every kernel carries the run's marker, so what it leaves running is found and killed.
                results = asyncio.run(grade_submissions(session, submissions, workers=workers, kernel_env=envs,
                                                        on_start=on_start, on_result=on_result, marker=seal.run_id))
            shared = shared_environment_errors(results)
            if shared:
                mark_environment_problem(results, shared)
                for result in results:
                    session.store.save_result(result)
            from grader.findings.identical import flag_identical

            for result in flag_identical(results):  # both students' results say it
                session.store.save_result(result)
        finally:
            try:
                sweep(seal.run_id)  # daemons that left their kernel's process tree
                verify_store(seal, session.store.out_dir)
            finally:
                session.close()
        if seal.tampered:
            _write_tampering_log(session.store.out_dir / TAMPERING_LOG, seal.tampered)
        assert results is not None  # set, or the try above raised
        _tell_tampering(session, results, seal.tampered)
        if on_tampering is not None and seal.tampered:
            on_tampering(list(seal.tampered))
        return results


def _write_tampering_log(path: Path, found: list[Tampering]) -> None:
    """Add this run's findings to ``tampering.log`` beside the results, for the instructor."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    lines = [f"{RUN_SEPARATOR} {when} · {len(found)} stored file(s) changed behind the grader's back {RUN_SEPARATOR}"]
    lines += [printable(item.message()) for item in found]
    try:
        earlier = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        write_atomic(path, _bounded_log(earlier + b"\n" if earlier else b"", ("\n".join(lines) + "\n").encode("utf-8"),
                                        GRADING_LOG_BYTES))
    except OSError as exc:  # the warnings in the log said it already
        logging.getLogger(__name__).warning("could not write %s: %s", path, exc)


def _tell_tampering(session: GradingSession, results: list[GradeResult], found: list[Tampering]) -> None:
    """Say on each result whose stored files a notebook changed what happened to them, so the
    class overview shows it (the files are put right by then: grader.store.seal.verify_store)."""
    by_student: dict[str, list[Tampering]] = {}
    for item in found:  # stored executions are not a student's (their key is): the log names them
        if item.student:
            by_student.setdefault(item.student, []).append(item)
    for result in results:
        items = by_student.get(result.student.key)
        if not items:
            continue
        what = "; ".join(f"{item.path}: {item.action}" for item in items)
        result.problems.append(SubmissionProblem(
            "note", "this submission's stored result was tampered with during grading (changed by a process that "
                    f"was not the grader, with notebooks running without a sandbox): {what}. The grade shown is the "
                    "grader's own."))
        session.store.save_result(result)


def failed_result(session: GradingSession, submission: Submission, why: str, detail: str = "") -> GradeResult:
    """A result for a submission the grader could not grade at all (a cluster worker lost)."""
    from grader import __version__

    rubric = session.rubric
    return GradeResult(
        student=submission.student, path=str(submission.path), rubric=str(getattr(rubric, "path", "") or ""),
        assignment=getattr(rubric, "title", "") or getattr(rubric, "name", ""),
        max_score=float(getattr(rubric, "max_points", 0.0)), fast_mode=bool(session.options.fast),
        grader_version=__version__, problems=[SubmissionProblem("internal", why, detail)],
    )
