"""What ``grade run`` and ``grade check`` share: the options turned into grading options, the inputs
checked before any kernel starts, the output folder, and the reports and files written at the end."""

from __future__ import annotations

from pathlib import Path

import click

from grader.errors import GraderError, UsageError
from grader.printable import printable


def _load_rubric(name: str):
    from grader.rubric.load import load_rubric

    return load_rubric(name)


def _check_data_inputs(rubric, options) -> None:
    """Refuse a bad ``--data`` or ``--hidden-test`` file (unreadable, wrong keys, shapes or labels)
    and a dataset that is not available offline, before anything is written or started."""
    name = rubric.dataset
    source = None
    if name and not options.static:
        source = options.data or rubric.data_source or "auto"
    elif options.data and options.data not in ("auto", "keras-cache", "synthetic"):
        source = options.data  # named on the command line: still a file to check
    if source is None and not options.hidden_test:
        return  # nothing to check (grading from saved outputs): NumPy is not imported
    from grader.data.load import check_hidden_test, check_source

    if source is not None:
        check_source(name, source)
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
    from grader.store.layout import RESULT_FILE

    if out.exists() and any(out.glob(f"*/{RESULT_FILE}")):
        return
    shutil.rmtree(created, ignore_errors=True)


def _grading_options(common: dict, *, fast: bool, force: bool):
    from grader.config import GradingOptions
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


def _write_outputs(results, out: Path, rubric, *, exports, junit, summary, gradebook_template=None, column_id=None,
                   skipped_rows=(), grade_item=None) -> int:
    """Reports, gradebooks, JUnit and summary. One output that fails is reported and the others
    are still written; returns how many failed."""
    from grader.report.write import write_reports

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
                                        assignment_title=rubric.title or "Assignment",
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
    for task in rubric.tasks:
        name = task.reference
        if name:
            try:
                from reference_models import architecture

                refs[task.id] = architecture(name)
            except Exception:
                continue
    return refs or None
