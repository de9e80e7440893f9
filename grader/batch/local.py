"""Grading many submissions: overlap, parallelism, GPUs, a cluster, and nothing lost on a crash.

``workers`` notebooks run at once, each in its own kernel process; one more kernel is started
ahead, so its start-up (about a second) overlaps the notebooks that are running, and finished
kernels are shut down in the background. Every result is stored atomically as soon as it is
known, so a batch that is killed and started again skips what was finished (the store reuses
the evidence of every execution that completed; see :mod:`grader.store.result_store`).

Each submission goes through its mode's stage list (:mod:`grader.pipeline.stages`): this
runner only schedules them. The stages marked ``ahead`` (reading the file, starting its kernel)
run while a kernel slot is held; the rest wait for a worker, which is free again as soon as the
stage that ``ends_kernel`` has run. On a machine with NVIDIA GPUs the kernels share them
(:mod:`grader.batch.gpus`).
With ``dask_scheduler`` the same per-submission job runs on a dask.distributed cluster
(:mod:`grader.batch.dask`); results come back and are stored here, by this process.

Next to each ``result.json`` a ``grading.log`` says what happened to the submission (the time
of each stage, cell errors, limits) and ``kernel.log`` keeps what its kernel printed
(:mod:`grader.batch.log`).

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
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable

from grader.batch.gpus import Gpu, kernel_environments
from grader.batch.log import TAMPERING_LOG, keep_execution, keep_logs, write_tampering_log
from grader.collect import Submission
from grader.config import GradingOptions
from grader.execute.preflight import mark_environment_problem, run_preflight, shared_environment_errors
from grader.model.results import GradeResult, SubmissionProblem
from grader.pipeline.run import Stage, SubmissionRun, run_stage
from grader.pipeline.session import GradingSession
from grader.pipeline.stages import stages_for
from grader.store.seal import RUN_MARKER, RunSeal, Tampering, sweep, verify_store

__all__ = ["grade_submissions", "grade_batch", "pending_executions"]

OnStart = Callable[[Submission], None]
OnResult = Callable[[Submission, GradeResult], None]


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
    :func:`grader.batch.gpus.kernel_environments`). Each result is stored, with its log, as soon
    as it is known. Cancelled (Ctrl-C), it stops every kernel it started before it returns. With
    ``marker`` (the run's id, :class:`grader.store.seal.RunSeal`) every kernel carries
    ``NN_GRADER_RUN=<marker>.<n>``, and what a kernel left running is killed as soon as its
    notebook has run, before the next notebook starts (:func:`grader.store.seal.sweep`).
    """
    # The kernel machinery is imported where kernels run: a static batch starts without it.
    from grader.execute.client import drain_shutdowns, shutdown_in_background
    from grader.execute.sandbox import kill_orphans

    workers = max(1, int(workers))
    envs = kernel_env or [{} for _ in range(workers + 1)]
    stages = stages_for(session)
    ahead = tuple(stage for stage in stages if stage.ahead)
    rest = tuple(stage for stage in stages if not stage.ahead)
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

        def executed() -> None:
            try:
                if marker is not None:  # daemons that left the kernel's tree, before the next notebook runs
                    sweep(env[RUN_MARKER])
                    kill_orphans()  # and what came back to the grader when its keeper died
            except Exception:  # the sweep at the end of the batch tries again
                logging.getLogger(__name__).exception("could not look for processes the notebook left")
            finally:
                release()

        env = envs[slot % len(envs)]
        if marker is not None:
            env = {**env, RUN_MARKER: f"{marker}.{position}"}
        run = SubmissionRun(submission, env=dict(env))
        try:
            try:
                await _ahead(session, run, ahead)
                await running.acquire()
                held["running"] = True
                if on_start:
                    on_start(submission)
                for stage in rest:
                    await run_stage(stage, session, run)
                    if stage.ends_kernel and run.execution is not None:  # the kernel is done: start the next
                        executed()
            except asyncio.CancelledError:
                if run.prepared is not None:
                    shutdown_in_background(run.prepared, stopping=True)
                raise
            result = run.result
            if result is None:  # the stages never got to the result: a runner's fault, this submission's loss
                result = session.failed_result(submission, f"internal grader error: {run.error.message if run.error else '?'}",
                                               run.error.detail if run.error else "")
        except Exception as exc:  # outside any stage: this submission only
            result = session.failed_result(submission, f"it could not be graded: {type(exc).__name__}: {exc}",
                                           traceback.format_exc()[-4000:])
        finally:
            release()
        execution = keep_execution(session.store, run.key, result, run.timings, reused=run.reused,
                                   executed=run.executed)
        # The log first: a batch killed in between then leaves a log whose result is graded again,
        # never a stored result without the log of the run that made it.
        folder = session.store.result_path(result.student.key).parent
        folder.mkdir(parents=True, exist_ok=True)
        keep_logs(folder, result, key=run.key, timings=run.timings,
                  reused=run.reused, workdir=run.workdir, gpu=env.get("CUDA_VISIBLE_DEVICES"), execution=execution)
        session.store.save_result(result)
        if run.executed and run.workdir is not None:
            task = asyncio.ensure_future(_remove_when_stopped(run))
            cleanups.add(task)
            task.add_done_callback(cleanups.discard)
        results[position] = result
        if on_result:
            on_result(submission, result)

    try:
        await asyncio.gather(*(job(i, s) for i, s in enumerate(submissions)))
    except asyncio.CancelledError:
        _quiet_stopped_cells(asyncio.get_running_loop())
        _arm_watchdog(marker)
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


# After Ctrl-C the running kernels are stopped and the batch's records put right; a shutdown that
# hangs there (a kernel client that never lets go) must not keep the grader from exiting.
STUCK_AFTER_CTRL_C_S = 20.0
_WATCHDOG: threading.Timer | None = None


def _arm_watchdog(marker: str | None) -> None:
    """Exit (130) if stopping takes longer than STUCK_AFTER_CTRL_C_S, the kernels and what they
    started killed by their marker first; finished results are stored already, the lock goes
    with the process. Disarmed when the batch's cleanup is done (:func:`_disarm_watchdog`)."""
    global _WATCHDOG
    if _WATCHDOG is not None:
        return
    from grader.execute.sandbox import kill_orphans  # here, not in the timer's thread

    def give_up() -> None:
        try:
            if marker is not None:
                sweep(marker)
            kill_orphans()
        except Exception:
            pass
        sys.stderr.write("grade: stopped (Ctrl-C); finished results are kept, run the same command to resume "
                         f"(stopping the kernels took over {STUCK_AFTER_CTRL_C_S:.0f} s: they were killed)\n")
        sys.stderr.flush()
        os._exit(130)

    _WATCHDOG = threading.Timer(STUCK_AFTER_CTRL_C_S, give_up)
    _WATCHDOG.daemon = True
    _WATCHDOG.start()


def _disarm_watchdog() -> None:
    global _WATCHDOG
    if _WATCHDOG is not None:
        _WATCHDOG.cancel()
        _WATCHDOG = None


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


async def _ahead(session: GradingSession, run: SubmissionRun, stages: tuple[Stage, ...]) -> None:
    """The stages that go ahead of a worker, but a cancellation while the kernel starts still stops it.

    Cancelled half-way, they would leave a kernel that nobody holds; so they run to their end
    (a few seconds at most) and the kernel is shut down before the cancellation goes on."""

    async def go() -> None:
        for stage in stages:
            await run_stage(stage, session, run)

    from grader.execute.client import shutdown_in_background

    task = asyncio.ensure_future(go())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(task, timeout=60)
        except BaseException:
            task.cancel()
            raise asyncio.CancelledError from None
        if run.prepared is not None:
            shutdown_in_background(run.prepared, stopping=True)
        raise


async def _remove_when_stopped(run: SubmissionRun, wait_s: float = 60.0) -> None:
    """Remove a kernel's working folder once the kernel is gone: the evidence and its files are
    in the store by now, and a batch of a thousand notebooks must not fill the disk."""
    assert run.prepared is not None and run.workdir is not None
    km = run.prepared.km
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        try:
            if not await km.is_alive():
                break
        except Exception:
            break
        await asyncio.sleep(0.2)
    for folder in (run.workdir, run.workdir.parent / ".sealed" / run.workdir.name):  # and its sealed bundle
        await loop.run_in_executor(None, shutil.rmtree, folder, True)


# ---------------------------------------------------------------------------------------------
# The batch


def pending_executions(session: GradingSession, submissions: list[Submission]) -> list[Submission]:
    """The submissions whose notebook must run: those without stored evidence (all with
    ``force``; none in static mode). A file that cannot be read needs no kernel either."""
    if session.config.static:
        return []
    if session.config.force:
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
    runs_kernels = not session.config.static and dask_scheduler is None
    if runs_kernels:
        _before_kernels(session)
    with session.store.lock():  # one batch per output folder; a killed batch's lock is released
        session.store.clean_leftovers()
        # Before any kernel starts: what lies in the output folder now is what this run trusts
        # (once it is checked against what the previous batch sealed when it ended).
        seal.take_manifest(session.store.out_dir)
        session.store.seal = seal
        if runs_kernels and session.config.sandbox == "none":
            from grader.execute.sandbox import keep_from_kernel_users

            keep_from_kernel_users(files=[session.config.hidden_test], folders=[session.store.store_dir])
        results: list[GradeResult] | None = None
        try:
            session.prepare_data(start_verifier=False)
            seal.take_data(session.store.out_dir)  # the dataset copies it prepared, before any kernel
            pending = pending_executions(session, submissions)
            if dask_scheduler is not None:
                from grader.batch.dask import grade_on_cluster

                results = grade_on_cluster(session, submissions, dask_scheduler, pending=pending,
                                           on_start=on_start, on_result=on_result)
            elif session.config.static:  # nothing runs: every core parses and checks
                from grader.batch.static import grade_static

                results = grade_static(session, submissions, on_start=on_start, on_result=on_result)
            else:
                if pending:
                    session.start_verifier()  # its Keras import overlaps the first notebooks
                    if session.config.preflight:
                        run_preflight(session.settings(), list(session.config.packages))
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
                if runs_kernels:  # (imported by _before_kernels)
                    from grader.execute.sandbox import release_orphans, sweep_kernels

                    sweep_kernels()  # and those that scrubbed their environment too
                    release_orphans()
                verify_store(seal, session.store.out_dir)
                if results is None:  # stopped half-way: what it leaves is what the next batch trusts
                    seal.save(session.store.out_dir)
            finally:
                session.close()
                _disarm_watchdog()
        if seal.tampered:
            write_tampering_log(session.store.out_dir / TAMPERING_LOG, seal.tampered)
        assert results is not None  # set, or the try above raised
        _tell_tampering(session, results, seal.tampered)
        # No kernel is left: the next batch checks the folder against these seals before its first.
        seal.save(session.store.out_dir)
        if on_tampering is not None and seal.tampered:
            on_tampering(list(seal.tampered))
        return results


def _before_kernels(session: GradingSession) -> None:
    """What a batch that runs kernels does before the first: what a kernel leaves behind comes
    back to the grader (a subreaper), and without a sandbox the grader's memory and environment
    are no other process's to read (not dumpable)."""
    from grader.execute.sandbox import adopt_orphans, make_undumpable

    adopt_orphans()
    if session.config.sandbox == "none":
        make_undumpable()


def _tell_tampering(session: GradingSession, results: list[GradeResult], found: list[Tampering]) -> None:
    """Say on each result whose stored files a notebook changed what happened to them, so the
    class overview shows it (the files are put right by then: grader.store.seal.verify_store)."""
    by_student: dict[str, list[Tampering]] = {}
    for item in found:  # stored executions are not a student's (their key is): the log names them
        if item.student:
            by_student.setdefault(item.student, []).append(item)
    data = [item for item in found if item.what == "data" and not item.before]
    for result in results:
        items = by_student.get(result.student.key, []) + data
        if not items:
            continue
        what = "; ".join(f"{item.path}: {item.action}" for item in items)
        when = "during grading" if any(not item.before for item in items) else "between two batches"
        result.problems.append(SubmissionProblem(
            "note", f"this submission's stored result was tampered with {when} (changed by a process that "
                    f"was not the grader, with notebooks running without a sandbox): {what}. The grade shown is the "
                    "grader's own."))
        session.store.save_result(result)
