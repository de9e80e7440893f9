"""One submission's way through the pipeline: the :class:`SubmissionRun` record and the
:class:`Stage` that reads and writes it.

Each stage is a named step (``load``, ``execute``, ``verify`` ...); :func:`run_stage` runs one
and records its seconds under the stage's timing name (the lines of ``grading.log``). A stage
that finds something wrong with the submission sets :attr:`SubmissionRun.problem`: the
stages that need a sound submission are skipped and the result says why. A stage that raises
is a grader bug, and costs this submission only: its result gets an ``internal`` problem and
the remaining stages are skipped; the batch goes on.
"""

from __future__ import annotations

import inspect
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import nbformat

from grader.collect import Submission
from grader.execute.settings import ExecutionSettings
from grader.model.evidence import Evidence
from grader.model.results import GradeResult, SubmissionProblem

if TYPE_CHECKING:  # the kernel machinery, imported where kernels run
    from grader.execute.client import Execution, PreparedRun

__all__ = ["SubmissionRun", "Stage", "run_stage", "sound", "always"]


@dataclass
class SubmissionRun:
    """Everything known about one submission while it is graded, stage by stage."""

    submission: Submission
    began: float = field(default_factory=time.perf_counter)
    env: dict[str, str] = field(default_factory=dict)  # this kernel's own variables (its GPU); not in the key
    nb: nbformat.NotebookNode | None = None
    data: bytes | None = None  # the file's bytes, read once: parsed, hashed, keyed (then dropped)
    saved: Evidence | None = None  # parsed from the outputs saved in the submitted file
    blanks: list[tuple[int, str]] = field(default_factory=list)  # template placeholders
    had_outputs: bool = True
    hashes: tuple[str, str] = ("", "")  # (notebook bytes, normalised code cells): grader.findings.identical
    settings: ExecutionSettings | None = None
    key: str = ""  # the result key (grader.store.result_store.result_key)
    problem: SubmissionProblem | None = None  # the submission cannot be graded further, and why
    error: SubmissionProblem | None = None  # a stage failed: the grader's fault, not the student's
    evidence: Evidence | None = None
    reused: bool = False  # the evidence came from the store; the notebook does not run again
    workdir: Path | None = None  # the kernel's working folder, when it is executed
    prepared: PreparedRun | None = None  # the started kernel
    execution: Execution | None = None
    result: GradeResult | None = None
    # Seconds per timing name, in order ("load", "kernel start", "execute", ...): the submission's log.
    timings: dict[str, float] = field(default_factory=dict)
    _mark: float = 0.0

    @property
    def executed(self) -> bool:
        """A kernel was started for this submission (its folder and shutdown are the runner's)."""
        return self.prepared is not None

    def lap(self, name: str) -> None:
        """Add the seconds since the last lap (or the start) to ``name``."""
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - (self._mark or self.began)
        self._mark = now


def sound(session: Any, run: SubmissionRun) -> bool:
    """The default condition of a stage: nothing has stopped this submission."""
    return run.problem is None and run.error is None


def always(session: Any, run: SubmissionRun) -> bool:
    """The condition of a stage that runs whatever happened (the result, its duration)."""
    return True


@dataclass(frozen=True)
class Stage:
    """One step of grading a submission.

    ``when(session, run)`` says whether the stage applies. ``timing`` is the name its seconds
    are logged under in ``grading.log`` (several stages may share one; ``None`` counts them with
    the next stage that is timed), when ``timed(session, run)`` holds after it ran: a stage that
    found the submission unsound, or found nothing to do, leaves its seconds to the next. ``ahead``: the stage may
    run before a worker is free (reading the file, starting its kernel), so a batch overlaps it
    with the notebooks that run. ``ends_kernel``: once it has run, the kernel is done and a
    batch may start the next notebook."""

    name: str
    do: Callable[[Any, SubmissionRun], Awaitable[None] | None]
    timing: str | None = ""  # "": the stage's name
    when: Callable[[Any, SubmissionRun], bool] = sound
    timed: Callable[[Any, SubmissionRun], bool] = sound
    ahead: bool = False
    ends_kernel: bool = False

    @property
    def timing_name(self) -> str | None:
        return self.name if self.timing == "" else self.timing


async def run_stage(stage: Stage, session: Any, run: SubmissionRun) -> None:
    """Run ``stage`` on ``run`` if it applies; an exception becomes the submission's problem."""
    if not stage.when(session, run):
        return
    try:
        done = stage.do(session, run)
        if inspect.isawaitable(done):
            await done
    except Exception as exc:  # a grader bug must cost one submission, not the batch
        run.error = SubmissionProblem("internal", f"internal grader error: {type(exc).__name__}: {exc}",
                                      traceback.format_exc()[-4000:])
        if run.result is not None:
            run.result.problems.append(run.error)
        return
    if stage.timing_name and stage.timed(session, run):
        run.lap(stage.timing_name)
