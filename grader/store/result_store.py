"""Storing results so that a batch survives crashes and re-runs only what changed.

Layout of an output folder::

    out/
      .store/
        batch.lock                    one batch at a time (see ResultStore.lock)
        <key>/evidence.json           the evidence of one execution, plus its bundle
        <key>/execution.json          when that execution ran and how long it took
        <key>/<bundle files>          (.keras weights, ...) as the recorder wrote them
      <student key>/result.json       one GradeResult per student
      <student key>/report.html       written by the report stage (grader.store.atomic.write_atomic)

``<key>`` is :func:`result_key` of everything execution depends on — the notebook's bytes, the
support files, the execution settings, the grader version — and nothing it does not (the
rubric): a rubric change re-checks stored evidence without executing anything, while a changed
notebook or setting executes again. A re-check keeps the run time and stages of the execution
that recorded the evidence (``execution.json``), so a resumed batch reports the notebook's real
run time, not the second it took to re-check it.

Every write is atomic. An evidence entry is assembled in a temporary folder next to its final
place, flushed to disk (fsync), and renamed into place: a folder named after a key is always
complete. A result file is written to a temporary file and renamed over the old one. A batch
killed at any moment (SIGKILL, power loss) leaves at worst temporary files, which readers
ignore and :meth:`ResultStore.lock` removes when the next batch starts.

During a batch :attr:`ResultStore.seal` holds the run's seals (:mod:`grader.store.seal`): every
``result.json``, ``evidence.json`` and ``execution.json`` written is sealed with a key that exists
only in the grader's memory, and stored evidence is read only when its bytes verify — a kernel
without a sandbox runs as the same user and could have rewritten it.

Example::

    >>> store = ResultStore(Path("out"))                                   # doctest: +SKIP
    >>> with store.lock():                                                 # doctest: +SKIP
    ...     key = result_key(notebook_bytes=data, support_files=[], settings={"fast": True},
    ...                      grader_version="0.1.0")
    ...     evidence = store.load_evidence(key) or run_notebook(...)
    ...     store.save_evidence(key, evidence, bundle_dir)
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from grader.errors import BatchLockedError, UsageError
from grader.model.evidence import SCHEMA_VERSION, Evidence, from_json, to_json
from grader.model.results import GradeResult
from grader.store.atomic import TMP_SUFFIX, fsync_dir, read_plain, write_atomic, write_synced
from grader.store.layout import EVIDENCE_FILE, EXECUTION_FILE, LOCK_FILE, RESULT_FILE, STORE_DIR
from grader.store.manual import ScoreStore, merge_human_scores
from grader.store.seal import Tampering

__all__ = ["ResultStore", "result_bytes", "result_key"]

log = logging.getLogger(__name__)

# Names of work in progress: never read as results, removed by clean_leftovers().
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"
_KEY = re.compile(r"^[0-9a-f]{16,128}$")


def result_key(*, notebook_bytes: bytes, support_files: list[Path], settings: dict[str, Any],
               grader_version: str) -> str:
    """The sha256 (hex) of everything an execution depends on.

    Support files count by name and content, not by where they lie (moving the course folder
    keeps the cache); a folder among them counts with every file inside it. ``settings`` count
    as canonical JSON, so key order does not matter; paths in them are written as text.

    Raises :class:`~grader.errors.UsageError` when a support file is missing and ``TypeError``
    when a setting cannot be written as JSON.
    """
    digest = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        # Length-prefixed, so no two different inputs can run together into the same bytes.
        digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)  # not joined to the prefix: a notebook is megabytes, copied for nothing

    part("grader_version", grader_version.encode())
    part("notebook", notebook_bytes)
    for name, path in sorted(_support_entries(support_files)):
        part("support_name", name.encode())
        part("support_sha256", _file_sha256(path).encode())
    part("settings", _canonical_json(settings))
    return digest.hexdigest()


def _support_entries(paths: list[Path]) -> list[tuple[str, Path]]:
    entries = []
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                entries.append(((PurePath(path.name) / file.relative_to(path)).as_posix(), file))
        elif path.is_file():
            entries.append((path.name, path))
        else:
            raise UsageError(f"The support file {path} does not exist.")
    return entries


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical_json(settings: dict[str, Any]) -> bytes:
    def default(value: Any) -> Any:
        if isinstance(value, PurePath):
            return value.as_posix()
        if isinstance(value, (set, frozenset)):
            return sorted(value, key=repr)
        if isinstance(value, enum.Enum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        raise TypeError(f"setting value {value!r:.60} cannot be written as JSON")

    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=default)
    return text.encode("utf-8")


def result_bytes(result: GradeResult) -> bytes:
    """The bytes of ``result.json`` for ``result``: indented, or on one line for a result graded
    from saved outputs (a class of them is written in seconds; indenting takes three times as long)."""
    indent = None if result.mode == "static" else 1
    return json.dumps(result.to_json(), indent=indent, ensure_ascii=False).encode("utf-8")


class ResultStore:
    """The stored evidence and results of one output folder. See the module docstring."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.store_dir = self.out_dir / STORE_DIR
        # (path, why) of every result.json the last load_results() could not read.
        self.unreadable: list[tuple[Path, str]] = []
        # A batch's seals (grader.store.seal.RunSeal): what it writes is sealed, stored evidence is
        # reused only when it verifies. None outside a batch: files are read as they are.
        self.seal: Any = None
        # Results flushed to disk one by one (fsync); a batch graded from saved outputs, which
        # writes them all again in seconds, turns it off (grader.store.atomic.write_atomic).
        self.sync = True

    # -- evidence ---------------------------------------------------------------------------

    def entry_dir(self, key: str) -> Path:
        """The folder holding the evidence and bundle stored under ``key``."""
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"not a result key: {key!r:.80} (expected hex from result_key())")
        return self.store_dir / key

    def evidence_path(self, key: str) -> Path:
        return self.entry_dir(key) / EVIDENCE_FILE

    def has_evidence(self, key: str) -> bool:
        """True when a finished entry is stored under ``key`` (unfinished ones are never seen)."""
        return self.evidence_path(key).is_file()

    def save_evidence(self, key: str, evidence: Evidence, bundle_dir: Path | None = None) -> None:
        """Store ``evidence`` and the files of ``bundle_dir`` under ``key``, atomically.

        A previous entry under the same key (a ``--force`` re-run) is replaced. Only regular
        files are copied from the bundle: the kernel that wrote it ran student code, so a link
        in it could point anywhere.
        """
        final = self.entry_dir(key)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{key[:16]}-", dir=self.store_dir))
        old: Path | None = None
        try:
            os.chmod(work, 0o755)  # mkdtemp makes it private; results are meant to be shared
            if bundle_dir is not None:
                _copy_regular_files(Path(bundle_dir), work)
            data = json.dumps(to_json(evidence), ensure_ascii=False).encode("utf-8")
            write_synced(work / EVIDENCE_FILE, data)
            fsync_dir(work)
            if final.exists():
                old = self.store_dir / f"{_OLD_PREFIX}{key[:16]}-{uuid.uuid4().hex[:8]}"
                os.rename(final, old)
            if self.seal is not None:  # the bytes written, not what is read back later
                self.seal.forget(self._relative(final / EXECUTION_FILE))
                self.seal.seal(self._relative(final / EVIDENCE_FILE), data)
            os.rename(work, final)
            fsync_dir(self.store_dir)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def load_evidence(self, key: str) -> Evidence | None:
        """The evidence stored under ``key``, or ``None`` when there is none or it cannot be
        read (then the broken entry is removed, so the submission is executed again)."""
        path = self.evidence_path(key)
        if not path.is_file():
            return None
        try:
            raw = read_plain(path)
            if self.seal is not None and not self.seal.verifies(self._relative(path), raw):
                return self._unverified_evidence(key)
            data = json.loads(raw.decode("utf-8"))
            evidence = from_json(Evidence, data)
            if evidence.schema_version != SCHEMA_VERSION:
                raise ValueError(
                    f"schema version {evidence.schema_version}, this grader reads {SCHEMA_VERSION}"
                )
        except (OSError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
            log.warning("stored evidence %s is unreadable (%s); it will be recomputed", path, exc)
            shutil.rmtree(self.entry_dir(key), ignore_errors=True)
            return None
        return evidence

    def save_execution(self, key: str, *, duration_s: float, timings: dict[str, float],
                       executed_at: str = "") -> bool:
        """Record how the execution stored under ``key`` went: its wall time (seconds), its
        stages (seconds each) and when it ran. Returns True when it was recorded.

        The first record of an entry stays: an entry is replaced as a whole when its notebook
        runs again (``--force``), so a record that is there already belongs to the execution
        that wrote the evidence, and an attempt that ended before storing any (a kernel that
        could not start) must not overwrite it. Nothing is recorded for a key without evidence.
        """
        entry = self.entry_dir(key)
        path = entry / EXECUTION_FILE
        if not (entry / EVIDENCE_FILE).is_file() or path.is_file():
            return False
        record = {"duration_s": float(duration_s), "timings": {str(k): float(v) for k, v in timings.items()},
                  "executed_at": executed_at}
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")
        try:
            if self.seal is not None:
                self.seal.seal(self._relative(path), data)
            write_atomic(path, data)
        except OSError as exc:  # the results are still right; only a later re-check's run time suffers
            log.warning("could not record the run time of %s: %s", entry, exc)
            return False
        return True

    def load_execution(self, key: str) -> dict[str, Any] | None:
        """The record :meth:`save_execution` wrote under ``key`` (``duration_s``, ``timings``,
        ``executed_at``), or None when there is none or it cannot be read (entries stored
        before these records existed have none)."""
        path = self.entry_dir(key) / EXECUTION_FILE
        try:
            raw = read_plain(path)
            if self.seal is not None and not self.seal.verifies(self._relative(path), raw):
                raise ValueError("it changed since the grader wrote it (a notebook without a sandbox?)")
            data = json.loads(raw.decode("utf-8"))
            duration = data["duration_s"]
            timings = data.get("timings") or {}
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not isinstance(timings, dict):
                raise ValueError("unexpected shape")
            return {"duration_s": float(duration), "executed_at": str(data.get("executed_at") or ""),
                    "timings": {str(k): float(v) for k, v in timings.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)}}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            log.warning("the run-time record %s is unreadable (%s); it is left out", path, exc)
            return None

    # -- results ----------------------------------------------------------------------------

    def result_path(self, student_key: str) -> Path:
        """Where the result of the student with ``student_key`` is stored."""
        if (not student_key or student_key.startswith(".") or "/" in student_key
                or "\\" in student_key or "\0" in student_key):
            raise ValueError(f"not a safe student key: {student_key!r}")
        return self.out_dir / student_key / RESULT_FILE

    def save_result(self, result: GradeResult, *, data: bytes | None = None) -> Path:
        """Write ``out_dir/<student key>/result.json`` atomically and return its path. ``data``:
        :func:`result_bytes` of ``result``, when a worker process made them already."""
        path = self.result_path(result.student.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            data = result_bytes(result)
        if self.seal is not None:
            self.seal.seal(self._relative(path), data, keep=True)
        write_atomic(path, data, sync=self.sync)
        return path

    # -- seals (grader.store.seal) ---------------------------------------------------------------------

    def _relative(self, path: Path) -> str:
        return Path(path).relative_to(self.out_dir).as_posix()

    def _unverified_evidence(self, key: str) -> None:
        """Stored evidence whose bytes are neither what this run wrote nor what lay there when it
        started: a kernel without a sandbox changed it. Removed, so the notebook runs again."""
        entry = self.entry_dir(key)
        relative = self._relative(entry / EVIDENCE_FILE)
        shutil.rmtree(entry, ignore_errors=True)
        self.seal.forget(relative)
        self.seal.forget(self._relative(entry / EXECUTION_FILE))
        self.seal.report(Tampering(relative, "evidence", action="it is not used; the notebook is executed again"))
        return None

    def load_results(self) -> list[GradeResult]:
        """Every stored result, in student-key order. Unreadable files are skipped, logged, and
        listed in :attr:`unreadable`."""
        self.unreadable = []
        results: list[GradeResult] = []
        if not self.out_dir.is_dir():
            return results
        for folder in sorted(self.out_dir.iterdir()):
            path = folder / RESULT_FILE
            if folder.name.startswith(".") or not path.is_file():
                continue
            try:
                results.append(GradeResult.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("skipping unreadable result %s: %s", path, reason)
                self.unreadable.append((path, reason))
        # Human scores live beside the results (manual_scores.jsonl): every report and export
        # reads results through here, so they all carry them.
        merge_human_scores(results, ScoreStore(self.out_dir).load())
        return results

    # -- one batch at a time ------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[ResultStore]:
        """Hold the output folder for one batch; :class:`~grader.errors.BatchLockedError` if
        another batch (in any process) holds it. The operating system releases the lock when
        the holder dies, so a killed batch never blocks the next one. On entry, leftovers of
        a killed batch are removed."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        path = self.store_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                holder = _read_holder(path)
                raise BatchLockedError(
                    f"Another grading batch is already writing to {self.out_dir}"
                    f"{f' ({holder})' if holder else ''}. Wait for it to finish, or grade into "
                    "another output folder (--out)."
                )
            os.ftruncate(fd, 0)
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}".encode())
            self.clean_leftovers()
            yield self
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def clean_leftovers(self) -> int:
        """Remove what killed writers left behind (temporary entries and files). Call it only
        while holding :meth:`lock`, or a live writer's work could go. Returns the count."""
        removed = 0
        if self.store_dir.is_dir():
            for entry in self.store_dir.iterdir():
                if entry.name.startswith((_TMP_PREFIX, _OLD_PREFIX)):
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
                    removed += 1
                elif entry.is_dir():  # an execution record written into a finished entry
                    for leftover in entry.glob(f".{EXECUTION_FILE}{TMP_SUFFIX}*"):
                        with contextlib.suppress(OSError):
                            leftover.unlink()
                            removed += 1
        if self.out_dir.is_dir():
            for folder in self.out_dir.iterdir():
                if folder.name.startswith(".") or not folder.is_dir():
                    continue
                for leftover in folder.glob(f".*{TMP_SUFFIX}*"):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
                        removed += 1
        return removed


# What a stored entry keeps of a bundle: the recorder's own files, nothing the notebook added,
# and at most this much of them (the event log alone is capped at 64 MiB by the bundle reader).
STORED_BUNDLE_BYTES = 512 * 2**20
_RECORDER_FILE = re.compile(r"^(?:events\.jsonl|models/m\d{1,6}\.keras)$")


def _copy_regular_files(source: Path, target: Path, *, cap: int = STORED_BUNDLE_BYTES) -> None:
    """Copy the recorder's files of the bundle ``source`` (the event log first, then the models in
    order) while they fit in ``cap`` bytes; whatever else the notebook wrote there is left out."""
    chosen: list[tuple[str, Path, int]] = []
    for folder, dirnames, filenames in os.walk(source):  # does not follow links
        here = Path(folder)
        relative = here.relative_to(source)
        for name in filenames:
            file = here / name
            info = file.lstat()
            if not stat.S_ISREG(info.st_mode):
                log.warning("bundle entry %s is not a regular file; not stored", file)
                continue
            path = (relative / name).as_posix()
            if not _RECORDER_FILE.match(path):
                continue  # the notebook's own junk is not kept forever
            chosen.append((path, file, info.st_size))
    chosen.sort(key=lambda item: (item[0] != "events.jsonl", item[0]))
    used = 0
    for path, file, size in chosen:
        if used + size > cap:
            log.warning("bundle file %s (%d bytes) is over what is stored per submission; not stored", file, size)
            continue
        used += size
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        with file.open("rb") as src, destination.open("xb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError, or EACCES on some systems
        return False
    return True


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:
        return ""
