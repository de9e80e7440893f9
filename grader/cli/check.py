"""``grade check NOTEBOOK --rubric R``: a student's self-check, in fast mode."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from grader.cli.grading import _check_data_inputs, _grading_options, _load_rubric, _output_folder, _remove_if_nothing_graded, _write_outputs
from grader.cli.root import EXIT_FAILED, EXIT_NOT_GRADED, EXIT_PASSED, EXIT_USAGE, NOT_GRADED_KINDS, _common_options, _example, _guarded, main
from grader.errors import GraderError


@main.command("check", epilog=_example("grade check lab2.ipynb --rubric cifar10 --junit report.xml --summary summary.md"))
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_common_options
@click.option("--full", is_flag=True, help="Train as the notebook says (slow on a CPU); default is fast mode.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the report (default: a temporary folder).")
@click.option("--strict", is_flag=True, help="Exit 1 also when fast mode leaves a check unassessed (accuracy targets).")
def check_command(notebook: Path, rubric: str, full: bool, out: Path | None, strict: bool, **common) -> None:
    """Check one NOTEBOOK before you submit it (fast mode: about a minute on a laptop)."""
    from grader.batch.local import grade_batch
    from grader.model.results import Student
    from grader.collect import Submission

    def work() -> int:
        import tempfile

        started = time.perf_counter()
        loaded = _load_rubric(rubric)
        options = _grading_options(common, fast=not full and not common["static"], force=True)
        _check_data_inputs(loaded, options)
        created = _output_folder(out) if out is not None else None
        out_dir = out or Path(tempfile.mkdtemp(prefix="nn-grader-check-"))
        options.preflight = False  # a self-check reports a missing package in its own result
        from grader.findings.blame import helpers_next_to

        given = {p.name for p in options.support}
        options.support += [p for p in helpers_next_to(notebook) if p.name not in given]
        submission = Submission(path=notebook, student=Student(key=_safe_key(notebook.stem)))
        from grader.execute.client import listening
        from grader.report.terminal import CheckProgress, grader_warnings, print_check

        # Progress on stderr while the notebook runs (cell, heading, fit, epoch); the grader's
        # warnings printed once, above it; with --quiet, only the final line.
        progress = CheckProgress(quiet=common["quiet"])
        try:
            with grader_warnings(quiet=common["quiet"]), listening(progress), progress:
                results = grade_batch([submission], loaded, out_dir, options=options, workers=1)
                progress.writing()  # the HTML report takes a second or two: say so
                _write_outputs(results, out_dir, loaded, exports=(), junit=common["junit"], summary=common["summary"])
        except GraderError as exc:
            if exc.exit_code == EXIT_USAGE:
                _remove_if_nothing_graded(created, out_dir)
            raise
        print_check(results[0], out_dir=out_dir, seconds=time.perf_counter() - started, quiet=common["quiet"])
        return check_exit_code(results[0], strict=strict)

    sys.exit(_guarded(work))


def check_exit_code(result, *, strict: bool = False) -> int:
    """The exit code of ``grade check`` (docs/ci.md): 0 when every automatic check passed (a check
    that fast mode cannot assess does not count, unless ``strict``), 1 when one failed or could not
    be assessed for want of evidence, or the notebook could not be read; 4 when the grader could
    not grade it (a kernel that would not start: not the student's fault)."""
    if any(p.kind in NOT_GRADED_KINDS for p in result.problems):
        return EXIT_NOT_GRADED
    if not result.all_automatic_passed:
        return EXIT_FAILED
    if strict and any(c.skipped_by_fast_mode for c in result.checks):
        return EXIT_FAILED
    return EXIT_PASSED


def _safe_key(text: str) -> str:
    import re

    from grader.collect import student_key

    key = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "submission"
    return student_key(key[:80])  # never index.html or another name the grader writes
