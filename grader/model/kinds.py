"""The closed vocabularies of the evidence and the results, each with the words a report shows.

Every kind is a ``str``-valued enum (:class:`enum.StrEnum`), so ``result.json`` stores the same
text it always did (``"trained_on_test"``), a member compares equal to that text, and an unknown
kind is an error where it is made, not a blank in the report. Each enum has a title table right
below it; ``tests/test_kinds.py`` checks that every member has a title.

* :class:`FindingKind`: what a :class:`~grader.model.evidence.Finding` is about.
* :class:`Severity`: how much a finding matters.
* :class:`ProblemKind`: why a submission could not be graded, or only partly
  (:class:`~grader.model.results.SubmissionProblem`).
* :class:`RecorderEvent`: the records of the in-kernel recorder's ``events.jsonl``, as the
  bundle reader (:mod:`grader.execute.bundle`) reads them. The recorder itself
  (:mod:`grader.kernel.recorder`) is stdlib-only and writes plain strings; a test checks that
  every event and finding kind it writes is a member here.
* :class:`SandboxMode`: how a kernel is isolated (``--sandbox`` reads its members).

Example::

    >>> FindingKind("trained_on_test").title
    'Trained on test data'
    >>> ProblemKind.TIMEOUT == "timeout", f"{ProblemKind.TIMEOUT}"
    (True, 'timeout')
"""

from __future__ import annotations

import enum

from grader.errors import SandboxUnavailable

__all__ = [
    "BLOCKING_PROBLEMS",
    "FINDING_TITLES",
    "PROBLEM_TITLES",
    "RECORDER_EVENT_TITLES",
    "SEVERITY_ICONS",
    "SEVERITY_TITLES",
    "FindingKind",
    "ProblemKind",
    "RecorderEvent",
    "SANDBOX_TITLES",
    "SandboxMode",
    "Severity",
]


class FindingKind(enum.StrEnum):
    """What a finding is about. Who raises each: the recorder (in the student's kernel), the
    bundle reader, the integrity rules (:mod:`grader.findings`), the static reader, the pipeline."""

    COMPAT = "compat"  # a removed Keras API, mapped to its Keras 3 spelling (recorder)
    DATASET = "dataset"  # a dataset served from the grader's cache (recorder)
    LOAD_WEIGHTS = "load_weights"  # weights loaded from a file (recorder)
    LOAD_MODEL = "load_model"  # a whole model loaded from a file (recorder)
    SAVE_FAILED = "save_failed"  # the recorder could not save a trained model
    INTERNAL = "internal"  # the recorder's own set-up failed in part
    HISTORY = "history"  # a training history Keras cannot have written
    TRAINED_ON_TEST = "trained_on_test"
    SEVERAL_FITS = "several_fits"
    EPOCH_PASSES = "epoch_passes"  # epochs of several passes over the training data each
    MODEL_FILE = "model_file"  # a fit's saved model is missing
    RECORDER = "recorder"  # the notebook broke the recorder
    TAMPERED = "tampered"  # the grader's files were written by the notebook
    HIDDEN_TRAINING = "hidden_training"  # optimizer steps taken outside every recorded fit
    REWRITTEN = "rewritten"  # the kernel's copy of the recorder's log differs from the lines sent
    MISMATCH = "mismatch"  # the notebook's figure and the grader's differ
    PRINTED = "printed"  # a printed figure above the measured one
    VERIFICATION = "verification"
    RETRAIN = "retrain"
    BUNDLE = "bundle"  # the recorded data itself (malformed, over a limit, incomplete)
    FUNCTION = "function"  # a model-building function the grader called
    SETUP = "setup"  # the kernel's set-up failed: the grader's fault
    LIMIT = "limit"  # a resource limit was reached
    NOTE = "note"
    IDENTICAL = "identical"  # the same code as another submission
    UNFINISHED = "unfinished"  # a template placeholder left in a cell
    SAVED_OUTPUTS = "saved_outputs"  # graded from the outputs saved in the file
    STATIC = "static"  # what the static reader found in the saved outputs

    @property
    def title(self) -> str:
        """The kind in words, as the report heads the finding."""
        return FINDING_TITLES[self]


FINDING_TITLES = {
    FindingKind.COMPAT: "Older Keras API",
    FindingKind.DATASET: "Dataset",
    FindingKind.LOAD_WEIGHTS: "Weights loaded from a file",
    FindingKind.LOAD_MODEL: "Model loaded from a file",
    FindingKind.SAVE_FAILED: "Model not saved",
    FindingKind.INTERNAL: "Grader",
    FindingKind.HISTORY: "Implausible training history",
    FindingKind.TRAINED_ON_TEST: "Trained on test data",
    FindingKind.SEVERAL_FITS: "Several fit calls",
    FindingKind.EPOCH_PASSES: "Epochs of several passes",
    FindingKind.MODEL_FILE: "Saved model missing",
    FindingKind.RECORDER: "Recorder broken by the notebook",
    FindingKind.TAMPERED: "Recorder tampered with",
    FindingKind.HIDDEN_TRAINING: "Training outside the recorded fits",
    FindingKind.REWRITTEN: "Recorder's log rewritten by the notebook",
    FindingKind.MISMATCH: "Figures do not match",
    FindingKind.PRINTED: "Printed figure above the measured one",
    FindingKind.VERIFICATION: "Verification",
    FindingKind.RETRAIN: "Retraining",
    FindingKind.BUNDLE: "Recorded data",
    FindingKind.FUNCTION: "Model-building function",
    FindingKind.SETUP: "Set-up",
    FindingKind.LIMIT: "Limit reached",
    FindingKind.NOTE: "Note",
    FindingKind.IDENTICAL: "Identical submission",
    FindingKind.UNFINISHED: "Unfinished",
    FindingKind.SAVED_OUTPUTS: "Graded from saved outputs",
    FindingKind.STATIC: "Saved outputs",
}


class Severity(enum.StrEnum):
    """How much a finding matters: a note, a warning, or an error that costs the evidence."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def title(self) -> str:
        """The severity in words, as the report labels a finding."""
        return SEVERITY_TITLES[self]

    @property
    def icon(self) -> str:
        return SEVERITY_ICONS[self]


SEVERITY_TITLES = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}
SEVERITY_ICONS = {Severity.INFO: "ℹ", Severity.WARNING: "⚠", Severity.ERROR: "✘"}


class ProblemKind(enum.StrEnum):
    """Why a submission could not be graded, or only partly."""

    INVALID_NOTEBOOK = "invalid_notebook"  # the file is not a notebook the grader can read
    KERNEL_DIED = "kernel_died"
    TIMEOUT = "timeout"
    LIMIT = "limit"  # a memory, time or disk limit
    ENVIRONMENT = "environment"  # the grader's environment lacks what the assignment needs
    IMPORT = "import"  # the notebook imports what the assignment does not provide
    MISSING_FILE = "missing_file"  # the notebook reads a file that is not there
    INCOMPLETE = "incomplete"  # the unfilled template, or nothing of it ran
    INTERNAL = "internal"  # the grader itself failed
    SKIPPED = "skipped"  # a file found and not graded (hidden, too large, a refused archive)
    NOTE = "note"  # something the instructor should know that changes nothing

    @property
    def title(self) -> str:
        """The problem in words, as the report heads it; a remark in parentheses after it is
        left out where space is short (the class overview)."""
        return PROBLEM_TITLES[self]


PROBLEM_TITLES = {
    ProblemKind.INVALID_NOTEBOOK: "The notebook could not be read",
    ProblemKind.KERNEL_DIED: "The kernel died during the run",
    ProblemKind.TIMEOUT: "The run timed out",
    ProblemKind.LIMIT: "A resource limit was reached",
    ProblemKind.ENVIRONMENT: "The assignment's environment is broken (not the student's fault)",
    ProblemKind.IMPORT: "A module the notebook imports is not available",
    ProblemKind.MISSING_FILE: "A file the notebook reads is missing",
    ProblemKind.INCOMPLETE: "The notebook looks unfinished",
    ProblemKind.INTERNAL: "The grader itself failed (not the student's fault)",
    ProblemKind.SKIPPED: "Not graded",
    ProblemKind.NOTE: "Note",
}

# A submission with one of these has no grade of its own (grader.model.results.GradeResult.problems_blocking).
BLOCKING_PROBLEMS = frozenset({ProblemKind.INVALID_NOTEBOOK, ProblemKind.INTERNAL, ProblemKind.SKIPPED})


class RecorderEvent(enum.StrEnum):
    """One record of the recorder's ``events.jsonl`` (its ``"event"`` field)."""

    START = "start"  # the recorder is installed: fast mode, Python version
    KERAS = "keras"  # Keras imported: its version and backend
    FIT_START = "fit_start"
    EPOCH = "epoch"  # one epoch's logs
    FIT = "fit"  # a fit finished: architecture, compile settings, history, saved model
    EVALUATE = "evaluate"
    MODEL = "model"  # a model found at the end of the run
    FUNCTION = "function"  # a model-building function the grader called at the end
    VARIABLE = "variable"  # a plain global at the end, for answer checks
    FINDING = "finding"  # something to tell, of a FindingKind
    END = "end"  # the grader's closing cell ran

    @property
    def title(self) -> str:
        """The record in words, as a message about the recorded data names it."""
        return RECORDER_EVENT_TITLES[self]


RECORDER_EVENT_TITLES = {
    RecorderEvent.START: "recorder started",
    RecorderEvent.KERAS: "Keras imported",
    RecorderEvent.FIT_START: "training started",
    RecorderEvent.EPOCH: "epoch",
    RecorderEvent.FIT: "training finished",
    RecorderEvent.EVALUATE: "evaluation",
    RecorderEvent.MODEL: "model at the end of the run",
    RecorderEvent.FUNCTION: "model-building function",
    RecorderEvent.VARIABLE: "variable",
    RecorderEvent.FINDING: "finding",
    RecorderEvent.END: "end of the run",
}


class SandboxMode(enum.StrEnum):
    """How a kernel is isolated (``--sandbox``). ``auto`` is resolved once per batch to one of
    the other two (:func:`grader.execute.sandbox.resolve_mode`); a run records which it got."""

    AUTO = "auto"  # bubblewrap where a probe run succeeds, else none (said once in the log)
    BWRAP = "bwrap"  # bubblewrap: no network, a file system built from a list
    NONE = "none"  # a plain subprocess behind a keeper, with the same resource limits

    @property
    def title(self) -> str:
        """The mode in words, as reports and logs name it."""
        return SANDBOX_TITLES[self]

    @classmethod
    def parse(cls, mode: "str | SandboxMode") -> "SandboxMode":
        """The mode named ``mode``; raises :class:`SandboxUnavailable` naming the choices."""
        try:
            return cls(mode)
        except ValueError:
            *others, last = [m.value for m in cls]
            raise SandboxUnavailable(f"unknown sandbox mode {mode!r}: use {', '.join(others)} or {last}") from None


SANDBOX_TITLES = {SandboxMode.AUTO: "bubblewrap where it runs", SandboxMode.BWRAP: "bubblewrap sandbox",
                  SandboxMode.NONE: "no sandbox"}
