"""What ``grade run`` shows while a batch runs, and the summary at its end."""

from __future__ import annotations

import time
from pathlib import Path

import click

from grader import __version__
from grader.printable import printable


class _Progress:
    """What a batch shows while it runs: on a terminal, a rich progress bar (elapsed time, ETA)
    whose line names the submissions running now (at most ``-j`` of them, three named); one line
    per finished submission; at the end a summary table with the slowest submissions. Without a
    terminal, the lines and the table but no bar. With ``--quiet`` only the final line (for CI logs).

    The ETA is :func:`grader.report.terminal.eta_seconds`: the mean duration of the finished submissions,
    laid out over the workers, from the second result on. The bar stops, on a line of its own,
    as soon as the last result is in, so nothing printed afterwards is glued to it."""

    SLOWEST = 5
    NAMED = 3

    def __init__(self, total: int, *, quiet: bool, console=None):
        from rich.console import Console

        self.total = total
        self.quiet = quiet
        self.started_at = time.perf_counter()
        self.running: dict[str, float] = {}
        self.durations: list[float] = []
        self.checking: set[str] = set()
        self._tasks: dict[object, str] = {}
        self.workers = 1
        self.console = console or Console(highlight=False)
        self._bar = None
        if not quiet and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
            from rich.text import Text

            owner = self

            class _Eta(ProgressColumn):
                def render(self, task) -> Text:
                    return Text(owner.eta_text(), style="progress.remaining")

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), _Eta(), console=self.console, transient=False,
                                 refresh_per_second=4)
            self._task = self._bar.add_task("grading", total=total)

    def header(self, rubric, collected, options) -> None:
        if not self.quiet:
            mode = "static (saved outputs)" if options.static else ("fast mode" if options.fast else "full training")
            click.echo(f"nn-grader {__version__} · {rubric.title or rubric.name} · "
                       f"{self.total} submission(s), layout {collected.layout} · {mode}")
        if not options.static:
            from grader.execute.sandbox import resolve_mode

            # The sandbox says once, in its own warning, when kernels run without it and why.
            resolve_mode(options.sandbox)
        if self.quiet:
            return
        for path, why in collected.skipped[:10]:
            click.echo(f"  skipped {printable(path)}: {printable(why)}")
        if len(collected.skipped) > 10:
            click.echo(f"  … and {len(collected.skipped) - 10} more skipped: see the class overview")

    def resources(self, workers: int, gpus, dask_scheduler: str | None) -> None:
        self.workers = max(1, int(workers))
        if self.quiet:
            return
        if dask_scheduler:
            click.echo(f"  on the dask cluster at {dask_scheduler}")
        else:
            where = ", ".join(f"GPU {g.index}" + (f" ({g.name})" if g.name else "") for g in gpus) if gpus else "CPU"
            click.echo(f"  {workers} notebook(s) at once · {where}")
        if self._bar:
            self._bar.start()

    def eta_text(self) -> str:
        from grader.report.terminal import eta_seconds, format_eta

        now = time.perf_counter()
        running = [now - t for t in self.running.values()]
        queued = self.total - len(self.durations) - len(running)
        return format_eta(eta_seconds(self.durations, running, queued, self.workers))

    def _describe(self) -> None:
        if not self._bar:
            return
        # A notebook that has run is verified and checked while the next one runs: it is
        # counted as checking, so "running" names no more than the -j notebooks executing.
        executing = [key for key in self.running if key not in self.checking]
        names = executing[: self.workers]
        shown = min(self.NAMED, self.workers)
        more = len(names) - shown
        text = ("running " + ", ".join(printable(n) for n in names[:shown]) + (f" +{more}" if more > 0 else "")
                if names else "grading")
        checking = len(self.running) - len(executing)
        if checking:
            text += f" · {checking} checking"
        self._bar.update(self._task, description=text)

    def started(self, submission) -> None:
        key = submission.student.key
        self.running[key] = time.perf_counter()
        self.checking.discard(key)
        task = _current_task()
        if task is not None:
            self._tasks[task] = key
        self._describe()

    def notebook_finished(self) -> None:
        """Execution listener (grader.execute.client.listening): the notebook of the job in this asyncio
        task has run; its kernel is stopping and the next notebook may start."""
        key = self._tasks.pop(_current_task(), None)
        if key is not None and key in self.running:
            self.checking.add(key)
            self._describe()

    def finished(self, submission, result) -> None:
        key = submission.student.key
        began = self.running.pop(key, None)
        self.checking.discard(key)
        self._tasks = {task: k for task, k in self._tasks.items() if k != key}  # a reused result never ran
        self.durations.append(time.perf_counter() - began if began is not None else 0.0)
        if self.quiet:
            return
        line = f"  {printable(submission.student.key):<32} {_status(result):>14}  {result.duration_s or 0:6.1f} s"
        if self._bar:
            self._bar.console.print(line, markup=False, highlight=False)
            self._bar.advance(self._task)
            self._describe()
            if len(self.durations) >= self.total:
                self.stop()
        else:
            click.echo(line)

    def stop(self) -> None:
        """Stop the bar (its last state stays on the screen, with the cursor on a fresh line)."""
        if self._bar:
            self._bar.stop()
            self._bar = None

    def done(self, results, out: Path) -> None:
        self.stop()
        elapsed = time.perf_counter() - self.started_at
        failed = sum(1 for r in results if r.problems_blocking)
        if not self.quiet and results:
            from rich.table import Table
            from rich.text import Text

            console = self.console
            passed = sum(1 for r in results if r.passed)
            problems = sum(1 for r in results if r.problems)
            table = Table(title="Summary", show_header=False, box=None)
            table.add_row("graded", f"{len(results)}")
            if any(r.passed is not None for r in results):
                table.add_row("passed", f"{passed}")
            table.add_row("with problems", f"{problems}")
            table.add_row("could not be graded", f"{failed}")
            flagged = sum(1 for r in results if r.integrity_findings)
            if flagged:
                table.add_row("integrity findings", f"{flagged}")
            scores = [r.score for r in results if not r.problems_blocking]
            if scores:
                table.add_row("mean score", f"{sum(scores) / len(scores):.2f} / {results[0].max_score:g}")
            console.print(table)
            timed = sorted((r for r in results if r.duration_s), key=lambda r: r.duration_s, reverse=True)
            if len(timed) > 1:
                slow = Table(title=f"Slowest {min(self.SLOWEST, len(timed))}", box=None)
                for column in ("student", "seconds", "status", "first problem"):
                    slow.add_column(column, justify="right" if column == "seconds" else "left")
                for r in timed[: self.SLOWEST]:
                    first = r.problems[0].message if r.problems else ""
                    first = printable(first[:60]) + ("…" if len(first) > 60 else "")
                    slow.add_row(Text(printable(r.student.key)), f"{r.duration_s:.1f}", _status(r), Text(first))
                console.print(slow)
            console.print(Text(f"what happened to each submission: {printable(out)}/<student>/grading.log"))
        reviews = sum(1 for r in results if r.needs_review)
        review_note = f"; {reviews} need review (grade manual reviews {out})" if reviews else ""
        # --quiet leaves the sandbox's warning out: the one line it prints says it instead.
        bare = sum(1 for r in results if r.mode == "executed" and r.sandbox == "none" and not r.problems_blocking)
        bare_note = f"; {bare} ran without a sandbox" if self.quiet and bare else ""
        click.echo(f"graded {len(results)} submission(s) in {elapsed:.0f} s; {failed} could not be graded{review_note}{bare_note}; "
                   f"reports: {out / 'index.html'}")


def _current_task():
    import asyncio

    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None


def _status(result) -> str:
    if result.problems_blocking:
        return "not graded"
    kinds = {p.kind for p in result.problems} & {"kernel_died", "timeout", "limit", "environment"}
    score = f"{result.score:g}/{result.max_score:g}"
    return f"{score} ({sorted(kinds)[0].replace('_', ' ')})" if kinds else score
