"""What ``grade check`` prints: the student's answer in a terminal, in a minute.

Every check shows an icon and a word (never colour alone), its points, the evidence level of the
figure it used, and the message that says what to change.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.results import GradeResult, Status

_STYLE = {Status.PASSED: "green", Status.FAILED: "red", Status.NOT_ASSESSED: "yellow", Status.MANUAL: "cyan"}
_WORD = {Status.PASSED: "passed", Status.FAILED: "FAILED", Status.NOT_ASSESSED: "not assessed", Status.MANUAL: "manual"}


def print_check(result: GradeResult, *, out_dir: Path, seconds: float, quiet: bool = False, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    skipped = sum(1 for c in result.checks if c.skipped_by_fast_mode)
    auto = [c for c in result.checks if c.status is not Status.MANUAL and not c.skipped_by_fast_mode]
    passed = sum(1 for c in auto if c.status is Status.PASSED)
    if quiet:
        console.print(f"{Path(result.path).name}: {passed}/{len(auto)} checks passed, "
                      f"{result.score:g}/{result.max_score:g} points")
        return
    title = result.assignment or "assignment"
    console.print(Text.assemble(("nn-grader check", "bold"), f" · {title} · {Path(result.path).name}"))
    # Running without a sandbox is said once, by the sandbox's own warning before the run.
    if result.fast_mode:
        console.print("[yellow]Fast mode:[/] training was capped, so structure is checked exactly and accuracy "
                      "targets are not assessed. Run with --full for the real figures.")
    for problem in result.problems:
        style = "red" if problem.kind in ("invalid_notebook", "internal", "kernel_died", "timeout") else "yellow"
        label = problem.kind.replace("_", " ")
        console.print(f"[{style}]■ {label}:[/] {problem.message}")
    evidence = result.evidence
    if evidence is not None:
        for error in evidence.cell_errors[:5]:
            console.print(f"[red]■ cell {error.cell.number} failed:[/] {error.ename}: {error.evalue[:300]}")
        for finding in evidence.findings:
            if finding.severity in ("warning", "error") or finding.kind == "compat":
                console.print(f"[yellow]■ {finding.kind.replace('_', ' ')}:[/] {finding.message[:400]}")
    for task in result.tasks:
        header = Text.assemble((task.title or task.task_id, "bold"), f"  {task.points:g}/{task.max_points:g} points")
        if task.selector_message:
            header.append(f"\n  {task.selector_message}", style="yellow")
        console.print()
        console.print(header)
        table = Table(show_header=False, box=None, padding=(0, 1), expand=False)
        table.add_column(width=16, no_wrap=True)
        table.add_column(ratio=1)
        table.add_column(justify="right", no_wrap=True)
        for check in task.checks:
            status = Text(f"{check.status.icon} {_WORD[check.status]}", style=_STYLE[check.status])
            level = f" [{check.level.label}]" if check.level is not None and check.status is not Status.MANUAL else ""
            body = Text(check.title + level)
            if check.message and check.status is not Status.PASSED:
                body.append("\n" + check.message, style="dim")
            table.add_row(status, body, f"{check.points:g}/{check.max_points:g}")
        console.print(table)
    console.print()
    verdict = "all automatic checks passed" if result.all_automatic_passed else f"{passed} of {len(auto)} automatic checks passed"
    if skipped:
        verdict += f" ({skipped} accuracy check{'s' if skipped != 1 else ''} left for a full run)"
    pass_note = f" (pass mark {result.pass_mark:g})" if result.pass_mark is not None else ""
    console.print(Text.assemble(("Score ", "bold"), (f"{result.score:g}/{result.max_score:g}", "bold"), pass_note,
                                f" · {verdict} · {seconds:.0f} s"))
    console.print(f"Report: {out_dir / result.student.key / 'report.html'}")
