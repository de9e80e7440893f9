"""Walking the inputs: notebooks found, zips extracted, and a skip row for everything else.

:class:`Scan` takes the paths named on the command line one by one (:meth:`Scan.add_input`):
folders are walked, zips (the export, or zips students uploaded inside it) extracted within the
batch's budget, and every file the grader does not grade lands in :attr:`Scan.skipped` with the
reason. What tools write on their own (``.ipynb_checkpoints``, ``__MACOSX``, ``.git``,
``.DS_Store``) is left out without a row. A layout may claim metadata files it reads (a
Blackboard receipt, Gradescope's ``submission_metadata.yml``) through a *notice* hook.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from grader.collect.archive import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_ARCHIVE_MEMBERS,
    DEFAULT_MAX_TOTAL_BYTES,
    extract_counted,
)
from grader.collect.names import human as _human
from grader.collect.names import nfc as _nfc
from grader.collect.names import student_key
from grader.errors import ArchiveError, UsageError
from grader.notebook.load import DEFAULT_MAX_BYTES as DEFAULT_MAX_NOTEBOOK_BYTES

__all__ = ["DEFAULT_MAX_NOTEBOOK_BYTES", "File", "Notice", "Scan"]

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


@dataclass
class File:
    """A notebook found, and where: the layouts name its student from ``rel``."""

    path: Path  # on disk
    rel: tuple[str, ...]  # parts relative to the input folder; an extracted zip is a folder
    root: Path  # the input folder (or extraction folder) rel is relative to
    extracted_from: Path | None
    mtime: float
    wrapper: int = 0  # leading parts of rel that are only wrapper folders around the export


# A layout's hook for a file that is not a notebook: True when the layout took it (its own
# metadata), so that it is neither a skip row nor a plain side file.
Notice = Callable[[Path, "Scan"], bool]


@dataclass
class Scan:
    """The files found under the inputs; see the module docstring."""

    work_dir: Path
    max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
    max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS
    max_total: int = DEFAULT_MAX_TOTAL_BYTES
    max_notebook: int = DEFAULT_MAX_NOTEBOOK_BYTES
    extracted: int = 0  # bytes written by all the archives so far: max_total is their budget
    refused_inputs: list[str] = field(default_factory=list)  # why a command-line zip was refused
    files: list[File] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    side_files: list[Path] = field(default_factory=list)  # .txt, .yml: LMS metadata, maybe
    git_dirs: set[Path] = field(default_factory=set)
    # What the layouts' notice hooks read from LMS metadata files, by layout name.
    metadata: dict[str, Any] = field(default_factory=dict)
    notice: tuple[Notice, ...] = ()
    _seen: set[Path] = field(default_factory=set)

    def add_input(self, path: Path) -> None:
        """Add a path named on the command line: a folder, a zip, or a file (graded whatever it is)."""
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
        elif any(hook(path, self) for hook in self.notice):
            return
        elif suffix in (".txt", ".yml", ".yaml"):
            self.side_files.append(path)  # LMS metadata, maybe: a skip row unless a layout reads it
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
        self.files.append(File(path, rel, root, extracted_from, mtime))

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
            written = extract_counted(archive, target, max_bytes=min(self.max_bytes, left),
                                      max_members=self.max_members,
                                      max_member_bytes=self.max_notebook,
                                      refused=refused, budget=budget)
        except ArchiveError as exc:
            self.skipped.append((archive, str(exc)))
            return str(exc)
        self.extracted += written
        for member, why in refused:
            self.skipped.append((archive, f"the member {member!r} {why}: not extracted, the rest "
                                 "of the archive was"))
        return None

    def _extraction_dir(self, archive: Path) -> Path:
        # Deterministic, so a re-run (resume) reuses the same place instead of piling up copies.
        digest = hashlib.sha256(str(archive.resolve()).encode()).hexdigest()[:10]
        return self.work_dir / "extracted" / f"{student_key(archive.stem)}-{digest}"


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


def _mark_wrappers(files: list[File]) -> None:
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
