"""Resource limits for one notebook's kernel: what they are, and how they are enforced.

A :class:`Limits` holds the limits of a run, with defaults suited to a CNN lab on a CPU or one GPU.
The rubric's ``limits:`` block and the command line override them (:meth:`Limits.from_rubric`,
:meth:`Limits.replace`). Wall time per cell and per notebook is not here: nbclient and
:mod:`grader.execute.client` enforce it.

How each limit is enforced, and why that way:

* **memory**: an address-space limit (``RLIMIT_AS``) breaks TensorFlow, which reserves far more
  address space than it uses. Where the grader may create a cgroup v2 with the memory controller
  (see :class:`Cgroup`), the kernel runs in one with ``memory.max``; everywhere else a
  :class:`LimitWatcher`, in a process of its own (:class:`WatcherProcess`), adds up the resident
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

Nothing here imports Keras. The process tree is measured with psutil, which reads ``/proc`` on
Linux (resident memory from ``statm``, which recent kernels sum exactly where ``stat``'s figure
is a per-CPU estimate; threads; CPU times) and the system's own calls on macOS, where there is
no ``/proc`` to read.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

__all__ = [
    "Cgroup",
    "LimitHit",
    "LimitWatcher",
    "Limits",
    "TreeUsage",
    "WatcherProcess",
    "file_size_hit",
    "format_duration",
    "format_size",
    "kill_tree",
    "limits_from_text",
    "parse_duration",
    "parse_size",
    "rlimits_for",
    "tree_usage",
]

KiB, MiB, GiB = 2**10, 2**20, 2**30

# How often the watcher looks at memory, processes and CPU time (seconds). At 3 GB/s of
# allocation a 0.2 s poll overshoots the memory limit by well under a gigabyte before the kill.
POLL_INTERVAL_S = 0.2
# The working folder is walked less often: a folder with many files costs more to measure.
DISK_INTERVAL_S = 1.0
# Resident memory of all but the largest process below which shared pages are not worth
# measuring (bwrap's own processes, a keeper): the sum is then close enough.
SHARED_SLACK = 64 * MiB
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
    ``limits`` of :class:`grader.pipeline.submission.GradingOptions`. Options not given (None) are left out;
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
# Measuring a process tree (psutil: /proc on Linux, the system's own calls elsewhere)


# A process that has exited but is not yet reaped holds no memory and runs nothing.
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
_VANISHED = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


@dataclass
class TreeUsage:
    """What a process and its descendants use now."""

    pids: list[int]
    tasks: int  # processes and threads
    rss: int  # bytes, resident memory added up (shared pages counted in each process)
    cpu_s: float  # user + system CPU seconds, live processes only
    largest: int = 0  # bytes, the resident memory of the largest process
    cpu_by_pid: dict[int, float] = dataclasses.field(default_factory=dict)  # user + system seconds


def tree_usage(root: int) -> TreeUsage:
    """Usage of ``root`` and every process below it (none when ``root`` is gone or a zombie)."""
    try:
        top = psutil.Process(root)
        tree = [top, *top.children(recursive=True)]
    except _VANISHED:
        return TreeUsage(pids=[], tasks=0, rss=0, cpu_s=0.0)
    pids: list[int] = []
    tasks = rss = largest = 0
    cpu: dict[int, float] = {}
    for process in tree:
        try:
            with process.oneshot():  # one read of /proc/PID/stat for status and CPU times
                if process.status() in _GONE:
                    if process is top:
                        return TreeUsage(pids=[], tasks=0, rss=0, cpu_s=0.0)
                    continue
                threads = process.num_threads()
                resident = process.memory_info().rss
                times = process.cpu_times()
        except _VANISHED:  # exited while the tree was read
            if process is top:
                return TreeUsage(pids=[], tasks=0, rss=0, cpu_s=0.0)
            continue
        pids.append(process.pid)
        tasks += threads
        rss += resident
        largest = max(largest, resident)
        cpu[process.pid] = times.user + times.system
    return TreeUsage(pids=pids, tasks=tasks, rss=rss, cpu_s=sum(cpu.values()), largest=largest, cpu_by_pid=cpu)


def memory_file_bytes(pids: list[int]) -> int:
    """Bytes of the anonymous memory files (``memfd_create``) that ``pids`` hold open, each file
    counted once however many processes share it. Linux only (``/proc/PID/fd``); 0 elsewhere."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for pid in pids:
        folder = f"/proc/{pid}/fd"
        try:
            descriptors = os.listdir(folder)
        except OSError:  # gone, or not Linux
            continue
        for fd in descriptors:
            path = f"{folder}/{fd}"
            try:
                if not os.readlink(path).startswith("/memfd:"):
                    continue
                info = os.stat(path)  # the memory file itself, through the descriptor's link
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512  # what is really held, not a sparse file's length
    return total


def proportional_memory(pids: list[int]) -> int:
    """Memory of ``pids`` with shared pages divided among the processes that share them (Pss).

    Forked workers share their parent's pages until they write them; adding up their resident
    sizes would count those pages many times over. Where the system does not tell a process's
    proportional share (macOS), its resident size counts, as if nothing were shared.
    """
    total = 0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()  # Linux: /proc/PID/smaps_rollup
        except _VANISHED:
            continue
        total += getattr(info, "pss", info.rss)
    return total


def folder_bytes(folder: Path, *, max_entries: int = 200_000) -> int:
    """Disk space the files under ``folder`` really use (blocks, so a sparse file counts for
    what it holds). Symbolic links are not followed."""
    total, seen = 0, 0
    stack = [str(folder)]
    while stack and seen < max_entries:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    blocks = getattr(info, "st_blocks", None)  # not on Windows
                    total += info.st_size if blocks is None else blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


def kill_tree(root: int, pgid: int | None = None, *, rounds: int = 20) -> None:
    """SIGKILL ``root``, its process group and every descendant, until none is left.

    A process group kill reaches children forked while it is delivered; the rounds catch
    processes that left the group (``setsid``) but are still below ``root``.
    """
    for _ in range(rounds):
        pids = tree_usage(root).pids
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not pids:
            return
        time.sleep(0.02)


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


# ---------------------------------------------------------------------------------------------
# The watcher


def _raise_priority() -> None:
    """Put the calling thread (only it) above every ordinary process, where that is allowed.

    SCHED_RR at the lowest real-time priority: the watcher sleeps between short scans, and the
    kernel's real-time throttling keeps even a runaway scan from taking a whole core.
    """
    if os.geteuid() != 0 or not hasattr(os, "sched_setscheduler"):
        return
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_RR, os.sched_param(1))
    except OSError:
        pass


class LimitWatcher(threading.Thread):
    """Watches one kernel's process tree and stops it at the first limit it reaches.

    The loop of :class:`WatcherProcess`, which runs it in a process of its own; as a thread it
    serves tests and tools. It kills with plain signals. ``cell`` tells which cell is running;
    ``report`` hears of a hit before the kill. Where it may (as root), it runs at a real-time
    priority: a fork bomb of a root kernel, which ``RLIMIT_NPROC`` does not bind, would
    otherwise starve it of CPU time.
    """

    def __init__(self, root: int, limits: Limits, *, workdir: Path | None = None, cell: Callable[[], int] = lambda: -1,
                 pgid: int | None = None, cgroup: Cgroup | None = None, interval: float = POLL_INTERVAL_S,
                 disk_interval: float = DISK_INTERVAL_S, report: Callable[[LimitHit], None] | None = None,
                 parent: int | None = None):
        super().__init__(name=f"limits-{root}", daemon=True)
        self.root, self.limits, self.workdir, self.cell = root, limits, workdir, cell
        self.pgid, self.cgroup, self.report, self.parent = pgid, cgroup, report, parent
        self.interval, self.disk_interval = interval, disk_interval
        self.hit: LimitHit | None = None
        self.peak_memory = 0
        self.peak_tasks = 0
        self._stop_event = threading.Event()
        self._cpu_of_gone = 0.0  # CPU time of processes that have exited
        self._cpu_seen: dict[int, float] = {}
        self._pss: tuple[float, int] = (float("-inf"), 0)
        self._pss_thread: threading.Thread | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        _raise_priority()
        next_disk = 0.0
        while not self._stop_event.is_set():
            started = time.monotonic()
            if self.parent is not None and os.getppid() != self.parent:
                return  # the grader is gone
            try:
                usage = tree_usage(self.root)
                if not usage.pids:
                    return  # the kernel is gone (shut down, or died on its own)
                hit = self.check(usage)
                if hit is None and self.workdir is not None and self.limits.disk is not None and started >= next_disk:
                    next_disk = started + self.disk_interval
                    used = folder_bytes(self.workdir)
                    if used > self.limits.disk:
                        hit = LimitHit("disk", format_size(self.limits.disk), self.cell(),
                                       f"{format_size(used, 2)} in the working folder")
                if hit is not None:
                    self.hit = hit
                    if self.report is not None:
                        self.report(hit)
                    kill_tree(self.root, self.pgid)
                    return
            except Exception:  # a watcher bug must not take the grader down; the wall-time limits remain
                pass
            self._stop_event.wait(self.interval)

    def check(self, usage: TreeUsage) -> LimitHit | None:
        """The limit ``usage`` is over, if any."""
        limits = self.limits
        self.peak_tasks = max(self.peak_tasks, usage.tasks)
        if self.cgroup is not None:
            events = self.cgroup.events()
            if events.get("oom_kill", 0) or events.get("oom_group_kill", 0):
                return LimitHit("memory", format_size(limits.memory), self.cell())
            if events.get("pids_max", 0):
                return LimitHit("processes", f"{limits.processes:,}", self.cell())
        # Processes first: a fork bomb's copies share their pages, and measuring those shares
        # (smaps_rollup) waits on every copy's memory map while it forks again.
        if limits.processes is not None and usage.tasks >= limits.processes:
            return LimitHit("processes", f"{limits.processes:,}", self.cell(),
                            f"{usage.tasks:,} processes and threads")
        if limits.memory is not None:
            used: int | None = usage.rss
            if usage.rss > limits.memory and usage.rss - usage.largest > SHARED_SLACK:
                used = self._proportional(usage.pids)  # forked children: count shared pages once
            if used is not None:
                # Memory files (memfd_create) are in no resident size until mapped. Read here, after
                # the process limit, so a fork bomb's scan does not list every copy's descriptors.
                used += memory_file_bytes(usage.pids)
                self.peak_memory = max(self.peak_memory, used)
                if used > limits.memory:
                    return LimitHit("memory", format_size(limits.memory), self.cell(), f"{format_size(used, 2)} in use")
        if limits.cpu_time is not None:
            cpu = self._cpu_total(usage)
            if cpu > limits.cpu_time:
                return LimitHit("cpu_time", format_duration(limits.cpu_time), self.cell())
        return None

    def _proportional(self, pids: list[int]) -> int | None:
        """The tree's proportional memory, measured in a helper thread; None until a recent
        measurement is there.

        Reading ``smaps_rollup`` waits for each process's memory map, which a process holds
        while it forks; a fork bomb's copies, starved of CPU, may hold theirs for seconds. The
        watcher must not wait with them: the process limit stops a bomb meanwhile.
        """
        now = time.monotonic()
        if self._pss_thread is None or not self._pss_thread.is_alive():
            def measure(pids: list[int]) -> None:
                self._pss = (time.monotonic(), proportional_memory(pids))

            self._pss_thread = threading.Thread(target=measure, args=(list(pids),), daemon=True)
            self._pss_thread.start()
            self._pss_thread.join(timeout=0.1)  # usually quick: a few processes, nobody forking
        measured_at, value = self._pss
        return value if now - measured_at < 2 * self.interval + 0.1 else None

    def _cpu_total(self, usage: TreeUsage) -> float:
        # Per-process CPU time vanishes with the process: keep what exited processes had used,
        # or a notebook could dodge the limit by working in short-lived children.
        current = dict(usage.cpu_by_pid)
        for pid, seconds in self._cpu_seen.items():
            if pid not in current:
                self._cpu_of_gone += seconds
        self._cpu_seen = current
        return self._cpu_of_gone + sum(current.values())


class WatcherProcess:
    """A :class:`LimitWatcher` in a process of its own, for one kernel.

    Not a thread of the grader: a thread needs the grader's GIL, which the grader's main thread
    may hold while a fork bomb starves it of CPU, and then the watcher stalls for seconds while
    the bomb grows into the thousands. The process reports a hit as one JSON line before it
    kills; the grader names the cell (``cell``) when it reads the line, which is when the
    kernel's death reaches it, in the same cell.
    """

    def __init__(self, root: int, limits: Limits, *, workdir: Path | None = None, pgid: int | None = None,
                 cgroup: Cgroup | None = None, cell: Callable[[], int] = lambda: -1):
        self.cell = cell
        self._hit: LimitHit | None = None
        config = {"root": root, "limits": dataclasses.asdict(limits), "pgid": pgid, "parent": os.getpid(),
                  "workdir": str(workdir) if workdir else None, "cgroup": str(cgroup.path) if cgroup else None}
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "grader.execute.limits", json.dumps(config)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, close_fds=True,
                                        start_new_session=True)  # Ctrl-C stops the grader, which stops it

    @property
    def hit(self) -> LimitHit | None:
        if self._hit is None and self.process.stdout is not None:
            ready, _, _ = select.select([self.process.stdout], [], [], 0)
            if ready:
                line = self.process.stdout.readline()
                try:
                    found = json.loads(line)
                    self._hit = LimitHit(found["kind"], found["limit"], self.cell(), found.get("detail", ""))
                except (ValueError, KeyError, TypeError):
                    pass
        return self._hit

    def stop(self) -> None:
        """End the watcher (again is fine); a hit it reported before stays readable."""
        if self.process.stdout is None:
            return
        _ = self.hit  # read it now: the pipe closes below
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.process.stdout = None


def _watch(config_json: str) -> None:
    """``python -m grader.execute.limits CONFIG``: watch one kernel until it is gone (WatcherProcess)."""
    config = json.loads(config_json)
    cgroup = Cgroup(Path(config["cgroup"])) if config.get("cgroup") else None

    def report(hit: LimitHit) -> None:
        print(json.dumps({"kind": hit.kind, "limit": hit.limit, "detail": hit.detail}), flush=True)

    watcher = LimitWatcher(config["root"], Limits(**config["limits"]), pgid=config.get("pgid"), cgroup=cgroup,
                           workdir=Path(config["workdir"]) if config.get("workdir") else None,
                           report=report, parent=config.get("parent"))
    watcher.run()  # in this process's only thread


if __name__ == "__main__":
    _watch(sys.argv[1])
