"""A batch killed mid-way resumes without losing or repeating work; Ctrl-C stops it cleanly.

These run ``grade`` as a separate process, as an instructor would, and kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.errors import BatchLockedError
from grader.execute.sandbox import probe_bwrap
from grader.store.result_store import ResultStore
from tests.nbfactory import code, md, notebook, write

REPO = Path(__file__).resolve().parent.parent
# Asked for explicitly: with `auto`, a bubblewrap that stopped working would turn the kernel
# checks below into checks of nothing.
SANDBOX = "bwrap" if probe_bwrap() is None else "none"


def _batch(rubric: Path, sleeps: list[float]) -> tuple[Path, Path]:
    for i, seconds in enumerate(sleeps):  # each notebook differs, so each has its own stored entry
        write(notebook(md("# Question 1"), code(f"import time\ntime.sleep({seconds})\nanswer = 42  # student {i}")),
              rubric.parent / "subs" / f"s{i}.ipynb")
    return rubric.parent / "subs", rubric


def _grade(tmp_path: Path, subs: Path, rubric: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    return subprocess.Popen([sys.executable, "-m", "grader.cli", str(subs), "--rubric", str(rubric),
                             "--out", str(tmp_path / "out"), "--quiet", *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _results(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob("*/result.json"))


def _entries(out: Path) -> dict[str, int]:
    """Stored evidence entries, with the inode of their evidence file: executing a notebook
    stores a new file, so an entry whose inode is unchanged was not executed again."""
    store = out / ".store"
    if not store.is_dir():
        return {}
    return {p.name: (p / "evidence.json").stat().st_ino for p in store.iterdir()
            if p.is_dir() and not p.name.startswith(".")}


def _wait_for(condition, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"grade ended early ({process.returncode}): {process.stderr.read()}")
        assert time.monotonic() < deadline, "timed out waiting for the batch"
        time.sleep(0.1)


def _descendants(pid: int) -> dict[int, str]:
    """pid -> command line of every process below ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                try:
                    found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    found[child] = ""
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _assert_kernels_gone(kernels: dict[int, str], out: Path, sandbox: str = SANDBOX) -> None:
    """In the bubblewrap sandbox a kernel dies with the grader (``--die-with-parent``). Without
    bubblewrap nothing stops the kernels of a grader killed with SIGKILL (the test stops them);
    in both modes the batch's kernels must have been seen, and every log must say the mode."""
    assert kernels, "no kernel of the batch was seen: there is nothing to check"
    logs = [p.read_text() for p in out.glob("*/grading.log")]
    assert logs and all(f"sandbox {sandbox}" in log for log in logs), f"not every kernel ran with --sandbox {sandbox}"
    if sandbox != "bwrap":
        return
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in kernels) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in kernels if _alive(pid)] == []


@pytest.mark.slow
def test_batch_killed_with_sigkill_resumes_with_every_result_once_and_nothing_rerun(tmp_path, tiny_rubric):
    subs, rubric = _batch(tiny_rubric(), [0.5, 0.5, 1.5, 1.5, 1.5, 1.5])
    out = tmp_path / "out"
    process = _grade(tmp_path, subs, rubric, "--workers", "2", "--sandbox", SANDBOX)
    kernels: dict[int, str] = {}

    def two_finished() -> bool:
        kernels.update({pid: cmd for pid, cmd in _descendants(process.pid).items() if "ipykernel" in cmd})
        return len(_results(out)) >= 2

    _wait_for(two_finished, 180, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    try:
        _assert_kernels_gone(kernels, out)
    finally:
        for pid in kernels:  # without a sandbox, stop what the killed batch left behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    finished = _results(out)
    for name in finished:  # what is visible is whole
        json.loads((out / name / "result.json").read_text())
    before = _entries(out)
    assert 2 <= len(finished) < 6 and len(before) >= len(finished)
    run_times = {name: json.loads((out / name / "result.json").read_text())["duration_s"] for name in finished}

    process = _grade(tmp_path, subs, rubric, "--workers", "2", "--sandbox", SANDBOX)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors
    after = _entries(out)
    assert _results(out) == [f"s{i}" for i in range(6)]
    assert len(after) == 6  # one stored execution per notebook
    assert {key: after[key] for key in before} == before  # what had finished was not executed again
    for name in finished:
        assert "reused from the store" in (out / name / "grading.log").read_text()
        assert "evidence: executed now" in (out / name / "grading.log").read_text()  # the first run's entry stays
        assert json.loads((out / name / "result.json").read_text())["duration_s"] == run_times[name]
    assert not list(out.rglob(".*.tmp-*")) and not list((out / ".store").glob(".tmp-*"))


@pytest.mark.slow
def test_ctrl_c_stops_kernels_keeps_results_and_releases_the_lock(tmp_path, tiny_rubric):
    subs, rubric = _batch(tiny_rubric(), [0, 0, 120, 120, 120, 120])
    out = tmp_path / "out"
    process = _grade(tmp_path, subs, rubric, "--workers", "2")
    kernels: dict[int, str] = {}

    def long_ones_running() -> bool:
        kernels.update({pid: cmd for pid, cmd in _descendants(process.pid).items() if "ipykernel" in cmd})
        return len(_results(out)) >= 2 and sum(_alive(pid) for pid in kernels) >= 2

    _wait_for(long_ones_running, 180, process)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors[-3000:]
    assert "stopped (Ctrl-C)" in errors and "Traceback" not in errors
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in kernels) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in kernels if _alive(pid)] == []
    assert _results(out) == ["s0", "s1"]
    try:
        with ResultStore(out).lock():
            pass
    except BatchLockedError:
        pytest.fail("the lock of the stopped batch is still held")


_HANGING_SHUTDOWN = """\
import asyncio, sys
import grader.batch.local as local
async def forever():
    await asyncio.sleep(3600)
import grader.execute.client as client
client.drain_shutdowns = forever  # a kernel shutdown that never finishes (grade_submissions imports it when it starts)
local.STUCK_AFTER_CTRL_C_S = 3.0
from grader.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_ctrl_c_exits_even_when_stopping_the_kernels_hangs(tmp_path, tiny_rubric):
    subs, rubric = _batch(tiny_rubric(), [0, 0, 120, 120])
    out = tmp_path / "out"
    script = tmp_path / "hanging.py"
    script.write_text(_HANGING_SHUTDOWN)
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, str(script), str(subs), "--rubric", str(rubric), "--out", str(out),
                                "--quiet", "--workers", "2"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    kernels: dict[int, str] = {}

    def long_ones_running() -> bool:
        kernels.update({pid: cmd for pid, cmd in _descendants(process.pid).items() if "ipykernel" in cmd})
        return len(_results(out)) >= 2 and sum(_alive(pid) for pid in kernels) >= 2

    _wait_for(long_ones_running, 180, process)
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors[-3000:]
    assert "stopped (Ctrl-C)" in errors and "they were killed" in errors
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in kernels) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in kernels if _alive(pid)] == []
    assert _results(out) == ["s0", "s1"]
    with ResultStore(out).lock():
        pass
