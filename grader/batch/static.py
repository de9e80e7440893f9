"""Grading a batch from the outputs saved in the notebooks (``--static``), on every core.

Nothing runs: each submission is read, parsed and checked (:data:`grader.pipeline.stages.STATIC`),
which takes tens of milliseconds, so a class is CPU work for seconds. With more than one core and
more than a handful of submissions, worker processes (forked: they share the session, nothing is
imported again) grade the submissions and turn each result into the bytes of its ``result.json``;
this process stores them, in the order given, as the kernel runner does — sealed, with their
``grading.log`` entries. Results and logs are not flushed to disk one by one (``fsync``): the rename
still keeps a reader from half a file, and a batch cut short is graded again in seconds.

Example::

    results = grade_static(session, submissions, processes=2)
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from grader.batch.log import keep_logs
from grader.collect import Submission
from grader.model.results import GradeResult
from grader.pipeline.session import GradingSession
from grader.pipeline.stages import grade
from grader.store.result_store import result_bytes

__all__ = ["grade_static", "static_processes"]

OnStart = Callable[[Submission], None]
OnResult = Callable[[Submission, GradeResult], None]

# Below this many submissions starting the workers costs more than it saves.
POOL_FROM = 8
# Submissions a worker takes at a time: few round trips, and the results still come back in step.
CHUNK = 4

_SESSION: GradingSession | None = None  # the batch's session, in a forked worker


def static_processes() -> int:
    """The processes a static batch grades in: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, the loop this process grades in)


def _loop() -> asyncio.AbstractEventLoop:
    """This process's event loop, made once: a forked worker makes its own. Not ``asyncio.run``
    per submission: on Python 3.11 each call formats the repr of its task's result (the whole
    run, notebook and evidence), which cost more than reading the outputs."""
    global _LOOP
    if _LOOP is None or _LOOP[0] != os.getpid() or _LOOP[1].is_closed():
        _LOOP = (os.getpid(), asyncio.new_event_loop())
    return _LOOP[1]


def _close_loop() -> None:
    global _LOOP
    if _LOOP is not None and _LOOP[0] == os.getpid():
        _LOOP[1].close()
    _LOOP = None


def _compile_report_templates() -> None:
    try:
        from grader.report.render import compile_templates

        compile_templates()
    except Exception:  # a template that does not compile is reported when its page is drawn
        logging.getLogger(__name__).debug("report templates not compiled ahead", exc_info=True)


def _graded(session: GradingSession, submission: Submission) -> tuple[GradeResult, str, dict[str, float]]:
    """One submission's result, its key and its stage timings; whatever happens, a result."""
    try:
        run = _loop().run_until_complete(grade(session, submission))
        result = run.result
        if result is None:  # the stages never got to the result: a runner's fault, this submission's loss
            result = session.failed_result(submission, f"internal grader error: {run.error.message if run.error else '?'}",
                                           run.error.detail if run.error else "")
        return result, run.key, run.timings
    except Exception as exc:  # outside any stage: this submission only
        return (session.failed_result(submission, f"it could not be graded: {type(exc).__name__}: {exc}",
                                      traceback.format_exc()[-4000:]), "", {})


def _in_worker(submission: Submission) -> tuple[GradeResult, str, dict[str, float], bytes]:
    assert _SESSION is not None
    result, key, timings = _graded(_SESSION, submission)
    return result, key, timings, result_bytes(result)


def _keep(session: GradingSession, submission: Submission, result: GradeResult, key: str,
          timings: dict[str, float], data: bytes | None) -> None:
    session.store.save_result(result, data=data)
    keep_logs(session.store.result_path(result.student.key).parent, result, key=key, timings=timings,
              reused=False, sync=session.store.sync)


def grade_static(
    session: GradingSession,
    submissions: list[Submission],
    *,
    processes: int | None = None,
    on_start: OnStart | None = None,
    on_result: OnResult | None = None,
) -> list[GradeResult]:
    """Grade ``submissions`` from their saved outputs in ``processes`` processes (default: one per
    core) and store each result; returns them in the order given."""
    session.store.sync = False
    processes = processes or static_processes()
    results: list[GradeResult] = []

    def done(submission: Submission, result: GradeResult, key: str, timings: dict[str, float],
             data: bytes | None) -> None:
        if on_start:
            on_start(submission)
        _keep(session, submission, result, key, timings, data)
        results.append(result)
        if on_result:
            on_result(submission, result)

    if processes > 1 and len(submissions) >= POOL_FROM and "fork" in multiprocessing.get_all_start_methods():
        global _SESSION
        _SESSION = session
        ahead: threading.Thread | None = None
        try:
            with ProcessPoolExecutor(min(processes, len(submissions)),
                                     mp_context=multiprocessing.get_context("fork")) as pool:
                graded = pool.map(_in_worker, submissions, chunksize=CHUNK)
                # Every worker is forked by now (map submits them all). This process mostly waits
                # for them: it compiles the report templates meanwhile, which the reports drawn
                # next (forked in turn) would otherwise compile first, with one core idle.
                ahead = threading.Thread(target=_compile_report_templates, name="nn-grader-templates", daemon=True)
                ahead.start()
                for submission, (result, key, timings, data) in zip(submissions, graded):
                    done(submission, result, key, timings, data)
        except BrokenProcessPool:  # a worker died (out of memory?): the rest are graded here
            pass
        finally:
            _SESSION = None
            if ahead is not None:
                ahead.join()  # before anything forks again
    try:
        for submission in submissions[len(results):]:
            result, key, timings = _graded(session, submission)
            done(submission, result, key, timings, None)
    finally:
        _close_loop()
    return results
