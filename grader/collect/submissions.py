"""Finding the submissions and who they belong to: the *collect* stage.

:func:`collect` takes what the instructor names on the command line — notebooks, folders, zip
exports of an LMS — and returns one :class:`Submission` per student, with the student's id,
name, late flag and submission time as far as the export tells (:class:`grader.model.results.Student`).

Layouts (``layout=``; ``"auto"`` detects them in this order):

=================  ===========================================================================
``gradescope``     ``submission_metadata.yml`` beside ``submission_<id>/`` folders
``moodle``         ``Full Name_123456_assignsubmission_file_/hw1.ipynb`` or the flat
                   ``Full Name_123456_assignsubmission_file_hw1.ipynb``
``blackboard``     ``Assignment_user_attempt_YYYY-MM-DD-HH-MM-SS_hw1.ipynb`` with its ``.txt``
                   receipt (name and submission date are read from the receipt)
``brightspace``    ``123-456 - First Last - Jan 5, 2024 1015 AM/hw1.ipynb`` (or ``… - hw1.ipynb``)
``canvas``         ``name_[late_]userid_fileid_hw1.ipynb``
``github-classroom`` ``prefix-login/`` clones (the prefix is the one the folder names share)
``folders``        one folder per student: ``alice/hw1.ipynb``
``files``          plain notebooks: the student is the file name (``alice.ipynb``)
``pattern``        a regular expression with named groups ``name``, ``id``, ``login``,
                   ``email``, ``late``, searched in the path relative to the folder or zip
=================  ===========================================================================

Auto-detection picks the first layout in that order that identifies at least half of the
notebooks, else ``folders`` when at least half sit in sub-folders, else ``files``. A notebook
that the chosen layout cannot place is still graded, named after its file, with a note saying so.

**Several files for one student** (re-uploads such as ``hw1-1.ipynb``, Canvas resubmissions,
several notebooks in a folder): one is graded, the others are listed in
:attr:`Submission.alternatives`, and :attr:`Student.note` says which and why. The rule, in order:

1. the newest submission time, where the LMS records one (Blackboard, Brightspace, Gradescope);
2. else the highest re-upload number (``hw1-2.ipynb`` over ``hw1-1.ipynb`` over ``hw1.ipynb``;
   also ``hw1 (2).ipynb``), then the later Canvas upload (larger file id);
3. else the most recently modified file;
4. a file named like the assignment notebook (``assignment="hw1"``) wins what is still tied;
   last, name order, so the choice is the same on every run.

Zip archives (the export itself, or zips that students uploaded) are extracted into
``work_dir``, streamed to disk and counted as they are written (a zip can lie about its sizes).
One member that cannot be extracted safely — it points outside the archive (``../x``,
``..\\..\\x``, ``/etc/x``, ``C:x``), is a symbolic link, is damaged, or is a file (other than a
zip) larger than ``max_notebook_bytes``, the most a notebook may be — is left out on its own,
and the rest of the archive is extracted. The whole archive is refused, with nothing of it
extracted, when it is not a readable zip, is encrypted, holds more than
``max_archive_members`` entries, or would extract to more than ``max_archive_bytes``, or to
more than what is left of ``max_total_bytes``, the budget of all the zips of one batch together.

**Nothing is skipped silently.** Every file the grader does not grade — not a notebook, a hidden
notebook (``.hw1.ipynb``), a notebook that is too large, a refused archive or member, a folder that
cannot be read — is in :attr:`CollectResult.skipped` with the reason, and
:meth:`CollectResult.skipped_results` makes each a row of the class overview. Only what tools
write on their own (``.ipynb_checkpoints``, ``__MACOSX``, ``.git``, ``.DS_Store``, ``~$`` lock
files) is left out without a word.

Example::

    >>> result = collect([Path("hw1.zip")], work_dir=Path("/tmp/grade"))  # doctest: +SKIP
    >>> result.layout, result.submissions[0].student.key                  # doctest: +SKIP
    ('canvas', 'doejohn_123456')
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from grader.errors import ArchiveError, UsageError
from grader.notebook.load import DEFAULT_MAX_BYTES as DEFAULT_MAX_NOTEBOOK_BYTES
from grader.model.results import GradeResult, Student, SubmissionProblem

__all__ = [
    "Submission",
    "CollectResult",
    "collect",
    "extract_archive",
    "student_key",
    "LAYOUTS",
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "DEFAULT_MAX_ARCHIVE_MEMBERS",
    "DEFAULT_MAX_TOTAL_BYTES",
    "DEFAULT_MAX_NOTEBOOK_BYTES",
    "RESERVED_NAMES",
]

LAYOUTS = (
    "gradescope", "moodle", "blackboard", "brightspace", "canvas", "github-classroom",
    "folders", "files", "pattern",
)
# An LMS export of 1,000 notebooks with outputs stays well below this; a zip bomb does not.
DEFAULT_MAX_ARCHIVE_BYTES = 8 * 2**30
DEFAULT_MAX_ARCHIVE_MEMBERS = 200_000
# Several zips (one per section, students' own zips inside) share one budget, so a batch cannot
# fill the disk by spreading a bomb over many archives each under the per-archive cap.
DEFAULT_MAX_TOTAL_BYTES = 8 * 2**30
# What the grader writes beside the students' folders in the output folder: a student's key
# (which names their folder) must never be one of these, or the two overwrite each other.
RESERVED_NAMES = frozenset({"index.html", "exports", "manual_scores.jsonl"})
# Names Windows keeps for devices, with any extension: no folder can be called "CON.ipynb".
_WINDOWS_DEVICES = re.compile(r"^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\..*)?$", re.IGNORECASE)
# Folders and files tools write on their own: left out without a skip row (they are never a
# student's submission, and listing them would bury the rows that matter).
_TOOL_DIRS = frozenset({".ipynb_checkpoints", "__MACOSX", "__pycache__", ".git", ".svn", ".hg",
                        ".idea", ".vscode", ".github", ".venv", ".Trash", ".Trashes", ".fseventsd",
                        ".Spotlight-V100"})
_TOOL_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".gitignore", ".gitattributes",
                         ".gitkeep"})
# Reading a hidden folder to see whether it holds notebooks stops after this many entries.
_HIDDEN_PEEK = 10_000
# Students zip their work; an export may hold those zips. Deeper nesting is not a submission.
_MAX_NESTING = 2

# The regular expressions of the LMS naming schemes (see shared/research/lms-formats.md §1).
CANVAS = re.compile(
    r"^(?:(?P<name>.+?)_)?(?:(?P<late>late)_)?(?P<user_id>\d+)_(?P<attachment_id>\d+)_(?P<filename>.+)$",
    re.IGNORECASE,
)
MOODLE_DIR = re.compile(r"^(?P<name>.+)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_$")
MOODLE_FLAT = re.compile(
    r"^(?P<name>.+)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<filename>.+)$"
)
BLACKBOARD = re.compile(
    r"^(?P<assignment>.+)_(?P<username>[^_]+)_attempt_(?P<ts>\d{4}(?:-\d{2}){5})(?:_(?P<filename>.+)|\.txt)$"
)
BRIGHTSPACE = re.compile(
    r"^(?P<submission_id>\d+)-(?P<second_id>\d+) - (?P<name>.+?) - "
    r"(?P<date>[A-Z][a-z]{2} \d{1,2}, \d{4} \d{3,4} [AP]M)(?: - (?P<filename>.+))?$"
)
GRADESCOPE_METADATA = "submission_metadata.yml"
# Re-upload suffixes: Canvas writes hw1-1.ipynb, browsers save hw1 (1).ipynb.
_REUPLOAD = re.compile(r"^(?P<base>.+?)(?:-(?P<dash>\d{1,3})| \((?P<paren>\d{1,3})\))$")


@dataclass
class Submission:
    """One student's notebook to grade, and the other files by the same student that were not."""

    path: Path
    student: Student
    alternatives: list[Path] = field(default_factory=list)
    extracted_from: Path | None = None  # the zip it came out of, if any


@dataclass
class CollectResult:
    submissions: list[Submission]
    layout: str  # the layout used: detected, or as forced
    # Every file or folder found and not graded (not a notebook, hidden, too large, an archive
    # or archive member refused, unreadable), and why.
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skipped_results(self, rubric: Any = None) -> list[GradeResult]:
        """One result row per skipped file, for the class overview: not graded, with the reason.

        Each row has a student key of its own (``skipped-<file name>``), distinct from every
        submission's, so a row never takes the place of a student's report. The rows are for
        the reports only: they are not stored and are not a gradebook's students.
        """
        used = {s.student.key.casefold() for s in self.submissions}
        used |= {name.casefold() for name in RESERVED_NAMES}
        rows = []
        for path, why in self.skipped:
            key = base = student_key(f"skipped-{path.name}")
            counter = 2
            while key.casefold() in used:
                key = f"{base}-{counter}"
                counter += 1
            used.add(key.casefold())
            rows.append(GradeResult(
                student=Student(key=key, note=f"skipped: {path}"),
                path=str(path),
                rubric=str(getattr(rubric, "path", "") or ""),
                assignment=getattr(rubric, "title", "") or getattr(rubric, "name", "") or "",
                max_score=float(getattr(rubric, "max_points", 0.0) or 0.0),
                problems=[SubmissionProblem("skipped", f"{path.name} was not graded: {why}")],
            ))
        return rows


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
    scan = _Scan(
        work_dir=Path(work_dir),
        max_bytes=max_archive_bytes,
        max_members=max_archive_members,
        max_total=max_total_bytes,
        max_notebook=max_notebook_bytes,
    )
    for path in paths:
        scan.add_input(Path(path))
    context = _Context(scan=scan, pattern=compiled)
    if layout == "auto":
        layout = _detect(scan.files, context)
    parser = _PARSERS[layout]
    groups: dict[str, list[tuple[_File, _Identity]]] = {}
    for file in scan.files:
        identities = parser(file, context) or [_unplaced(file, layout)]
        for identity in identities:
            groups.setdefault(identity.group, []).append((file, identity))
    submissions = _choose(groups, assignment)
    if not submissions and scan.refused_inputs:
        raise ArchiveError(scan.refused_inputs[0])
    skipped = list(scan.skipped)
    skipped += [(path, f"not a notebook ({path.suffix or 'no extension'})")
                for path in scan.side_files if not _consumed(path, layout)]
    return CollectResult(submissions=submissions, layout=layout, skipped=skipped)


# ---------------------------------------------------------------------------------------------
# Gathering files


@dataclass
class _File:
    path: Path  # on disk
    rel: tuple[str, ...]  # parts relative to the input folder; an extracted zip is a folder
    root: Path  # the input folder (or extraction folder) rel is relative to
    extracted_from: Path | None
    mtime: float
    wrapper: int = 0  # leading parts of rel that are only wrapper folders around the export


@dataclass
class _Scan:
    work_dir: Path
    max_bytes: int
    max_members: int
    max_total: int = DEFAULT_MAX_TOTAL_BYTES
    max_notebook: int = DEFAULT_MAX_NOTEBOOK_BYTES
    extracted: int = 0  # bytes written by all the archives so far: max_total is their budget
    refused_inputs: list[str] = field(default_factory=list)  # why a command-line zip was refused
    files: list[_File] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    side_files: list[Path] = field(default_factory=list)  # .txt, .yml: LMS metadata, maybe
    receipts: dict[tuple[Path, str], Path] = field(default_factory=dict)
    gradescope: dict[Path, dict[str, Any]] = field(default_factory=dict)
    git_dirs: set[Path] = field(default_factory=set)
    _seen: set[Path] = field(default_factory=set)

    def add_input(self, path: Path) -> None:
        if not path.exists():
            raise UsageError(f"{path} does not exist.")
        if path.is_dir():
            self._add_root(path, path, prefix=(), extracted_from=None, depth=0)
        elif path.suffix.lower() == ".zip":
            target = self._extraction_dir(path)
            why = self._extract(path, target)
            if why is not None:
                self.refused_inputs.append(why)
                return
            self._add_root(target, target, prefix=(), extracted_from=path, depth=1)
        else:
            # A file named explicitly is a submission whatever its extension: the load stage
            # then says precisely what it is (a .py, a PDF) in that student's result.
            self._add_file(path, path.parent, (_nfc(path.name),), None)

    def _add_root(self, folder: Path, root: Path, prefix: tuple[str, ...],
                  extracted_from: Path | None, depth: int) -> None:
        """Walk ``folder``; ``root`` is the input it belongs to (a zip found inside an input
        keeps that input as its root, so its files are placed like their neighbours)."""
        start = len(self.files)

        def unreadable(error: OSError) -> None:
            where = Path(error.filename) if error.filename else folder
            self.skipped.append((where, f"cannot be read ({error.strerror or error}): not searched"))

        for here_name, dirnames, filenames in os.walk(folder, onerror=unreadable):
            here = Path(here_name)
            if ".git" in dirnames:
                self.git_dirs.add(root.joinpath(*prefix, *here.relative_to(folder).parts))
            for name in dirnames:
                if _hidden(name) and _holds_submissions(here / name):
                    self.skipped.append((here / name, "a hidden folder (its name starts with '.'): "
                                         "not searched; rename it if it holds the submission"))
            dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
            rel_dir = prefix + tuple(_nfc(p) for p in here.relative_to(folder).parts)
            for name in sorted(filenames):
                if _ignored(name):
                    if _hidden(name) and name.lower().endswith((".ipynb", ".zip")):
                        self.skipped.append((here / name, "a hidden file (its name starts with '.'); "
                                             "rename it if it is the submission"))
                    continue
                self._classify(here / name, root, rel_dir + (_nfc(name),), extracted_from, depth)
        if not prefix:
            _mark_wrappers(self.files[start:])

    def _classify(self, path: Path, root: Path, rel: tuple[str, ...],
                  extracted_from: Path | None, depth: int) -> None:
        suffix = path.suffix.lower()
        if suffix == ".ipynb":
            self._add_file(path, root, rel, extracted_from)
        elif suffix == ".zip":
            if depth >= _MAX_NESTING:
                self.skipped.append((path, "a zip inside a zip inside a zip: not extracted"))
                return
            target = self._extraction_dir(path)
            if self._extract(path, target) is not None:
                return
            self._add_root(target, root, prefix=rel, extracted_from=path, depth=depth + 1)
        elif path.name == GRADESCOPE_METADATA:
            self._read_gradescope(path)
        else:
            match = BLACKBOARD.match(_nfc(path.name)) if suffix == ".txt" else None
            if match and match["filename"] is None:
                self.receipts[(path.parent, _nfc(path.name)[: -len(".txt")])] = path
            if match or suffix in (".txt", ".yml", ".yaml"):
                self.side_files.append(path)
            else:
                self.skipped.append((path, f"not a notebook ({suffix or 'no extension'})"))

    def _add_file(self, path: Path, root: Path, rel: tuple[str, ...],
                  extracted_from: Path | None) -> None:
        key = path.resolve()
        if key in self._seen:
            return
        self._seen.add(key)
        try:
            info = path.stat()
        except OSError:
            mtime = 0.0  # the load stage says what is wrong with it, in the student's result
        else:
            mtime = info.st_mtime
            # Refused here, before any later stage reads (or hashes) the whole file into memory.
            if info.st_size > self.max_notebook:
                self.skipped.append((path, f"too large ({_human(info.st_size)}, more than the "
                                     f"{_human(self.max_notebook)} the grader reads of a notebook); "
                                     "clear the outputs (Kernel > Restart & Clear "
                                     "Output), save and upload it again"))
                return
        self.files.append(_File(path, rel, root, extracted_from, mtime))

    def _extract(self, archive: Path, target: Path) -> str | None:
        """Extract ``archive`` within what is left of the batch's budget; members refused on
        their own become skip rows. Returns why the whole archive was refused, else None."""
        left = max(self.max_total - self.extracted, 0)
        budget = None
        if left < self.max_bytes:
            budget = (f"what is left ({_human(left)}) of the {_human(self.max_total)} the grader "
                      "extracts from all the zips of one batch together")
        refused: list[tuple[str, str]] = []
        try:
            written = _extract(archive, target, max_bytes=min(self.max_bytes, left),
                               max_members=self.max_members, max_member_bytes=self.max_notebook,
                               refused=refused, budget=budget)
        except ArchiveError as exc:
            self.skipped.append((archive, str(exc)))
            return str(exc)
        self.extracted += written
        for member, why in refused:
            self.skipped.append((archive, f"the member {member!r} {why}: not extracted, the rest "
                                 "of the archive was"))
        return None

    def _read_gradescope(self, path: Path) -> None:
        import yaml  # only Gradescope exports need it

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            self.skipped.append((path, f"unreadable Gradescope metadata: {_first_line(exc)}"))
            return
        if not isinstance(data, dict):
            self.skipped.append((path, "unreadable Gradescope metadata: not a mapping"))
            return
        self.side_files.append(path)
        for folder, entry in data.items():
            if isinstance(entry, dict):
                self.gradescope[path.parent / str(folder)] = entry

    def _extraction_dir(self, archive: Path) -> Path:
        # Deterministic, so a re-run (resume) reuses the same place instead of piling up copies.
        digest = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:10]
        return self.work_dir / "extracted" / f"{_safe_name(archive.stem)}-{digest}"


def _ignored(name: str) -> bool:
    return name.startswith((".", "~$")) or name in ("__MACOSX", "__pycache__")


def _hidden(name: str) -> bool:
    """A dot-name a person may have chosen (``.hw1.ipynb``), not one a tool writes."""
    return (name.startswith(".") and name not in _TOOL_DIRS and name not in _TOOL_FILES
            and not name.startswith(("._", ".~lock.")))


def _holds_submissions(folder: Path) -> bool:
    """Whether a hidden folder holds a notebook or a zip (looked for in a bounded walk)."""
    seen = 0
    for _, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in _TOOL_DIRS]
        if any(n.lower().endswith((".ipynb", ".zip")) for n in filenames):
            return True
        seen += len(filenames) + len(dirnames)
        if seen > _HIDDEN_PEEK:
            return False
    return False


def _mark_wrappers(files: list[_File]) -> None:
    """Folders every notebook of an input sits in (``hw1-submissions/alice/...``) are wrappers,
    not students — but only where more than one folder sits below them, so that a single
    student's folder is not mistaken for one."""
    if not files:
        return
    depth = 0
    while True:
        heads = {f.rel[depth] for f in files if len(f.rel) > depth + 1}
        if len(heads) != 1 or any(len(f.rel) <= depth + 1 for f in files):
            break
        below = {f.rel[depth + 1] for f in files if len(f.rel) > depth + 2}
        if len(below) < 2:
            break
        depth += 1
    for f in files:
        f.wrapper = depth


# ---------------------------------------------------------------------------------------------
# Safe extraction


def extract_archive(archive: Path, target: Path, *, max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
                    max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
                    max_member_bytes: int | None = None,
                    refused: list[tuple[str, str]] | None = None) -> Path:
    """Extract the zip ``archive`` into the folder ``target`` (replaced if it exists).

    Refuses, with :class:`~grader.errors.ArchiveError` and nothing left behind, an archive that
    is not a readable zip, an encrypted one, one with more than ``max_members`` members, or
    more than ``max_bytes`` of content (counted while extracting too, since a zip can lie about
    its sizes). A member that points outside ``target`` (absolute path, ``..``, also written
    with backslashes), a symlink, a damaged member, or one larger than ``max_member_bytes``
    (when given; zips inside the archive are exempt, they have caps of their own) refuses the
    archive too — unless ``refused`` is a list: then such a member alone is left out, and its
    name and the reason are appended to ``refused``. Every member is streamed to disk, never
    read whole into memory. ``__MACOSX`` folders and ``.DS_Store`` files are left out. Member
    times are kept as file modification times.
    """
    _extract(archive, target, max_bytes=max_bytes, max_members=max_members,
             max_member_bytes=max_member_bytes, refused=refused)
    return target


class _MemberRefused(Exception):
    """One member that cannot be extracted safely; the archive may still be."""


def _extract(archive: Path, target: Path, *, max_bytes: int, max_members: int,
             max_member_bytes: int | None, refused: list[tuple[str, str]] | None,
             budget: str | None = None) -> int:
    """:func:`extract_archive`, returning the bytes written. ``budget`` says, in the refusal,
    which limit ``max_bytes`` is when it is not the archive's own."""
    name = archive.name
    limit = budget or f"{_human(max_bytes)}, the grader's limit"

    def refuse_member(member: str, why: str) -> None:
        if refused is None:
            raise ArchiveError(f"{name}: the member {member!r} {why}; the archive was refused and "
                               "nothing was extracted.")
        refused.append((member, why))

    try:
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{name} is not a readable zip archive ({_first_line(exc)}).") from None
    with handle:
        members = handle.infolist()
        if len(members) > max_members:
            raise ArchiveError(
                f"{name} holds {len(members):,} entries, more than the {max_members:,} the grader "
                "extracts; the archive was refused."
            )
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]] = []
        declared = 0
        for info in members:
            raw = _member_name(info)
            try:
                parts = _member_parts(info, raw, name)
            except _MemberRefused as exc:
                refuse_member(raw, str(exc))
                continue
            if parts is None:
                continue
            cap = _member_cap(parts, max_member_bytes)
            if cap is not None and info.file_size > cap:
                refuse_member(raw, f"is {_human(info.file_size)}, more than the {_human(cap)} the "
                                   "grader extracts of one file")
                continue
            declared += info.file_size
            if declared > max_bytes:
                raise ArchiveError(
                    f"{name} would extract to more than {limit} (a damaged archive or a zip "
                    "bomb); the archive was refused."
                )
            plan.append((info, parts, raw))
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        try:
            return _extract_members(handle, plan, target, name, max_bytes, max_member_bytes,
                                    refuse_member, limit)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise


def _member_name(info: zipfile.ZipInfo) -> str:
    raw = info.filename
    if not info.flag_bits & 0x800:
        # Without the UTF-8 flag zipfile decodes names as cp437, but Windows and macOS tools
        # write UTF-8 anyway: 'Ren\u00e9' would come out as 'Ren\u251c\u00ae'.
        try:
            raw = raw.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return raw


def _member_parts(info: zipfile.ZipInfo, raw: str, archive: str) -> tuple[str, ...] | None:
    # Windows tools (PowerShell's Compress-Archive among them) write '\' between folders: it is
    # a separator here, so '..\..\x' is as much a traversal as '../../x'.
    name = _nfc(raw.replace("\\", "/"))
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if (name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts
            or any("\x00" in p for p in parts)):
        raise _MemberRefused("points outside the archive (path traversal)")
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"{archive} is password-protected ({raw!r} is encrypted); upload it without a password."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _MemberRefused("is a symbolic link, which the grader does not extract")
    if info.is_dir() or not parts:
        return None
    if "__MACOSX" in parts or parts[-1] == ".DS_Store":
        return None
    return parts


def _member_cap(parts: tuple[str, ...], max_member_bytes: int | None) -> int | None:
    # A zip inside the archive is extracted in its turn, under the caps of an archive.
    if max_member_bytes is None or parts[-1].lower().endswith(".zip"):
        return None
    return max_member_bytes


def _extract_members(handle: zipfile.ZipFile,
                     plan: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]],
                     target: Path, archive: str, max_bytes: int, max_member_bytes: int | None,
                     refuse_member: Callable[[str, str], None], limit: str) -> int:
    root = target.resolve()
    written = 0
    for info, parts, raw in plan:
        destination = target.joinpath(*parts)
        if not destination.resolve().is_relative_to(root):  # belt and braces after _member_parts
            refuse_member(raw, "points outside the archive")
            continue
        cap = _member_cap(parts, max_member_bytes)
        size = 0
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with handle.open(info) as source, destination.open("wb") as sink:
                # A counting copy: what the member really holds is known only as it is read.
                while chunk := source.read(1 << 20):
                    size += len(chunk)
                    if written + size > max_bytes:
                        raise ArchiveError(
                            f"{archive} extracts to more than {limit} although it says "
                            "otherwise (a zip bomb?); the archive was refused."
                        )
                    if cap is not None and size > cap:
                        raise _MemberRefused(
                            f"holds more than the {_human(cap)} the grader extracts of one file "
                            f"although it says {_human(info.file_size)}")
                    sink.write(chunk)
        except ArchiveError:
            raise
        except _MemberRefused as exc:
            destination.unlink(missing_ok=True)
            refuse_member(raw, str(exc))
            continue
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
                OSError) as exc:
            _remove_file(destination)
            refuse_member(raw, f"is damaged or uses an unsupported compression ({_first_line(exc)})")
            continue
        written += size
        try:
            stamp = datetime(*info.date_time).timestamp()
            os.utime(destination, (stamp, stamp))
        except (ValueError, OSError, OverflowError):
            pass
    return written


def _remove_file(path: Path) -> None:
    try:
        if path.is_file() and not path.is_symlink():
            path.unlink()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Who a file belongs to


@dataclass
class _Identity:
    group: str  # who, unique within the layout: files with the same group are one student's
    key: str  # readable, becomes Student.key after cleaning
    student_id: str | None = None
    name: str | None = None
    login: str | None = None
    email: str | None = None
    late: bool = False
    submitted_at: datetime | None = None
    upload_order: int = -1  # Canvas file ids grow with every upload
    filename: str = ""  # the student's own file name, without the LMS's prefix
    note: str | None = None


@dataclass
class _Context:
    scan: _Scan
    pattern: re.Pattern[str] | None
    _prefixes: dict[Path, str | None] = field(default_factory=dict)


_Parser = Callable[[_File, _Context], "list[_Identity] | None"]


def _parse_canvas(file: _File, context: _Context) -> list[_Identity] | None:
    for index, part in enumerate(file.rel):
        match = CANVAS.match(part)
        if not match:
            continue
        name, user_id, late = match["name"], match["user_id"], bool(match["late"])
        if name and name.lower() == "late" and not late:  # anonymous and late: late_123_456_x
            name, late = None, True
        filename = match["filename"] if index == len(file.rel) - 1 else file.rel[-1]
        return [_Identity(
            group=f"canvas:{user_id}",
            key=f"{name}_{user_id}" if name else user_id,
            student_id=user_id, name=name, late=late,
            upload_order=int(match["attachment_id"]), filename=filename,
        )]
    return None


def _parse_moodle(file: _File, context: _Context) -> list[_Identity] | None:
    for part in file.rel[:-1]:
        match = MOODLE_DIR.match(part)
        if match:
            return [_moodle_identity(match, file.rel[-1])]
    match = MOODLE_FLAT.match(file.rel[-1])
    return [_moodle_identity(match, match["filename"])] if match else None


def _moodle_identity(match: re.Match[str], filename: str) -> _Identity:
    # The number is Moodle's participant id for this assignment ("Participant 123456" in the
    # grading worksheet), not the user id: it is what the grade upload joins on.
    name, participant = match["name"], match["participant_id"]
    return _Identity(group=f"moodle:{participant}", key=f"{name}_{participant}",
                     student_id=participant, name=name, filename=filename)


def _parse_blackboard(file: _File, context: _Context) -> list[_Identity] | None:
    match = BLACKBOARD.match(file.rel[-1])
    if not match or match["filename"] is None:
        return None
    username = match["username"]
    submitted = datetime.strptime(match["ts"], "%Y-%m-%d-%H-%M-%S")
    identity = _Identity(group=f"blackboard:{username}", key=username, student_id=username,
                         login=username, submitted_at=submitted, filename=match["filename"])
    stem = f"{match['assignment']}_{username}_attempt_{match['ts']}"
    receipt = context.scan.receipts.get((file.path.parent, stem))
    if receipt is not None:
        name, login, when = _read_blackboard_receipt(receipt)
        identity.name = name
        if when is not None:
            identity.submitted_at = when
        if login and login != username:
            identity.note = f"the receipt names the user {login!r}, the file name {username!r}"
    return [identity]


def _read_blackboard_receipt(path: Path) -> tuple[str | None, str | None, datetime | None]:
    """Name, username and submission time from the ``.txt`` Blackboard writes beside each
    attempt: ``Name: Alyssa Hacker (hacker)``, ``Date Submitted: Saturday, January 30, 2016
    3:30:10 PM EST``."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return None, None, None
    name = login = None
    when = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key.strip() == "Name" and value:
            found = re.match(r"^(?P<name>.*?)\s*\((?P<login>[^()]+)\)\s*$", value)
            name, login = (found["name"] or None, found["login"]) if found else (value, None)
        elif key.strip() == "Date Submitted" and value:
            when = _parse_blackboard_date(value)
    return name, login, when


def _parse_blackboard_date(text: str) -> datetime | None:
    text = re.sub(r"^[A-Za-z]+,\s*", "", text.strip())  # weekday
    text = text.replace(" o'clock", "")
    text = re.sub(r"\s+[A-Z]{2,5}$", "", text)  # time-zone abbreviation: not parseable reliably
    for form in ("%B %d, %Y %I:%M:%S %p", "%d %B %Y %H:%M:%S", "%B %d, %Y %H:%M:%S",
                 "%Y-%m-%d %H:%M:%S", "%d %B %Y %I:%M:%S %p"):
        try:
            return datetime.strptime(text, form)
        except ValueError:
            continue
    return None


def _parse_brightspace(file: _File, context: _Context) -> list[_Identity] | None:
    for index, part in enumerate(file.rel):
        match = BRIGHTSPACE.match(part)
        if not match:
            continue
        if index == len(file.rel) - 1 and match["filename"] is None:
            continue
        filename = match["filename"] if index == len(file.rel) - 1 else file.rel[-1]
        try:
            when = datetime.strptime(match["date"], "%b %d, %Y %I%M %p")
        except ValueError:
            when = None
        # Brightspace names files by display name only: no username, no OrgDefinedId.
        name = match["name"]
        return [_Identity(group=f"brightspace:{name.casefold()}", key=name, name=name,
                          submitted_at=when, filename=filename)]
    return None


def _parse_gradescope(file: _File, context: _Context) -> list[_Identity] | None:
    for folder in file.path.parents:
        entry = context.scan.gradescope.get(folder)
        if entry is not None:
            break
    else:
        return None
    submitters = [s for s in _field(entry, "submitters") or [] if isinstance(s, dict)]
    created = _field(entry, "created_at")
    when = created if isinstance(created, datetime) else _parse_iso(created)
    names = [str(_field(s, "name") or _field(s, "sid") or "?") for s in submitters]
    identities = []
    for index, submitter in enumerate(submitters or [{}]):
        name = _text(_field(submitter, "name"))
        sid = _text(_field(submitter, "sid"))
        email = _text(_field(submitter, "email"))
        who = sid or email or name or folder.name
        others = [n for i, n in enumerate(names) if i != index]
        identities.append(_Identity(
            group=f"gradescope:{who}",
            key="_".join(p for p in (name, sid) if p) or (email or folder.name).split("@")[0],
            student_id=sid, name=name, email=email, submitted_at=when, filename=file.rel[-1],
            note=f"group submission ({folder.name}) with {', '.join(others)}" if others else None,
        ))
    return identities


def _field(entry: Any, name: str) -> Any:
    # Gradescope writes Ruby symbols as keys (':submitters'); accept plain keys too.
    if not isinstance(entry, dict):
        return None
    return entry.get(f":{name}", entry.get(name))


def _parse_github_classroom(file: _File, context: _Context) -> list[_Identity] | None:
    parts = file.rel[file.wrapper:]
    if len(parts) < 2:
        return None
    prefix = _classroom_prefix(file, context)
    if not prefix or not parts[0].startswith(prefix + "-") or len(parts[0]) <= len(prefix) + 1:
        return None
    login = parts[0][len(prefix) + 1:]
    return [_Identity(group=f"github:{login.casefold()}", key=login, login=login,
                      filename=file.rel[-1])]


def _classroom_prefix(file: _File, context: _Context) -> str | None:
    """The assignment prefix the clone folders share (``hw1`` of ``hw1-alice``, ``hw1-bob``)."""
    if file.root in context._prefixes:
        return context._prefixes[file.root]
    folders = sorted({f.rel[f.wrapper] for f in context.scan.files
                      if f.root == file.root and len(f.rel) > f.wrapper + 1})
    prefix: str | None = None
    if len(folders) >= 2:
        common = os.path.commonprefix(folders)
        if "-" in common:
            prefix = common[: common.rindex("-")]
    elif len(folders) == 1 and "-" in folders[0]:
        prefix = folders[0].split("-", 1)[0]  # one clone: logins may hold '-', assignments rarely
    context._prefixes[file.root] = prefix or None
    return prefix or None


def _parse_folders(file: _File, context: _Context) -> list[_Identity] | None:
    parts = file.rel[file.wrapper:]
    if len(parts) < 2:
        return None
    return [_Identity(group=f"folder:{file.root}:{parts[0]}", key=parts[0], filename=file.rel[-1])]


def _parse_files(file: _File, context: _Context) -> list[_Identity] | None:
    stem = PurePosixPath(file.rel[-1]).stem
    return [_Identity(group=f"file:{file.path}", key=stem, filename=file.rel[-1])]


def _parse_pattern(file: _File, context: _Context) -> list[_Identity] | None:
    assert context.pattern is not None
    match = context.pattern.search("/".join(file.rel))
    if not match:
        return None
    found = {k: v for k, v in match.groupdict().items() if v}
    who = found.get("id") or found.get("login") or found.get("email") or found.get("name")
    if not who:
        return None
    key = "_".join(found[k] for k in ("name", "id") if k in found) or found.get("login") or who
    return [_Identity(
        group=f"pattern:{who.casefold()}", key=key, student_id=found.get("id"),
        name=found.get("name"), login=found.get("login"), email=found.get("email"),
        late="late" in found, filename=file.rel[-1],
    )]


_PARSERS: dict[str, _Parser] = {
    "gradescope": _parse_gradescope,
    "moodle": _parse_moodle,
    "blackboard": _parse_blackboard,
    "brightspace": _parse_brightspace,
    "canvas": _parse_canvas,
    "github-classroom": _parse_github_classroom,
    "folders": _parse_folders,
    "files": _parse_files,
    "pattern": _parse_pattern,
}
_DETECTION_ORDER = ("gradescope", "moodle", "blackboard", "brightspace", "canvas",
                    "github-classroom")


def _detect(files: list[_File], context: _Context) -> str:
    if not files:
        return "files"
    for layout in _DETECTION_ORDER:
        if layout == "github-classroom" and not _looks_like_classroom(files, context):
            continue
        placed = sum(1 for f in files if _PARSERS[layout](f, context))
        if placed and placed * 2 >= len(files):
            return layout
    in_folders = sum(1 for f in files if _parse_folders(f, context))
    return "folders" if in_folders and in_folders * 2 >= len(files) else "files"


def _looks_like_classroom(files: list[_File], context: _Context) -> bool:
    """Clones (a ``.git`` folder in each) or at least two folders sharing a ``prefix-``."""
    if context.scan.git_dirs and any(
        f.root.joinpath(*f.rel[: f.wrapper + 1]) in context.scan.git_dirs for f in files
    ):
        return True
    folders = {(f.root, f.rel[f.wrapper]) for f in files if len(f.rel) > f.wrapper + 1}
    return len(folders) >= 2 and any(_classroom_prefix(f, context) for f in files)


def _unplaced(file: _File, layout: str) -> _Identity:
    stem = PurePosixPath(file.rel[-1]).stem
    return _Identity(
        group=f"unplaced:{file.path}", key=stem, filename=file.rel[-1],
        note=f"the file's name or folder does not follow the {layout} layout, so the student "
             "is named after the file",
    )


def _consumed(path: Path, layout: str) -> bool:
    if layout == "blackboard":
        return bool(BLACKBOARD.match(_nfc(path.name)))
    if layout == "gradescope":
        return path.name == GRADESCOPE_METADATA
    return False


# ---------------------------------------------------------------------------------------------
# One file per student


# The layouts whose file names carry an LMS's own ids, by the prefix of _Identity.group.
_LMS_OF_GROUP = {"canvas": "canvas", "moodle": "moodle", "blackboard": "blackboard",
                 "brightspace": "brightspace", "gradescope": "gradescope", "github": "github-classroom"}


def _choose(groups: dict[str, list[tuple[_File, _Identity]]],
            assignment: str | None) -> list[Submission]:
    wanted = _comparable(assignment) if assignment else None
    chosen: list[tuple[_Identity, _File, list[_File], str | None]] = []
    for _, entries in sorted(groups.items()):
        ranked = _rank(entries, wanted)
        best_file, best_identity = ranked[0][1], ranked[0][2]
        others = [entry[1] for entry in ranked[1:]]
        note = None
        if others:
            reason = _reason(ranked[0][0], ranked[1][0], best_identity)
            graded = best_identity.filename or best_file.rel[-1]
            note = f"{len(entries)} files uploaded; graded {graded}, {reason}"
        chosen.append((best_identity, best_file, others, note))
    # Keys are made unique in a fixed order, so a re-run gives every student the same key
    # (the result store files results under it).
    chosen.sort(key=lambda item: (student_key(item[0].key), item[0].group))
    used: set[str] = set()
    submissions = []
    for identity, file, others, note in chosen:
        key = base = student_key(identity.key)
        counter = 2
        while key.casefold() in used:
            key = f"{base}-{counter}"
            counter += 1
        used.add(key.casefold())
        notes = [n for n in (note, identity.note) if n]
        student = Student(
            key=key, name=identity.name, student_id=identity.student_id, login=identity.login,
            email=identity.email, late=identity.late,
            submitted_at=identity.submitted_at.isoformat() if identity.submitted_at else None,
            note="; ".join(notes) if notes else None,
            lms=_LMS_OF_GROUP.get(identity.group.split(":", 1)[0]),
        )
        submissions.append(Submission(path=file.path, student=student,
                                      alternatives=[f.path for f in others],
                                      extracted_from=file.extracted_from))
    return submissions


def _rank(entries: list[tuple[_File, _Identity]],
          wanted: str | None) -> list[tuple[tuple, _File, _Identity]]:
    stems = [PurePosixPath(identity.filename or file.rel[-1]).stem for file, identity in entries]
    bases = [_split_reupload(stem) for stem in stems]
    shared = {base for base, _ in bases}
    counted = {base for base in shared if sum(1 for b, _ in bases if b == base) > 1}
    ranked = []
    for (file, identity), stem, (base, number) in zip(entries, stems, bases):
        # "lab-3" is a re-upload of "lab" only when "lab" is what the student uploaded before,
        # or what the assignment is called; otherwise the number is part of the name.
        is_reupload = number and (base in counted or (wanted and _comparable(base) == wanted))
        name_match = bool(wanted) and _comparable(base if is_reupload else stem) == wanted
        key = (
            _instant(identity.submitted_at),
            number if is_reupload else 0,
            identity.upload_order,
            int(file.mtime // 2),  # zip stores times to 2 s; closer than that is a tie
            name_match,
            "/".join(file.rel),
        )
        ranked.append((key, file, identity))
    ranked.sort(key=lambda item: item[0], reverse=True)
    return ranked


def _instant(when: datetime | None) -> float:
    # Gradescope times carry a zone, Blackboard's do not (local time): compare as timestamps.
    if when is None:
        return float("-inf")
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return float("-inf")


def _reason(best: tuple, runner_up: tuple, identity: _Identity) -> str:
    if best[0] != runner_up[0] and identity.submitted_at is not None:
        when = identity.submitted_at.isoformat(sep=" ", timespec="minutes")
        return f"the newest submission ({when})"
    if best[1] != runner_up[1]:
        return "the newest (highest re-upload number)"
    if best[2] != runner_up[2]:
        return "the newest upload"
    if best[3] != runner_up[3]:
        return "the most recently modified"
    if best[4] != runner_up[4]:
        return "the one named like the assignment notebook"
    return "the last in name order (nothing else told them apart)"


def _split_reupload(stem: str) -> tuple[str, int]:
    match = _REUPLOAD.match(stem)
    if not match:
        return stem, 0
    return match["base"], int(match["dash"] or match["paren"])


def _comparable(name: str) -> str:
    stem = name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFC", stem)).casefold()


# ---------------------------------------------------------------------------------------------
# Names


def student_key(text: str) -> str:
    """A student's name or id made safe as a folder name on every system.

    Letters (any script), digits, ``-``, ``_`` and inner dots survive; everything else becomes
    ``_``; never empty, never dots only, never hidden, never a name the grader writes beside the
    students' folders (:data:`RESERVED_NAMES`: ``index.html``, ``exports``) or one Windows keeps
    for a device (``CON``, ``nul.txt``): those get a ``student_`` prefix.
    ``student_key("Doe, Jane / 42") == "Doe_Jane_42"``, ``student_key("index.html") ==
    "student_index.html"``.
    """
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[^\w.\-]+", "_", text)
    text = re.sub(r"_{2,}", "_", text).strip("._- ")
    key = text[:80].rstrip("._-") or "student"
    if key.casefold() in RESERVED_NAMES or _WINDOWS_DEVICES.match(key):
        key = f"student_{key}"
    return key


def _safe_name(text: str) -> str:
    return student_key(text)


def _nfc(text: str) -> str:
    # macOS writes names decomposed (NFD); compare and show them composed.
    return unicodedata.normalize("NFC", text)


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} bytes"  # pragma: no cover


def _check_options(layout: str, pattern: str | None) -> re.Pattern[str] | None:
    if layout != "auto" and layout not in LAYOUTS:
        raise UsageError(f"Unknown layout {layout!r}: use auto or one of {', '.join(LAYOUTS)}.")
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
