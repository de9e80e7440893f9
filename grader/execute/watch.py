"""The limit watcher: a process of its own that measures one kernel's process tree and stops it
at the first limit it reaches (:mod:`grader.execute.limits` says what each limit is and how
it is enforced).

It is started as ``python -m grader.execute.watch CONFIG`` by :class:`WatcherProcess`, next to
the kernel, and reports a hit as one JSON line before it kills. The process tree is measured with
psutil, which reads ``/proc`` on Linux (resident memory from ``statm``, which recent kernels sum
exactly where ``stat``'s figure is a per-CPU estimate; threads; CPU times) and the system's own
calls on macOS, where there is no ``/proc`` to read. Nothing here imports Keras.

Example::

    watcher = WatcherProcess(kernel_pid, Limits(memory=4 * GiB), workdir=workdir)
    ...
    watcher.hit  # LimitHit("memory", "4 GiB", 14) once it stopped the kernel, else None
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from grader.execute.limits import MiB, Cgroup, LimitHit, Limits, format_duration, format_size

__all__ = [
    "LimitWatcher",
    "TreeUsage",
    "WatcherProcess",
    "folder_bytes",
    "kill_tree",
    "memory_file_bytes",
    "proportional_memory",
    "tree_usage",
]

# How often the watcher looks at memory, processes and CPU time (seconds). At 3 GB/s of
# allocation a 0.2 s poll overshoots the memory limit by well under a gigabyte before the kill.
POLL_INTERVAL_S = 0.2
# The working folder is walked less often: a folder with many files costs more to measure.
DISK_INTERVAL_S = 1.0
# Resident memory of all but the largest process below which shared pages are not worth
# measuring (bwrap's own processes, a keeper): the sum is then close enough.
SHARED_SLACK = 64 * MiB


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
        total += getattr(info, "pss", info.rss)  # no pss where the system does not tell it
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
        self.process = subprocess.Popen([sys.executable, "-m", "grader.execute.watch", json.dumps(config)],
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


def _undumpable() -> None:
    """The watcher's environment is the grader's (an LMS token, the mark of the grader's own
    processes): like the grader, it is not dumpable, so a kernel of the same user cannot read it."""
    if sys.platform != "linux":
        return
    import ctypes

    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


def _watch(config_json: str) -> None:
    """``python -m grader.execute.watch CONFIG``: watch one kernel until it is gone (WatcherProcess)."""
    config = json.loads(config_json)
    _undumpable()
    cgroup = Cgroup(Path(config["cgroup"])) if config.get("cgroup") else None

    def report(hit: LimitHit) -> None:
        print(json.dumps({"kind": hit.kind, "limit": hit.limit, "detail": hit.detail}), flush=True)

    watcher = LimitWatcher(config["root"], Limits(**config["limits"]), pgid=config.get("pgid"), cgroup=cgroup,
                           workdir=Path(config["workdir"]) if config.get("workdir") else None,
                           report=report, parent=config.get("parent"))
    watcher.run()  # in this process's only thread


if __name__ == "__main__":
    _watch(sys.argv[1])
