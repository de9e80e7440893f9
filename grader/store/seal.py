"""What a kernel without a sandbox could have changed in the output folder, found and undone.

Under ``--sandbox none`` a kernel runs as the grader's own user: it can read and write every file
the grader can, in the output folder too. A key on disk would be readable by it, so the key
that seals this run's results lives only in the grader's memory (:class:`RunSeal`):

* **Start manifest.** Under the batch lock, before any kernel starts, the grader takes the HMAC of
  every stored ``result.json``, ``evidence.json``, ``execution.json`` and of
  ``manual_scores.jsonl`` (and keeps the bytes of the result files and the human scores, zlib
  compressed, to put them back).
* **Seals.** Every one of those files the grader writes in this run is sealed with the same key,
  the path included (a classmate's honest file copied over another's does not verify).
* **On use.** Stored evidence is reused only when its bytes verify (sealed in this run, or the
  same as in the start manifest); otherwise the entry is removed and the notebook runs again.
* **At the end** (:func:`verify_store`, once every kernel is stopped and :func:`sweep` has killed
  what they left running): a result file that does not verify is written back from the grader's
  own bytes, a ``result.json`` that nobody wrote (a planted student) is refused (renamed
  ``result.json.refused``), an evidence entry that does not verify is removed (a resumed batch
  runs that notebook again), ``manual_scores.jsonl`` is put back as it was. Each is logged, and
  written to ``tampering.log`` in the output folder (grader.batch.log).

**Across batches.** When a batch ends, with no kernel left, :meth:`RunSeal.save` seals the
folder under a new key and keeps seals and key in ``.store/.seal`` (0600); the next batch's
:meth:`RunSeal.take_manifest` reads and removes it before its first kernel starts (no kernel
runs while a key is on disk) and puts out of use what changed since. The dataset copies in
``.store/.data`` are covered like the rest (by their SHA-256).

**No process left behind.** Every kernel of a batch gets ``NN_GRADER_RUN=<run id>.<n>`` in its
environment (:data:`RUN_MARKER`); :func:`sweep` kills every process of this user that carries
it. A process can scrub its environment: what does not depend on the kernel's good will is in
:mod:`grader.execute.sandbox` (subreapers, the kernel's own user).

What this does not cover is in docs/security.md ("What --sandbox none still guarantees").
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from grader.store.atomic import read_plain, write_atomic
from grader.store.layout import EVIDENCE_FILE as _EVIDENCE
from grader.store.layout import EXECUTION_FILE as _EXECUTION
from grader.store.layout import RESULT_FILE as _RESULT
from grader.store.layout import SCORES_FILE as _SCORES
from grader.store.layout import STORE_DIR as _STORE

__all__ = ["RUN_MARKER", "RunSeal", "Tampering", "sweep", "verify_store"]

log = logging.getLogger("grader.store.seal")

# The variable every kernel of a batch carries: its value is the run's id, not a secret (the
# kernel may read it; knowing it helps it in nothing).
RUN_MARKER = "NN_GRADER_RUN"
_REFUSED_SUFFIX = ".refused"
# What a batch seals for the next one when it ends (RunSeal.save), and the dataset copies.
END_SEAL = f"{_STORE}/.seal"
_DATA_DIR = ".data"
_DATA_PREFIX = f"{_STORE}/{_DATA_DIR}/"


@dataclass
class Tampering:
    """One file of the output folder that changed while kernels ran, and what the grader did."""

    path: str  # relative to the output folder
    what: str  # "result", "planted", "evidence", "scores"
    student: str = ""  # the student folder, for result files
    action: str = ""

    before: bool = False  # found when the batch started: changed since the previous batch ended

    def message(self) -> str:
        when = "since the previous batch ended" if self.before else "during grading"
        return f"{self.path} was changed {when} by a process that is not the grader: {self.action}"


@dataclass
class RunSeal:
    """The seals of one grading run, under a key that exists only in this process's memory."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(16))
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _macs: dict[str, bytes] = field(default_factory=dict, repr=False)  # path -> HMAC of its trusted bytes
    _kept: dict[str, bytes] = field(default_factory=dict, repr=False)  # path -> zlib of bytes to put back
    tampered: list[Tampering] = field(default_factory=list)

    def mac(self, relative: str, data: bytes) -> bytes:
        return hmac.new(self._key, relative.encode("utf-8") + b"\0" + data, hashlib.sha256).digest()

    def seal(self, relative: str, data: bytes, *, keep: bool = False) -> None:
        """Record ``data`` as what the grader wrote to ``relative`` (a path in the output folder)."""
        self._macs[relative] = self.mac(relative, data)
        if keep:
            self._kept[relative] = zlib.compress(data, 1)
        else:
            self._kept.pop(relative, None)

    def forget(self, relative: str) -> None:
        """The grader removed ``relative`` itself."""
        self._macs.pop(relative, None)
        self._kept.pop(relative, None)

    def verifies(self, relative: str, data: bytes) -> bool:
        """True when ``data`` is what the grader wrote to ``relative`` in this run, or what lay
        there when the run started."""
        expected = self._macs.get(relative)
        return expected is not None and hmac.compare_digest(expected, self.mac(relative, data))

    def known(self, relative: str) -> bool:
        return relative in self._macs

    def kept(self, relative: str) -> bytes | None:
        data = self._kept.get(relative)
        return None if data is None else zlib.decompress(data)

    def kept_paths(self) -> set[str]:
        """The files the grader can put back (results, human scores), whether or not they are there."""
        return set(self._kept)

    def take_manifest(self, out_dir: Path) -> int:
        """Seal what the output folder holds now. Call it before the first kernel starts.

        First, what the previous batch sealed when it ended (:meth:`save`) is checked and put
        out of use: a stored execution, a dataset copy or a result that changed since, or that
        appeared since, is removed (results: refused), and said (:attr:`tampered`, ``before``).
        Returns the number of files sealed."""
        out_dir = Path(out_dir)
        read = _check_previous(self, out_dir)
        count = 0
        for relative, keep in _stored_files(out_dir):
            data = read[relative] if relative in read else _read_covered(out_dir / relative)
            if data is None:
                continue
            self.seal(relative, data, keep=keep)
            count += 1
        return count

    def take_data(self, out_dir: Path) -> int:
        """Seal the dataset copies in ``.store/.data`` (what this batch prepared, before any kernel
        starts). Returns the number of files sealed."""
        count = 0
        for relative, keep in _stored_files(Path(out_dir)):
            if relative.startswith(_DATA_PREFIX) and not self.known(relative):
                data = _read_covered(Path(out_dir) / relative)
                if data is not None:
                    self.seal(relative, data, keep=keep)
                    count += 1
        return count

    def save(self, out_dir: Path) -> int:
        """Seal, for the next batch, what the output folder holds now: under a new key, kept in
        ``.store/.seal`` (mode 0600). Call it only once no kernel of the batch is left (after
        :func:`verify_store`): the next batch reads it, and removes it, before its first kernel
        starts, so no kernel ever runs while the key is on disk. Human scores are not in it
        (``grade review`` adds to them between batches). Returns the number of files sealed."""
        out_dir = Path(out_dir)
        if not (out_dir / _STORE).is_dir():
            return 0
        rest = RunSeal(run_id=self.run_id)
        for relative, keep in _stored_files(out_dir):
            if relative == _SCORES:
                continue
            data = _read_covered(out_dir / relative)
            if data is not None:
                rest.seal(relative, data)
        record = {"version": 1, "run": self.run_id, "key": rest._key.hex(),
                  "macs": {relative: mac.hex() for relative, mac in sorted(rest._macs.items())}}
        _write_private(out_dir / END_SEAL, json.dumps(record).encode("utf-8"))
        return len(rest._macs)

    def report(self, item: Tampering) -> None:
        self.tampered.append(item)
        log.warning("%s", item.message())


def _stored_files(out_dir: Path) -> list[tuple[str, bool]]:
    """(path relative to ``out_dir``, keep its bytes) of every file the seal covers."""
    files: list[tuple[str, bool]] = []
    if not out_dir.is_dir():
        return files
    if (out_dir / _SCORES).is_file():
        files.append((_SCORES, True))
    for folder in sorted(out_dir.iterdir()):
        if not folder.name.startswith(".") and (folder / _RESULT).is_file():
            files.append((f"{folder.name}/{_RESULT}", True))
    store = out_dir / _STORE
    if store.is_dir():
        for entry in sorted(store.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            for name in (_EVIDENCE, _EXECUTION):
                if (entry / name).is_file():
                    files.append((f"{_STORE}/{entry.name}/{name}", False))
        data = store / _DATA_DIR
        if data.is_dir() and not data.is_symlink():
            for file in sorted(data.iterdir()):
                if not file.name.startswith(".") and (file.is_file() or file.is_symlink()):
                    files.append((f"{_DATA_PREFIX}{file.name}", False))
    return files


def _read(path: Path) -> bytes | None:
    """The bytes of a plain file, never through a link (a kernel could have put one there)."""
    try:
        return read_plain(path)
    except OSError:
        return None


def _read_covered(path: Path) -> bytes | None:
    """What the seal takes of a covered file: its bytes, or for a dataset copy (hundreds of
    megabytes) their SHA-256, read in pieces. Never through a link."""
    if path.parent.name != _DATA_DIR:
        return _read(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return b"sha256:" + digest.hexdigest().encode()


def _write_private(path: Path, data: bytes) -> None:
    """``path`` replaced by ``data`` atomically, readable and writable by its owner only."""
    tmp = path.with_name(f"{path.name}.tmp-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _load_previous(out_dir: Path) -> "RunSeal | None":
    """The seals the previous batch left (:meth:`RunSeal.save`), taken off the disk: read, then
    removed, so no kernel of this batch finds the key. None when there are none, or they cannot be read."""
    path = out_dir / END_SEAL
    if not os.path.lexists(path):
        return None
    try:
        raw = read_plain(path)
        record = json.loads(raw.decode("utf-8"))
        previous = RunSeal(run_id=str(record["run"]), _key=bytes.fromhex(record["key"]))
        previous._macs = {str(k): bytes.fromhex(v) for k, v in record["macs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        log.warning("the seals the previous batch left in %s cannot be read (%s): stored results are trusted as "
                    "found; grade with --force to be sure", path, exc)
        previous = None
    finally:
        _remove(path)
    return previous


def _check_previous(seal: "RunSeal", out_dir: Path) -> dict[str, bytes]:
    """Put out of use what changed in ``out_dir`` since the previous batch ended (or appeared).
    Returns what was read of the files that verified (the manifest seals the same bytes)."""
    previous = _load_previous(out_dir)
    stored = [relative for relative, _ in _stored_files(out_dir) if relative != _SCORES]
    verified: dict[str, bytes] = {}
    if previous is None:
        if stored:
            log.info("%s holds no seals of a previous batch (it ended without its final check, or before "
                     "the grader sealed stores): what is stored is trusted as found", out_dir)
        return verified
    for relative in stored:
        data = _read_covered(out_dir / relative)
        if data is not None and previous.verifies(relative, data):
            verified[relative] = data
            continue
        item = _put_out_of_use(out_dir, relative)
        if item is not None:
            item.before = True
            seal.report(item)
    return verified


def _put_out_of_use(out_dir: Path, relative: str) -> "Tampering | None":
    path = out_dir / relative
    if relative.startswith(_DATA_PREFIX):
        _remove(path)
        return Tampering(relative, "data", action="the dataset copy was removed; the grader prepares it again")
    if relative.startswith(f"{_STORE}/"):
        if not os.path.lexists(path.parent):
            return None  # its entry went with a file beside it
        _remove(path.parent)
        return Tampering(relative, "evidence", action="the stored execution was removed; its notebook runs again")
    student = relative.split("/", 1)[0]
    refused = _set_aside(path)
    return Tampering(relative, "result", student,
                     action=f"it is not used (renamed {refused.name}); the student's result is written again "
                            "when the submission is graded")


def _write_back(path: Path, data: bytes) -> None:
    if path.parent.is_symlink():  # the student's folder swapped for a link: the folder comes back
        path.parent.unlink()
    if path.is_symlink() or (path.exists() and not path.is_file()):
        _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def _set_aside(path: Path) -> Path:
    """Rename ``path`` beside itself with the refused suffix (removed where it cannot be renamed);
    returns the new name."""
    refused = path.with_name(path.name + _REFUSED_SUFFIX)
    _remove(refused)
    try:
        os.rename(path, refused)
    except OSError:
        _remove(path)
    return refused


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def verify_store(seal: RunSeal, out_dir: Path) -> list[Tampering]:
    """Find and undo what changed in ``out_dir`` that the grader did not write (see the module
    docstring). Call it once no kernel of the run is left (after :func:`sweep`), before any report
    or export is written. Returns this call's findings."""
    out_dir = Path(out_dir)
    found: list[Tampering] = []

    def note(item: Tampering) -> None:
        found.append(item)
        seal.report(item)

    present = {relative for relative, _ in _stored_files(out_dir)}
    if out_dir.is_dir():  # also a result.json that is now a link or a folder
        present |= {f"{f.name}/{_RESULT}" for f in out_dir.iterdir()
                    if not f.name.startswith(".") and os.path.lexists(f / _RESULT)}
    # Results and human scores the grader holds bytes of, even if they are gone now.
    present |= seal.kept_paths()
    for relative in sorted(present):
        try:
            _check_one(seal, out_dir, relative, note)
        except OSError as exc:  # one file that cannot be put right must not cost the batch its reports
            log.warning("could not check %s against the grader's seals: %s", relative, exc)
    return found


def _check_one(seal: RunSeal, out_dir: Path, relative: str, note) -> None:
    """Check one covered file of ``out_dir``; put it right and ``note`` what was found."""
    path = out_dir / relative
    there = os.path.lexists(path)
    data = _read_covered(path) if there else None
    if data is not None and seal.verifies(relative, data):
        return
    if relative.startswith(_DATA_PREFIX):
        if there:
            _remove(path)
            seal.forget(relative)
            note(Tampering(relative, "data", action="the dataset copy was removed (the next batch prepares it again); "
                                                    "figures this batch verified on it may be wrong: grade again "
                                                    "with --force"))
        return
    if relative.startswith(f"{_STORE}/"):
        if there:
            _remove(path.parent)
            for name in (_EVIDENCE, _EXECUTION):
                seal.forget(f"{relative.rsplit('/', 1)[0]}/{name}")
            note(Tampering(relative, "evidence", action="the stored execution was removed; its notebook runs "
                                                        "again when it is graded next"))
        return
    original = seal.kept(relative)
    if relative == _SCORES:
        aside = None
        if there and (path.is_symlink() or not path.is_dir()):
            # The instructor's scores from a `grade review` meanwhile could be among them: kept aside.
            aside = path.with_name(f"{_SCORES}.unverified-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
        elif there:
            _remove(path)
        if original is not None:
            _write_back(path, original)
        note(Tampering(relative, "scores", action="it is back as it was when grading started"
                       + (f"; what it held at the end is in {aside.name}" if aside else "")))
        return
    student = relative.split("/", 1)[0]
    if original is not None:
        _write_back(path, original)
        note(Tampering(relative, "result", student, action="the grader's own copy was written back"))
    elif there:
        refused = _set_aside(path)
        note(Tampering(relative, "planted", student,
                       action=f"no submission of {student!r} was graded and the grader did not write it: it is "
                              f"not a result (renamed {refused.name})"))


def sweep(marker: str, *, wait_s: float = 3.0) -> list[int]:
    """Kill every process of this user whose ``NN_GRADER_RUN`` is ``marker`` or one of its kernels'
    (``<marker>.<n>``), and wait (up to ``wait_s``) until they are gone. Returns their ids.

    Call it when no such process should be left: what it finds escaped its kernel's process tree
    (double fork, ``setsid``). As root every process is looked at; otherwise only this user's
    (the others' environments cannot be read anyway)."""
    import psutil

    me = os.getpid()
    uid = os.getuid() if hasattr(os, "getuid") else None
    killed: dict[int, psutil.Process] = {}
    for _ in range(20):  # again, until a pass finds nothing: a daemon may fork while it is killed
        found = []
        for process in psutil.process_iter(["uids"]):
            if process.pid == me or process.pid in killed:
                continue
            try:
                uids = process.info.get("uids")
                if uid not in (None, 0) and uids is not None and uids.real != uid:
                    continue
                value = process.environ().get(RUN_MARKER)
                if value is None or (value != marker and not value.startswith(marker + ".")):
                    continue
                process.send_signal(signal.SIGKILL)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
            found.append(process)
        if not found:
            break
        killed.update((p.pid, p) for p in found)
        time.sleep(0.02)
    deadline = time.monotonic() + wait_s
    waiting = list(killed.values())
    while waiting and time.monotonic() < deadline:  # a zombie is gone: it runs no more code
        waiting = [p for p in waiting if _running(p)]
        if waiting:
            time.sleep(0.02)
    if killed:
        log.warning("killed %d process(es) that a notebook left running after its kernel was stopped (%s)",
                    len(killed), ", ".join(map(str, sorted(killed)[:10])))
    return sorted(killed)


def _running(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True
