"""Isolation of one submission's kernel: a bubblewrap sandbox where the machine allows it.

Under ``--sandbox bwrap`` the kernel runs in `bubblewrap <https://github.com/containers/bubblewrap>`_
(Debian package ``bubblewrap``) with

* no network (its own network namespace: not even the loopback of the host);
* its own process, IPC and host-name namespaces: it sees only its own processes and cannot
  signal the grader (``os.kill(os.getppid(), 9)`` reaches the sandbox's init, which ignores it);
* a file system built from a list, not the host's: the system folders (``/usr``, ``/etc``, …) and
  the Python installation read-only, its working folder read-write, the prepared datasets
  read-only, a small private ``/tmp``, and nothing else. The user's home, the grader's output
  folder, the rubric, the hidden test data and other students' folders are simply not there;
  where one of them lies inside a folder that must be visible (a rubric next to the virtual
  environment), it is masked;
* when the grader runs as root, a user id of its own (not root), so ``RLIMIT_NPROC`` binds it and
  it owns nothing but its working folder.

What a kernel needs to work inside: the IPC transport instead of TCP (a TCP port on the host
cannot be reached from a private network namespace), its connection file and sockets in a short
private folder bound into the sandbox, ``JPY_PARENT_PID`` unset (that pid means nothing in the
sandbox's pid namespace) and interrupts sent as messages (a signal to bwrap's process group
does not reach the kernel, which runs in a session of its own).

``--sandbox none`` runs the kernel as a plain subprocess with the same limits, behind a small
"keeper" process so that ``os.kill(os.getppid(), 9)`` kills the keeper and not the grader. The
keeper is a subreaper: what the kernel double-forks stays below it. As root, the kernel runs as a
user of its own there too (when every user may run the grader's Python), which is then the
boundary; every process of that user is killed when the notebook has run
(:func:`kill_kernel_users`). What a kernel leaves after killing its keeper comes back to the
grader (:func:`adopt_orphans`) and is killed (:func:`kill_orphans`).
``--sandbox auto`` uses bwrap when a probe run succeeds (once per process) and says once, in the
log, when it falls back to none. See ``docs/security.md`` for what each mode stops.

Example::

    km = kernel_manager(settings, workdir)       # an AsyncKernelManager, sandboxed as settings say
    await km.start_kernel(cwd=str(workdir), env=env)
    ...
    km.limit_hit                                  # LimitHit("memory", "8 GiB", 14) or None
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from grader.errors import SandboxUnavailable
from grader.execute.limits import Cgroup, LimitHit, Limits, format_duration, rlimits_for, tasks_of_user
from grader.execute.settings import ExecutionSettings
from grader.model.kinds import SandboxMode
from grader.execute.watch import WatcherProcess, kill_tree

__all__ = ["IsolatedKernelManager", "SandboxSpec", "adopt_orphans", "bwrap_command", "kernel_manager",
           "kill_kernel_users", "kill_orphans", "make_undumpable", "one_shot_command", "private_uid", "probe_bwrap",
           "resolve_mode", "seal_bundle", "sweep_kernels"]

log = logging.getLogger("grader.execute.sandbox")

# The private /tmp and /dev/shm are tmpfs, which is memory: keep them small. TMPDIR points into
# the working folder, so programs that honour it write to disk (and count against the disk limit).
PRIVATE_TMP_BYTES = 256 * 2**20
# When the grader runs as root, each kernel gets a user id from this range: unprivileged, owning
# nothing on the machine, and its own, so RLIMIT_NPROC counts only that kernel's tasks.
_KERNEL_UIDS = (1_500_000_000, 1_600_000_000)
# Every kernel user this process handed out, and the pids of the kernels' first processes (the
# keeper, or bwrap) while they run: what the sweeps look for, and what they must not reap.
_KERNEL_USERS: set[int] = set()
_LIVE_KERNELS: set[int] = set()
_starting = 0  # kernels whose first process is being started
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/conda")

# Runs as the first program of the kernel's command: joins the kernel's cgroup, sets the
# rlimits (hard = soft, so the notebook cannot raise them), leaves root, then becomes the kernel,
# or, as a keeper, starts the kernel as its child and waits for it, and stops it should the
# grader die first. Kept inline so that nothing of the grader needs to be importable where it runs.
LAUNCHER = r"""
import json, os, resource, signal, sys, time
cfg = json.loads(sys.argv[1]); cmd = sys.argv[2:]
if cfg.get("parent"):  # in front of bwrap: die with the grader until bwrap's --die-with-parent takes over
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG, kept across execve
    except (ImportError, OSError, AttributeError):
        pass
    if os.getppid() != cfg["parent"]:
        sys.exit(1)
if cfg.get("args_file"):  # bwrap's options, kept off every command line (bwrap --args FD)
    fd = os.open(cfg["args_file"], os.O_RDONLY)
    os.unlink(cfg["args_file"])
    os.set_inheritable(fd, True)
    cmd = [str(fd) if arg == "{args_fd}" else arg for arg in cmd]
if cfg.get("cgroup_procs"):
    try:  # where the move is refused, the grader's watcher still enforces the limits
        with open(cfg["cgroup_procs"], "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        pass
for name, value in cfg.get("rlimits", {}).items():
    which = getattr(resource, name, None)
    if which is None:
        continue
    hard = value + 5 if name == "RLIMIT_CPU" else value
    try:
        resource.setrlimit(which, (value, hard))
    except (ValueError, OSError):
        try:
            old = resource.getrlimit(which)[1]
            resource.setrlimit(which, (min(value, old) if old != resource.RLIM_INFINITY else value, old))
        except (ValueError, OSError):
            pass
if cfg.get("keeper"):
    try:  # what the kernel leaves behind (double fork, setsid) becomes the keeper's child, not init's
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (ImportError, OSError, AttributeError):
        pass
if cfg.get("gid") is not None:
    os.setgroups([])
    os.setgid(cfg["gid"])
if cfg.get("uid") is not None:
    os.setuid(cfg["uid"])
if not cfg.get("keeper"):
    os.execvp(cmd[0], cmd)
grader = os.getppid()
child = os.fork()
if child == 0:
    os.execvp(cmd[0], cmd)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
while True:  # until the kernel ends, or the grader is gone (then the kernel goes too)
    try:
        done, status = os.waitpid(-1, os.WNOHANG)  # the kernel, or an orphan adopted above
    except InterruptedError:
        continue
    if done == child:
        break
    if done:
        continue
    if os.getppid() != grader:
        os.kill(child, signal.SIGKILL)
    time.sleep(0.5)
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _launcher(config: dict[str, Any], command: list[str]) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, json.dumps(config), *command]


# ---------------------------------------------------------------------------------------------
# What the sandbox shows


@dataclass
class SandboxSpec:
    """What one kernel's sandbox contains. Paths are absolute; the kernel sees each at the same
    path as the grader, so the connection file and socket paths mean the same on both sides."""

    workdir: Path | None = None  # read-write, the kernel's current folder
    runtime_dir: Path | None = None  # read-write: connection file and sockets
    readable: list[Path] = field(default_factory=list)  # read-only: datasets, extra files
    hidden: list[Path] = field(default_factory=list)  # never visible, even inside a bound folder
    python: list[Path] = field(default_factory=list)  # extra interpreter prefixes (a kernelspec's)
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)


@functools.lru_cache(maxsize=None)
def _interpreter_paths(python: str) -> tuple[str, ...]:
    """The prefixes and ``sys.path`` of ``python`` as a kernel starts it: its own view, not the
    grader's (pytest or ``python -m`` put the current folder on the grader's path)."""
    code = "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, cwd="/",
                              env={"PATH": os.environ.get("PATH", ""),
                                   **{k: v for k, v in os.environ.items() if k == _LINEAGE}})
        paths = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        paths = [sys.prefix, sys.base_prefix, *sys.path]
    return tuple(p for p in paths if isinstance(p, str) and os.path.isabs(p) and p != "/")


def _python_paths(extra: list[Path]) -> list[Path]:
    """The folders the kernel's Python needs: prefixes, the real interpreter, its sys.path."""
    candidates = {str(Path(os.path.realpath(sys.executable)).parent.parent), *_interpreter_paths(sys.executable)}
    for prefix in extra:
        candidates.add(str(prefix))
        python = prefix / "bin" / "python"
        if python.exists():
            candidates.update(_interpreter_paths(str(python)))
    paths = sorted({Path(os.path.realpath(p)) for p in candidates if os.path.exists(p)})
    keep: list[Path] = []
    for path in paths:  # sorted: a parent comes before its children, which it already covers
        if any(_inside(path, Path(system)) for system in _SYSTEM_DIRS if os.path.isdir(system)):
            continue
        if not any(_inside(path, kept) for kept in keep):
            keep.append(path)
    return keep


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _mask(hidden: Path, keep: list[Path]) -> list[str]:
    """bwrap arguments that make ``hidden`` invisible without hiding any path in ``keep``."""
    if not hidden.exists():
        return []
    if hidden.is_file() or not hidden.is_dir():
        return ["--ro-bind", "/dev/null", str(hidden)]
    needed = [k for k in keep if _inside(k, hidden)]
    if not needed:
        return ["--tmpfs", str(hidden)]
    args: list[str] = []
    if any(k == hidden for k in needed):
        return args
    try:
        children = sorted(hidden.iterdir())
    except OSError:
        return args
    for child in children:
        args += _mask(child, needed)
    return args


def _parents(path: Path, made: set[Path]) -> list[str]:
    """``--dir`` for the folders above ``path`` that the sandbox lacks. bwrap would make them
    itself, but private to root (0700), which the kernel's own user could not pass through."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_command(spec: SandboxSpec, command: list[str]) -> list[str]:
    """The bubblewrap command line that runs ``command`` inside the sandbox ``spec`` describes."""
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "nn-grader"]
    if not spec.as_root:
        args.append("--unshare-user")
    for name in _SYSTEM_DIRS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    args += ["--ro-bind-try", "/sys", "/sys", "--dev", "/dev", "--proc", "/proc"]
    for device in sorted(glob.glob("/dev/nvidia*")):  # a GPU, where there is one
        args += ["--dev-bind", device, device]
    # /tmp and /dev/shm (POSIX semaphores: multiprocessing) are private tmpfs, which is memory
    # the watcher does not see in any process: sized, and open to the kernel's own user.
    for tmp in ("/tmp", "/dev/shm"):
        args += ["--perms", "1777", "--size", str(PRIVATE_TMP_BYTES), "--tmpfs", tmp]
    made = {Path("/"), Path("/tmp"), Path("/dev"), *(Path(d) for d in _SYSTEM_DIRS)}
    bound = _python_paths(spec.python)
    for path in bound:
        args += _parents(path, made) + ["--ro-bind", str(path), str(path)]
    keep = bound + [p for p in (spec.workdir, spec.runtime_dir) if p] + list(spec.readable)
    for hidden in spec.hidden:
        hidden = Path(os.path.realpath(hidden))
        if any(_inside(hidden, b) for b in bound) or any(_inside(hidden, Path(s)) for s in _SYSTEM_DIRS):
            args += _mask(hidden, keep)
    for path in (spec.runtime_dir, spec.workdir):
        if path is not None:
            args += _parents(path, made) + ["--bind", str(path), str(path)]
    for path in spec.readable:
        args += _parents(path, made) + ["--ro-bind", str(path), str(path)]
    if spec.workdir is not None:
        args += ["--chdir", str(spec.workdir)]
    args += ["--unsetenv", "JPY_PARENT_PID", "--remount-ro", "/", "--", *command]
    return args


def one_shot_command(spec: SandboxSpec, command: list[str], *, rlimits: dict[str, int] | None = None,
                     uid: int | None = None) -> list[str]:
    """The command line that runs ``command`` once inside the sandbox ``spec`` describes, through
    the launcher: under ``rlimits`` (``{"RLIMIT_FSIZE": 2**20}``) and, with ``uid`` (a grader
    running as root, see :func:`private_uid`), as that user and group. The clean verifier runs a
    model that needs unsafe deserialization this way (:mod:`grader.clean.sandboxed`)."""
    return bwrap_command(spec, _launcher({"rlimits": rlimits or {}, "uid": uid, "gid": uid}, command))


def private_uid() -> int:
    """A user of its own for one sandboxed process of a grader running as root (as a kernel's)."""
    return _new_kernel_user()


# ---------------------------------------------------------------------------------------------
# Choosing the mode


@functools.lru_cache(maxsize=None)
def probe_bwrap() -> str | None:
    """None when a Python program runs inside the sandbox on this machine; otherwise why not.

    Cached for the life of the process: the answer does not change between submissions.
    """
    if sys.platform != "linux":
        return f"bubblewrap runs on Linux only (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed"
    spec = SandboxSpec()
    inner = [sys.executable, "-c", "import sys, socket; sys.exit(0)"]
    if spec.as_root:
        inner = _launcher({"uid": _KERNEL_UIDS[0], "gid": _KERNEL_UIDS[0]}, inner)
    try:
        done = subprocess.run(bwrap_command(spec, inner), capture_output=True, timeout=30, text=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not run: {exc}"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"bubblewrap cannot start a sandbox here ({why[:300]}); user namespaces may be disabled"
    return None


_warned: set[str] = set()


def resolve_mode(mode: str | SandboxMode) -> SandboxMode:
    """``bwrap`` or ``none`` for ``auto|bwrap|none``; raises :class:`SandboxUnavailable` when
    bwrap is asked for and cannot run, or for a name that is no mode. Says once per process, in
    the log, when kernels run without a sandbox."""
    mode = SandboxMode.parse(mode)
    if mode is SandboxMode.NONE:
        _warn_once("none", "kernels run WITHOUT a sandbox (--sandbox none): a notebook can read and write "
                           "whatever this user can, and open network connections; resource limits still apply")
        return SandboxMode.NONE
    problem = probe_bwrap()
    if problem is None:
        return SandboxMode.BWRAP
    if mode is SandboxMode.BWRAP:
        raise SandboxUnavailable(f"--sandbox bwrap: {problem}. Use --sandbox none to grade without one "
                                 "(see docs/security.md)")
    _warn_once("auto", f"kernels run WITHOUT a sandbox: {problem}. A notebook can read and write whatever this "
                       "user can; resource limits still apply (see docs/security.md)")
    return SandboxMode.NONE


def keep_from_kernel_users(*, files: list[Path | None], folders: list[Path]) -> list[str]:
    """As root, where kernels without a sandbox run as users of their own (:func:`kernel_manager`):
    take every permission for other users off ``files`` (the hidden test set) and make ``folders``
    (the store: classmates' evidence and trained models) private to the grader. Group bits stay:
    a kernel's user is in no group. Returns what was changed, in words (also logged)."""
    if os.geteuid() != 0 or sys.platform != "linux":
        return []
    changed = []
    for path, private in [*((f, 0o007) for f in files if f), *((d, 0o077) for d in folders)]:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & private:
                os.chmod(path, mode & ~private)
                changed.append(f"{path}: mode {mode:04o} -> {mode & ~private:04o}")
        except OSError as exc:
            log.warning("could not keep %s from the kernels' users: %s", path, exc.strerror or exc)
    for line in changed:
        log.info("kernels run as users of their own: %s", line)
    return changed


def make_undumpable() -> bool:
    """Keep this process's memory and ``/proc/PID/environ`` (an LMS token, the seal key) out of
    reach of other processes of the same user: an unsandboxed kernel is one. Linux only; a root
    kernel still reads them. True when it took effect."""
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        return False


# ---------------------------------------------------------------------------------------------
# Nothing of a kernel left running
#
# What a notebook starts may leave the kernel's process tree (double fork, ``setsid``) and
# change its environment, process group and session: none of these find it. What it cannot
# change is its user (a kernel of a root grader runs as a user of its own, which cannot become
# another), and, below a subreaper, where it goes when its parent dies.

_PR_SET_CHILD_SUBREAPER = 36
_LINEAGE = "NN_GRADER_LINEAGE"  # in the environment of what the grader starts, never a kernel's
_adopted_at = 0.0  # when the mark was set: a child started before it is no kernel's


def adopt_orphans() -> bool:
    """Make this process the subreaper of everything it starts (Linux): a process whose parent
    dies comes to it instead of ``init``, so what a kernel leaves behind after its keeper was
    killed stays findable (:func:`kill_orphans`). Also marks this process's environment, which
    its own helpers inherit and kernels do not. True when it took effect."""
    if sys.platform != "linux":
        return False
    import ctypes
    import secrets

    global _adopted_at
    if _LINEAGE not in os.environ:
        os.environ[_LINEAGE] = secrets.token_hex(16)
        _adopted_at = time.time()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def release_orphans() -> None:
    """Stop being the subreaper (:func:`adopt_orphans`), once the batch's last sweep is done: a
    process that goes on (a test run, a notebook server) would otherwise collect the zombies
    of whatever its later children leave."""
    if sys.platform != "linux":
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def kill_kernel_users(uids: set[int] | None = None) -> list[int]:
    """Kill every process running as one of the kernels' own users (``uids``; all this process
    handed out when None), by real, effective or saved user id, until none is left. Root only
    (only root gives kernels users of their own). Returns the pids killed."""
    import psutil

    wanted = {u for u in (_KERNEL_USERS if uids is None else uids) if _KERNEL_UIDS[0] <= u < _KERNEL_UIDS[1]}
    if not wanted or os.geteuid() != 0:
        return []
    killed: dict[int, int] = {}  # pid -> its parent then
    for _ in range(50):  # again, until a pass finds nothing: a process may fork while it is killed
        found = 0
        for process in psutil.process_iter(["uids", "ppid"]):
            ids = process.info.get("uids")
            if ids is None or not wanted & set(ids) or process.pid == os.getpid():
                continue
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                process.send_signal(signal.SIGKILL)
            except psutil.Error:
                continue
            killed[process.pid] = process.info.get("ppid") or 0
            found += 1
        if not found:
            break
        time.sleep(0.01)
    _reap(killed)
    return sorted(killed)


def kill_orphans() -> list[int]:
    """Kill the children of this process that it did not start: what a kernel left behind and
    that came here (:func:`adopt_orphans`) when its keeper died. They are the children without
    this process's mark in their environment (kernels are started without it), other than a
    running kernel's keeper. Returns the pids killed (with their descendants)."""
    import psutil

    token = os.environ.get(_LINEAGE)
    if not token or sys.platform != "linux" or _starting:  # a kernel being started is not known yet
        return []
    killed: dict[int, int] = {}
    for _ in range(20):
        found = 0
        for child in psutil.Process().children():
            if child.pid in _LIVE_KERNELS or child.pid in killed:
                continue
            try:
                if child.create_time() < _adopted_at - 1.0:  # started before the mark existed
                    continue
                if child.status() == psutil.STATUS_ZOMBIE or child.environ().get(_LINEAGE) == token:
                    continue
            except psutil.AccessDenied:
                pass  # not readable: not a helper of this grader's (they are its own user's)
            except psutil.Error:
                continue
            kill_tree(child.pid)
            killed[child.pid] = os.getpid()
            found += 1
        if not found:
            break
    _reap(killed)
    return sorted(killed)


def _reap(killed: dict[int, int]) -> None:
    """Collect the exit status of the killed processes that are this process's children and
    that nobody else waits for (a kernel's keeper has its ``Popen``), so no zombie is left."""
    deadline = time.monotonic() + 2.0
    waiting = {pid for pid, parent in killed.items() if parent == os.getpid() and pid not in _LIVE_KERNELS}
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)


def sweep_kernels() -> list[int]:
    """Kill whatever the kernels of this process left running: every process of a kernel's own
    user (as root) and every child of this process it did not start (:func:`kill_orphans`).
    Call it once no kernel runs (the end of a batch)."""
    return sorted(set(kill_kernel_users()) | set(kill_orphans()))


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


# ---------------------------------------------------------------------------------------------
# The kernel manager


class IsolatedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernel command runs under the launcher, in the sandbox
    when there is one, and whose kernel is watched for the resource limits.

    It changes only how the command is built and what happens after start and at clean-up;
    nbclient drives it like any kernel manager.
    """

    sandbox_mode: SandboxMode = SandboxMode.NONE
    spec: SandboxSpec | None = None
    limits: Limits = Limits()
    launch_config: dict[str, Any] = {}
    cgroup: Cgroup | None = None
    watcher: WatcherProcess | None = None
    runtime_dir: Path | None = None
    kernel_uid: int | None = None  # the kernel's own user, when the grader runs as root
    current_cell: Callable[[], int] = staticmethod(lambda: -1)  # type: ignore[assignment]

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if self.sandbox_mode is not SandboxMode.BWRAP:
            return _launcher({**self.launch_config, "keeper": True}, command)
        inner = _launcher({k: v for k, v in self.launch_config.items() if k != "cgroup_procs"}, command)
        wrapped = bwrap_command(self.spec or SandboxSpec(), inner)
        # bwrap's options name what the sandbox masks (the hidden test set, the output folder):
        # on its command line they would be readable by every process, the sandbox's own pid 1
        # included. They go in a private file that the launcher hands bwrap as a descriptor.
        split = wrapped.index("--")
        handle, args_file = tempfile.mkstemp(prefix="bwrap-args-", dir=self.runtime_dir)
        with os.fdopen(handle, "wb") as f:
            f.write(b"".join(arg.encode() + b"\0" for arg in wrapped[1:split]))
        # bwrap and everything it starts must be in the cgroup: the launcher joins it before bwrap runs.
        return _launcher({"cgroup_procs": self.launch_config.get("cgroup_procs"), "args_file": args_file,
                          "parent": os.getpid()},
                         [wrapped[0], "--args", "{args_fd}", *wrapped[split:]])

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.kernel_uid is not None:  # written private to root: the kernel's user must read it
            os.chown(self.connection_file, self.kernel_uid, self.kernel_uid)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # While the kernel's first process starts, it is a child of the grader's that nobody
        # knows yet: the orphan sweep waits (kill_orphans), and knows it once it is there.
        global _starting
        _starting += 1
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            pid = getattr(self.provisioner, "pid", None)
            if pid:
                _LIVE_KERNELS.add(pid)
        finally:
            _starting -= 1

    async def _async_post_start_kernel(self, **kw: Any) -> None:
        await super()._async_post_start_kernel(**kw)
        provisioner = self.provisioner
        # jupyter_client's local provisioner has pid, pgid and process; another (or none, once the
        # kernel is gone) may lack them, and then there is nothing here to watch or kill.
        pid = getattr(provisioner, "pid", None)
        if pid:
            _LIVE_KERNELS.add(pid)
        if pid and sys.platform == "linux":
            self.watcher = WatcherProcess(pid, self.limits, workdir=self.spec.workdir if self.spec else None,
                                          cell=lambda: self.current_cell(), pgid=getattr(provisioner, "pgid", None),
                                          cgroup=self.cgroup)

    def stop_now(self) -> None:
        """Kill every process of the kernel at once (its results are written by then): nothing
        of it may go on changing files while the grader reads them."""
        if self.watcher is not None:
            self.watcher.stop()
        pid = getattr(self.provisioner, "pid", None)
        if pid and sys.platform == "linux":
            kill_tree(pid, getattr(self.provisioner, "pgid", None))
        if self.kernel_uid is not None:  # also what left the tree and scrubbed its environment
            kill_kernel_users({self.kernel_uid})

    @property
    def limit_hit(self) -> LimitHit | None:
        """The limit that stopped the kernel, if one did."""
        if self.watcher is not None and self.watcher.hit is not None:
            return self.watcher.hit
        process = getattr(self.provisioner, "process", None)
        code = process.poll() if process is not None else None
        # RLIMIT_CPU's backstop: SIGXCPU (24), seen as -24 directly or 152 through bwrap.
        if code in (-24, 128 + 24) and self.limits.cpu_time is not None:
            return LimitHit("cpu_time", format_duration(self.limits.cpu_time), self.current_cell())
        return None

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        try:
            await super()._async_cleanup_resources(restart=restart)
        finally:
            _LIVE_KERNELS.discard(getattr(self.provisioner, "pid", None) or -1)
            if self.kernel_uid is not None:
                kill_kernel_users({self.kernel_uid})
            if self.watcher is not None:
                self.watcher.stop()
            if self.cgroup is not None:
                self.cgroup.remove()
            if self.runtime_dir is not None:
                shutil.rmtree(self.runtime_dir, ignore_errors=True)


def kernel_manager(settings: ExecutionSettings, workdir: Path) -> IsolatedKernelManager:
    """A kernel manager for one run in ``workdir`` (already made), sandboxed and limited as
    ``settings`` say (``settings.sandbox``, ``settings.limits``, ``settings.hidden``)."""
    mode = settings.sandbox
    if mode is SandboxMode.AUTO:  # the session resolves it once; a direct caller may leave it to here
        mode = resolve_mode(mode)
    limits = settings.limits
    km = IsolatedKernelManager(kernel_name=settings.kernel_name) if settings.kernel_name else IsolatedKernelManager()
    base = km.kernel_spec if settings.kernel_name else None
    argv = list(base.argv) if base else [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    km._kernel_spec = KernelSpec(
        argv=argv, display_name=base.display_name if base else "Python (nn-grader)", language="python",
        env=dict(base.env) if base else {}, resource_dir=base.resource_dir if base else "",
        # A signal to bwrap's process group does not reach the kernel: interrupt by message.
        interrupt_mode="message" if mode is SandboxMode.BWRAP else (base.interrupt_mode if base else "signal"),
    )
    # A short private folder: a Unix socket path may not exceed 107 bytes.
    runtime = Path(tempfile.mkdtemp(prefix="nn-grader-k-", dir="/tmp" if os.path.isdir("/tmp") else None))
    km.runtime_dir = runtime
    km.connection_file = str(runtime / "kernel.json")
    if mode is SandboxMode.BWRAP:
        km.transport = "ipc"
    uid = gid = None
    workdir = Path(os.path.realpath(workdir))
    datasets = [Path(os.path.realpath(p)) for p in settings.datasets.values()]
    as_root = os.geteuid() == 0
    # As root, every kernel runs as a user of its own, in either mode. Without a sandbox that user
    # is the one boundary: the grader's files, the output folder, the hidden test set and the
    # grader's memory are then out of its reach as the file permissions and ptrace rules say.
    unusable = None
    if as_root and sys.platform == "linux" and mode is SandboxMode.NONE:
        unusable = _other_user_cannot_run(argv[0] if os.path.isabs(argv[0]) else sys.executable)
        if unusable is None and not _reachable(workdir, datasets):
            unusable = f"its working folder {workdir} lies where another user cannot reach it"
    if as_root and sys.platform == "linux" and unusable is None:
        uid = gid = _new_kernel_user()
        _give_to(uid, [workdir, runtime])
        os.chmod(workdir, 0o700)  # a classmate's kernel (another user) cannot look in
        for path in datasets:  # the kernel's user must be able to read them
            os.chmod(path, os.stat(path).st_mode | 0o444)
    elif unusable is not None:
        # The line before it already said there is no sandbox: this one says what root adds.
        _warn_once("root", f"kernels also run AS ROOT, not as users of their own: {unusable}. A notebook can then "
                           "read the hidden test set and the grader's memory (see docs/security.md)")
    nproc_slack = 0
    if mode is SandboxMode.NONE and limits.processes is not None and uid is None:
        # Without a user namespace RLIMIT_NPROC counts all of this user's tasks, which come and
        # go: it is set with room to spare, as a backstop, and the watcher holds the exact limit.
        # (Root is not bound by it at all; there the watcher alone stops a fork bomb.)
        nproc_slack = tasks_of_user(os.getuid()) + limits.processes
    km.limits = limits
    km.kernel_uid = uid
    km.cgroup = Cgroup.create(limits, f"nn-grader-{os.getpid()}-{time.monotonic_ns()}")
    km.launch_config = {"rlimits": rlimits_for(limits, nproc_slack=nproc_slack), "uid": uid, "gid": gid,
                        "cgroup_procs": str(km.cgroup.procs_file) if km.cgroup else None}
    extra_python = []
    if base and base.argv and os.path.isabs(base.argv[0]):
        extra_python.append(Path(os.path.realpath(base.argv[0])).parent.parent)
    km.spec = SandboxSpec(workdir=workdir, runtime_dir=runtime, readable=datasets,
                          hidden=[Path(p) for p in settings.hidden], python=extra_python,
                          as_root=as_root)
    km.sandbox_mode = mode
    return km


def _new_kernel_user() -> int:
    """A user id from the kernels' range that no process of this grader or of the machine uses."""
    while True:
        uid = random.randrange(*_KERNEL_UIDS)
        if uid not in _KERNEL_USERS and tasks_of_user(uid) == 0:
            _KERNEL_USERS.add(uid)
            return uid


@functools.lru_cache(maxsize=None)
def _other_user_cannot_run(python: str) -> str | None:
    """None when ``python`` starts a kernel for a user that owns nothing (the grader's Python
    and ipykernel readable by every user); otherwise why not, in words. Cached: it does not change."""
    uid = random.randrange(*_KERNEL_UIDS)
    code = "import ctypes, json, resource, ipykernel.kernelapp"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, cwd="/",
                              env={"PATH": os.environ.get("PATH", "")}, user=uid, group=uid, extra_groups=[])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{python} could not be started as another user ({exc})"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return (f"{python} does not run for a user without rights ({why[:200]}): install the grader's Python where "
                "every user may read it (not under /root)")
    return None


def _reachable(workdir: Path, datasets: list[Path]) -> bool:
    """Open the way to ``workdir`` and ``datasets`` for the kernel's own user: the folders above
    them that this grader made in the temporary folder (``mkdtemp`` makes them private) get the
    search bit for others, never the read bit (nobody else can list them). False when a folder
    the grader did not make there bars the way; the kernel then cannot run as another user."""
    tmp = Path(os.path.realpath(tempfile.gettempdir()))
    for target in (workdir, *datasets):
        for parent in target.parents:
            try:
                info = os.stat(parent)
            except OSError:
                return False
            if info.st_mode & 0o001:
                continue
            if parent == tmp or not _inside(parent, tmp) or info.st_uid != os.geteuid():
                return False
            os.chmod(parent, stat.S_IMODE(info.st_mode) | 0o001)
    return True


def _give_to(uid: int, folders: list[Path]) -> None:
    """Make ``folders`` and everything in them belong to ``uid`` (the kernel's own user)."""
    for folder in folders:
        os.chown(folder, uid, uid)
        for parent, dirs, files in os.walk(folder):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


# ---------------------------------------------------------------------------------------------
# The result channel


TAMPERED = ("the notebook replaced the folder where the grader records its run (.nn-grader/bundle) with a "
            "link or a file, so nothing recorded in its kernel is used")


def seal_bundle(workdir: Path, bundle_dir: Path) -> tuple[Path, str | None]:
    """Take the recorder's bundle out of the working folder, once the kernel is stopped.

    The folder is moved (not copied) next to the working folder, where the kernel never had
    access, and only plain files of its own stay in it. Without this a notebook could leave a
    process behind, or a link in place of its bundle, and hand the grader a classmate's trained
    models: the kernel knows its own path, and so the path of every other run of the batch.
    Returns the sealed folder and, when the bundle was a link or not a folder, why nothing of it
    is used (the folder returned is then empty).
    """
    sealed = workdir.parent / ".sealed" / workdir.name
    if sealed.exists():
        shutil.rmtree(sealed)
    sealed.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(sealed.parent, 0o700)  # kernels running as users of their own: not theirs to read
    problem = None
    if any(path.is_symlink() or not path.is_dir() for path in (workdir / ".nn-grader", bundle_dir)):
        problem = TAMPERED
    else:
        try:
            os.rename(bundle_dir, sealed)
        except OSError as exc:
            problem = f"the grader could not take the recorded results out of the working folder ({exc.strerror})"
    if problem is not None:
        sealed.mkdir()
        return sealed, problem
    _keep_own_files(sealed)
    _keep_own_files(workdir / ".nn-grader", only="kernel.log")
    return sealed, None


def _keep_own_files(folder: Path, only: str | None = None) -> None:
    """Remove what is not a plain folder or a plain file with a single name: links (to files
    anywhere), devices, pipes, and hard links (to a classmate's files, where one was reachable)."""
    for parent, dirs, files in os.walk(folder):  # does not follow links
        for name in dirs + files:
            if only is not None and name != only:
                continue
            path = os.path.join(parent, name)
            try:
                info = os.lstat(path)
                if stat.S_ISDIR(info.st_mode):
                    continue
                if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                    log.warning("%s is not a plain file of the kernel's own; removed before the grader reads it", path)
                    os.unlink(path)
            except OSError:
                continue
        if only is not None:
            break
