"""What a kernel cannot reach, with or without a sandbox: the hidden test set (its file and its
path), the grader's memory and environment, the store; and nothing it starts outlives its run,
however it hides (double fork, ``setsid``, an environment of its own, its keeper killed).

The notebooks are the attackers. Without a sandbox and as root the kernels run as users of
their own, which needs a Python every user may run: this machine's lies under /root, so
:func:`other_user_python` makes one from the system's interpreter and the grader's packages.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from grader.batch.local import grade_batch
from grader.collect import Submission
from grader.config import GradingOptions
from grader.execute import sandbox
from grader.model.results import Student
from grader.rubric.load import load_rubric_text
from grader.store.result_store import ResultStore
from tests.nbfactory import code, md, notebook, write

pytestmark = pytest.mark.slow

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="kernels get users of their own only when the grader is root")
SITE = Path(__file__).resolve().parents[2]

RUBRIC = """
name: kernel-reach
title: "Kernel reach"
tasks:
  - id: q1
    question: "Question 1"
    points: 1
    checks:
      - answer: {variable: leaked, equals: "none"}
"""


def _spy(hidden: Path, out: Path) -> list:
    """Looks for the hidden test set's path in every process's command line and environment,
    reads the file, the grader's memory and environment, and writes into the store. ``leaked``
    is what it got ("none" when nothing)."""
    source = f"""
import glob, os
secret = {str(hidden)!r}.encode()
got = []
for folder in glob.glob('/proc/[0-9]*'):
    for name in ('cmdline', 'environ'):
        try:
            with open(folder + '/' + name, 'rb') as f:
                data = f.read()
        except OSError:
            continue
        if secret in data or b'NN_GRADER_LINEAGE' in data:
            got.append(name + ' of ' + folder)
try:
    with open({str(hidden)!r}, 'rb') as f:
        f.read(16)
    got.append('the hidden test file')
except OSError:
    pass
for folder in glob.glob('/proc/[0-9]*'):
    try:
        with open(folder + '/cmdline', 'rb') as f:
            if b'[hidden]' not in f.read():
                continue
        with open(folder + '/maps') as f:
            start = int(f.readline().split('-')[0], 16)
        with open(folder + '/mem', 'rb') as f:
            f.seek(start)
            f.read(16)
        got.append('the memory of the grader ' + folder)
    except (OSError, ValueError):
        pass
try:
    with open({str(out / '.store' / 'planted')!r}, 'w') as f:
        f.write('x')
    got.append('a file written in the store')
except OSError:
    pass
leaked = '; '.join(got) or 'none'
print(os.getuid(), leaked)
"""
    return [code(source)]


@pytest.fixture(scope="module")
def other_user_python():
    """An interpreter a user who owns nothing may run: the system's Python 3 with the grader's
    packages on its path (read-only for it). Skips where there is none of the same version."""
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        pytest.skip(f"no {system} to make an interpreter every user may run")
    folder = Path("/tmp") / f"nn-grader-test-python-{os.getpid()}"
    folder.mkdir(mode=0o755, exist_ok=True)
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (folder / "bin").mkdir(mode=0o755, exist_ok=True)  # bwrap binds the interpreter's prefix, here the folder
    wrapper = folder / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}:{SITE}${{PYTHONPATH:+:$PYTHONPATH}}" exec {system} "$@"\n')
    wrapper.chmod(0o755)
    done = subprocess.run([str(wrapper), "-c", "import ipykernel.kernelapp, psutil"], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"{system} cannot load the grader's packages: {done.stderr[-300:]!r}")
    if os.geteuid() == 0:  # the grader's own probe: where it fails, kernels fall back to root (and say so)
        why = sandbox._other_user_cannot_run(str(wrapper))
        if why is not None:
            pytest.skip(f"no interpreter another user may run here (the grader's packages lie in a private folder): {why}")
    yield wrapper
    shutil.rmtree(folder, ignore_errors=True)


def _hidden_test(folder: Path) -> Path:
    import numpy as np

    hidden = folder / "hidden_test.npz"
    hidden.parent.mkdir(mode=0o755, exist_ok=True)
    np.savez(hidden, x_test=np.zeros((4, 2, 2, 1), "float32"), y_test=np.arange(4) % 2)
    hidden.chmod(0o644)  # as a file is often left: every user may read it
    return hidden


def _grade_cli(root: Path, python: Path, sandbox_mode: str, hidden_in: Path | None = None
               ) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """``grade run`` in a process of its own (its command line is what a kernel would read),
    with the hidden test set in ``hidden_in`` (default: a folder of its own)."""
    out = root / "out"
    hidden = _hidden_test(hidden_in or root / "secret")
    (root / "rubric.yaml").write_text(RUBRIC)
    write(notebook(md("## Question 1"), *_spy(hidden, out)), root / "in" / "mallory.ipynb")
    driver = f"import sys; sys.executable = {str(python)!r}; from grader.cli import main; main()"
    command = [str(python), "-c", driver, "run", str(root / "in"), "--rubric", str(root / "rubric.yaml"),
               "--out", str(out), "--sandbox", sandbox_mode, "--hidden-test", str(hidden), "--no-verify", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=SITE)
    if done.returncode != 0 and (out / "mallory" / "result.json").is_file():  # why, in the assertion's message
        done.stderr += (out / "mallory" / "result.json").read_text()[-3000:]
    return done, out, hidden


def _leaked(out: Path) -> str:
    [result] = ResultStore(out).load_results()
    check = result.tasks[0].checks[0]
    return "none" if check.status.value == "passed" else f"{check.status.value}: {check.message}"


@pytest.fixture
def open_root():
    """A folder every user may pass through (pytest's own are private to root), as an
    instructor's course folder often is: what is in it is protected by its own modes only."""
    root = Path(tempfile.mkdtemp(prefix="nn-grader-reach-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@as_root
def test_an_unsandboxed_kernel_reaches_neither_the_hidden_test_set_nor_the_grader(open_root, other_user_python):
    done, out, hidden = _grade_cli(open_root, other_user_python, "none")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _leaked(out) == "none"
    assert stat.S_IMODE(hidden.stat().st_mode) & 0o007 == 0  # no longer readable by every user
    assert stat.S_IMODE((out / ".store").stat().st_mode) == 0o700
    assert not (out / ".store" / "planted").exists()


@pytest.mark.skipif(sandbox.probe_bwrap() is not None, reason="bubblewrap cannot run here")
def test_a_sandboxed_kernel_sees_neither_the_hidden_test_path_nor_its_file(open_root, other_user_python):
    # Beside the interpreter, in a folder the sandbox must show: masked there, and its path on no
    # command line a process in the sandbox can read (bwrap's own, its pid 1, included).
    course = other_user_python.parent.parent / "course"
    done, out, _ = _grade_cli(open_root, other_user_python, "bwrap", hidden_in=course)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _leaked(out) == "none"


def _hiding_daemon(pid_file: Path, *, kill_keeper: bool) -> list:
    """Double-forks a daemon that leaves its session, then replaces itself with a program whose
    environment is empty (no marker of the grader's left), and sleeps; optionally kills the
    kernel's keeper (its parent) too."""
    daemon = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(300)"
    source = f"""
import os, sys, time
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.execve(sys.executable, [sys.executable, '-c', {daemon!r}], {{}})
os.waitpid(first, 0)
for _ in range(200):
    if os.path.exists({str(pid_file)!r}):
        break
    time.sleep(0.05)
leaked = 'none'
if {kill_keeper!r}:
    os.kill(os.getppid(), 9)
"""
    return [code(source)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("kernel_user, kill_keeper", [(True, False), (False, False), (False, True)],
                         ids=["kernel-user", "grader-user", "keeper-killed"])
def test_a_daemon_that_scrubs_its_environment_is_gone_when_the_batch_ends(tmp_path, monkeypatch, kernel_user,
                                                                          kill_keeper, request):
    if kernel_user:
        if os.geteuid() != 0:
            pytest.skip("kernels get users of their own only when the grader is root")
        monkeypatch.setattr(sys, "executable", str(request.getfixturevalue("other_user_python")))
    spy = Path(tempfile.mkdtemp(prefix="nn-grader-spy-", dir="/tmp"))
    spy.chmod(0o777)  # the kernel's own user writes the daemon's pid here
    request.addfinalizer(lambda: shutil.rmtree(spy, ignore_errors=True))
    pid_file = spy / "daemon.pid"
    nb = write(notebook(md("## Question 1"), *_hiding_daemon(pid_file, kill_keeper=kill_keeper)),
               tmp_path / "in" / "dmitri.ipynb")
    options = GradingOptions(preflight=False, verify=False, cell_timeout=30, notebook_timeout=120, sandbox="none")
    grade_batch([Submission(nb, Student("dmitri"))], load_rubric_text(RUBRIC), tmp_path / "out", options=options)
    pid = int(pid_file.read_text())
    try:
        assert not _alive(pid), psutil.Process(pid).as_dict(["uids", "ppid", "cmdline"])
    finally:
        if _alive(pid):
            os.kill(pid, 9)


def test_the_orphan_sweep_kills_what_the_grader_did_not_start(tmp_path):
    sandbox.adopt_orphans()
    own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # inherits the grader's mark
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={"PATH": "/usr/bin"})
    try:
        import time

        time.sleep(0.3)
        killed = sandbox.kill_orphans()
        assert stranger.pid in killed and own.pid not in killed
        assert own.poll() is None
    finally:
        sandbox.release_orphans()
        for process in (own, stranger):
            process.kill()
            try:
                process.wait(timeout=5)
            except (ChildProcessError, subprocess.TimeoutExpired):
                pass


def test_the_hidden_test_path_is_off_the_grader_command_line(tmp_path):
    from grader.cli.root import hide_secret_arguments

    secret = str(tmp_path / "answers" / "hidden_test.npz")
    probe = ("import sys; from grader.cli.root import hide_secret_arguments; "
             "hide_secret_arguments(sys.argv); sys.stdout.buffer.write(open('/proc/self/cmdline', 'rb').read())")
    for args in (["--hidden-test", secret], [f"--hidden-test={secret}"]):
        done = subprocess.run([sys.executable, "-c", probe, "run", "in", *args, "--rubric", "r.yaml"],
                              capture_output=True, cwd=SITE, check=True)
        assert secret.encode() not in done.stdout and b"[hidden]" in done.stdout
        assert b"--rubric" in done.stdout  # the rest stays readable in ps
    assert hide_secret_arguments(["grade", "run", "in", "--rubric", "r.yaml"]) is False  # nothing to hide: untouched
