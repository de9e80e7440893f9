"""Grading on a dask.distributed cluster: the same per-submission job, on many machines.

The driver (``grade ... --dask tcp://scheduler:8786``) keeps everything that is stored: it
decides what must run (the result store on its side knows what is finished), submits one task
per notebook that must run, and stores each result, with its evidence, as it comes back — so a
cluster batch resumes like a local one. Submissions with stored evidence are re-checked on the
driver without a cluster round trip.

The task is :func:`grade_submission_job`, a plain function of JSON values (paths, the student,
the rubric's path, the options) that returns JSON: nothing is pickled but text, and no open
resource travels. Each worker process keeps one :class:`~grader.pipeline.session.GradingSession` per
rubric and options (a module-level cache), so the data is prepared and the verifier's Keras
import happens once per worker, not once per notebook. Paths must mean the same on the workers
as on the driver: a shared file system, as on a SLURM cluster (see docs/cluster.md).

Example (a local cluster, as in the tests)::

    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        results = grade_batch(submissions, rubric, Path("out"), dask_scheduler=client)
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from grader.batch.gpus import GPU_GROWTH_ENV, detect_gpus
from grader.batch.log import keep_execution, read_log_tail, write_submission_log
from grader.collect import Submission
from grader.config import GradingOptions
from grader.errors import UsageError
from grader.model.results import GradeResult, Student
from grader.pipeline.run import SubmissionRun
from grader.pipeline.session import GradingSession
from grader.pipeline.stages import grade

__all__ = ["grade_submission_job", "grade_on_cluster", "options_to_json", "options_from_json"]


# ---------------------------------------------------------------------------------------------
# The worker side


def options_to_json(options: GradingOptions) -> dict[str, Any]:
    """:class:`GradingOptions` as JSON values (paths as text)."""
    data = dataclasses.asdict(options)
    for name, value in data.items():
        if isinstance(value, Path):
            data[name] = str(value)
    return data


def options_from_json(data: dict[str, Any]) -> GradingOptions:
    known = {f.name for f in dataclasses.fields(GradingOptions)}
    values = {k: v for k, v in data.items() if k in known}
    if values.get("hidden_test"):
        values["hidden_test"] = Path(values["hidden_test"])
    return GradingOptions(**values)


class _WorkerSessions:
    """The grading sessions of one worker process, by rubric and options; closed at exit."""

    def __init__(self) -> None:
        self.sessions: dict[str, tuple[GradingSession, threading.Lock]] = {}
        self.lock = threading.Lock()
        atexit.register(self.close)

    def get(self, rubric_path: str, options: dict[str, Any]) -> tuple[GradingSession, threading.Lock]:
        from grader.rubric.load import load_rubric

        rubric_file = Path(rubric_path)
        stamp = ""
        if rubric_file.is_file():  # an edited rubric is a new session
            stat = rubric_file.stat()
            stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
        name = hashlib.sha256(json.dumps([rubric_path, stamp, options], sort_keys=True).encode()).hexdigest()
        with self.lock:
            if name not in self.sessions:
                worker_options = options_from_json(options)
                # The driver sends only what must run, and keeps what is stored: the worker
                # executes what it is given, and its own store is scratch space.
                worker_options.force = True
                worker_options.preflight = False
                out = Path(tempfile.mkdtemp(prefix="nn-grader-dask-", dir=_worker_scratch()))
                session = GradingSession(load_rubric(rubric_path), out, worker_options)
                session.prepare_data(start_verifier=True)
                self.sessions[name] = (session, threading.Lock())
            return self.sessions[name]

    def close(self) -> None:
        with self.lock:
            for session, _ in self.sessions.values():
                session.close()
                shutil.rmtree(session.out_dir, ignore_errors=True)
            self.sessions.clear()


_SESSIONS = _WorkerSessions()


def _worker_scratch() -> str | None:
    """The dask worker's own scratch folder, which dask removes with the worker (a nanny may
    stop a worker process without running its exit handlers); None outside a worker."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError, AttributeError):
        return None


def grade_submission_job(submission_path: str, student: dict[str, Any], rubric_path: str,
                         options: dict[str, Any]) -> dict[str, Any]:
    """Grade one submission on this machine; the dask task.

    Arguments and answer are JSON values. The answer holds ``result`` (the
    :class:`~grader.model.results.GradeResult` as JSON, evidence included), ``timings`` (seconds per
    stage), ``kernel_log`` (the end of what the kernel printed) and ``host``. The kernel's
    working folder and the saved weights stay on the worker and are removed: the verification
    that needs the weights has run here.
    """
    from grader.model.evidence import from_json

    session, one_at_a_time = _SESSIONS.get(rubric_path, options)
    submission = Submission(path=Path(submission_path), student=from_json(Student, student))
    # One kernel per worker process: kernel shutdowns are tracked per process (grader.execute.client),
    # so a worker with several threads grades its notebooks one after the other.
    with one_at_a_time:
        run = asyncio.run(_grade(session, submission))
    assert run.result is not None  # the stages set it whatever happens
    kernel_log = ""
    if run.workdir is not None:
        kernel_log = (read_log_tail(run.workdir / ".nn-grader" / "kernel.log") or b"").decode("utf-8", "replace")
        for folder in (run.workdir, run.workdir.parent / ".sealed" / run.workdir.name):
            shutil.rmtree(folder, ignore_errors=True)
    if run.key:
        shutil.rmtree(session.store.entry_dir(run.key), ignore_errors=True)
    return {"result": run.result.to_json(), "timings": run.timings, "kernel_log": kernel_log,
            "host": f"{socket.gethostname()} (pid {os.getpid()})"}


async def _grade(session: GradingSession, submission: Submission) -> SubmissionRun:
    from grader.execute.client import drain_shutdowns

    try:
        return await grade(session, submission, env=_gpu_env())
    finally:
        await drain_shutdowns()  # the kernel is gone before its folder is removed


@functools.lru_cache(maxsize=None)
def _has_gpu() -> bool:
    return bool(detect_gpus())


def _gpu_env() -> dict[str, str]:
    # A worker started by a cluster job sees the GPUs that job was given (CUDA_VISIBLE_DEVICES,
    # which the kernel inherits); kernels there grow their GPU memory as they need it.
    return dict(GPU_GROWTH_ENV) if _has_gpu() else {}


# ---------------------------------------------------------------------------------------------
# The driver side


def grade_on_cluster(session: GradingSession, submissions: list[Submission], scheduler: Any, *,
                     pending: list[Submission] | None = None, on_start=None, on_result=None) -> list[GradeResult]:
    """Grade ``submissions``: ``pending`` ones (default: all) as tasks on the cluster at
    ``scheduler`` (an address or a ``distributed.Client``), the rest here from stored evidence.

    Each result is stored by ``session.store`` as it comes back, with its evidence (so that a
    rubric change re-checks it without the cluster) and its ``grading.log``. A task that fails
    (a worker lost twice, an error outside the grader's handling) becomes a result with an
    ``internal`` problem; the batch goes on.
    """
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise UsageError("--dask needs dask.distributed: pip install 'nn-grader[dask]'") from exc
    from grader.store.atomic import write_atomic

    rubric_path = session.config.rubric_path
    if not rubric_path:
        raise UsageError("grading on a cluster needs the rubric as a file the workers can read")
    rubric_path = str(Path(rubric_path).resolve())
    options = options_to_json(session.options)
    pending = list(submissions) if pending is None else pending
    remote = {id(s) for s in pending}
    settings = session.settings()
    own_client = not isinstance(scheduler, Client)
    client = Client(scheduler) if own_client else scheduler
    results: dict[int, GradeResult] = {}

    def finish(position: int, submission: Submission, result: GradeResult, *, key: str, timings: dict,
               kernel_log: str | None, where: str | None, reused: bool = False) -> None:
        folder = session.store.result_path(submission.student.key).parent
        executed = bool(key and result.evidence is not None and result.mode == "executed" and not reused)
        if executed:
            session.store.save_evidence(key, result.evidence, None)
        execution = keep_execution(session.store, key, result, timings, reused=reused, executed=executed)
        session.store.save_result(result)
        if kernel_log is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / "kernel.log", kernel_log.encode("utf-8"))
        write_submission_log(folder / "grading.log", result, key=key, timings=timings, reused=reused, execution=execution,
                             kernel_log=folder / "kernel.log" if kernel_log is not None else None, where=where)
        results[position] = result
        if on_result:
            on_result(submission, result)

    futures = {}
    try:
        for position, submission in enumerate(submissions):
            if id(submission) not in remote:
                continue
            try:
                key = session.key_for(submission, settings)
            except OSError:
                key = ""
            student = dataclasses.asdict(submission.student)
            future = client.submit(grade_submission_job, str(Path(submission.path).resolve()), student, rubric_path,
                                   options, key=f"grade-{submission.student.key}-{time.monotonic_ns()}", pure=False)
            futures[future] = (position, submission, key)
        # What is stored is re-checked here while the cluster works.
        local = [(i, s) for i, s in enumerate(submissions) if id(s) not in remote]
        if local:
            asyncio.run(_grade_local(session, local, finish, on_start))
        for future in as_completed(list(futures)):
            position, submission, key = futures.pop(future)
            try:
                answer = future.result()
                result = GradeResult.from_json(answer["result"])
            except Exception as exc:  # a lost worker, a task that could not run
                result = session.failed_result(submission, f"the cluster could not grade this notebook: "
                                       f"{type(exc).__name__}: {exc}", traceback.format_exc()[-4000:])
                finish(position, submission, result, key="", timings={}, kernel_log=None, where=None)
                continue
            finish(position, submission, result, key=key, timings=answer.get("timings") or {},
                   kernel_log=answer.get("kernel_log"), where=f"worker {answer.get('host', '?')}")
    finally:
        if futures:  # stopped early (Ctrl-C): nothing more runs for this batch
            client.cancel(list(futures))
        if own_client:
            client.close()
    return [results[i] for i in sorted(results)]


async def _grade_local(session: GradingSession, items, finish, on_start) -> None:
    for position, submission in items:
        if on_start:
            on_start(submission)
        run = await grade(session, submission)
        assert run.result is not None  # the stages set it whatever happens
        finish(position, submission, run.result, key=run.key, timings=run.timings, kernel_log=None,
               where=None, reused=run.reused)
