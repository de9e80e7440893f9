"""``grade manual export | reviews | accept | template``: human scores for manual rubric items."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.root import EXIT_PASSED, _example, _guarded, main
from grader.errors import GraderError
from grader.printable import printable


@main.group("manual", epilog=_example("grade manual template grading-output",
                                      "grade submissions.zip --rubric cifar10 --manual grading-output/exports/manual_template.csv"))
def manual_group() -> None:
    """Human scores for manual rubric items (stored in OUT_DIR/manual_scores.jsonl)."""


@manual_group.command("export", epilog=_example("grade manual export grading-output -o scores.csv"))
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", "target", type=click.Path(dir_okay=False, path_type=Path), default=None, help="CSV to write (default: OUT_DIR/exports/manual_scores.csv).")
def manual_export(out_dir: Path, target: Path | None) -> None:
    """Write every stored human score of OUT_DIR as a CSV (for backups and other tools)."""

    def work() -> int:
        from grader.store.score_export import export_scores_csv

        path = target or out_dir / "exports" / "manual_scores.csv"
        rows = export_scores_csv(out_dir, path)
        click.echo(f"{rows} human score(s): {path}")
        return EXIT_PASSED

    sys.exit(_guarded(work))


@manual_group.command("reviews", epilog=_example("grade manual reviews grading-output"))
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def manual_reviews(out_dir: Path) -> None:
    """List the checks in OUT_DIR that need review and no person has decided yet."""

    def work() -> int:
        from grader.store.manual import pending_reviews
        from grader.store.result_store import ResultStore
        pending = pending_reviews(ResultStore(out_dir).load_results())
        for student, item in pending:
            click.echo(printable(f"{student}  {item.task.task_id}  {item.check_id}  {item.reason}"))
        click.echo(f"{len(pending)} check(s) need review"
                   + (": accept one with grade manual accept OUT_DIR STUDENT TASK" if pending else "."))
        return EXIT_PASSED

    sys.exit(_guarded(work))


@manual_group.command("accept", epilog=_example('grade manual accept grading-output alice cnn review-test_accuracy --comment "checked the run"'))
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("student")
@click.argument("task")
@click.argument("check", required=False)
@click.option("--reject", is_flag=True, help="Give the check 0 points instead of accepting its figure.")
@click.option("--comment", default="", help="Why, for the student's report.")
@click.option("--grader", "grader_name", default="", help="Who decided (stored with the decision).")
def manual_accept(out_dir: Path, student: str, task: str, check: str | None, reject: bool, comment: str,
                  grader_name: str) -> None:
    """Accept (or --reject) a check of STUDENT's TASK that needs review.

    Accepting gives the points the figure's verdict gives; the decision is stored with the human
    scores and survives re-runs until the check's evidence changes.
    """

    def work() -> int:
        from grader.store.manual import decide_review
        from grader.store.result_store import ResultStore

        results = ResultStore(out_dir).load_results()
        try:
            item, entry = decide_review(out_dir, results, student, task, check, accept=not reject,
                                        comment=comment, grader=grader_name)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"{student} / {task} / {item.check_id}: {entry.score:g} of {item.check.max_points:g} point(s)"
                   f" ({'rejected' if reject else 'accepted'})")
        return EXIT_PASSED

    sys.exit(_guarded(work))


@manual_group.command("template", epilog=_example("grade manual template grading-output   (fill in the score column, then pass it to --manual)"))
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", "target", type=click.Path(dir_okay=False, path_type=Path), default=None, help="CSV to write (default: OUT_DIR/exports/manual_template.csv).")
def manual_template(out_dir: Path, target: Path | None) -> None:
    """Write a CSV of every manual item in OUT_DIR to fill in and pass to --manual."""

    def work() -> int:
        from grader.checks.manual import write_manual_template
        from grader.store.result_store import ResultStore

        results = ResultStore(out_dir).load_results()
        if not results:
            raise GraderError(f"{out_dir} holds no graded results")
        path = target or out_dir / "exports" / "manual_template.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = write_manual_template(path, [(r.student.key, r.tasks) for r in results])
        click.echo(f"{rows} manual item(s) to fill: {path}")
        return EXIT_PASSED

    sys.exit(_guarded(work))
