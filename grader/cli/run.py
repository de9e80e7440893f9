"""``grade run SUBMISSIONS... --rubric R`` (also plain ``grade SUBMISSIONS...``): grade a batch."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.grading import (_check_data_inputs, _grading_options, _load_rubric, _output_folder,
                                _remove_if_nothing_graded, _write_outputs)
from grader.cli.progress import _Progress
from grader.cli.root import (EXIT_FAILED, EXIT_NOT_GRADED, EXIT_PASSED, EXIT_USAGE, NOT_GRADED_KINDS, _common_options,
                             _example, _guarded, main)
from grader.errors import GraderError, UsageError
# The names Click offers as choices; the modules that define them import nothing heavy.
from grader.collect import LAYOUTS
from grader.report.exports import FORMATS as EXPORT_FORMATS, export_help


@main.command("run", epilog=_example("grade submissions.zip --rubric cifar10 --out grading-output --export canvas --gradebook canvas_gradebook.csv"))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_common_options
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("grading-output"), show_default=True, help="Folder for results, reports and exports.")
@click.option("--fast", is_flag=True, help="Cap training (epochs, samples, steps): structure is graded exactly, accuracy is not assessed.")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None, help="Notebooks run at once (default: from the cores and memory, and the GPUs' memory).")
@click.option("--gpus", default=None, help="GPUs the kernels share, in turn: all (default, those nvidia-smi finds), none, or indices such as 0,1.")
@click.option("--dask", "dask_scheduler", default=None, metavar="ADDRESS", help="Run the notebooks on a dask.distributed cluster (tcp://host:8786); results are stored here.")
@click.option("--force", is_flag=True, help="Run every submission again, even those already graded.")
@click.option("--layout", default="auto", show_default=True, type=click.Choice(("auto", *LAYOUTS), case_sensitive=False), help="LMS export layout.")
@click.option("--pattern", default=None, help="A regex with named groups (name, id, login, late) for file names of your own layout.")
@click.option("--export", "exports", multiple=True, type=click.Choice(EXPORT_FORMATS, case_sensitive=False), help="Gradebook format to write (repeatable).")
@click.option("--manual", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV of human scores for manual items, merged into the results.")
@click.option("--gradebook", "gradebook_template", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The gradebook downloaded from the LMS, to keep its rows and columns in --export.")
@click.option("--column-id", default=None, help=export_help("--column-id"))
@click.option("--grade-item", default=None, help=export_help("--grade-item"))
@click.option("--strict", is_flag=True, help="Exit 1 when some student fails an automatic check (default: 0 once every submission is graded).")
def run_command(paths: tuple[Path, ...], rubric: str, out: Path, fast: bool, workers: int | None, gpus: str | None,
                dask_scheduler: str | None, force: bool, layout: str, pattern: str | None, exports: tuple[str, ...],
                manual: Path | None, strict: bool, **common) -> None:
    """Grade SUBMISSIONS: notebooks, folders, zips or LMS exports."""
    from grader.batch.gpus import choose_gpus, default_workers
    from grader.batch.local import grade_batch
    from grader.collect import collect

    def work() -> int:
        loaded = _load_rubric(rubric)
        from grader.report.exports import check_export_options

        # Every option and input file is checked before the first kernel starts (and before
        # anything is written), not after hours of grading.
        check_export_options(exports, template=common["gradebook_template"], column_id=common["column_id"],
                             grade_item=common["grade_item"], assignment_title=getattr(loaded, "title", "") or "Assignment")
        options = _grading_options(common, fast=fast, force=force)
        _check_data_inputs(loaded, options)
        created = _output_folder(out)
        from grader.report.terminal import grader_warnings

        try:
            with grader_warnings(quiet=common["quiet"]):  # once each, prefixed, above the bar
                return graded(loaded, options)
        except GraderError as exc:
            if exc.exit_code == EXIT_USAGE:
                _remove_if_nothing_graded(created, out)
            raise

    def graded(loaded, options) -> int:
        collected = collect(list(paths), layout=layout, pattern=pattern, work_dir=out / ".collected")
        if not collected.submissions:
            skipped = "; ".join(f"{Path(path).name}: {why}" for path, why in collected.skipped[:3])
            raise UsageError(f"no notebooks found in {', '.join(map(str, paths))}"
                             + (f" (skipped {skipped})" if skipped else ": nothing to grade"))
        _require_sandbox(options)  # there is something to run: before the first kernel starts
        devices = [] if dask_scheduler else choose_gpus(gpus)
        jobs = workers or default_workers(devices)
        progress = _Progress(len(collected.submissions), quiet=common["quiet"])
        progress.header(loaded, collected, options)
        progress.resources(jobs, devices, dask_scheduler)
        if options.static:  # nothing runs: no kernel to tell the bar about (nor its machinery to import)
            import contextlib

            listen = contextlib.nullcontext()
        else:
            from grader.execute.client import listening

            listen = listening(progress)
        try:
            with listen:  # tells the bar which notebooks still run and which are being checked
                results = grade_batch(collected.submissions, loaded, out, options=options, workers=jobs, gpus=devices,
                                      dask_scheduler=dask_scheduler, on_start=progress.started, on_result=progress.finished,
                                      on_tampering=lambda found: _list_planted(collected, out, found))
        except BaseException:
            progress.stop()
            raise
        results = _merge_manual(results, manual, out)
        failed_outputs = _write_outputs(results, out, loaded, exports=exports, junit=common["junit"], summary=common["summary"],
                                        gradebook_template=common["gradebook_template"], column_id=common["column_id"],
                                        grade_item=common["grade_item"],
                                        skipped_rows=collected.skipped_results(loaded))
        progress.done(results, out)
        return batch_exit_code(results, failed_outputs=failed_outputs, strict=strict)

    sys.exit(_guarded(work))


def batch_exit_code(results, *, failed_outputs: int = 0, strict: bool = False) -> int:
    """The exit code of ``grade run`` (docs/ci.md): 2 when an output could not be written, 4 when
    the grader left some submission without a grade, else 0 — whatever the students scored;
    with ``strict``, 1 when some student did not pass every automatic check."""
    if failed_outputs:
        return EXIT_USAGE
    if any(p.kind in NOT_GRADED_KINDS for r in results for p in r.problems):
        return EXIT_NOT_GRADED
    if strict and not all(r.all_automatic_passed for r in results):
        return EXIT_FAILED
    return EXIT_PASSED


def _merge_manual(results, manual: Path | None, out: Path):
    """Store the --manual CSV's scores with the others (bad rows are printed, not dropped
    silently), then merge every stored human score into ``results``: scores given in
    `grade review` survive a re-run."""
    from grader.store.manual import ScoreStore, merge_human_scores

    if manual is not None:
        from grader.checks.manual import import_manual_scores, load_manual_scores

        for warning in import_manual_scores(results, load_manual_scores(manual), out):
            click.echo(f"grade: {manual}: {warning}", err=True)
    merge_human_scores(results, ScoreStore(out).load())
    return results


def _list_planted(collected, out: Path, found) -> None:
    """Results the grader did not write that appeared while kernels ran become rows of the class
    overview, with what was done about them (they are in no gradebook)."""
    for item in found:
        if item.what == "planted":
            collected.skipped.append((out / item.path, f"it appeared during grading and the grader did not write it "
                                                       f"(a notebook ran without a sandbox): {item.action}"))


def _require_sandbox(options) -> None:
    """A batch runs other people's notebooks: with ``--sandbox auto`` and no working bubblewrap it
    refuses (with the install command) instead of falling back; ``--sandbox none`` is a choice
    made out loud. ``grade check`` (a student's own notebook) may still fall back."""
    if options.static:
        return
    from grader.errors import SandboxUnavailable
    from grader.execute.sandbox import make_undumpable, probe_bwrap

    if options.sandbox == "none":
        make_undumpable()  # the kernels run as this user: keep the grader's memory and environment theirs not to read
        return
    if options.sandbox != "auto":
        return

    problem = probe_bwrap()
    if problem is not None:
        raise SandboxUnavailable(
            f"grading other people's notebooks needs a sandbox, and bubblewrap cannot run here: {problem}. "
            "Install it (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap), "
            "or pass --sandbox none to grade without one (see docs/security.md)")
