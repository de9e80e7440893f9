"""The ``grade`` command. Parsing and printing only: the work is done by the stage modules.

    grade SUBMISSIONS... --rubric R [--out DIR]     grade a batch (the default command)
    grade check NOTEBOOK --rubric R                 a student's self-check, fast mode
    grade rubric validate FILE [--against T.ipynb]  check a rubric file (and its selectors on a template)
    grade rubric init TEMPLATE.ipynb -o R.yaml      draft a rubric from a course template
    grade rubric explain R NOTEBOOK                 what each task picks in a notebook, and why
    grade export RESULTS_DIR --to canvas            gradebook from stored results
    grade review OUT_DIR                            mark manual items in the browser
    grade manual export | template OUT_DIR          human scores as CSV; a CSV to fill in
    grade reference list | show NAME | train NAME   the course's reference models
    grade calibrate RUBRIC                          is the rubric's threshold reachable?

Exit codes: 0 every automatic check passed, 1 some failed, 2 usage error, 3 internal error.
"""

from __future__ import annotations

import difflib
import sys
import time
from pathlib import Path

import click

from grader import __version__
from grader.errors import GraderError

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# The names Click offers as choices; the modules that define them import nothing heavy.
from grader.report.exports import FORMATS as EXPORT_FORMATS  # noqa: E402
from grader.submissions import LAYOUTS  # noqa: E402


class _DefaultGroup(click.Group):
    """``grade PATH...`` runs the ``run`` command; ``grade check ...`` and the rest are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            first = args[0]
            # A mistyped subcommand ("chek") or group option ("--versoin") gets click's own
            # "No such command / option ... Did you mean" instead of being read as a path or
            # as an option of `run`.
            if first.startswith("--"):
                typo = bool(difflib.get_close_matches(first[2:], ["version", "help"], n=1, cutoff=0.7))
            else:
                typo = bool(difflib.get_close_matches(first, list(self.commands), n=1, cutoff=0.75)) and not Path(first).exists()
            if not typo:
                args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nn-grader")
def main() -> None:
    """Grade Keras course notebooks against a rubric.

    \b
    grade submissions/ --rubric cifar10            grade a folder, a zip or an LMS export
    grade check my.ipynb --rubric cifar10          check your own notebook before you submit
    """


def _common_options(func):
    options = [
        click.option("--rubric", "-r", required=True, help="Rubric file, or the name of a built-in rubric (cifar10, mnist_cnn, ...)."),
        click.option("--data", default=None, help="Dataset source: auto (local Keras cache), synthetic, or an .npz file."),
        click.option("--static", is_flag=True, help="Grade from the outputs saved in the notebook; execute nothing."),
        click.option("--no-compat", is_flag=True, help="Do not map removed Keras 1/2 APIs (lr=, nb_epoch=, fit_generator)."),
        click.option("--no-verify", is_flag=True, help="Skip the clean re-evaluation of saved models."),
        click.option("--retrain", is_flag=True, help="Train every recorded architecture again in the grader's own process (seed 0; on a GPU when there is one) and grade that accuracy."),
        click.option("--hidden-test", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An .npz with x_test, y_test to verify accuracy on."),
        click.option("--cell-timeout", type=float, help="Seconds a cell may run (default: the rubric's)."),
        click.option("--timeout", "notebook_timeout", type=float, help="Seconds a whole notebook may run (default: the rubric's)."),
        click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML (one test case per check)."),
        click.option("--summary", type=click.Path(dir_okay=False, path_type=Path), help="Write a markdown summary (for a CI job summary)."),
        click.option("--quiet", "-q", is_flag=True, help="Print only the final line."),
        click.option("--sandbox", type=click.Choice(["auto", "bwrap", "none"]), default="auto", show_default=True,
                     help="Run kernels in a bubblewrap sandbox (no network, read-only system); auto uses it where it works."),
        click.option("--memory", default=None, help="Memory a kernel may use, e.g. 8GiB (0: no limit)."),
        click.option("--processes", default=None, help="Processes and threads a kernel may start (fork bombs)."),
        click.option("--cpu-time", default=None, help="CPU time a kernel may use, e.g. 8h."),
        click.option("--file-size", default=None, help="Largest file a kernel may write, e.g. 2GiB."),
        click.option("--disk", default=None, help="Disk a submission's working folder may fill, e.g. 10GiB."),
        click.option("--max-output", default=None, help="Output kept per cell, e.g. 2MiB."),
        click.option("--support", multiple=True, type=click.Path(exists=True, path_type=Path),
                     help="A file copied next to each notebook (course helper module, data file), besides the rubric's support_files (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command("run")
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
@click.option("--column-id", default=None, help="The LMS's id of the assignment column (Canvas, Blackboard), so grades land in the existing column.")
def run_command(paths: tuple[Path, ...], rubric: str, out: Path, fast: bool, workers: int | None, gpus: str | None,
                dask_scheduler: str | None, force: bool, layout: str, pattern: str | None, exports: tuple[str, ...],
                manual: Path | None, **common) -> None:
    """Grade SUBMISSIONS: notebooks, folders, zips or LMS exports."""
    from grader.batch import choose_gpus, default_workers, grade_batch
    from grader.submissions import collect

    def work() -> int:
        loaded = _load_rubric(rubric)
        from grader.report.exports import check_export_options

        # Every output option is checked before the first kernel starts, not after hours of grading.
        check_export_options(exports, template=common["gradebook_template"], column_id=common["column_id"])
        collected = collect(list(paths), layout=layout, pattern=pattern, work_dir=out / ".collected")
        if not collected.submissions:
            raise GraderError(f"no notebooks found in {', '.join(map(str, paths))}")
        options = _grading_options(common, fast=fast, force=force)
        devices = [] if dask_scheduler else choose_gpus(gpus)
        jobs = workers or default_workers(devices)
        progress = _Progress(len(collected.submissions), quiet=common["quiet"])
        progress.header(loaded, collected, options)
        progress.resources(jobs, devices, dask_scheduler)
        try:
            results = grade_batch(collected.submissions, loaded, out, options=options, workers=jobs, gpus=devices,
                                  dask_scheduler=dask_scheduler, on_start=progress.started, on_result=progress.finished)
        except BaseException:
            progress.stop()
            raise
        results = _merge_manual(results, manual, out)
        failed_outputs = _write_outputs(results, out, loaded, exports=exports, junit=common["junit"], summary=common["summary"],
                                        gradebook_template=common["gradebook_template"], column_id=common["column_id"])
        progress.done(results, out)
        if failed_outputs:
            return EXIT_USAGE
        return EXIT_PASSED if all(r.all_automatic_passed for r in results) else EXIT_FAILED

    sys.exit(_guarded(work))


@main.command("check")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_common_options
@click.option("--full", is_flag=True, help="Train as the notebook says (slow on a CPU); default is fast mode.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the report (default: a temporary folder).")
def check_command(notebook: Path, rubric: str, full: bool, out: Path | None, **common) -> None:
    """Check one NOTEBOOK before you submit it (fast mode: about a minute on a laptop)."""
    from grader.batch import grade_batch
    from grader.results import Student
    from grader.submissions import Submission

    def work() -> int:
        import tempfile

        started = time.perf_counter()
        loaded = _load_rubric(rubric)
        out_dir = out or Path(tempfile.mkdtemp(prefix="nn-grader-check-"))
        options = _grading_options(common, fast=not full and not common["static"], force=True)
        options.preflight = False  # a self-check reports a missing package in its own result
        from grader.blame import helpers_next_to

        given = {p.name for p in options.support}
        options.support += [p for p in helpers_next_to(notebook) if p.name not in given]
        submission = Submission(path=notebook, student=Student(key=_safe_key(notebook.stem)))
        results = grade_batch([submission], loaded, out_dir, options=options, workers=1)
        _write_outputs(results, out_dir, loaded, exports=(), junit=common["junit"], summary=common["summary"])
        from grader.terminal import print_check

        print_check(results[0], out_dir=out_dir, seconds=time.perf_counter() - started, quiet=common["quiet"])
        return EXIT_PASSED if results[0].all_automatic_passed else EXIT_FAILED

    sys.exit(_guarded(work))


@main.group("rubric")
def rubric_group() -> None:
    """Work with rubric files."""


@rubric_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--against", "template", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A course template (.ipynb): also warn about selectors and questions that match nothing in it.")
def rubric_validate(files: tuple[Path, ...], template: Path | None) -> None:
    """Check rubric FILES: unknown keys, wrong types, unknown checks, with line numbers."""
    from grader.rubric import load_rubric, validate_rubric_file

    def work() -> int:
        failed = False
        for path in files:
            problems = validate_rubric_file(path)
            if problems:
                failed = True
                for problem in problems:
                    click.echo(problem, err=True)
                continue
            warnings = []
            if template is not None:
                from grader.authoring import template_warnings

                warnings = template_warnings(rubric=load_rubric(path), template=template)
                for warning in warnings:
                    click.echo(warning, err=True)
            against = f" against {template.name}" if template is not None else ""
            click.echo(f"{path}: valid{against}" + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""))
        return EXIT_USAGE if failed else EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("init")
@click.argument("template", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the draft to this file (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite the --out file if it exists.")
def rubric_init(template: Path, out: Path | None, force: bool) -> None:
    """Draft a rubric from a course TEMPLATE notebook: one task per question cell."""
    from grader.authoring import draft_rubric

    def work() -> int:
        if out is not None and out.exists() and not force:
            raise GraderError(f"{out} exists; choose another --out or add --force to overwrite it")
        draft = draft_rubric(template=template, out=out)
        if out is None:
            click.echo(draft.text, nl=False)
        else:
            out.write_text(draft.text, encoding="utf-8")
        models = len(draft.model_tasks)
        click.echo(f"drafted {len(draft.questions)} tasks from {template.name} ({models} model, "
                   f"{len(draft.questions) - models} free-text)" + (f" into {out}" if out else ""), err=True)
        for problem in draft.problems:
            click.echo(problem, err=True)
        if draft.problems:
            return EXIT_USAGE
        target = out or "RUBRIC"
        click.echo(f"next: grade rubric explain {target} FILLED.ipynb   (what each task picks)", err=True)
        return EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("explain")
@click.argument("rubric")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rubric_explain(rubric: str, notebook: Path) -> None:
    """Show which model and answer each task of RUBRIC picks in NOTEBOOK, and why.

    Reads the notebook's saved outputs; nothing is run.
    """
    from rich.console import Console

    from grader.authoring import explain_rubric, explanation_table

    def work() -> int:
        loaded = _load_rubric(rubric)
        explained = explain_rubric(rubric=loaded, notebook=notebook)
        Console().print(explanation_table(explained, title=f"{loaded.name} in {notebook.name}"))
        return EXIT_PASSED

    sys.exit(_guarded(work))


@main.command("export")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "formats", multiple=True, required=True, type=click.Choice(EXPORT_FORMATS, case_sensitive=False), help="Gradebook format to write (repeatable).")
@click.option("--template", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The gradebook downloaded from the LMS, to keep its rows and columns.")
@click.option("--title", default=None, help="Assignment title in the gradebook column.")
@click.option("--column-id", default=None, help="The LMS's id of the assignment column (Canvas, Blackboard).")
def export_command(results_dir: Path, formats: tuple[str, ...], template: Path | None, title: str | None, column_id: str | None) -> None:
    """Write gradebook files from the results stored in RESULTS_DIR."""
    from grader.report.exports import check_export_options, export_gradebook
    from grader.store import ResultStore

    def work() -> int:
        check_export_options(formats, template=template, column_id=column_id)
        results = ResultStore(results_dir).load_results()
        if not results:
            raise GraderError(f"{results_dir} holds no graded results")
        failed = 0
        for fmt in formats:  # one export that fails does not stop the others
            try:
                path = export_gradebook(results, fmt, results_dir / "exports", template=template, column_id=column_id,
                                        assignment_title=title or results[0].assignment or "Assignment")
            except (GraderError, OSError) as exc:
                failed += 1
                click.echo(f"grade: the {fmt} gradebook was not written: {exc}", err=True)
                continue
            click.echo(f"{fmt}: {path}")
        return EXIT_USAGE if failed else EXIT_PASSED

    sys.exit(_guarded(work))


@main.command("review")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for a shared TA machine; the token is still required).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Only print the URL.")
def review_command(out_dir: Path, host: str, port: int, no_browser: bool) -> None:
    """Mark the manual items of the results in OUT_DIR in the browser, question by question."""

    def work() -> int:
        from grader.review import serve

        serve(out_dir, host=host, port=port, open_browser=not no_browser, echo=click.echo)
        return EXIT_PASSED

    sys.exit(_guarded(work))


@main.group("manual")
def manual_group() -> None:
    """Human scores for manual rubric items (stored in OUT_DIR/manual_scores.jsonl)."""


@manual_group.command("export")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", "target", type=click.Path(dir_okay=False, path_type=Path), default=None, help="CSV to write (default: OUT_DIR/exports/manual_scores.csv).")
def manual_export(out_dir: Path, target: Path | None) -> None:
    """Write every stored human score of OUT_DIR as a CSV (for backups and other tools)."""

    def work() -> int:
        from grader.manual_store import export_scores_csv

        path = target or out_dir / "exports" / "manual_scores.csv"
        rows = export_scores_csv(out_dir, path)
        click.echo(f"{rows} human score(s): {path}")
        return EXIT_PASSED

    sys.exit(_guarded(work))


@manual_group.command("template")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", "target", type=click.Path(dir_okay=False, path_type=Path), default=None, help="CSV to write (default: OUT_DIR/exports/manual_template.csv).")
def manual_template(out_dir: Path, target: Path | None) -> None:
    """Write a CSV of every manual item in OUT_DIR to fill in and pass to --manual."""

    def work() -> int:
        from grader.checks.manual import write_manual_template
        from grader.store import ResultStore

        results = ResultStore(out_dir).load_results()
        if not results:
            raise GraderError(f"{out_dir} holds no graded results")
        path = target or out_dir / "exports" / "manual_template.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = write_manual_template(path, [(r.student.key, r.tasks) for r in results])
        click.echo(f"{rows} manual item(s) to fill: {path}")
        return EXIT_PASSED

    sys.exit(_guarded(work))


def _register_course_commands() -> None:
    from grader.calibrate import calibrate_command
    from grader.reference import reference_group

    main.add_command(reference_group, "reference")
    main.add_command(calibrate_command, "calibrate")


_register_course_commands()


# ---------------------------------------------------------------------------------------------


def _guarded(work) -> int:
    try:
        return work()
    except GraderError as exc:
        click.echo(f"grade: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("grade: stopped (Ctrl-C); finished results are kept, run the same command to resume", err=True)
        return 130
    except click.ClickException:
        raise
    except Exception:
        import traceback

        click.echo("grade: internal error — please report it with this traceback:", err=True)
        traceback.print_exc()
        return EXIT_INTERNAL


def _load_rubric(name: str):
    from grader.rubric import load_rubric

    return load_rubric(name)


def _grading_options(common: dict, *, fast: bool, force: bool):
    from grader.grading import GradingOptions
    from grader.limits import limits_from_text

    limits = limits_from_text(memory=common.get("memory"), processes=common.get("processes"), cpu_time=common.get("cpu_time"),
                              file_size=common.get("file_size"), disk=common.get("disk"), output=common.get("max_output"))
    return GradingOptions(
        sandbox=common.get("sandbox", "auto"), limits=limits,
        fast=fast, static=common["static"], data=common["data"], verify=not common["no_verify"], force=force,
        compat=False if common["no_compat"] else None, cell_timeout=common["cell_timeout"],
        notebook_timeout=common["notebook_timeout"], hidden_test=common["hidden_test"], retrain=common["retrain"],
        support=[Path(p).resolve() for p in common.get("support", ())],
    )


def _safe_key(text: str) -> str:
    import re

    key = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "submission"
    return key[:80]


def _merge_manual(results, manual: Path | None, out: Path):
    """Store the --manual CSV's scores with the others (bad rows are printed, not dropped
    silently), then merge every stored human score into ``results``: scores given in
    `grade review` survive a re-run."""
    from grader.manual_store import ScoreStore, merge_human_scores

    if manual is not None:
        from grader.checks.manual import import_manual_scores, load_manual_scores

        for warning in import_manual_scores(results, load_manual_scores(manual), out):
            click.echo(f"grade: {manual}: {warning}", err=True)
    merge_human_scores(results, ScoreStore(out).load())
    return results


def _write_outputs(results, out: Path, rubric, *, exports, junit, summary, gradebook_template=None, column_id=None) -> int:
    """Reports, gradebooks, JUnit and summary. One output that fails is reported and the others
    are still written; returns how many failed."""
    from grader.report.html import write_reports

    failed = 0

    def attempt(what: str, write) -> None:
        nonlocal failed
        try:
            write()
        except (GraderError, OSError) as exc:
            failed += 1
            click.echo(f"grade: {what} was not written: {exc}", err=True)

    write_reports(results, out, references=_references(rubric))
    if exports:
        from grader.report.exports import export_gradebook

        for fmt in exports:
            def gradebook(fmt=fmt):
                path = export_gradebook(results, fmt, out / "exports", template=gradebook_template, column_id=column_id,
                                        assignment_title=getattr(rubric, "title", "") or "Assignment")
                click.echo(f"{fmt} gradebook: {path}")
            attempt(f"the {fmt} gradebook", gradebook)
    if junit or summary:
        from grader.report.ci import write_junit, write_summary_markdown

        if junit:
            attempt(f"the JUnit file {junit}", lambda: write_junit(results, junit))
        if summary:
            attempt(f"the summary {summary}", lambda: write_summary_markdown(results, summary))
    return failed


def _references(rubric) -> dict | None:
    """Reference architectures by task id, for the side-by-side layer tables."""
    refs = {}
    for task in getattr(rubric, "tasks", []):
        name = getattr(task, "reference", None)
        if name:
            try:
                from reference_models import architecture

                refs[task.id] = architecture(name)
            except Exception:
                continue
    return refs or None


class _Progress:
    """What a batch shows while it runs: a rich progress bar (elapsed time, ETA) whose line names
    the submissions running now, one line per finished submission, and at the end a summary
    table with the slowest submissions. With ``--quiet`` only the final line (for CI logs)."""

    SLOWEST = 5

    def __init__(self, total: int, *, quiet: bool):
        self.total = total
        self.quiet = quiet
        self.started_at = time.perf_counter()
        self.running: dict[str, float] = {}
        self._bar = None
        if not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False)
            self._task = self._bar.add_task("grading", total=total)

    def header(self, rubric, collected, options) -> None:
        if self.quiet:
            return
        mode = "static (saved outputs)" if options.static else ("fast mode" if options.fast else "full training")
        click.echo(f"nn-grader {__version__} · {getattr(rubric, 'title', '') or getattr(rubric, 'name', '')} · "
                   f"{self.total} submission(s), layout {collected.layout} · {mode}")
        if not options.static:
            from grader.sandbox import resolve_mode

            if resolve_mode(options.sandbox) == "none":
                click.echo("  note: notebooks run unsandboxed (no bubblewrap here, or --sandbox none): a plain process "
                           "with resource limits only; see docs/security.md")
        for path, why in collected.skipped[:10]:
            click.echo(f"  skipped {path}: {why}")

    def resources(self, workers: int, gpus, dask_scheduler: str | None) -> None:
        if self.quiet:
            return
        if dask_scheduler:
            click.echo(f"  on the dask cluster at {dask_scheduler}")
        else:
            where = ", ".join(f"GPU {g.index}" + (f" ({g.name})" if g.name else "") for g in gpus) if gpus else "CPU"
            click.echo(f"  {workers} notebook(s) at once · {where}")
        if self._bar:
            self._bar.start()

    def _describe(self) -> None:
        if not self._bar:
            return
        names = list(self.running)
        text = "running " + ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "") if names else "grading"
        self._bar.update(self._task, description=text)

    def started(self, submission) -> None:
        self.running[submission.student.key] = time.perf_counter()
        self._describe()

    def finished(self, submission, result) -> None:
        self.running.pop(submission.student.key, None)
        if self._bar:
            self._bar.console.print(f"  {submission.student.key:<32} {_status(result):>14}  {result.duration_s or 0:6.1f} s")
            self._bar.advance(self._task)
            self._describe()

    def stop(self) -> None:
        if self._bar:
            self._bar.stop()
            self._bar = None

    def done(self, results, out: Path) -> None:
        bar = self._bar
        self.stop()
        elapsed = time.perf_counter() - self.started_at
        failed = sum(1 for r in results if r.problems_blocking)
        if bar is not None and results:
            from rich.table import Table

            passed = sum(1 for r in results if r.passed)
            problems = sum(1 for r in results if r.problems)
            table = Table(title="Summary", show_header=False, box=None)
            table.add_row("graded", f"{len(results)}")
            if any(r.passed is not None for r in results):
                table.add_row("passed", f"{passed}")
            table.add_row("with problems", f"{problems}")
            table.add_row("could not be graded", f"{failed}")
            scores = [r.score for r in results if not r.problems_blocking]
            if scores:
                table.add_row("mean score", f"{sum(scores) / len(scores):.2f} / {results[0].max_score:g}")
            bar.console.print(table)
            timed = sorted((r for r in results if r.duration_s), key=lambda r: r.duration_s, reverse=True)
            if len(timed) > 1:
                slow = Table(title=f"Slowest {min(self.SLOWEST, len(timed))}", box=None)
                for column in ("student", "seconds", "status", "first problem"):
                    slow.add_column(column, justify="right" if column == "seconds" else "left")
                for r in timed[: self.SLOWEST]:
                    first = r.problems[0].message if r.problems else ""
                    slow.add_row(r.student.key, f"{r.duration_s:.1f}", _status(r), first[:60] + ("…" if len(first) > 60 else ""))
                bar.console.print(slow)
            bar.console.print(f"what happened to each submission: {out}/<student>/grading.log")
        click.echo(f"graded {len(results)} submission(s) in {elapsed:.0f} s; {failed} could not be graded; "
                   f"reports: {out / 'index.html'}")


def _status(result) -> str:
    if result.problems_blocking:
        return "not graded"
    kinds = {p.kind for p in result.problems} & {"kernel_died", "timeout", "limit", "environment"}
    score = f"{result.score:g}/{result.max_score:g}"
    return f"{score} ({sorted(kinds)[0].replace('_', ' ')})" if kinds else score


if __name__ == "__main__":
    main()
