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
"keeper" process so that ``os.kill(os.getppid(), 9)`` kills the keeper and not the grader.
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

__all__ = ["IsolatedKernelManager", "SandboxSpec", "bwrap_command", "kernel_manager", "make_undumpable",
           "probe_bwrap", "resolve_mode",
           "seal_bundle"]

log = logging.getLogger("grader.execute.sandbox")

# The private /tmp and /dev/shm are tmpfs, which is memory: keep them small. TMPDIR points into
# the working folder, so programs that honour it write to disk (and count against the disk limit).
PRIVATE_TMP_BYTES = 256 * 2**20
# When the grader runs as root, each kernel gets a user id from this range: unprivileged, owning
# nothing on the machine, and its own, so RLIMIT_NPROC counts only that kernel's tasks.
_KERNEL_UIDS = (1_500_000_000, 1_600_000_000)
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/conda")

# Runs as the first program of the kernel's command: joins the kernel's cgroup, sets the
# rlimits (hard = soft, so the notebook cannot raise them), leaves root, then becomes the kernel,
# or, as a keeper, starts the kernel as its child and waits for it, and stops it should the
# grader die first. Kept inline so that nothing of the grader needs to be importable where it runs.
LAUNCHER = r"""
import json, os, resource, signal, sys, time
cfg = json.loads(sys.argv[1]); cmd = sys.argv[2:]
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
        done, status = os.waitpid(child, os.WNOHANG)
    except InterruptedError:
        continue
    if done:
        break
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
                              env={"PATH": os.environ.get("PATH", "")})
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
        if self.launch_config.get("cgroup_procs"):
            # bwrap and everything it starts must be in the cgroup: join it before bwrap runs.
            wrapped = _launcher({"cgroup_procs": self.launch_config["cgroup_procs"]}, wrapped)
        return wrapped

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.kernel_uid is not None:  # written private to root: the kernel's user must read it
            os.chown(self.connection_file, self.kernel_uid, self.kernel_uid)

    async def _async_post_start_kernel(self, **kw: Any) -> None:
        await super()._async_post_start_kernel(**kw)
        provisioner = self.provisioner
        # jupyter_client's local provisioner has pid, pgid and process; another (or none, once the
        # kernel is gone) may lack them, and then there is nothing here to watch or kill.
        pid = getattr(provisioner, "pid", None)
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
    if mode is SandboxMode.BWRAP and as_root:
        uid = gid = random.randrange(*_KERNEL_UIDS)
        _give_to(uid, [workdir, runtime])
        for path in datasets:  # the kernel's user must be able to read them
            os.chmod(path, os.stat(path).st_mode | 0o444)
    nproc_slack = 0
    if mode is SandboxMode.NONE and limits.processes is not None:
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
