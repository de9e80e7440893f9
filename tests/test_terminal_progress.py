"""What the terminal shows while grading runs (issue 16, item 7).

``grade check`` shows the cell, the heading it sits under and the epochs of the current fit while
it runs: a live line on a terminal, a plain line now and then elsewhere, nothing with ``-q``;
``-q`` prints one line; the sandbox warning comes once and says what really happened. A batch's
bar names at most ``-j`` running notebooks, its ETA comes from the finished durations laid out
over the workers, and it stops on a line of its own before anything else is printed.

The formatter and the ETA are tested on fake events and timings; a few tests run a one-cell
notebook through the command line (a kernel, no TensorFlow: seconds).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from rich.console import Console

from grader.execute import sandbox
from grader.cli import main
from grader.cli.progress import _Progress
from grader.report.terminal import CheckProgress, EventTail, RunState, eta_seconds, format_eta, progress_line
from tests.nbfactory import code, md, notebook, write

ESCAPE = re.compile(r"\x1b")

RUBRIC = """
name: tiny-answer
title: Tiny answer
tasks:
  - id: q1
    title: "Question 1: the answer"
    checks:
      - answer: {variable: answer, equals: 42}
"""


def _events(path: Path, *events: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")


def _fit_start(index: int, epochs: int, capped: int | None = None) -> dict:
    fit = {"epochs": epochs, "initial_epoch": 0, "capped": {"epochs": [epochs, capped]} if capped else {}}
    return {"event": "fit_start", "index": index, "model_id": f"m{index + 1}", "fit": fit}


def _lab() -> object:
    return notebook(md("# Lab"), code("import keras"), md("## Question 4: a CNN"), code("build()"), code("model.fit(x, y)"))


def _progress(tmp_path: Path, *, terminal: bool = False) -> tuple[CheckProgress, io.StringIO, Path]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=120, highlight=False)
    progress = CheckProgress(console=console, plain_every_s=0.0)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    progress.notebook_started(_lab(), bundle)
    return progress, out, bundle / "events.jsonl"


# --- the progress line ----------------------------------------------------------------------


def test_the_line_names_the_cell_its_heading_and_the_epoch_of_the_current_fit(tmp_path):
    progress, _, events = _progress(tmp_path)
    progress.cell_started(4)
    _events(events, _fit_start(0, 3), {"event": "epoch", "index": 0, "epoch": 0},
            {"event": "fit", "index": 0}, _fit_start(1, 5, capped=1))
    progress.tick()
    assert progress_line(progress.state) == "cell 5/5 · Question 4: a CNN · fit 2, epoch 1/1"


def test_epochs_count_up_as_the_recorder_writes_them(tmp_path):
    progress, _, events = _progress(tmp_path)
    progress.cell_started(4)
    _events(events, _fit_start(0, 3))
    progress.tick()
    assert progress_line(progress.state).endswith("fit 1, epoch 1/3")
    _events(events, {"event": "epoch", "index": 0, "epoch": 0}, {"event": "epoch", "index": 0, "epoch": 1})
    progress.tick()
    assert progress_line(progress.state).endswith("fit 1, epoch 3/3")


def test_a_cell_before_any_heading_and_without_a_fit_says_only_the_cell(tmp_path):
    progress, _, _ = _progress(tmp_path)
    progress.cell_started(1)
    assert progress_line(progress.state) == "cell 2/5 · Lab"
    assert progress_line(RunState(phase="running", cell=1, cells=3)) == "cell 1/3"


def test_the_phases_around_the_cells_are_named():
    assert progress_line(RunState()) == "preparing the data"
    assert progress_line(RunState(phase="starting kernel")) == "starting the kernel"
    assert progress_line(RunState(phase="checking")) == "verifying and checking"


def test_a_heading_cannot_move_the_cursor():
    line = progress_line(RunState(phase="running", cell=2, cells=2, heading="Q1\x1b[2J\x1b]0;owned\x07"))
    assert not ESCAPE.search(line)


def test_wrong_fields_in_the_kernels_events_are_ignored():
    state = RunState(phase="running", cell=1, cells=1)
    for event in ({"event": "fit_start", "index": "0"}, {"event": "epoch", "index": True},
                  {"event": "epoch", "index": -1}, {"event": "fit_start", "index": 0, "fit": {"epochs": "9"}}):
        state.apply(event)
    assert progress_line(state) == "cell 1/1 · fit 1, epoch 1"


def test_without_a_terminal_the_lines_are_plain(tmp_path):
    progress, out, events = _progress(tmp_path)
    progress.cell_started(4)
    _events(events, _fit_start(0, 2))
    progress.tick()
    progress.notebook_finished()
    progress.tick()
    text = out.getvalue()
    assert not ESCAPE.search(text), text
    assert "cell 5/5 · Question 4: a CNN · fit 1, epoch 1/2" in text
    assert "verifying and checking" in text


def test_plain_lines_come_only_when_something_changed_and_not_too_often(tmp_path):
    now = [0.0]
    out = io.StringIO()
    progress = CheckProgress(console=Console(file=out, force_terminal=False), plain_every_s=10.0, clock=lambda: now[0])
    progress.notebook_started(_lab(), tmp_path)
    for index, at in ((1, 1.0), (3, 2.0), (4, 3.0), (4, 20.0), (4, 40.0)):
        now[0] = at
        progress.cell_started(index)
        progress.tick()
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["… cell 2/5 · Lab", "… cell 5/5 · Question 4: a CNN"]


def test_on_a_terminal_the_line_is_live_and_leaves_nothing_behind(tmp_path):
    progress, out, _ = _progress(tmp_path, terminal=True)
    progress.start()
    progress.cell_started(3)
    progress.tick()
    progress.stop()
    assert "cell 4/5 · Question 4: a CNN" in out.getvalue()
    assert out.getvalue().endswith("\x1b[1A\x1b[2K")  # then erased: the result starts on a clean line


def test_quiet_draws_nothing(tmp_path):
    out = io.StringIO()
    progress = CheckProgress(console=Console(file=out, force_terminal=True), quiet=True)
    with progress:
        progress.notebook_started(_lab(), tmp_path)
        progress.cell_started(3)
    assert out.getvalue() == ""


# --- the kernel's events file ---------------------------------------------------------------


def test_the_tail_reads_whole_lines_only_and_resumes_where_it_stopped(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read() == []  # not there yet
    path.write_text('{"event": "a", "index": 0}\n{"event": "b", "ind')
    assert [e["event"] for e in tail.read()] == ["a"]
    with open(path, "a") as handle:
        handle.write('ex": 1}\nnot json\n')
    assert [e["event"] for e in tail.read()] == ["b"]
    tail.close()


def test_a_line_too_long_is_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "' + "x" * 5000 + '"}\n{"event": "after"}\n')
    tail = EventTail(path, chunk=1000, max_line=2000)
    seen = []
    for _ in range(10):
        seen += tail.read()
    assert [e["event"] for e in seen] == ["after"]


def test_a_fifo_or_a_link_in_place_of_the_events_file_is_not_read(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    assert EventTail(fifo).read() == []  # returns at once: no writer, no hang
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"event": "fit_start", "index": 0}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(secret)
    assert EventTail(link).read() == []


# --- the batch ETA --------------------------------------------------------------------------


def test_no_eta_before_the_second_result():
    assert eta_seconds([], [1.0, 2.0], 10, 2) is None
    assert eta_seconds([30.0], [1.0], 10, 2) is None
    assert format_eta(None) == "ETA --"


def test_eta_lays_the_remaining_work_out_over_the_workers():
    # Mean 10 s; one running for 5 s (5 s left), one slot free; 3 queued: 5+10, 0+10, then +10.
    assert eta_seconds([10.0, 10.0], [5.0], 3, 2) == pytest.approx(20.0)
    # Two results that came in together do not make 100 more look instant.
    assert eta_seconds([30.0, 30.0], [0.0, 0.0], 100, 2) == pytest.approx(51 * 30.0)
    assert eta_seconds([10.0, 30.0], [], 4, 4) == pytest.approx(20.0)


def test_reused_results_do_not_drag_the_eta_down():
    assert eta_seconds([0.01, 0.02, 40.0, 40.0], [], 2, 1) == pytest.approx(80.0)
    assert eta_seconds([0.01, 0.02], [], 10, 1) == pytest.approx(0.15)  # a static batch: all are quick


def test_eta_is_formatted_for_people():
    assert format_eta(65) == "ETA 1:05"
    assert format_eta(3725) == "ETA 1:02:05"


# --- the batch bar --------------------------------------------------------------------------


def _result(key: str) -> SimpleNamespace:
    return SimpleNamespace(student=SimpleNamespace(key=key), problems_blocking=False, problems=[], score=1.0,
                           max_score=1.0, duration_s=1.0, passed=True, integrity_findings=[], needs_review=[],
                           mode="executed", sandbox="bwrap")


def _sub(key: str) -> SimpleNamespace:
    return SimpleNamespace(student=SimpleNamespace(key=key))


def test_the_bar_names_no_more_running_notebooks_than_workers_and_stops_before_later_output():
    out = io.StringIO()
    progress = _Progress(4, quiet=False, console=Console(file=out, force_terminal=True, width=150))
    progress.resources(2, [], None)

    async def batch() -> list[str]:
        seen = []

        async def job(key: str, finish_run: bool) -> None:
            progress.started(_sub(key))
            if finish_run:
                progress.notebook_finished()  # its notebook has run; it is being checked now

        await asyncio.gather(job("alice", True), job("bob", False), job("carol", False))
        seen.append(progress._bar.tasks[0].description)
        return seen

    description = asyncio.run(batch())[0]
    assert description == "running bob, carol · 1 checking"
    for key in ("alice", "bob", "carol", "dave"):
        progress.finished(_sub(key), _result(key))
    assert progress._bar is None  # stopped with the last result
    print("grade: a message after grading", file=out)
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).splitlines()  # cursor codes; no text
    assert lines[-1] == "grade: a message after grading"
    assert "4/4" in lines[-2]


def test_the_batch_without_a_terminal_prints_lines_and_no_bar(capsys):
    out = io.StringIO()
    progress = _Progress(2, quiet=False, console=Console(file=out, force_terminal=False))
    progress.resources(1, [], None)
    for key in ("alice", "bob"):
        progress.started(_sub(key))
        progress.finished(_sub(key), _result(key))
    progress.done([_result("alice"), _result("bob")], Path("out"))
    text = capsys.readouterr().out + out.getvalue()
    assert "alice" in text and "graded 2 submission(s)" in text
    assert not ESCAPE.search(text) and "━" not in text


# --- through the command line ---------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    path = write(notebook(md("## Question 1"), code("answer = 42")), tmp_path / "mine.ipynb")
    return path, rubric


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "probe_bwrap", lambda: "bubblewrap is not installed")
    monkeypatch.setattr(sandbox, "_warned", set())


def _check(small, tmp_path, *extra):
    path, rubric = small
    return CliRunner().invoke(main, ["check", str(path), "--rubric", str(rubric), "--out", str(tmp_path / "report"), *extra])


def test_quiet_prints_one_line_even_without_a_sandbox(small, tmp_path, no_bwrap):
    result = _check(small, tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["mine.ipynb: 1/1 checks passed, 1/1 points (ran without a sandbox)"]


def test_quiet_static_check_prints_one_line(small, tmp_path):
    result = _check(small, tmp_path, "--quiet", "--static")
    assert result.output.splitlines() == ["mine.ipynb: 0/1 checks passed, 0/1 points"], result.output


def test_the_sandbox_warning_comes_once_and_says_why(small, tmp_path, no_bwrap):
    result = _check(small, tmp_path)
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if "sandbox" in line.lower()]
    assert len(said) == 1, result.stderr
    assert "bubblewrap is not installed" in said[0] and "--sandbox none" not in said[0]
    assert not ESCAPE.search(result.output)


def test_the_sandbox_warning_names_the_option_when_it_was_given(small, tmp_path, no_bwrap):
    result = _check(small, tmp_path, "--sandbox", "none")
    said = [line for line in result.stderr.splitlines() if "sandbox" in line.lower()]
    assert len(said) == 1 and "(--sandbox none)" in said[0], result.stderr


@pytest.mark.slow
def test_check_shows_progress_on_stderr(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    path = write(notebook(md("## Question 1: wait"), code("import time\ntime.sleep(12)\nanswer = 42")), tmp_path / "slow.ipynb")
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(path), "--rubric", str(rubric),
                           "--out", str(tmp_path / "report")], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("… ")]
    assert any(line.startswith("… cell 2/2 · Question 1: wait") for line in progress), done.stderr
    assert not ESCAPE.search(done.stderr)
    assert "… " not in done.stdout
