"""Errors a user can act on. Each message says what is wrong and what to do about it."""

from __future__ import annotations


class GraderError(Exception):
    """Base of every error the grader raises on purpose. The CLI prints the message, no traceback."""

    exit_code = 3


class UsageError(GraderError):
    """The command line or a file named on it is wrong (exit code 2)."""

    exit_code = 2


class NotebookError(GraderError):
    """A submitted file cannot be read as a notebook. Belongs to that submission only."""

    def __init__(self, message: str, *, kind: str = "invalid_notebook", line: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.line = line


class RubricError(UsageError):
    """A rubric file is invalid. ``location`` is ``file:line`` when known."""

    def __init__(self, message: str, *, location: str | None = None, key: str | None = None):
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location
        self.key = key


class BundleError(GraderError):
    """The artifacts written by the recorder in the student's kernel are malformed or too large.

    The bundle is untrusted input: this error is recorded in that submission's result."""


class DatasetError(GraderError):
    """A dataset the grader needs is not available offline; the message says which file to put where."""

    exit_code = 2


class EnvironmentProblem(GraderError):
    """The assignment's environment is broken (a support module's import fails in the preflight)."""

    exit_code = 2


class ReferenceModelError(UsageError):
    """A reference model is unknown, or its weights file is missing or does not fit it."""


class ArchiveError(UsageError):
    """A zip archive cannot be extracted safely (path traversal, symlinks, too large, damaged).

    Nothing of a refused archive is extracted."""


class BatchLockedError(GraderError):
    """Another grading batch is writing to the same output folder."""

    exit_code = 2


class SandboxUnavailable(UsageError):
    """``--sandbox bwrap`` was asked for, but bubblewrap cannot run a kernel on this machine."""
