"""What grading produces for one submission: the input of reports and gradebook exports.

A :class:`GradeResult` holds who submitted (:class:`Student`), how the run went, the evidence,
and one :class:`TaskResult` per rubric task with its :class:`CheckResult` list. It round-trips
through JSON (``result.json`` in the output folder), so reports and exports can be rebuilt from
stored results alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from grader.model.evidence import Evidence, Level, from_json, to_json
from grader.model.kinds import BLOCKING_PROBLEMS, ProblemKind


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_ASSESSED = "not_assessed"  # fast mode, missing evidence, selector matched nothing
    MANUAL = "manual"  # waits for a human score
    # The figure would decide the check, but it is not one the student could not have forged
    # (weaker than the evidence demanded), or an integrity finding concerns it: no points until
    # a person accepts it (a human score for the check, see grader.store.manual).
    NEEDS_REVIEW = "needs_review"

    @property
    def icon(self) -> str:
        return STATUS_ICONS[self]

    @property
    def title(self) -> str:
        """The status in words, as every report shows it."""
        return STATUS_TITLES[self]


STATUS_ICONS = {Status.PASSED: "✔", Status.FAILED: "✘", Status.NOT_ASSESSED: "–", Status.MANUAL: "✎",
                Status.NEEDS_REVIEW: "⚑"}
STATUS_TITLES = {Status.PASSED: "passed", Status.FAILED: "failed", Status.NOT_ASSESSED: "not assessed",
                 Status.MANUAL: "manual", Status.NEEDS_REVIEW: "needs review"}


class SkipReason(enum.StrEnum):
    """Why a rule, not the evidence, left a check "not assessed": ``details["reason"]`` of its
    :class:`CheckResult` (the member's text in ``result.json``)."""

    FAST_MODE = "fast_mode"  # fast mode capped training: accuracy says nothing yet (grader.checks.training)
    INCOMPLETE = "incomplete"  # the student's own code block is empty
    UNFINISHED = "unfinished"  # the notebook is the unfilled template (grader.pipeline.problems)


@dataclass
class CheckResult:
    check: str  # the check's kind, e.g. "total_params"
    title: str  # what it asks, in words: "total parameters = 81,834"
    status: Status
    points: float  # earned
    max_points: float
    message: str = ""  # what the student can act on
    level: Level | None = None  # evidence level of the figure the check used
    figure: float | str | None = None  # the figure it compared, for tables
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped_by_fast_mode(self) -> bool:
        return self.status is Status.NOT_ASSESSED and self.details.get("reason") == SkipReason.FAST_MODE


@dataclass
class TaskResult:
    task_id: str
    title: str
    points: float
    max_points: float
    checks: list[CheckResult] = field(default_factory=list)
    model_id: str | None = None  # the model the selector chose
    selector: str = ""  # the selector, in words
    selector_message: str = ""  # why nothing was found, with a hint
    manual: bool = False
    answer: str | None = None  # the student's markdown answer, for manual items
    human_score: float | None = None
    human_comment: str | None = None


@dataclass
class Student:
    """Who a submission belongs to, as far as the LMS export tells."""

    key: str  # unique within the batch; the file stem when nothing better is known
    name: str | None = None
    student_id: str | None = None
    login: str | None = None
    email: str | None = None
    section: str | None = None
    late: bool = False
    submitted_at: str | None = None
    note: str | None = None  # e.g. "3 files uploaded; graded the newest, hw1-2.ipynb"
    # The LMS whose download named the student ("canvas", "moodle", "blackboard", "brightspace",
    # "gradescope", "github-classroom"); None for plain folders and files. Its ids are that LMS's
    # only: a Canvas user id is no Moodle participant number (grader.report.exports).
    lms: str | None = None


@dataclass
class SubmissionProblem:
    """Why a submission could not be graded (or only partly): shown in reports, never a crash."""

    kind: ProblemKind  # the text of a member is accepted too: SubmissionProblem("timeout", ...)
    message: str
    detail: str = ""

    def __post_init__(self) -> None:
        # A kind the report has no title for is a mistake where the problem is made.
        self.kind = ProblemKind(self.kind)


@dataclass
class GradeResult:
    student: Student
    path: str  # the submitted file, as given
    rubric: str = ""
    assignment: str = ""
    score: float = 0.0
    max_score: float = 0.0
    pass_mark: float | None = None
    passed: bool | None = None
    tasks: list[TaskResult] = field(default_factory=list)
    problems: list[SubmissionProblem] = field(default_factory=list)
    evidence: Evidence | None = None
    mode: str = "executed"  # executed | static
    fast_mode: bool = False
    sandbox: str = "none"
    # Wall time of the execution that recorded the evidence: a re-check of stored evidence (a
    # resumed batch, a rubric change) keeps it, so run times in reports and exports stay true.
    duration_s: float | None = None
    grader_version: str = ""
    graded_at: str = ""  # when the rubric was applied (this run)
    executed_at: str = ""  # when the notebook ran (kept by a re-check, like duration_s)
    evidence_reused: bool = False  # this run re-checked stored evidence; the notebook did not run again
    # SHA-256 of the file's bytes and of its normalised code cells (grader.findings.identical), taken at load.
    notebook_sha256: str = ""
    code_sha256: str = ""
    identical_to: list[str] = field(default_factory=list)  # "bob (same code cells)", after the batch

    @property
    def checks(self) -> list[CheckResult]:
        return [check for task in self.tasks for check in task.checks]

    @property
    def needs_review(self) -> list[CheckResult]:
        """Checks no person has decided yet that earn nothing until one does."""
        return [c for c in self.checks if c.status is Status.NEEDS_REVIEW]

    @property
    def integrity_findings(self) -> list:
        """The evidence's integrity findings (grader.model.evidence.INTEGRITY_KINDS), warnings and errors."""
        return [f for f in (self.evidence.findings if self.evidence else []) if f.integrity]

    @property
    def all_automatic_passed(self) -> bool:
        """True when every automatic check passed: the exit code of ``grade check``.

        A check that fast mode leaves unassessed (an accuracy target after capped training) does
        not count against it; one left unassessed for missing evidence does."""
        auto = [c for c in self.checks if c.status is not Status.MANUAL and not c.skipped_by_fast_mode]
        return not self.problems_blocking and all(c.status is Status.PASSED for c in auto)

    @property
    def problems_blocking(self) -> list[SubmissionProblem]:
        return [p for p in self.problems if p.kind in BLOCKING_PROBLEMS]

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GradeResult":
        return from_json(cls, data)
