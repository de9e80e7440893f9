"""``grade export OUT_DIR --export FORMAT``: gradebook files from the stored results."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.root import EXIT_PASSED, EXIT_USAGE, _example, _guarded, _RenamedOptions, main
from grader.errors import GraderError
from grader.report.exports import FORMATS as EXPORT_FORMATS, export_help


# The same names as `grade run`'s (--export, --gradebook); --to and --template are the old ones.
@main.command("export", cls=_RenamedOptions, renamed={"--to": "--export", "--template": "--gradebook"},
              epilog=_example("grade export grading-output --export canvas --gradebook canvas_gradebook.csv"))
@click.argument("results_dir", metavar="OUT_DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--export", "formats", multiple=True, required=True, type=click.Choice(EXPORT_FORMATS, case_sensitive=False), help="Gradebook format to write (repeatable).")
@click.option("--gradebook", "template", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The gradebook downloaded from the LMS, to keep its rows and columns in --export.")
@click.option("--title", default=None, help="Assignment title in the gradebook column.")
@click.option("--column-id", default=None, help=export_help("--column-id"))
@click.option("--grade-item", default=None, help=export_help("--grade-item"))
def export_command(results_dir: Path, formats: tuple[str, ...], template: Path | None, title: str | None, column_id: str | None,
                   grade_item: str | None) -> None:
    """Write gradebook files from the results `grade` stored in OUT_DIR."""
    from grader.report.exports import check_export_options, export_gradebook
    from grader.store.result_store import ResultStore

    def work() -> int:
        check_export_options(formats, template=template, column_id=column_id, grade_item=grade_item,
                             assignment_title=title or "")
        results = ResultStore(results_dir).load_results()
        if not results:
            raise GraderError(f"{results_dir} holds no graded results")
        failed = 0
        for fmt in formats:  # one export that fails does not stop the others
            try:
                path = export_gradebook(results, fmt, results_dir / "exports", template=template, column_id=column_id,
                                        assignment_title=title or results[0].assignment or "Assignment",
                                        grade_item=grade_item)
            except (GraderError, OSError) as exc:
                failed += 1
                click.echo(f"grade: the {fmt} gradebook was not written: {exc}", err=True)
                continue
            click.echo(f"{fmt}: {path}")
        return EXIT_USAGE if failed else EXIT_PASSED

    sys.exit(_guarded(work))
