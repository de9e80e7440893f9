"""Finding the submissions and who they belong to: :func:`collect`, the *collect* stage's entry.

:func:`collect` takes what the instructor names on the command line — notebooks, folders, zip
exports of an LMS — and returns one :class:`~grader.collect.result.Submission` per student, with
the student's id, name, late flag and submission time as far as the export tells
(:class:`grader.model.results.Student`). It scans the inputs (:mod:`grader.collect.scan`,
zips through :mod:`grader.collect.archive`), names each notebook's student with a layout
(:mod:`grader.collect.layouts`: Moodle, Canvas, ..., each with its file-name scheme), and keeps
one file per student (:mod:`grader.collect.choose`).

Auto-detection tries the layouts in :data:`~grader.collect.layouts.LAYOUTS` order and picks the
first that identifies at least half of the notebooks (``folders`` when at least half sit in
sub-folders, else ``files``, which places every file). A notebook that the chosen layout cannot
place is still graded, named after its file, with a note saying so.

**Nothing is skipped silently.** Every file the grader does not grade — not a notebook, a hidden
notebook (``.hw1.ipynb``), a notebook that is too large, a refused archive or member, a folder that
cannot be read — is in :attr:`CollectResult.skipped` with the reason, and
:meth:`CollectResult.skipped_results` makes each a row of the class overview.

Example::

    >>> result = collect([Path("hw1.zip")], work_dir=Path("/tmp/grade"))  # doctest: +SKIP
    >>> result.layout, result.submissions[0].student.key                  # doctest: +SKIP
    ('canvas', 'doejohn_123456')
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from grader.collect.archive import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_ARCHIVE_MEMBERS,
    DEFAULT_MAX_TOTAL_BYTES,
)
from grader.collect.choose import choose
from grader.collect.layouts import Context, Identity, by_name, detectable, registered
from grader.collect.result import CollectResult
from grader.collect.scan import DEFAULT_MAX_NOTEBOOK_BYTES, File, Scan
from grader.errors import ArchiveError, UsageError

__all__ = ["collect"]


def collect(
    paths: list[Path],
    *,
    layout: str = "auto",
    pattern: str | None = None,
    work_dir: Path,
    assignment: str | None = None,
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_notebook_bytes: int = DEFAULT_MAX_NOTEBOOK_BYTES,
) -> CollectResult:
    """Find every submission under ``paths`` and name its student.

    ``paths`` may mix notebooks, folders (searched recursively; ``.ipynb_checkpoints``,
    ``__MACOSX`` and other dotfiles are not graded: hidden notebooks are listed as skipped) and
    ``.zip`` files (extracted into ``work_dir``). ``max_archive_bytes`` caps one archive,
    ``max_total_bytes`` all of them together, ``max_notebook_bytes`` one notebook (or one file
    in an archive).
    ``layout`` is ``"auto"`` or one of :data:`LAYOUTS`; ``pattern`` is a regular expression
    with named groups (giving it implies ``layout="pattern"``). ``assignment`` is the assignment
    notebook's name (``"hw1"`` or ``"hw1.ipynb"``), used to break ties between several files.

    Raises :class:`~grader.errors.UsageError` for a path that does not exist, an unknown layout
    or a bad pattern. A zip that is refused, a member of one, a hidden or too large notebook, a
    file that is not a notebook land in :attr:`CollectResult.skipped`, and the rest is collected;
    only when nothing at all is left to grade and a zip named on the command line was refused
    is that an :class:`~grader.errors.ArchiveError` (the reason the batch has nothing to grade).
    """
    compiled = _check_options(layout, pattern)
    if compiled is not None:
        layout = "pattern"
    scan = Scan(
        work_dir=Path(work_dir),
        max_bytes=max_archive_bytes,
        max_members=max_archive_members,
        max_total=max_total_bytes,
        max_notebook=max_notebook_bytes,
        notice=tuple(spec.notice for spec in registered() if spec.notice is not None),
    )
    for path in paths:
        scan.add_input(Path(path))
    context = Context(scan=scan, pattern=compiled)
    if layout == "auto":
        layout = _detect(scan.files, context)
    spec = by_name(layout)
    groups: dict[str, list[tuple[File, Identity]]] = {}
    for file in scan.files:
        identities = spec.parse(file, context)
        if identities:
            for identity in identities:
                identity.lms = spec.lms
        else:
            identities = [_unplaced(file, layout)]
        for identity in identities:
            groups.setdefault(identity.group, []).append((file, identity))
    submissions = choose(groups, assignment)
    if not submissions and scan.refused_inputs:
        raise ArchiveError(scan.refused_inputs[0])
    skipped = list(scan.skipped)
    skipped += [(path, f"not a notebook ({path.suffix or 'no extension'})")
                for path in scan.side_files if not (spec.consumes and spec.consumes(path))]
    return CollectResult(submissions=submissions, layout=layout, skipped=skipped)


def _detect(files: list[File], context: Context) -> str:
    if not files:
        return "files"
    for spec in detectable():
        if spec.looks_like is not None and not spec.looks_like(files, context):
            continue
        placed = sum(1 for f in files if spec.parse(f, context))
        if placed and placed * 2 >= len(files):
            return spec.name
    return "files"  # pragma: no cover  (the files layout places every file)


def _unplaced(file: File, layout: str) -> Identity:
    stem = PurePosixPath(file.rel[-1]).stem
    return Identity(
        group=f"unplaced:{file.path}", key=stem, filename=file.rel[-1],
        note=f"the file's name or folder does not follow the {layout} layout, so the student "
             "is named after the file",
    )


def _check_options(layout: str, pattern: str | None) -> re.Pattern[str] | None:
    known = [spec.name for spec in registered()]  # read now: a layout may be registered late
    if layout != "auto" and layout not in known:
        raise UsageError(f"Unknown layout {layout!r}: use auto or one of {', '.join(known)}.")
    if pattern is None:
        if layout == "pattern":
            raise UsageError("The 'pattern' layout needs a regular expression (--pattern).")
        return None
    if layout not in ("auto", "pattern"):
        raise UsageError(f"--pattern replaces the layout; drop --layout {layout} or the pattern.")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"The pattern {pattern!r} is not a valid regular expression: {exc}."
        ) from None
    if not {"name", "id", "login", "email"} & set(compiled.groupindex):
        raise UsageError(
            f"The pattern {pattern!r} names no student: give it a named group such as "
            "(?P<id>\\d+), (?P<login>\\w+) or (?P<name>[^_]+); (?P<late>...) marks late files."
        )
    return compiled
