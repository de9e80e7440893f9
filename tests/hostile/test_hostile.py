"""The hostile-notebook suite: notebooks that attack the grader, graded in one batch beside an
ordinary submission.

Every notebook in ``notebooks/`` (written by ``make_notebooks.py``) tries one thing a student who
wants a better grade might try. The batch runs them all, two kernels at a time, once in the
sandbox (where the machine has bubblewrap) and once without it, with small limits so it is quick.
Each test asserts, for its notebook: the batch finished; the notebook got a clear error or a fair
grade; the ordinary submission graded beside it kept its full marks; nothing outside the
notebook's working folder changed.

What a kernel without a sandbox can do (write and read the user's files, open connections) is
tested in the sandbox only: ``--sandbox none`` does not claim to stop it (docs/security.md).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from grader.batch.local import grade_batch
from grader.config import GradingOptions
from grader.execute.limits import GiB, MiB
from grader.model.results import GradeResult, Student
from grader.rubric.load import load_rubric
from grader.execute.sandbox import probe_bwrap
from grader.collect import Submission

pytestmark = pytest.mark.slow  # two batches of a dozen kernels: about a minute

HERE = Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"
RUBRIC = HERE / "rubric.yaml"
FULL_MARKS = 3.0

# Small limits keep the suite quick; each is far above what the ordinary notebook needs. The
# time limits leave room for a loaded machine (allocating 1 GiB took 7 s on a shared box).
LIMITS = {"memory": 1 * GiB, "processes": 64, "output": 1 * MiB, "disk": 200 * MiB}
CELL_TIMEOUT = 10.0
NOTEBOOK_TIMEOUT = 25.0

# Attacks on resources and on the grader's process: tested with and without the sandbox.
BOTH_MODES = ["infinite_loop", "ignores_interrupt", "fork_bomb", "allocate_100gib", "os_exit", "sys_exit",
               "kill_parent", "print_200mb", "script_output"]
# Attacks on files and the network: a kernel without a sandbox can do these as the user can.
SANDBOX_CASES = ["write_outside", "read_secrets", "network", "steal_bundle"]
HUGE = "huge_notebook"  # made here: 500 MB, sparse


def _modes() -> list:
    reason = probe_bwrap()
    return [pytest.param("bwrap", marks=pytest.mark.skipif(reason is not None, reason=str(reason))), "none"]


@dataclass
class HostileBatch:
    mode: str
    results: dict[str, GradeResult]
    seconds: float
    token: str
    out_dir: Path
    outside_before: dict[str, tuple[int, int]]
    outside_after: dict[str, tuple[int, int]]
    home_secret: Path
    connections: list = field(default_factory=list)


def _snapshot(folder: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (but ``skip``) with its size and modification time."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        if Path(root) == skip or skip in Path(root).parents:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(root) / name
            if path == skip:
                continue
            info = path.lstat()
            seen[str(path)] = (info.st_size, info.st_mtime_ns)
    return seen


def _listen() -> tuple[socket.socket, list]:
    """A TCP server on the host's loopback that records who connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    connections: list = []

    def accept() -> None:
        while server.fileno() != -1:
            try:
                conn, peer = server.accept()
                connections.append(peer)
                conn.close()
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    return server, connections


@pytest.fixture(scope="module", params=_modes())
def batch(request, tmp_path_factory) -> HostileBatch:
    mode = request.param
    base = tmp_path_factory.mktemp(f"hostile-{mode}")
    token = f"HOSTILE-{uuid.uuid4().hex[:12]}"
    submissions_dir = base / "submissions"
    submissions_dir.mkdir()
    names = ["control", *BOTH_MODES, *(SANDBOX_CASES if mode == "bwrap" else []), "control_last"]
    submissions = []
    for name in names:
        source = NOTEBOOKS / ("control.ipynb" if name == "control_last" else f"{name}.ipynb")
        path = submissions_dir / f"{name}.ipynb"
        path.write_bytes(source.read_bytes())
        submissions.append(Submission(path=path, student=Student(key=name)))
    huge = submissions_dir / f"{HUGE}.ipynb"
    with huge.open("wb") as handle:  # sparse: 500 MB on paper, a few bytes on disk
        handle.write(b'{"cells": [')
        handle.truncate(500 * 10**6)
    submissions.insert(1, Submission(path=huge, student=Student(key=HUGE)))
    rubric_copy = base / "rubric" / "rubric.yaml"
    rubric_copy.parent.mkdir()
    rubric_copy.write_text(RUBRIC.read_text())
    hidden_test = base / "hidden" / "test.npz"
    hidden_test.parent.mkdir()
    np.savez(hidden_test, x_test=np.zeros((2, 2)), y_test=np.zeros(2), secret=np.array([token]))
    home_secret = Path.home() / f".nn-grader-{token}" / "id_rsa"  # stands for ~/.ssh: removed at the end
    home_secret.parent.mkdir()
    home_secret.write_text(f"SECRET-KEY-{token}")
    out_dir = base / "out"
    # Folders to write into, and what a notebook would like to read.
    targets = [str(p) for p in (out_dir, submissions_dir, rubric_copy.parent, home_secret.parent, Path.home())]
    secrets = [str(p) for p in (submissions_dir / "control.ipynb", rubric_copy, hidden_test, home_secret.parent,
                                home_secret, RUBRIC)]
    server, connections = _listen()
    options = GradingOptions(
        sandbox=mode, limits=LIMITS, cell_timeout=CELL_TIMEOUT, notebook_timeout=NOTEBOOK_TIMEOUT, verify=False,
        hidden_test=hidden_test, preflight=False,
        kernel_env={"NN_HOSTILE_TARGETS": json.dumps(targets), "NN_HOSTILE_SECRETS": json.dumps(secrets),
                    "NN_HOSTILE_TOKEN": token,
                    "NN_HOSTILE_PORT": str(server.getsockname()[1])},
    )
    before = _snapshot(base, skip=out_dir)
    try:
        started = time.monotonic()
        results = grade_batch(submissions, load_rubric(rubric_copy), out_dir, options=options, workers=2)
        seconds = time.monotonic() - started
        after = _snapshot(base, skip=out_dir)
    finally:
        server.close()
        home_secret.unlink(missing_ok=True)
        home_secret.parent.rmdir()
    return HostileBatch(mode, {r.student.key: r for r in results}, seconds, token, out_dir, before, after,
                        home_secret, connections)


def _graded(batch: HostileBatch, name: str) -> GradeResult:
    """The notebook's result, after the checks every hostile notebook shares."""
    if name not in batch.results:
        pytest.skip(f"{name} is tested with the sandbox only: an unsandboxed kernel can do it (docs/security.md)")
    # The batch finished, within its time limits (a dozen kernels, two at a time).
    assert batch.seconds < 180
    # The ordinary submissions graded beside it kept their full marks.
    for control in ("control", "control_last"):
        assert batch.results[control].score == FULL_MARKS and batch.results[control].problems == []
    # Nothing outside the working folders changed, and nothing was left with the notebooks' mark.
    assert batch.outside_after == batch.outside_before
    assert not (Path.home() / batch.token).exists() and not Path("/tmp", batch.token).exists()
    assert not any(batch.token in p.name for p in batch.out_dir.rglob("*"))
    result = batch.results[name]
    assert not [p for p in result.problems if p.kind == "internal"], result.problems
    return result


def _problem(result: GradeResult, kind: str) -> str:
    messages = [p.message for p in result.problems if p.kind == kind]
    assert messages, f"no {kind} problem in {result.problems}"
    return messages[0]


def _errors(result: GradeResult) -> dict[int, str]:
    assert result.evidence is not None
    return {e.cell.index: e.ename for e in result.evidence.cell_errors}


def test_infinite_loop_is_interrupted_and_the_rest_is_graded(batch):
    result = _graded(batch, "infinite_loop")
    assert 1 in _errors(result)
    assert result.score == FULL_MARKS


def test_loop_that_swallows_interrupts_is_stopped_at_the_notebook_limit(batch):
    result = _graded(batch, "ignores_interrupt")
    assert "limit" in _problem(result, "timeout")
    assert result.score == 0


def test_fork_bomb_is_stopped_by_the_process_limit(batch):
    result = _graded(batch, "fork_bomb")
    assert _problem(result, "limit").startswith("process limit 64 reached in cell 3")
    assert not [p for p in result.problems if p.kind == "kernel_died"]  # told as the limit, not as a crash


def test_allocating_100_gib_is_stopped_by_the_memory_limit(batch):
    result = _graded(batch, "allocate_100gib")
    assert _problem(result, "limit").startswith("memory limit 1 GiB reached in cell 3")


def test_os_exit_mid_way_is_a_dead_kernel_with_its_cell(batch):
    result = _graded(batch, "os_exit")
    assert "during cell 3" in _problem(result, "kernel_died")
    assert result.score == 0  # the run ended before the grader could record the answers


def test_sys_exit_mid_way_is_a_failed_cell_and_the_rest_is_graded(batch):
    result = _graded(batch, "sys_exit")
    assert _errors(result).get(2) == "SystemExit"
    assert result.score == FULL_MARKS


def test_killing_the_parent_process_does_not_stop_the_batch(batch):
    result = _graded(batch, "kill_parent")  # the grader is this very process: it survived
    if batch.mode == "bwrap":  # the parent in the sandbox is its init, which ignores the signal
        assert result.score == FULL_MARKS
    else:  # without a sandbox the parent is a keeper process: the kernel may go down with it
        assert result.score == FULL_MARKS or _problem(result, "kernel_died")


def test_writing_outside_the_working_folder_changes_nothing(batch):
    result = _graded(batch, "write_outside")
    assert result.score == FULL_MARKS
    assert not (batch.home_secret.parent / batch.token).exists()


def test_secrets_are_not_readable_from_the_sandbox(batch):
    result = _graded(batch, "read_secrets")
    leaked = next(v.value for v in result.evidence.variables if v.name == "leaked")
    assert leaked == "nothing"
    assert result.score == FULL_MARKS


def test_network_connections_fail_in_the_sandbox(batch):
    result = _graded(batch, "network")
    leaked = next(v.value for v in result.evidence.variables if v.name == "leaked")
    assert leaked == "nothing" and batch.connections == []
    assert result.score == FULL_MARKS


def test_a_bundle_swapped_for_a_classmates_is_not_used(batch):
    result = _graded(batch, "steal_bundle")
    assert any(f.kind == "tampered" for f in result.evidence.findings)
    assert result.evidence.variables == [] and result.score == 0


def test_printing_200_mb_is_cut_and_the_rest_is_graded(batch):
    result = _graded(batch, "print_200mb")
    assert result.score == FULL_MARKS
    stored = batch.out_dir / "print_200mb" / "result.json"
    assert stored.stat().st_size < 1 * MiB


def test_script_in_outputs_is_escaped_in_the_report(batch):
    from grader.report.student import render_student_report

    result = _graded(batch, "script_output")
    page = render_student_report(result)
    assert '<script>alert("nn-grader-hostile")' not in page
    assert "&lt;script&gt;alert(" in page  # it is shown, as text


def test_a_500_mb_notebook_is_refused_by_the_loader(batch):
    result = _graded(batch, HUGE)
    assert "476.8 MB" in _problem(result, "invalid_notebook")  # 500 * 10**6 bytes
    assert result.score == 0
