"""Grading many submissions: overlap, parallelism, progress, and nothing lost on a crash.

``workers`` notebooks run at once, each in its own kernel process; one more kernel is started
ahead, so its start-up (about a second) overlaps the notebook that is running, and finished
kernels are shut down in the background. Every result is stored atomically as soon as it is
known, so a batch that is killed and started again skips what was finished.

Example::

    results = grade_batch(submissions, rubric, Path("out"), workers=2)
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Callable

from grader.execute import drain_shutdowns, shutdown_in_background
from grader.grading import GradingOptions, GradingSession
from grader.preflight import mark_environment_problem, run_preflight, shared_environment_errors
from grader.results import GradeResult
from grader.submissions import Submission


def default_workers() -> int:
    """One kernel per core, at most one per 3 GiB of memory (a TensorFlow kernel that trains takes
    about 2.4 GB). Notebooks spend much of their time outside training (start-up, imports, saving,
    plotting), so two on two cores finish sooner than one after the other."""
    cores = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 2**30
    return max(1, min(cores, memory // (3 * 2**30)))


async def grade_submissions(
    session: GradingSession,
    submissions: list[Submission],
    *,
    workers: int = 1,
    on_start: Callable[[Submission], None] | None = None,
    on_result: Callable[[Submission, GradeResult], None] | None = None,
) -> list[GradeResult]:
    """Grade ``submissions`` with ``workers`` kernels running and one starting ahead."""
    alive = asyncio.Semaphore(workers + 1)  # kernels in existence: running + the one started ahead
    running = asyncio.Semaphore(workers)
    results: dict[int, GradeResult] = {}

    async def job(position: int, submission: Submission) -> None:
        async with alive:
            started = await session.start(submission)
            try:
                async with running:
                    if on_start:
                        on_start(submission)
                    result = await session.finish(started)
            except asyncio.CancelledError:
                if started.prepared is not None:
                    shutdown_in_background(started.prepared)
                raise
        session.store.save_result(result)
        results[position] = result
        if on_result:
            on_result(submission, result)

    try:
        await asyncio.gather(*(job(i, s) for i, s in enumerate(submissions)))
    finally:
        await drain_shutdowns()
    return [results[i] for i in sorted(results)]


def grade_batch(
    submissions: list[Submission],
    rubric,
    out_dir: Path,
    *,
    options: GradingOptions | None = None,
    workers: int = 1,
    on_start: Callable[[Submission], None] | None = None,
    on_result: Callable[[Submission, GradeResult], None] | None = None,
) -> list[GradeResult]:
    """Synchronous entry point: prepares the data and the verifier once, grades, cleans up."""
    session = GradingSession(rubric, out_dir, options)
    with session.store.lock():  # one batch per output folder; a killed batch's lock is released
        session.store.clean_leftovers()
        try:
            session.prepare_data()
            options = session.options
            if options.preflight and not options.static:
                run_preflight(session.settings(), list(getattr(rubric, "packages", [])))
            results = asyncio.run(grade_submissions(session, submissions, workers=workers, on_start=on_start, on_result=on_result))
            shared = shared_environment_errors(results)
            if shared:
                mark_environment_problem(results, shared)
                for result in results:
                    session.store.save_result(result)
            return results
        finally:
            session.close()
