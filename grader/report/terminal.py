"""What ``grade check`` prints: the student's answer in a terminal, in a minute.

Every check shows an icon and a word (never colour alone), its points, the evidence level of the
figure it used, and the message that says what to change.

File names and messages quote what the notebook holds (its name, its error messages, its headings):
they are printed as plain :class:`~rich.text.Text`, never as rich markup, with control characters
escaped by :func:`~grader.printable.printable`, so a name cannot move the cursor, retitle the
terminal or break the page with a stray ``[/]``.

While the notebook runs, :class:`CheckProgress` shows where it is on stderr (cell, heading, fit
and epoch); :func:`eta_seconds` is the batch bar's ETA; :func:`grader_warnings` prints the
grader's warnings once each, above whatever is live.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.notebook.cell_numbers import CellNumbers
from grader.printable import printable
from grader.model.kinds import RecorderEvent
from grader.model.results import GradeResult, Status

_STYLE = {Status.PASSED: "green", Status.FAILED: "red", Status.NOT_ASSESSED: "yellow", Status.MANUAL: "cyan",
          Status.NEEDS_REVIEW: "magenta"}
_WORD = {**{status: status.title for status in Status}, Status.FAILED: "FAILED"}


def print_check(result: GradeResult, *, out_dir: Path, seconds: float, quiet: bool = False, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    skipped = sum(1 for c in result.checks if c.skipped_by_fast_mode)
    auto = [c for c in result.checks if c.status is not Status.MANUAL and not c.skipped_by_fast_mode]
    passed = sum(1 for c in auto if c.status is Status.PASSED)
    name = printable(Path(result.path).name)
    if quiet:
        # The one line --quiet prints: the sandbox warning is left out of it, so it says here
        # when the notebook ran without one.
        unsandboxed = " (ran without a sandbox)" if result.mode == "executed" and result.sandbox == "none" else ""
        console.print(Text(f"{name}: {passed}/{len(auto)} checks passed, "
                           f"{result.score:g}/{result.max_score:g} points{unsandboxed}"), soft_wrap=True)
        return
    title = printable(result.assignment or "assignment")
    console.print(Text.assemble(("nn-grader check", "bold"), f" · {title} · {name}"))
    # Running without a sandbox is said once, by the sandbox's own warning before the run.
    if result.fast_mode:
        console.print("[yellow]Fast mode:[/] training was capped, so structure is checked exactly and accuracy "
                      "targets are not assessed. Run with --full for the real figures.")
    numbers = CellNumbers(result.evidence)  # cells as Jupyter shows them, as in the report
    for problem in result.problems:
        style = "red" if problem.kind in ("invalid_notebook", "internal", "kernel_died", "timeout") else "yellow"
        label = problem.kind.replace("_", " ")
        console.print(Text.assemble((f"■ {label}:", style), " ", _plain(numbers.renumber(problem.message))))
    evidence = result.evidence
    if evidence is not None:
        for error in evidence.cell_errors[:5]:
            console.print(Text.assemble((f"■ cell {numbers.number(error.cell, error.traceback)} failed:", "red"), " ",
                                        _plain(f"{error.ename}: {error.evalue[:300]}")))
        for finding in evidence.findings:
            if finding.severity in ("warning", "error") or finding.kind == "compat":
                console.print(Text.assemble((f"■ {finding.kind.replace('_', ' ')}:", "yellow"), " ",
                                            _plain(numbers.renumber(finding.message[:400]))))
    for task in result.tasks:
        header = Text.assemble((_plain(task.title or task.task_id), "bold"), f"  {task.points:g}/{task.max_points:g} points")
        if task.selector_message:
            header.append(f"\n  {_plain(numbers.renumber(task.selector_message))}", style="yellow")
        console.print()
        console.print(header)
        table = Table(show_header=False, box=None, padding=(0, 1), expand=False)
        table.add_column(width=16, no_wrap=True)
        table.add_column(ratio=1)
        table.add_column(justify="right", no_wrap=True)
        for check in task.checks:
            status = Text(f"{check.status.icon} {_WORD[check.status]}", style=_STYLE[check.status])
            level = f" [{check.level.label}]" if check.level is not None and check.status is not Status.MANUAL else ""
            body = Text(_plain(check.title) + level)
            if check.message and check.status is not Status.PASSED:
                body.append("\n" + _plain(numbers.renumber(check.message)), style="dim")
            table.add_row(status, body, f"{check.points:g}/{check.max_points:g}")
        console.print(table)
    console.print()
    verdict = "all automatic checks passed" if result.all_automatic_passed else f"{passed} of {len(auto)} automatic checks passed"
    if skipped:
        verdict += f" ({skipped} accuracy check{'s' if skipped != 1 else ''} left for a full run)"
    if result.needs_review:
        count = len(result.needs_review)
        verdict += f" · {count} check{'s' if count != 1 else ''} need{'s' if count == 1 else ''} review by your instructor"
    pass_note = f" (pass mark {result.pass_mark:g})" if result.pass_mark is not None else ""
    console.print(Text.assemble(("Score ", "bold"), (f"{result.score:g}/{result.max_score:g}", "bold"), pass_note,
                                f" · {verdict} · {seconds:.0f} s"))
    console.print(Text(f"Report: {printable(out_dir / result.student.key / 'report.html')}"))


def _plain(text: object) -> str:
    # Line breaks of a multi-line message are kept; every other control character is escaped.
    return printable(text, newlines=True)


# ---------------------------------------------------------------------------------------------
# Progress while a notebook runs


@dataclass
class RunState:
    """Where a run stands, as the progress line tells it: built from the execution's callbacks
    (which cell runs) and the recorder's events (which fit, which epoch)."""

    phase: str = "preparing"  # preparing | starting kernel | running | closing | checking | writing
    cell: int | None = None  # the running cell, counted as every message counts it (CellRef.number)
    cells: int = 0  # cells in the notebook, counted the same way
    heading: str | None = None
    fit: int | None = None  # the current fit, from 1
    epoch: int = 0  # epochs of the current fit that finished
    epochs: int | None = None  # epochs the current fit runs (after fast-mode caps)

    def apply(self, event: dict) -> None:
        """Take one recorder event (a dict read from ``events.jsonl``) into account. The kernel
        wrote it, so every field is checked before it is used: a wrong one is ignored."""
        kind = event.get("event")
        index = event.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 10**6:
            return
        if kind == RecorderEvent.FIT_START:
            self.fit, self.epoch, self.epochs = index + 1, 0, _planned_epochs(event.get("fit"))
        elif kind == RecorderEvent.EPOCH:
            if self.fit != index + 1:  # its fit_start line was too long to read: count from here
                self.fit, self.epoch, self.epochs = index + 1, 0, None
            self.epoch += 1
        elif kind == RecorderEvent.FIT and self.fit == index + 1 and self.epochs is None:
            self.epochs = self.epoch


def _planned_epochs(fit: object) -> int | None:
    if not isinstance(fit, dict):
        return None
    capped = fit.get("capped")
    epochs, initial = fit.get("epochs"), fit.get("initial_epoch") or 0
    if isinstance(capped, dict) and isinstance(capped.get("epochs"), list) and len(capped["epochs"]) == 2:
        epochs = capped["epochs"][1]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (epochs, initial)):
        return None
    return epochs - initial if 0 < epochs - initial < 10**7 else None


def progress_line(state: RunState) -> str:
    """The one line a self-check shows while it runs, e.g.
    ``cell 12/40 · Question 4 · fit 2, epoch 1/1``. Plain text: headings come from the notebook
    and are escaped here."""
    if state.phase != "running" or state.cell is None:
        return {"preparing": "preparing the data", "starting kernel": "starting the kernel",
                "closing": "saving the trained models", "checking": "verifying and checking",
                "writing": "writing the report"}.get(state.phase, state.phase)
    parts = [f"cell {state.cell}/{state.cells}" if state.cells else f"cell {state.cell}"]
    if state.heading:
        heading = printable(state.heading)
        parts.append(heading if len(heading) <= 60 else heading[:59] + "…")
    if state.fit is not None:
        if state.epochs:
            parts.append(f"fit {state.fit}, epoch {min(state.epoch + 1, state.epochs)}/{state.epochs}")
        else:
            parts.append(f"fit {state.fit}, epoch {state.epoch + 1}")
    return " · ".join(parts)


def cell_headings(nb) -> list[str | None]:
    """The nearest heading at or above each cell of ``nb`` (``None`` before the first one)."""
    from grader.notebook.cells import markdown_headings

    current: str | None = None
    found: list[str | None] = []
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            headings = markdown_headings(str(cell.get("source", "")))
            if headings:
                current = headings[-1]
        found.append(current)
    return found


class EventTail:
    """Reads the lines the recorder appends to ``events.jsonl``, from where the last read stopped.

    The kernel owns the file: it is opened without following a link and without blocking (a FIFO
    in its place cannot hang the grader), only a regular file is read, at most ``chunk`` bytes a
    call, and a line longer than ``max_line`` is skipped.
    """

    def __init__(self, path: Path, *, chunk: int = 1 << 20, max_line: int = 4 << 20):
        self.path, self.chunk, self.max_line = path, chunk, max_line
        self._fd: int | None = None
        self._buffer = b""
        self._skipping = False
        self._failed = False

    def read(self) -> list[dict]:
        """The events appended since the last call (none when the file is not there yet)."""
        if self._fd is None and not self._open():
            return []
        try:
            data = os.read(self._fd, self.chunk)
        except OSError:
            return []
        events: list[dict] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
            if self._skipping:
                self._skipping = False
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        if len(self._buffer) > self.max_line:
            self._buffer, self._skipping = b"", True
        return events

    def _open(self) -> bool:
        if self._failed:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return False
        except OSError:
            self._failed = True
            return False
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self._failed = True
            return False
        self._fd = fd
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class CheckProgress:
    """The progress of ``grade check`` on stderr: a live line (spinner, cell, heading, fit and
    epoch, seconds) on a terminal; a plain line now and then, when something changed, elsewhere
    (CI logs); nothing with ``--quiet``.

    It is an execution listener (:func:`grader.execute.client.listening`): the event loop tells it which
    cell starts; a thread of its own reads the recorder's new events and redraws, ``hz`` times a
    second, so the event loop does no display work. Epochs come from the recorder's events, not
    from the cell's printed output: they are there whatever ``verbose`` the notebook passes to
    ``fit``, whichever progress bar Keras draws, and in a training loop inside a function.
    """

    def __init__(self, *, console: Console | None = None, quiet: bool = False, hz: float = 4.0,
                 plain_every_s: float = 10.0, clock=time.monotonic):
        self.console = console or Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        # Never faster than 4 Hz; plain lines need no more than a look a second.
        self.interval = 1.0 / max(0.5, min(hz, 4.0)) if self.live else 1.0
        self.plain_every_s = plain_every_s
        self.clock = clock
        self.state = RunState()
        self._lock = threading.Lock()
        self._headings: list[str | None] = []
        self._tail: EventTail | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._display = None
        self._spinner = None
        self._started = clock()
        self._printed_at: float | None = None
        self._printed = ""

    # -- execution listener (called from the event loop)
    def kernel_starting(self) -> None:
        with self._lock:
            self.state.phase = "starting kernel"

    def notebook_started(self, nb, bundle_dir: Path) -> None:
        headings = cell_headings(nb)
        from grader.model.evidence import CellRef

        with self._lock:
            self._headings = headings
            self.state.cells = CellRef(len(nb.cells) - 1).number if nb.cells else 0
            self._tail = EventTail(Path(bundle_dir) / "events.jsonl")

    def cell_started(self, index: int) -> None:
        from grader.model.evidence import CellRef

        with self._lock:
            self.state.phase = "running"
            self.state.cell = CellRef(index).number
            self.state.heading = self._headings[index] if 0 <= index < len(self._headings) else None

    def closing(self) -> None:
        with self._lock:
            self.state.phase = "closing"

    def writing(self) -> None:
        """Grading is done; the report is being written."""
        with self._lock:
            self.state.phase = "writing"

    def notebook_finished(self) -> None:
        with self._lock:
            self._poll_events()
            self.state.phase = "checking"
            if self._tail is not None:
                self._tail.close()
                self._tail = None

    # -- display
    def __enter__(self) -> "CheckProgress":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start drawing (nothing with ``quiet``)."""
        if self.quiet or self._thread is not None:
            return
        if self.live:
            from rich.live import Live

            self._display = Live(self._renderable(), console=self.console, refresh_per_second=1 / self.interval,
                                 transient=True, auto_refresh=False)
            self._display.start()
        self._thread = threading.Thread(target=self._loop, name="nn-grader-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop drawing and leave the cursor at the start of a fresh line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._display is not None:
            self._display.stop()
            self._display = None
        with self._lock:
            if self._tail is not None:
                self._tail.close()
                self._tail = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the display never stops the grading
                pass

    def tick(self) -> None:
        """Read new events and redraw once (what the thread does ``hz`` times a second)."""
        with self._lock:
            self._poll_events()
            line = progress_line(self.state)
        if self._display is not None:
            self._display.update(self._renderable(line), refresh=True)
        elif not self.quiet:
            now = self.clock()
            if line != self._printed and (self._printed_at is None or now - self._printed_at >= self.plain_every_s):
                self._printed, self._printed_at = line, now
                self.console.print(Text(f"… {line} ({now - self._started:.0f} s)"), markup=False, highlight=False,
                                   soft_wrap=True)

    def _poll_events(self) -> None:
        if self._tail is not None:
            for event in self._tail.read():
                self.state.apply(event)

    def _renderable(self, line: str | None = None):
        from rich.spinner import Spinner

        text = Text(f"{line if line is not None else progress_line(self.state)} · {self.clock() - self._started:.0f} s")
        if self._spinner is None:  # one spinner, so that it turns from one frame to the next
            self._spinner = Spinner("dots", text, style="cyan")
        else:
            self._spinner.update(text=text)
        return self._spinner


def eta_seconds(durations: list[float], running: list[float], queued: int, workers: int) -> float | None:
    """Seconds until a batch is done, or ``None`` until two submissions have finished.

    ``durations`` are the wall times of the finished submissions; ``running`` how long each
    running one has run; ``queued`` how many wait. Each submission is taken to need the mean
    duration (results reused from an earlier run, under half a second, do not count while there
    are others), and the remaining work is laid out over ``workers`` slots, as the batch runs it:
    not the rate of the first results, which come in together when they start together.
    """
    if len(durations) < 2:
        return None
    timed = [d for d in durations if d >= 0.5] or list(durations)
    typical = sum(timed) / len(timed)
    slots = sorted(max(typical - elapsed, 0.0) for elapsed in running)[: max(1, workers)]
    slots += [0.0] * (max(1, workers) - len(slots))
    heapq.heapify(slots)
    for _ in range(max(0, queued)):
        heapq.heappush(slots, heapq.heappop(slots) + typical)
    return max(slots)


def format_eta(seconds: float | None) -> str:
    """``ETA 3:05`` or ``ETA 1:02:10``; ``ETA --`` while not known."""
    if seconds is None:
        return "ETA --"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"ETA {hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"ETA {rest // 60}:{rest % 60:02d}"


# ---------------------------------------------------------------------------------------------
# Warnings


class _EchoHandler(logging.Handler):
    """Prints the grader's warnings as ``grade: warning: …`` on stderr (through a live display,
    when there is one, so it does not tear the progress line). With ``quiet`` the sandbox's own
    warning is left out: the final line says when a run was unsandboxed."""

    def __init__(self, quiet: bool):
        super().__init__(logging.WARNING)
        self.quiet = quiet

    def emit(self, record: logging.LogRecord) -> None:
        if self.quiet and record.name == "grader.execute.sandbox" and record.levelno < logging.ERROR:
            return
        try:
            import click

            click.echo(f"grade: warning: {printable(record.getMessage(), newlines=True)}", err=True)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def grader_warnings(*, quiet: bool = False):
    """Inside this block the ``grader`` loggers' warnings go to stderr once each, prefixed, and
    not through Python's last-resort handler; records still reach the root logger's handlers."""
    logger = logging.getLogger("grader")
    handler = _EchoHandler(quiet)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
