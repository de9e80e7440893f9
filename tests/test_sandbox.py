"""The sandbox: choosing the mode, what the bubblewrap command shows the kernel, and what a
kernel inside it can and cannot do.

The kernel tests run one small notebook (no Keras) in the sandbox and assert one fact each about
what it saw; they are skipped where bubblewrap cannot run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest

from grader.execute import sandbox
from grader.errors import SandboxUnavailable, UsageError
from grader.execute.client import run_notebook
from grader.execute.settings import ExecutionSettings
from grader.execute.limits import Limits
from grader.execute.sandbox import (
    SandboxSpec,
    bwrap_command,
    probe_bwrap,
    resolve_mode,
    seal_bundle,
)
from tests.nbfactory import code, notebook

needs_bwrap = pytest.mark.skipif(probe_bwrap() is not None, reason=f"no sandbox here: {probe_bwrap()}")


def _binds(args: list[str], flag: str) -> list[str]:
    """The sources of every ``flag SRC DEST`` in a bwrap command."""
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


# ---------------------------------------------------------------------------------------------
# Choosing the mode


def test_none_runs_unsandboxed_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="grader.execute.sandbox"):
        assert resolve_mode("none") == "none"
        assert resolve_mode("none") == "none"
    assert [r.getMessage() for r in caplog.records if "WITHOUT a sandbox" in r.getMessage()] != []
    assert len(caplog.records) == 1


def test_auto_falls_back_to_none_where_bwrap_cannot_run(monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "_warned", set())
    monkeypatch.setattr(sandbox, "probe_bwrap", lambda: "bubblewrap is not installed")
    with caplog.at_level(logging.WARNING, logger="grader.execute.sandbox"):
        assert resolve_mode("auto") == "none"
    assert "WITHOUT a sandbox: bubblewrap is not installed" in caplog.text


def test_bwrap_mode_refuses_to_run_unsandboxed(monkeypatch):
    monkeypatch.setattr(sandbox, "probe_bwrap", lambda: "bubblewrap is not installed")
    with pytest.raises(SandboxUnavailable, match="--sandbox none") as raised:
        resolve_mode("bwrap")
    assert isinstance(raised.value, UsageError)  # exit code 2, no traceback


def test_unknown_mode_is_refused():
    with pytest.raises(SandboxUnavailable, match="auto, bwrap or none"):
        resolve_mode("docker")


def test_probe_runs_once_per_process():
    probe_bwrap()
    before = probe_bwrap.cache_info().hits
    probe_bwrap()
    assert probe_bwrap.cache_info().hits == before + 1


@needs_bwrap
def test_auto_uses_bwrap_where_it_runs():
    assert resolve_mode("auto") == "bwrap"


# ---------------------------------------------------------------------------------------------
# What the command shows the kernel


def test_sandbox_has_no_network_and_its_own_processes(tmp_path):
    args = bwrap_command(SandboxSpec(workdir=tmp_path), ["python"])
    assert {"--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"} <= set(args)
    assert args[-2:] == ["--", "python"] and args[args.index("--remount-ro") + 1] == "/"


def test_only_the_working_folder_and_the_socket_folder_are_writable(tmp_path):
    data = tmp_path / "data" / "cifar10.npz"
    data.parent.mkdir()
    data.write_bytes(b"npz")
    spec = SandboxSpec(workdir=tmp_path / "run", runtime_dir=tmp_path / "k", readable=[data])
    args = bwrap_command(spec, ["python"])
    assert _binds(args, "--bind") == [str(tmp_path / "k"), str(tmp_path / "run")]
    assert str(data) in _binds(args, "--ro-bind")


def test_home_and_the_tmp_folder_are_not_shown(tmp_path):
    args = bwrap_command(SandboxSpec(workdir=tmp_path / "run"), ["python"])
    sources = _binds(args, "--ro-bind") + _binds(args, "--bind")
    assert str(Path.home()) not in sources and "/" not in sources and "/tmp" not in sources
    assert args[args.index("--tmpfs") + 1] == "/tmp"  # a private, empty /tmp


def test_hidden_file_inside_a_shown_folder_is_masked(tmp_path):
    prefix = tmp_path / "env"  # stands for a kernel's Python installation, which must be shown
    prefix.mkdir()
    (prefix / "rubric.yaml").write_text("secret")
    args = bwrap_command(SandboxSpec(python=[prefix], hidden=[prefix / "rubric.yaml"]), ["python"])
    assert str(prefix) in _binds(args, "--ro-bind")
    position = args.index(str(prefix / "rubric.yaml"))
    assert args[position - 2:position] == ["--ro-bind", "/dev/null"]


def test_hidden_folder_is_masked_around_the_working_folder_inside_it(tmp_path):
    course = tmp_path / "course"  # a folder on the kernel's Python path, which must be shown
    lab = course / "lab2"  # hidden: the rubric's folder, which also holds the grading runs
    (lab / "solutions").mkdir(parents=True)
    (lab / "rubric.yaml").write_text("secret")
    workdir = lab / "runs" / "alice"
    workdir.mkdir(parents=True)
    (lab / "runs" / "bob").mkdir()
    args = bwrap_command(SandboxSpec(workdir=workdir, python=[course], hidden=[lab]), ["python"])
    assert args[args.index(str(lab / "solutions")) - 1] == "--tmpfs"
    assert args[args.index(str(lab / "runs" / "bob")) - 1] == "--tmpfs"  # a classmate's run
    assert args[args.index(str(lab / "rubric.yaml")) - 1] == "/dev/null"
    assert _binds(args, "--bind") == [str(workdir)]


# ---------------------------------------------------------------------------------------------
# Sealing the bundle


def _bundle(workdir: Path) -> Path:
    bundle = workdir / ".nn-grader" / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "events.jsonl").write_text('{"event": "start"}\n')
    (bundle / "models" / "m1.keras").write_bytes(b"weights")
    return bundle


def test_sealed_bundle_is_moved_out_of_the_working_folder(tmp_path):
    workdir = tmp_path / "runs" / "alice"
    bundle = _bundle(workdir)
    sealed, problem = seal_bundle(workdir, bundle)
    assert problem is None and not bundle.exists() and workdir not in sealed.parents
    assert (sealed / "models" / "m1.keras").read_bytes() == b"weights"


def test_links_and_hard_links_in_the_bundle_are_removed(tmp_path):
    workdir = tmp_path / "runs" / "alice"
    bundle = _bundle(workdir)
    classmate = tmp_path / "runs" / "bob.keras"
    classmate.write_bytes(b"bob's weights")
    (bundle / "models" / "m2.keras").symlink_to(classmate)
    os.link(classmate, bundle / "models" / "m3.keras")
    os.mkfifo(bundle / "models" / "m4.keras")
    sealed, problem = seal_bundle(workdir, bundle)
    assert problem is None
    assert sorted(p.name for p in (sealed / "models").iterdir()) == ["m1.keras"]
    assert classmate.read_bytes() == b"bob's weights"


def test_a_bundle_replaced_by_a_link_is_not_used(tmp_path):
    classmate = _bundle(tmp_path / "runs" / "bob")
    workdir = tmp_path / "runs" / "alice"
    (workdir / ".nn-grader").mkdir(parents=True)
    (workdir / ".nn-grader" / "bundle").symlink_to(classmate)
    sealed, problem = seal_bundle(workdir, workdir / ".nn-grader" / "bundle")
    assert "link" in problem and list(sealed.iterdir()) == []
    assert (classmate / "models" / "m1.keras").exists()


def test_a_kernel_log_replaced_by_a_link_is_removed(tmp_path):
    workdir = tmp_path / "runs" / "alice"
    bundle = _bundle(workdir)
    (workdir / ".nn-grader" / "kernel.log").symlink_to("/etc/passwd")
    seal_bundle(workdir, bundle)
    assert not (workdir / ".nn-grader" / "kernel.log").exists()


# ---------------------------------------------------------------------------------------------
# What a kernel inside sees


SPY = """import json, os, socket
seen = {"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}
for name, address in [('host', ('127.0.0.1', int(os.environ['HOST_PORT']))), ('outside', ('1.1.1.1', 80))]:
    try:
        socket.create_connection(address, timeout=2).close()
        seen[name] = 'connected'
    except OSError as exc:
        seen[name] = exc.strerror or type(exc).__name__
for name, path in [('root', '/nn-grader-probe'), ('usr', '/usr/nn-grader-probe'), ('workdir', 'probe.txt')]:
    try:
        with open(path, 'w') as f:
            f.write('x')
        seen['write_' + name] = 'ok'
    except OSError as exc:
        seen['write_' + name] = type(exc).__name__
seen['home_entries'] = os.listdir(os.environ['REAL_HOME']) if os.path.isdir(os.environ['REAL_HOME']) else None
seen['hidden_exists'] = os.path.exists(os.environ['HIDDEN'])
seen['dataset'] = open(os.environ['DATASET'], 'rb').read().decode()
try:
    open(os.environ['DATASET'], 'ab')
    seen['dataset_writable'] = True
except OSError:
    seen['dataset_writable'] = False
try:
    import multiprocessing
    multiprocessing.Lock()  # a POSIX semaphore in /dev/shm
    seen['semaphore'] = 'ok'
except OSError as exc:
    seen['semaphore'] = type(exc).__name__
try:
    os.kill(os.getppid(), 9)
    seen['kill_parent'] = 'sent'
except OSError as exc:
    seen['kill_parent'] = type(exc).__name__
print(json.dumps(seen))"""


@pytest.fixture(scope="module")
def inside(tmp_path_factory):
    base = tmp_path_factory.mktemp("inside")
    dataset = base / "data" / "cifar10.npz"
    dataset.parent.mkdir()
    dataset.write_text("DATASET")
    hidden = base / "out"
    hidden.mkdir()
    server = socket.create_server(("127.0.0.1", 0))  # a service on the host's loopback
    env = {"REAL_HOME": str(Path.home()), "HIDDEN": str(hidden), "DATASET": str(dataset),
           "HOST_PORT": str(server.getsockname()[1])}
    nb = notebook(code(SPY), code("import time\ntime.sleep(60)"), code("print('after the interrupt')"))
    settings = ExecutionSettings(sandbox="bwrap", cell_timeout=3, env=env, datasets={"cifar10": dataset},
                                 hidden=[hidden], limits=Limits())
    try:
        execution = run_notebook(nb, base / "run", settings)
    finally:
        server.close()
    return execution, json.loads(execution.notebook.cells[0].outputs[0]["text"])


@needs_bwrap
def test_sandboxed_kernel_has_no_network(inside):
    _, seen = inside
    assert seen["outside"] == "Network is unreachable"
    assert seen["host"] == "Connection refused"  # its own loopback, not the host's


@needs_bwrap
def test_sandboxed_kernel_sees_only_its_own_processes(inside):
    _, seen = inside
    assert len(seen["pids"]) <= 4


@needs_bwrap
def test_sandboxed_kernel_writes_only_in_its_working_folder(inside):
    execution, seen = inside
    assert (seen["write_root"], seen["write_usr"], seen["write_workdir"]) == ("OSError", "OSError", "ok")
    assert (execution.workdir / "probe.txt").read_text() == "x"


@needs_bwrap
def test_sandboxed_kernel_does_not_see_the_users_home_or_hidden_folders(inside):
    _, seen = inside
    assert seen["hidden_exists"] is False
    assert seen["home_entries"] is None or not set(seen["home_entries"]) - {".pyenv", ".local", ".venv"}


@needs_bwrap
def test_sandboxed_kernel_reads_its_dataset_but_cannot_change_it(inside):
    _, seen = inside
    assert seen["dataset"] == "DATASET" and seen["dataset_writable"] is False


@needs_bwrap
def test_sandboxed_kernel_can_use_multiprocessing_locks(inside):
    _, seen = inside
    assert seen["semaphore"] == "ok"


@needs_bwrap
def test_sandboxed_kernel_cannot_kill_its_parent(inside):
    execution, seen = inside
    assert seen["kill_parent"] in ("sent", "PermissionError")  # sent to the sandbox's init, which ignores it
    assert execution.kernel_died is None


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="the grader runs as root only here")
def test_kernel_of_a_root_grader_runs_as_an_unprivileged_user(inside):
    _, seen = inside
    assert seen["uid"] != 0


@needs_bwrap
def test_interrupt_reaches_the_sandboxed_kernel(inside):
    execution, _ = inside
    assert execution.cell_errors[0].cell.index == 1 and execution.timed_out is None
    assert "after the interrupt" in execution.notebook.cells[2].outputs[0]["text"]
    assert execution.sandbox == "bwrap"


DYING_GRADER = """
import asyncio, os, sys
from pathlib import Path
from grader.execute.client import prepare
from grader.execute.settings import ExecutionSettings
from tests.nbfactory import code, notebook

async def main():
    prepared = await prepare(notebook(code("x = 1")), Path(sys.argv[1]), ExecutionSettings(sandbox=sys.argv[2]))
    print(prepared.km.provisioner.pid, flush=True)
    os._exit(0)  # gone without shutting its kernel down

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=needs_bwrap), "none"])
def test_kernel_does_not_outlive_a_grader_that_dies(tmp_path, mode):
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", DYING_GRADER, str(tmp_path / "run"), mode], cwd=root,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    launcher = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 15
    while Path(f"/proc/{launcher}").exists() or _processes_in(tmp_path / "run"):
        assert time.monotonic() < deadline, "the kernel outlived its grader"
        time.sleep(0.2)


def _processes_in(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == folder:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=needs_bwrap), "none"])
def test_what_the_kernel_process_prints_goes_to_its_log_not_the_terminal(tmp_path, mode, capfd):
    nb = notebook(code("import os\nos.write(1, b'ALL CHECKS PASSED 100/100\\n')\nos.write(2, b'FAKE GRADER LINE\\n')"))
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(sandbox=mode))
    captured = capfd.readouterr()
    assert "ALL CHECKS PASSED" not in captured.out + captured.err
    log = (execution.workdir / ".nn-grader" / "kernel.log").read_text()
    assert "ALL CHECKS PASSED 100/100" in log and "FAKE GRADER LINE" in log


# ---------------------------------------------------------------------------------------------
# The bundled example


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cifar10-lab"


def _grades(mode: str, out: Path) -> dict[str, list[tuple]]:
    from grader.batch.local import grade_batch
    from grader.config import GradingOptions
    from grader.rubric.load import load_rubric
    from grader.collect import collect

    collected = collect([EXAMPLE / "submissions"], layout="files", work_dir=out / ".collected")
    # Fast mode: the sandbox changes where the kernel runs, not how long it trains.
    results = grade_batch(collected.submissions, load_rubric(EXAMPLE / "rubric.yaml"), out,
                          options=GradingOptions(sandbox=mode, fast=True), workers=2)
    assert {r.sandbox for r in results} == {mode}
    return {r.student.key: [(r.score, r.max_score)] + [(t.task_id, c.check, c.status.value, c.points, c.figure)
                                                        for t in r.tasks for c in t.checks]
            for r in results}


@pytest.mark.slow
@needs_bwrap
def test_example_lab_gets_the_same_grades_in_the_sandbox(tmp_path):
    sandboxed = _grades("bwrap", tmp_path / "bwrap")
    assert len(sandboxed) == 5
    assert sandboxed == _grades("none", tmp_path / "none")
