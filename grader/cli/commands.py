"""The ``grade`` command. Parsing and printing only: the work is done by the stage modules.

    grade SUBMISSIONS... --rubric R [--out DIR]     grade a batch (the default command)
    grade check NOTEBOOK --rubric R                 a student's self-check, fast mode
    grade rubric validate FILE [--against T.ipynb]  check a rubric file (and its selectors on a template)
    grade rubric init TEMPLATE.ipynb -o R.yaml      draft a rubric from a course template
    grade rubric explain R NOTEBOOK                 what each task picks in a notebook, and why
    grade rubric schema                             the rubric JSON Schema's path (for editors)
    grade export OUT_DIR --export canvas            gradebook from stored results
    grade review OUT_DIR                            mark manual items in the browser
    grade manual export | template OUT_DIR          human scores as CSV; a CSV to fill in
    grade reference list | show NAME | train NAME   the course's reference models
    grade calibrate RUBRIC                          is the rubric's threshold reachable?
    grade gradescope build --rubric R               a Gradescope autograder zip

Exit codes (docs/ci.md): 0 success; 1 ``grade check``: a check failed (``grade run --strict``:
some student failed one); 2 usage error, refused before any kernel starts; 3 internal error (a bug);
4 some submission could not be graded by the grader (not the student's fault; run again).
"""

from __future__ import annotations

import difflib
import sys
import time
from pathlib import Path

import click

from grader import __version__
from grader.errors import GraderError, UsageError
from grader.printable import printable

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_NOT_GRADED = 0, 1, 2, 3, 4
# Problems that mean the grader, not the student, left a submission without a grade.
NOT_GRADED_KINDS = frozenset({"internal", "environment"})
# The names Click offers as choices; the modules that define them import nothing heavy.
from grader.report.exports import FORMATS as EXPORT_FORMATS  # noqa: E402
from grader.collect.submissions import LAYOUTS  # noqa: E402


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


def _example(*lines: str) -> str:
    """The epilog every command's ``--help`` ends with (tests/test_cli_help.py checks each has one).
    ``\\b`` keeps Click from rewrapping the command lines."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


class _RenamedOptions(click.Command):
    """A command some of whose options were renamed (one name for one thing across commands): the
    old spelling still works for one release, with a one-line notice on stderr, and is left out of
    ``--help``. ``renamed`` maps each old spelling to the new one."""

    def __init__(self, *args, renamed: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.renamed = dict(renamed or {})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Options that take a value: the token after one is a value, even if it reads "--to".
        valued = {name for p in self.params if isinstance(p, click.Option) and not p.is_flag and not p.count
                  for name in (*p.opts, *p.secondary_opts)}
        rewritten: list[str] = []
        warned: set[str] = set()
        value_next = False
        for index, arg in enumerate(args):
            if value_next:
                rewritten.append(arg)
                value_next = False
                continue
            if arg == "--":
                rewritten += args[index:]
                break
            name, eq, value = arg.partition("=")
            new = self.renamed.get(name)
            if new is not None:
                if name not in warned:
                    click.echo(f"grade: {name} is deprecated and goes away in the next release; use {new}", err=True)
                    warned.add(name)
                name, arg = new, new + eq + value
            value_next = name in valued and not eq
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_example("grade submissions.zip --rubric cifar10 --export canvas --gradebook canvas_gradebook.csv",
                             "grade COMMAND --help   (every command's help ends with an example)"))
@click.version_option(__version__, prog_name="nn-grader")
def main() -> None:
    """Grade Keras course notebooks against a rubric.

    \b
    grade submissions/ --rubric cifar10            grade a folder, a zip or an LMS export
    grade check my.ipynb --rubric cifar10          check your own notebook before you submit
    """
    from grader.printable import escape_log_records

    escape_log_records()  # warnings quote paths a notebook chose: no escape codes on the terminal


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
@click.option("--column-id", default=None, help="The LMS's id of the assignment column (Canvas, Blackboard), so grades land in the existing column.")
@click.option("--grade-item", default=None, help="Brightspace: the grade item to fill, as named in the grades export given with --gradebook (default: its only one).")
@click.option("--strict", is_flag=True, help="Exit 1 when some student fails an automatic check (default: 0 once every submission is graded).")
def run_command(paths: tuple[Path, ...], rubric: str, out: Path, fast: bool, workers: int | None, gpus: str | None,
                dask_scheduler: str | None, force: bool, layout: str, pattern: str | None, exports: tuple[str, ...],
                manual: Path | None, strict: bool, **common) -> None:
    """Grade SUBMISSIONS: notebooks, folders, zips or LMS exports."""
    from grader.batch.local import choose_gpus, default_workers, grade_batch
    from grader.collect.submissions import collect

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
        from grader.execute.client import listening

        try:
            with listening(progress):  # tells the bar which notebooks still run and which are being checked
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
    from grader.collect.submissions import Submission

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


@main.group("rubric", epilog=_example("grade rubric validate my_rubric.yaml --against TEMPLATE.ipynb"))
def rubric_group() -> None:
    """Work with rubric files."""


@rubric_group.command("validate", epilog=_example("grade rubric validate cifar10-lab.yaml --against CIFAR10-Lab-template.ipynb"))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--against", "template", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A course template (.ipynb): also warn about selectors and questions that match nothing in it.")
def rubric_validate(files: tuple[Path, ...], template: Path | None) -> None:
    """Check rubric FILES: unknown keys, wrong types, unknown checks, with line numbers."""
    from grader.rubric.load import load_rubric, validate_rubric_file

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
                from grader.rubric.authoring import template_warnings

                warnings = template_warnings(rubric=load_rubric(path), template=template)
                for warning in warnings:
                    click.echo(warning, err=True)
            against = f" against {template.name}" if template is not None else ""
            click.echo(f"{path}: valid{against}" + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""))
        return EXIT_USAGE if failed else EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("init", epilog=_example("grade rubric init CIFAR10-Lab-template.ipynb -o cifar10-lab.yaml"))
@click.argument("template", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the draft to this file (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite the --out file if it exists.")
def rubric_init(template: Path, out: Path | None, force: bool) -> None:
    """Draft a rubric from a course TEMPLATE notebook: one task per question cell."""
    from grader.rubric.authoring import draft_rubric

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


@rubric_group.command("explain", epilog=_example("grade rubric explain cifar10-lab.yaml student.ipynb"))
@click.argument("rubric")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rubric_explain(rubric: str, notebook: Path) -> None:
    """Show which model and answer each task of RUBRIC picks in NOTEBOOK, and why.

    Reads the notebook's saved outputs; nothing is run.
    """
    from rich.console import Console

    from grader.rubric.authoring import explain_rubric, explanation_table

    def work() -> int:
        loaded = _load_rubric(rubric)
        explained = explain_rubric(rubric=loaded, notebook=notebook)
        Console().print(explanation_table(explained, title=f"{loaded.name} in {notebook.name}"))
        return EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("schema", epilog=_example(
    "grade rubric schema",
    "# yaml-language-server: $schema=file:///PATH/IT/PRINTS   (first line of a rubric: completion in the editor)"))
def rubric_schema() -> None:
    """Print the path of the rubric JSON Schema that ships with the grader.

    Editors with a YAML language server (VS Code, Neovim, ...) complete and check a rubric against
    it; `grade rubric validate` checks more (check parameters, line numbers).
    """
    from grader.rubric.load import SCHEMA_PATH

    def work() -> int:
        if not SCHEMA_PATH.is_file():
            raise GraderError(f"the rubric schema is missing from this installation ({SCHEMA_PATH}); "
                              "reinstall nn-grader (pip install --force-reinstall nn-grader)")
        click.echo(str(SCHEMA_PATH))
        return EXIT_PASSED

    sys.exit(_guarded(work))


# The same names as `grade run`'s (--export, --gradebook); --to and --template are the old ones.
@main.command("export", cls=_RenamedOptions, renamed={"--to": "--export", "--template": "--gradebook"},
              epilog=_example("grade export grading-output --export canvas --gradebook canvas_gradebook.csv"))
@click.argument("results_dir", metavar="OUT_DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--export", "formats", multiple=True, required=True, type=click.Choice(EXPORT_FORMATS, case_sensitive=False), help="Gradebook format to write (repeatable).")
@click.option("--gradebook", "template", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The gradebook downloaded from the LMS, to keep its rows and columns in --export.")
@click.option("--title", default=None, help="Assignment title in the gradebook column.")
@click.option("--column-id", default=None, help="The LMS's id of the assignment column (Canvas, Blackboard), so grades land in the existing column.")
@click.option("--grade-item", default=None, help="Brightspace: the grade item to fill, as named in the grades export given with --gradebook (default: its only one).")
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


@main.command("review", epilog=_example("grade review grading-output --port 8000"))
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
        from grader.store.manual import export_scores_csv

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


@main.group("gradescope", epilog=_example("grade gradescope build --rubric cifar10 --support Custom.py --requirement scikit-learn"))
def gradescope_group() -> None:
    """Gradescope autograders that run nn-grader (docs/reports.md)."""


@gradescope_group.command("build", epilog=_example("grade gradescope build --rubric cifar10 --support Custom.py --requirement scikit-learn"))
@click.option("--rubric", "-r", required=True, help="Rubric file, or the name of a built-in rubric.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("autograder.zip"), show_default=True, help="The zip to write.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An .npz dataset the notebooks get instead of the Keras download.")
@click.option("--hidden-test", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An .npz with x_test, y_test to verify accuracy on.")
@click.option("--support", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A file copied next to the notebook (course helper module) (repeatable).")
@click.option("--notebook", default=None, help="The file name to grade when a submission holds several notebooks.")
@click.option("--mode", type=click.Choice(["fast", "full", "static"]), default="fast", show_default=True, help="fast: capped training as in grade check; full: train as the notebook says; static: saved outputs only.")
@click.option("--manual-items", type=click.Choice(["pending", "leave-out"]), default="pending", show_default=True, help="Unmarked manual items: 0-point tests with their maximum, or left out (marked as Gradescope questions).")
@click.option("--requirement", "requirements", multiple=True, help="An extra pip requirement setup.sh installs, e.g. scikit-learn (repeatable).")
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The nn-grader wheel to ship (default: built from this source tree).")
def gradescope_build(rubric: str, out: Path, data: Path | None, hidden_test: Path | None, support: tuple[Path, ...],
                     notebook: str | None, mode: str, manual_items: str, requirements: tuple[str, ...],
                     wheel: Path | None) -> None:
    """Write a Gradescope autograder zip: setup.sh, run_autograder, the rubric, data and nn-grader."""

    def work() -> int:
        from grader.report.gradescope import build_autograder

        built = build_autograder(rubric, out, data=data, hidden_test=hidden_test, support=list(support),
                                 notebook=notebook, mode=mode, wheel=wheel, requirements=requirements,
                                 manual_items=manual_items)
        click.echo(f"{built.path}: {len(built.members)} files, {built.wheel}, {built.max_points:g} points ({mode} mode)")
        click.echo("upload it under Configure Autograder (zip file upload)", err=True)
        return EXIT_PASSED

    sys.exit(_guarded(work))


def _register_course_commands() -> None:
    from grader.course.calibrate import calibrate_command
    from grader.course.reference import reference_group

    main.add_command(reference_group, "reference")
    main.add_command(calibrate_command, "calibrate")


_register_course_commands()


# ---------------------------------------------------------------------------------------------


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


def _guarded(work) -> int:
    try:
        return work()
    except GraderError as exc:
        click.echo(f"grade: {printable(exc, newlines=True)}", err=True)
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
    from grader.rubric.load import load_rubric

    return load_rubric(name)


def _check_data_inputs(rubric, options) -> None:
    """Refuse a bad ``--data`` or ``--hidden-test`` file (unreadable, wrong keys, shapes or labels)
    and a dataset that is not available offline, before anything is written or started."""
    from grader.data.datasets import check_hidden_test, check_source

    name = getattr(rubric, "dataset", None)
    if name and not options.static:
        check_source(name, options.data or getattr(rubric, "data_source", None) or "auto")
    elif options.data and options.data not in ("auto", "keras-cache", "synthetic"):
        check_source(name, options.data)  # named on the command line: still a file to check
    if options.hidden_test:
        check_hidden_test(Path(options.hidden_test), name)


def _output_folder(out: Path) -> Path | None:
    """Create ``out`` and make sure this process can write in it (by writing, not by its mode
    bits, which do not bind root), before any kernel starts. Returns the topmost folder this call
    created, or ``None`` when ``out`` existed."""
    import os
    import tempfile

    if out.exists() and not out.is_dir():
        raise UsageError(f"the output folder {out} is a file; choose another --out")
    created = None
    if not out.exists():
        created = out
        while not created.parent.exists() and created.parent != created:
            created = created.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=out, prefix=".write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        _remove_if_nothing_graded(created, out)
        raise UsageError(f"cannot write in the output folder {out} ({exc.strerror or exc}); "
                         f"choose a writable --out") from None
    return created


def _remove_if_nothing_graded(created: Path | None, out: Path) -> None:
    """Remove the output folder this run created when it stops with a usage error before any
    result was written: a refused command leaves nothing half-written behind."""
    import shutil

    if created is None or not created.exists():
        return
    from grader.store.result_store import RESULT_FILE

    if out.exists() and any(out.glob(f"*/{RESULT_FILE}")):
        return
    shutil.rmtree(created, ignore_errors=True)


def _grading_options(common: dict, *, fast: bool, force: bool):
    from grader.pipeline.submission import GradingOptions
    from grader.execute.limits import limits_from_text

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

    from grader.collect.submissions import student_key

    key = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "submission"
    return student_key(key[:80])  # never index.html or another name the grader writes


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


def _write_outputs(results, out: Path, rubric, *, exports, junit, summary, gradebook_template=None, column_id=None,
                   skipped_rows=(), grade_item=None) -> int:
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
            click.echo(f"grade: {what} was not written: {printable(exc, newlines=True)}", err=True)

    # Files the collect stage skipped are rows of the overview (with the reason), not gradebook students.
    write_reports([*results, *skipped_rows], out, references=_references(rubric))
    if exports:
        from grader.report.exports import export_gradebook

        for fmt in exports:
            def gradebook(fmt=fmt):
                path = export_gradebook(results, fmt, out / "exports", template=gradebook_template, column_id=column_id,
                                        assignment_title=getattr(rubric, "title", "") or "Assignment",
                                        grade_item=grade_item)
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
            click.echo(f"nn-grader {__version__} · {getattr(rubric, 'title', '') or getattr(rubric, 'name', '')} · "
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


if __name__ == "__main__":
    main()
