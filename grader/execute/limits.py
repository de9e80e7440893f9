"""Resource limits for one notebook's kernel: what they are, and how they are enforced.

A :class:`Limits` holds the limits of a run, with defaults suited to a CNN lab on a CPU or one GPU.
The rubric's ``limits:`` block and the command line override them (:meth:`Limits.from_rubric`,
:meth:`Limits.replace`). Wall time per cell and per notebook is not here: nbclient and
:mod:`grader.execute.client` enforce it.

How each limit is enforced, and why that way:

* **memory**: an address-space limit (``RLIMIT_AS``) breaks TensorFlow, which reserves far more
  address space than it uses. Where the grader may create a cgroup v2 with the memory controller
  (see :class:`Cgroup`), the kernel runs in one with ``memory.max``; everywhere else a
  :class:`~grader.execute.watch.LimitWatcher`, in a process of its own (:mod:`grader.execute.watch`), adds up the resident
  memory of the kernel's processes five times a second and stops them all once the sum is over
  the limit (shared pages of forked children counted once).
* **processes** (fork bombs): ``RLIMIT_NPROC`` makes ``fork`` fail past the limit; it counts
  processes and threads of a user, which is why :mod:`grader.execute.sandbox` gives the kernel a user of
  its own where it can. The watcher counts the kernel's tasks too and stops the kernel when they
  reach the limit, so a notebook cannot linger with a swarm of half-started children, and root
  (whom ``RLIMIT_NPROC`` does not bind) is covered.
* **cpu_time**: the watcher adds up the CPU time of the kernel's processes; ``RLIMIT_CPU`` a
  little above it is the backstop in each process.
* **file_size**: ``RLIMIT_FSIZE``: a write past it fails with ``EFBIG`` in the cell (Python
  ignores ``SIGXFSZ``), and is reported as that limit.
* **disk**: the watcher measures the working folder (blocks really used, so sparse files count
  for what they hold) about once a second.
* **output**: what is kept of a cell's outputs; :mod:`grader.execute.client` drops the rest.

Every limit that is hit is reported as itself, with the cell it happened in
(:class:`LimitHit`: "memory limit 8 GiB reached in cell 14"), never as a generic crash.

This module holds the limits themselves, their units, the rlimits and the cgroup that back them
up; the watcher that measures the kernel's processes is :mod:`grader.execute.watch`. Nothing here
imports Keras.
"""


from __future__ import annotations

import dataclasses
import errno
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "Cgroup",
    "LimitHit",
    "Limits",
    "file_size_hit",
    "format_duration",
    "format_size",
    "limits_from_text",
    "parse_duration",
    "parse_size",
    "rlimits_for",
    "tasks_of_user",
]

KiB, MiB, GiB = 2**10, 2**20, 2**30

# RLIMIT_CPU sits this far above the watcher's limit: the watcher, which knows the cell and adds
# up every process, should be the one to stop a notebook; the rlimit only catches what it misses.
CPU_RLIMIT_MARGIN_S = 5

@dataclass(frozen=True)
class Limits:
    """The resource limits of one notebook run. ``None`` means not limited.

    Defaults fit a CNN lab: TensorFlow training a CIFAR-10 model uses about 2.5 GB; TensorFlow
    itself starts a few hundred threads on a large machine (threads count as processes); a
    saved 12.5M-parameter model is 150 MB, checkpoints of every epoch a few GB.

    >>> Limits(memory=int(1.5 * GiB)).describe()["memory"]
    '1.5 GiB'
    """

    memory: int | None = 8 * GiB  # bytes, all the kernel's processes together
    processes: int | None = 1024  # processes and threads of the kernel
    cpu_time: float | None = None  # CPU seconds, all processes; None: the wall-time limits bound it
    file_size: int | None = 2 * GiB  # the largest file the kernel may write
    disk: int | None = 10 * GiB  # everything in the working folder
    output: int = 2 * MiB  # outputs kept per cell (the rest is dropped with a note)

    @classmethod
    def from_rubric(cls, limits: dict[str, Any] | None, base: "Limits | None" = None) -> "Limits":
        """The limits of a rubric's ``limits:`` block (already normalised by the rubric loader:
        sizes in bytes, ``cpu_time`` in seconds), over ``base`` (the defaults)."""
        base = base or cls()
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in (limits or {}).items() if key in known and value is not None}
        return dataclasses.replace(base, **values)

    def replace(self, **overrides: Any) -> "Limits":
        """These limits with the given ones changed; ``None`` values are ignored (a command-line
        option that was not given), so pass ``0`` to lift a limit."""
        values = {key: (None if value == 0 and key != "output" else value)
                  for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **values)

    def describe(self) -> dict[str, str]:
        """Each limit in words, for reports and logs."""
        return {
            "memory": format_size(self.memory),
            "processes": "unlimited" if self.processes is None else f"{self.processes:,}",
            "cpu_time": format_duration(self.cpu_time),
            "file_size": format_size(self.file_size),
            "disk": format_size(self.disk),
            "output": format_size(self.output) + " per cell",
        }

    def fingerprint(self) -> dict[str, Any]:
        """What changes the evidence: part of the result cache key."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LimitHit:
    """A limit a notebook ran into: which, its value in words, and the cell."""

    kind: str  # memory | processes | cpu_time | file_size | disk
    limit: str  # "8 GiB"
    cell: int  # index from 0, as CellRef; messages number cells from 1, as Jupyter users count
    detail: str = ""  # what was measured, e.g. "9.1 GiB in use"

    _WORDS = {"memory": "memory limit", "processes": "process limit", "cpu_time": "CPU time limit",
              "file_size": "file size limit", "disk": "disk limit"}

    @property
    def message(self) -> str:
        where = f" in cell {self.cell + 1}" if self.cell >= 0 else " while the grader's own code ran"
        text = f"{self._WORDS.get(self.kind, self.kind)} {self.limit} reached{where}"
        return f"{text} ({self.detail})" if self.detail else text


# ---------------------------------------------------------------------------------------------
# Units


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from ``8GiB``, ``1.5 GiB``, ``512M``, ``10MB`` or a plain number of bytes.

    ``K``/``M``/``G`` alone mean binary units (as ``ulimit`` and Docker read them).

    >>> parse_size("1.5GiB") == 3 * 2**29
    True
    """
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size: write e.g. 8GiB, 512MiB or a number of bytes")
    number, unit = float(match.group(1)), (match.group(2) or "b").lower()
    if unit == "b":
        factor = 1
    else:
        power = "kmgt".index(unit[0]) + 1
        factor = 1000**power if unit.endswith("b") and "i" not in unit else 1024**power
    return int(number * factor)


def parse_duration(text: str | float) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``2h``."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration: write e.g. 90s, 30m or 2h")
    return float(match.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600}[(match.group(2) or "s").lower()]


def limits_from_text(**values: str | int | float | None) -> dict[str, Any]:
    """Command-line limits (``memory="8GiB"``, ``processes=512``, ``cpu_time="2h"``, ...) as the
    ``limits`` of :class:`grader.config.GradingOptions`. Options not given (None) are left out;
    ``0`` lifts a limit. Raises :class:`~grader.errors.UsageError` naming the option.

    >>> limits_from_text(memory="4GiB", disk=None)
    {'memory': 4294967296}
    """
    from grader.errors import UsageError

    known = {f.name for f in dataclasses.fields(Limits)}
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise UsageError(f"unknown limit {key!r}: use one of {', '.join(sorted(known))}")
        if value is None:
            continue
        try:
            if key == "processes":
                if not str(value).strip().isdigit():
                    raise ValueError(f"{value!r} is not a number of processes")
                parsed[key] = int(value)
            elif key == "cpu_time":
                parsed[key] = parse_duration(value)  # type: ignore[arg-type]
            else:
                parsed[key] = parse_size(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UsageError(f"--{key.replace('_', '-')}: {exc}") from None
    return parsed


def format_size(size: int | None, digits: int = 1) -> str:
    """``8 GiB``, ``1.5 GiB``, ``200 MiB``; ``unlimited`` for None."""
    if size is None:
        return "unlimited"
    for unit, factor in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor:
            text = f"{size / factor:.{digits}f}".rstrip("0").removesuffix(".")
            return f"{text} {unit}"
    return f"{size} bytes"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unlimited"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}".removesuffix(".0") + " h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}".removesuffix(".0") + " min"
    return f"{seconds:.0f} s"


# ---------------------------------------------------------------------------------------------
# rlimits: set by the kernel's launcher (grader.execute.sandbox) before it becomes the kernel


def rlimits_for(limits: Limits, *, nproc_slack: int = 0) -> dict[str, int]:
    """The ``RLIMIT_*`` values (by name, for the launcher's JSON) that back ``limits`` up.

    ``nproc_slack`` is added to the process limit where ``RLIMIT_NPROC`` counts tasks the
    kernel does not own (the same user's other processes, when there is no user namespace).
    Core dumps are off: a crashing TensorFlow process would write gigabytes into the folder.
    """
    values = {"RLIMIT_CORE": 0}
    if limits.processes is not None:
        values["RLIMIT_NPROC"] = limits.processes + max(0, nproc_slack)
    if limits.file_size is not None:
        values["RLIMIT_FSIZE"] = limits.file_size
    if limits.cpu_time is not None:
        values["RLIMIT_CPU"] = int(limits.cpu_time) + CPU_RLIMIT_MARGIN_S
    return values


def tasks_of_user(uid: int) -> int:
    """Processes and threads that ``uid`` runs now (what ``RLIMIT_NPROC`` counts, outside any
    user namespace)."""
    total = 0
    for process in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = process.info["uids"], process.info["num_threads"]
        if uids is not None and threads is not None and uids.real == uid:
            total += threads
    return total


def file_size_hit(cell_errors: list, limits: Limits) -> LimitHit | None:
    """The first cell whose error is a write past ``RLIMIT_FSIZE`` (``EFBIG``), as a hit."""
    if limits.file_size is None:
        return None
    marker = f"[Errno {errno.EFBIG}]"
    for error in cell_errors:
        if marker in (error.evalue or "") or marker in (error.traceback or ""):
            return LimitHit("file_size", format_size(limits.file_size), error.cell.index)
    return None


# ---------------------------------------------------------------------------------------------
# cgroup v2


class Cgroup:
    """A cgroup v2 of one kernel, with ``memory.max`` and ``pids.max`` set.

    Used where the grader may create one: under ``$NN_GRADER_CGROUP`` (a delegated cgroup an
    administrator prepared, with ``memory`` and ``pids`` in its ``cgroup.subtree_control``), or,
    as root, at the root of a cgroup v2 hierarchy. The kernel's processes are moved in by the
    launcher before the kernel starts (:meth:`procs_file`), so nothing runs outside it.
    """

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, limits: Limits, name: str, *, parent: Path | None = None) -> "Cgroup | None":
        """A new cgroup for one kernel, or None where none can be made here (then the watcher
        enforces the memory limit)."""
        if limits.memory is None and limits.processes is None:
            return None
        parent = parent or _cgroup_parent()
        if parent is None:
            return None
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            if "memory" not in enabled or (limits.processes is not None and "pids" not in enabled):
                (parent / "cgroup.subtree_control").write_text("+memory +pids")
            path = parent / name
            path.mkdir()
        except OSError:
            return None
        group = cls(path)
        try:
            if limits.memory is not None:
                (path / "memory.max").write_text(str(limits.memory))
                _write_if_present(path / "memory.swap.max", "0")
                _write_if_present(path / "memory.oom.group", "1")  # the whole kernel, not one thread pool
            if limits.processes is not None:
                (path / "pids.max").write_text(str(limits.processes))
        except OSError:
            group.remove()
            return None
        return group

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def events(self) -> dict[str, int]:
        """``memory.events`` and ``pids.events`` counters (``oom_kill``, ``max``)."""
        counts: dict[str, int] = {}
        for name, prefix in (("memory.events", ""), ("pids.events", "pids_")):
            try:
                for line in (self.path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    counts[prefix + key] = int(value)
            except (OSError, ValueError):
                continue
        return counts

    def remove(self) -> None:
        try:
            _write_if_present(self.path / "cgroup.kill", "1")
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.02)
        except OSError:
            pass
        # A fake or read-only hierarchy (tests): remove what was written.
        if self.path.exists() and not _is_cgroupfs(self.path):
            for child in self.path.iterdir():
                child.unlink()
            self.path.rmdir()


def _write_if_present(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)


def _is_cgroupfs(path: Path) -> bool:
    return (path / "cgroup.controllers").exists() and str(path).startswith("/sys/fs/cgroup")


def _cgroup_parent() -> Path | None:
    configured = os.environ.get("NN_GRADER_CGROUP")
    if configured:
        path = Path(configured)
        return path if os.access(path / "cgroup.subtree_control", os.W_OK) else None
    root = Path("/sys/fs/cgroup")
    # Only a pure cgroup v2 hierarchy, and only as root: the root cgroup is the one place where
    # processes and enabled controllers may live side by side.
    if os.geteuid() != 0 or not (root / "cgroup.controllers").exists():
        return None
    try:
        own = Path("/proc/self/cgroup").read_text().strip()
    except OSError:
        return None
    if own not in ("0::/", "0::/init.scope") or "memory" not in (root / "cgroup.controllers").read_text().split():
        return None
    return root
