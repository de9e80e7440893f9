"""Resource limits: their values, how they are measured, and what a kernel that hits one gets.

The process-tree tests run small Python processes of their own; the kernel tests run tiny
notebooks (no Keras) with and without the sandbox. Memory and process limits on real kernels are
in the hostile suite (tests/hostile), which runs both modes too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.errors import UsageError
from grader.model.evidence import CellError, CellRef
from grader.execute.client import run_notebook
from grader.execute.settings import ExecutionSettings
from grader.execute.limits import (
    Cgroup,
    GiB,
    KiB,
    LimitHit,
    Limits,
    MiB,
    file_size_hit,
    format_size,
    limits_from_text,
    parse_duration,
    parse_size,
    rlimits_for,
)
from grader.execute.watch import LimitWatcher, TreeUsage, WatcherProcess, folder_bytes, kill_tree, tree_usage
from grader.execute.sandbox import probe_bwrap
from tests.nbfactory import code, notebook

MODES = [pytest.param("bwrap", marks=pytest.mark.skipif(probe_bwrap() is not None, reason=str(probe_bwrap()))), "none"]


# ---------------------------------------------------------------------------------------------
# Values


def test_defaults_suit_a_cnn_lab():
    limits = Limits()
    assert (limits.memory, limits.processes, limits.file_size, limits.disk) == (8 * GiB, 1024, 2 * GiB, 10 * GiB)
    assert limits.output == 2 * MiB and limits.cpu_time is None  # CPU time is bounded by the wall-time limits


def test_rubric_limits_override_the_defaults():
    limits = Limits.from_rubric({"memory": 4 * GiB, "cpu_time": 600.0})
    assert (limits.memory, limits.cpu_time, limits.processes) == (4 * GiB, 600.0, 1024)


def test_command_line_limits_override_and_zero_lifts_a_limit():
    limits = Limits.from_rubric({"memory": 4 * GiB}).replace(memory=None, processes=0, disk=5 * GiB)
    assert (limits.memory, limits.processes, limits.disk) == (4 * GiB, None, 5 * GiB)


def test_rubric_and_command_line_limits_reach_the_kernel_settings(tmp_path):
    from grader.config import GradingOptions
    from grader.pipeline.session import GradingSession
    from grader.rubric.load import load_rubric_text

    rubric = load_rubric_text(
        "name: lab\nlimits: {memory: 2GiB, processes: 100, output: 512KiB}\n"
        "tasks:\n  - id: a\n    checks:\n      - answer: {variable: answer, equals: 42}\n", base=tmp_path)
    session = GradingSession(rubric, tmp_path / "out", GradingOptions(sandbox="none", limits={"processes": 50}))
    try:
        settings = session.settings()
    finally:
        session.close()
    assert (settings.limits.memory, settings.limits.processes) == (2 * GiB, 50)
    assert settings.max_output_bytes == 512 * KiB
    assert settings.sandbox == "none" and tmp_path / "out" in settings.hidden


def test_command_line_text_becomes_limits():
    assert limits_from_text(memory="4GiB", processes="512", cpu_time="2h", disk=None) == \
        {"memory": 4 * GiB, "processes": 512, "cpu_time": 7200.0}


def test_a_bad_command_line_limit_names_its_option():
    with pytest.raises(UsageError, match="--file-size: 'huge' is not a size"):
        limits_from_text(file_size="huge")


def test_sizes_read_binary_and_decimal_units():
    assert parse_size("8GiB") == 8 * GiB and parse_size("1.5 GiB") == 3 * 2**29
    assert parse_size("512M") == 512 * MiB and parse_size("10MB") == 10**7 and parse_size("100") == 100


def test_a_size_in_words_is_refused():
    with pytest.raises(ValueError, match="8GiB"):
        parse_size("eight gigabytes")


def test_durations_read_seconds_minutes_and_hours():
    assert (parse_duration("90s"), parse_duration("30m"), parse_duration("2h"), parse_duration(45)) == (90, 1800, 7200, 45)


def test_a_limit_hit_names_the_limit_and_the_cell():
    assert LimitHit("memory", "8 GiB", 13).message == "memory limit 8 GiB reached in cell 14"  # counted from 1
    assert LimitHit("processes", "64", 2, "70 processes and threads").message == \
        "process limit 64 reached in cell 3 (70 processes and threads)"


def test_rlimits_back_up_the_limits_and_turn_off_core_dumps():
    values = rlimits_for(Limits(memory=None, processes=64, file_size=10 * MiB, cpu_time=60, disk=None))
    assert values == {"RLIMIT_CORE": 0, "RLIMIT_NPROC": 64, "RLIMIT_FSIZE": 10 * MiB, "RLIMIT_CPU": 65}


def test_a_write_past_the_file_size_limit_is_reported_as_that_limit():
    errors = [CellError(CellRef(3), "OSError", "[Errno 27] File too large")]
    assert file_size_hit(errors, Limits(file_size=10 * MiB)) == LimitHit("file_size", "10 MiB", 3)


# ---------------------------------------------------------------------------------------------
# Measuring and stopping a process tree


def _spawn(code_text: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code_text], start_new_session=True)


PARENT_OF_SLEEPERS = ("import subprocess, sys, time\n"
                      "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) for _ in range({n})]\n"
                      "time.sleep(60)")


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_tree_usage_counts_every_descendant():
    parent = _spawn(PARENT_OF_SLEEPERS.format(n=3))
    try:
        _wait_for(lambda: len(tree_usage(parent.pid).pids) == 4)
        usage = tree_usage(parent.pid)
        assert usage.tasks >= 4 and usage.rss > 4 * MiB
    finally:
        kill_tree(parent.pid)
        parent.wait()


# A child that allocates 64 MiB (pages written, so resident) when told to; its parent only waits.
# Both block on the shared stdin pipe between steps, so the measurements need no timing.
ALLOCATING_CHILD = ("import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n"
                    "block = b'x' * (64 * 2**20)\nprint('allocated', flush=True)\nsys.stdin.readline()")
PARENT_OF_ALLOCATOR = f"import subprocess, sys\nsubprocess.call([sys.executable, '-c', {ALLOCATING_CHILD!r}])"


def test_watcher_measures_the_memory_a_child_process_allocates():
    import psutil

    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_ALLOCATOR], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        before = tree_usage(parent.pid)
        child = [p.pid for p in psutil.Process(parent.pid).children()]
        assert len(before.pids) == 2 and child and child[0] in before.pids  # the child is part of the tree
        parent.stdin.write("\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "allocated"
        after = tree_usage(parent.pid)
        assert after.rss - before.rss >= 56 * MiB  # most of the 64 MiB the child holds now
        assert after.largest == psutil.Process(child[0]).memory_info().rss  # measured by psutil
        watcher = LimitWatcher(parent.pid, Limits(memory=before.rss + 32 * MiB, processes=None, disk=None),
                               cell=lambda: 2)
        hit = watcher.check(after)
        assert hit is not None and hit.kind == "memory" and hit.message.startswith(
            f"memory limit {format_size(before.rss + 32 * MiB)} reached in cell 3")
        assert watcher.peak_memory == after.rss
    finally:
        kill_tree(parent.pid, os.getpgid(parent.pid))
        parent.wait()


# Memory held in an anonymous memory file, written but never mapped: in no resident size.
MEMFD_CHILD = ("import os, sys\nfd = os.memfd_create('held')\nchunk = b'x' * 2**20\n"
               "for _ in range(64):\n    os.write(fd, chunk)\nprint('held', flush=True)\nsys.stdin.readline()")


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux only")
def test_memory_held_in_memory_files_counts_against_the_limit():
    child = subprocess.Popen([sys.executable, "-c", MEMFD_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        assert child.stdout.readline().strip() == "held"
        from grader.execute.watch import memory_file_bytes

        usage = tree_usage(child.pid)
        assert memory_file_bytes(usage.pids) >= 64 * MiB and usage.rss < 64 * MiB  # not resident: only the file count sees it
        watcher = LimitWatcher(child.pid, Limits(memory=usage.rss + 32 * MiB, processes=None, disk=None),
                               cell=lambda: 0)
        hit = watcher.check(usage)
        assert hit is not None and hit.kind == "memory"
    finally:
        kill_tree(child.pid, os.getpgid(child.pid))
        child.wait()


def test_tasks_of_a_user_count_the_threads_of_its_processes():
    from grader.execute.limits import tasks_of_user

    sleepers = _spawn(PARENT_OF_SLEEPERS.format(n=2))
    try:
        _wait_for(lambda: len(tree_usage(sleepers.pid).pids) == 3)
        assert tasks_of_user(os.getuid()) >= tree_usage(os.getpid()).tasks >= 3 + 1  # this test, its sleepers
        assert tasks_of_user(2**31 - 7) == 0  # nobody runs as that user
    finally:
        kill_tree(sleepers.pid)
        sleepers.wait()


def test_kill_tree_stops_every_descendant():
    parent = _spawn(PARENT_OF_SLEEPERS.format(n=3))
    _wait_for(lambda: len(tree_usage(parent.pid).pids) == 4)
    children = tree_usage(parent.pid).pids[1:]
    kill_tree(parent.pid, os.getpgid(parent.pid))
    parent.wait()
    _wait_for(lambda: not any(tree_usage(pid).pids for pid in children))


def test_folder_size_counts_blocks_so_a_sparse_file_counts_for_what_it_holds(tmp_path):
    with open(tmp_path / "sparse.bin", "wb") as handle:
        handle.truncate(1 * GiB)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "real.bin").write_bytes(os.urandom(1 * MiB))
    assert 1 * MiB <= folder_bytes(tmp_path) < 2 * MiB


def _watch(process: subprocess.Popen, limits: Limits, **kwargs) -> LimitWatcher:
    watcher = LimitWatcher(process.pid, limits, cell=lambda: 7, pgid=os.getpgid(process.pid), interval=0.05, **kwargs)
    watcher.start()
    watcher.join(timeout=60)
    process.wait(timeout=30)
    return watcher


def test_watcher_stops_a_process_over_the_memory_limit():
    process = _spawn("import time\nblock = b'x' * (300 * 2**20)\ntime.sleep(60)")
    watcher = _watch(process, Limits(memory=200 * MiB, processes=None, disk=None))
    assert watcher.hit is not None and watcher.hit.message.startswith("memory limit 200 MiB reached in cell 8")
    assert process.returncode == -9


def test_watcher_stops_a_tree_at_the_process_limit():
    process = _spawn(PARENT_OF_SLEEPERS.format(n=20))
    watcher = _watch(process, Limits(memory=None, processes=10, disk=None))
    assert watcher.hit is not None and watcher.hit.kind == "processes"
    assert watcher.hit.message.startswith("process limit 10 reached in cell 8")


def test_watcher_adds_up_cpu_time_of_the_tree():
    process = _spawn("while True:\n    pass")
    watcher = _watch(process, Limits(memory=None, processes=None, cpu_time=1, disk=None))
    assert watcher.hit == LimitHit("cpu_time", "1 s", 7)


def test_watcher_measures_the_working_folder(tmp_path):
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * MiB))
    process = _spawn("import time; time.sleep(60)")
    watcher = _watch(process, Limits(memory=None, processes=None, disk=1 * MiB), workdir=tmp_path)
    assert watcher.hit is not None and watcher.hit.message.startswith("disk limit 1 MiB reached in cell 8")


def test_forked_children_sharing_their_memory_count_it_once():
    fork_three = ("import os, time\nblock = b'x' * (150 * 2**20)\nfor _ in range(3):\n    if os.fork() == 0:\n"
                  "        time.sleep(60)\n        break\ntime.sleep(60)")
    process = _spawn(fork_three)
    try:
        _wait_for(lambda: len(tree_usage(process.pid).pids) == 4)
        assert tree_usage(process.pid).rss > 500 * MiB  # the copy-on-write pages, once per process
        watcher = LimitWatcher(process.pid, Limits(memory=400 * MiB, processes=None, disk=None), interval=0.05)
        watcher.start()
        time.sleep(1.5)
        watcher.stop()
        watcher.join()
    finally:
        kill_tree(process.pid, os.getpgid(process.pid))
        process.wait()
    assert watcher.hit is None and 140 * MiB < watcher.peak_memory < 300 * MiB


def test_watcher_process_reports_the_hit_with_the_graders_cell():
    process = _spawn("import time\nblock = b'x' * (300 * 2**20)\ntime.sleep(60)")
    watcher = WatcherProcess(process.pid, Limits(memory=200 * MiB, processes=None, disk=None),
                             pgid=os.getpgid(process.pid), cell=lambda: 4)
    process.wait(timeout=60)
    _wait_for(lambda: watcher.hit is not None)
    watcher.stop()
    assert watcher.hit.message.startswith("memory limit 200 MiB reached in cell 5")


def test_watcher_process_ends_with_its_kernel():
    process = _spawn("import time; time.sleep(0.5)")
    watcher = WatcherProcess(process.pid, Limits())
    process.wait()
    assert watcher.process.wait(timeout=30) == 0 and watcher.hit is None
    watcher.stop()


def test_watcher_ends_quietly_when_the_process_exits():
    process = _spawn("pass")
    watcher = _watch(process, Limits())
    assert watcher.hit is None and not watcher.is_alive()


# ---------------------------------------------------------------------------------------------
# cgroup v2 (the file protocol, on a stand-in folder: a real one needs a delegated hierarchy)


def _fake_cgroup_parent(tmp_path: Path) -> Path:
    parent = tmp_path / "grading.slice"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("memory pids\n")
    return parent


def test_cgroup_gets_the_memory_and_process_limits(tmp_path):
    group = Cgroup.create(Limits(memory=1 * GiB, processes=100), "kernel-1", parent=_fake_cgroup_parent(tmp_path))
    assert group is not None
    assert (group.path / "memory.max").read_text() == str(1 * GiB)
    assert (group.path / "pids.max").read_text() == "100"
    group.remove()
    assert not group.path.exists()


def test_oom_kill_in_the_cgroup_is_reported_as_the_memory_limit(tmp_path):
    group = Cgroup.create(Limits(memory=1 * GiB), "kernel-1", parent=_fake_cgroup_parent(tmp_path))
    (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    watcher = LimitWatcher(os.getpid(), Limits(memory=1 * GiB), cell=lambda: 13, cgroup=group)
    hit = watcher.check(TreeUsage([os.getpid()], tasks=1, rss=10 * MiB, cpu_s=0.0))
    assert hit is not None and hit.message == "memory limit 1 GiB reached in cell 14"


def test_no_cgroup_is_made_where_none_is_writable(tmp_path, monkeypatch):
    monkeypatch.setenv("NN_GRADER_CGROUP", str(tmp_path / "missing"))
    assert Cgroup.create(Limits(), "kernel-1") is None


# ---------------------------------------------------------------------------------------------
# Kernels that hit a limit


def _run(nb, tmp_path: Path, mode: str, limits: Limits, **settings):
    return run_notebook(nb, tmp_path / "run", ExecutionSettings(sandbox=mode, limits=limits, cell_timeout=60, **settings))


@pytest.mark.parametrize("mode", MODES)
def test_cpu_time_limit_stops_the_kernel_as_a_time_limit(tmp_path, mode):
    execution = _run(notebook(code("while True:\n    pass"), code("print('never')")), tmp_path, mode,
                     Limits(cpu_time=2))
    assert execution.limit_hit == "CPU time limit 2 s reached in cell 1"
    assert execution.timed_out.startswith(execution.limit_hit) and execution.kernel_died is None


@pytest.mark.parametrize("mode", MODES)
def test_disk_limit_stops_a_notebook_that_fills_its_folder(tmp_path, mode):
    fill = ("import time\nwith open('big.bin', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * 2**20)\n"
            "        f.flush()\ntime.sleep(30)")
    execution = _run(notebook(code(fill)), tmp_path, mode, Limits(disk=20 * MiB))
    assert execution.limit_hit.startswith("disk limit 20 MiB reached in cell 1")
    assert execution.kernel_died.startswith(execution.limit_hit)


@pytest.mark.parametrize("mode", MODES)
def test_file_size_limit_fails_the_write_and_later_cells_run(tmp_path, mode):
    write = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * 20 * 2**20)"
    execution = _run(notebook(code(write), code("print('after')")), tmp_path, mode, Limits(file_size=10 * MiB))
    assert execution.limit_hit == "file size limit 10 MiB reached in cell 1"
    assert "after" in execution.notebook.cells[1].outputs[0]["text"]


@pytest.mark.parametrize("mode", MODES)
def test_output_past_the_limit_is_dropped_with_a_note(tmp_path, mode):
    flood = "for _ in range(8):\n    print('x' * 2**20)"
    execution = _run(notebook(code(flood)), tmp_path, mode, Limits(), max_output_bytes=1 * MiB)
    kept = "".join(o.get("text", "") for o in execution.notebook.cells[0].outputs)
    assert len(kept) < 1.2 * MiB and "cut at 1,024 KiB" in kept
