"""The registry of gradebook formats, and the two calls every format goes through: checking the
options before grading (:func:`check_export_options`) and writing the file
(:func:`export_gradebook`).

A format is a function registered with :func:`export`; the CLI's choices and help text, the
error messages that list formats and this module's checks all read the registry, so a format is
declared in exactly one place, next to the code that writes it::

    @export("totals", help="student and score, for a spreadsheet", file_name="totals.csv")
    def totals(results: list[GradeResult], request: ExportRequest) -> list[list[object]]:
        return [["student", "score"]] + [[r.student.key, gradebook_number(gradebook_score(r))]
                                         for r in results]
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from grader.errors import UsageError
from grader.model.results import GradeResult
from grader.report.exports.gradebook import Download, read_template, write_csv


@dataclass(frozen=True)
class ExportRequest:
    """What the user asked of an export besides the results: the assignment's title as the LMS
    shows it, the file downloaded from the LMS (formats that take a ``template``), the LMS's id
    of the grade column and the Brightspace grade item."""

    title: str
    template: Download | None = None
    column_id: str | None = None
    grade_item: str | None = None


# Checks a downloaded file's header before grading: raises UsageError saying what is wrong.
TemplateCheck = Callable[..., None]


@dataclass(frozen=True)
class Exporter:
    """One gradebook format.

    ``rows`` (formats with a ``file_name``) returns the CSV's rows, which :func:`export_gradebook`
    writes; ``write`` (formats that write their own files, such as one ``results.json`` per
    student) writes them and returns the path written. ``template`` checks a downloaded file's
    header (``check(header, path=, title=, grade_item=)``); a format without one takes no
    downloaded file. ``column_id`` says in words what the LMS's column id is, for formats that
    use one; ``column_id_required`` refuses an export without it. ``grade_item``: the format
    fills a named grade item (``--grade-item``).
    """

    name: str
    help: str
    lms: str
    file_name: str | None
    rows: Callable[[list[GradeResult], ExportRequest], Sequence[Sequence[object]]] | None = None
    write: Callable[[list[GradeResult], Path, ExportRequest], Path] | None = None
    template: TemplateCheck | None = None
    column_id: str | None = None
    column_id_required: bool = False
    grade_item: bool = False
    quoting: int = csv.QUOTE_MINIMAL
    encoding: str = "utf-8"
    order: int = 100
    module: str = ""


EXPORTERS: dict[str, Exporter] = {}


def export(name: str, *, help: str, file_name: str | None, lms: str | None = None,
           template: TemplateCheck | None = None, column_id: str | None = None, column_id_required: bool = False,
           grade_item: bool = False, quoting: int = csv.QUOTE_MINIMAL, encoding: str = "utf-8",
           order: int = 100) -> Callable[[Callable], Callable]:
    """Register the decorated function as the gradebook format ``name``.

    With a ``file_name`` (the file written when the output is a folder) the function is
    ``rows(results, request) -> rows`` and its rows are written as CSV, every cell formula-safe;
    with ``file_name=None`` it is ``write(results, out, request) -> path`` and writes its own files.
    ``help`` is a short phrase for ``--export``'s help; ``lms`` the LMS's name in messages
    (default: ``name`` capitalised); ``order`` places the format among the others (the built-in
    ones take 10 to 60). The other keywords are :class:`Exporter`'s.
    """
    if name != name.lower().strip() or not name:
        raise ValueError(f"export format {name!r}: a name is lower case, without spaces around it")

    def register(func: Callable) -> Callable:
        if name in EXPORTERS:
            raise RuntimeError(f"export format {name!r} registered twice")
        functions = {"rows": func} if file_name is not None else {"write": func}
        EXPORTERS[name] = Exporter(
            name=name, help=help, lms=lms or name.capitalize(), file_name=file_name, template=template,
            column_id=column_id, column_id_required=column_id_required, grade_item=grade_item,
            quoting=quoting, encoding=encoding, order=order, module=func.__module__, **functions)
        return func

    return register


def exporters() -> list[Exporter]:
    """The registered formats, in their order."""
    return sorted(EXPORTERS.values(), key=lambda e: (e.order, e.name))


def formats() -> tuple[str, ...]:
    """The names of the registered formats, in their order."""
    return tuple(e.name for e in exporters())


def template_formats() -> tuple[str, ...]:
    """The formats that start from a file downloaded from the LMS (``template=``)."""
    return tuple(e.name for e in exporters() if e.template is not None)


def _words(names: Sequence[str]) -> str:
    """``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def export_help(option: str = "--export") -> str:
    """The help text of the CLI's ``option`` (``--export``, ``--gradebook``, ``--column-id`` or
    ``--grade-item``), naming the registered formats that use it."""
    everyone = exporters()
    if option == "--export":
        listed = ", ".join(f"{e.name} ({e.help})" for e in everyone)
        return f"Gradebook format to write (repeatable): {listed}."
    if option == "--gradebook":
        lms = ", ".join(e.lms for e in everyone if e.template is not None)
        return f"The gradebook downloaded from the LMS ({lms}), to keep its rows and columns in --export."
    if option == "--column-id":
        lms = ", ".join(e.lms for e in everyone if e.column_id is not None)
        return f"The LMS's id of the assignment column ({lms}), so grades land in the existing column."
    if option == "--grade-item":
        lms = ", ".join(e.lms for e in everyone if e.grade_item)
        return (f"{lms}: the grade item to fill, as named in the grades export given with --gradebook "
                "(default: its only one).")
    raise ValueError(f"no export option {option!r}: use --export, --gradebook, --column-id or --grade-item")


def _exporter(fmt: str, *, suggest: bool) -> Exporter:
    if fmt not in EXPORTERS:
        names = formats()
        close = difflib.get_close_matches(fmt, names, n=1) if suggest else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"unknown export format {fmt!r}{hint}: use one of {', '.join(names)}")
    return EXPORTERS[fmt]


def check_export_options(formats: Sequence[str], *, template: Path | None = None, column_id: str | None = None,
                         grade_item: str | None = None, assignment_title: str = "") -> None:
    """Raise :class:`~grader.errors.UsageError` for export options that cannot work, before any
    notebook runs: an unknown format, a format without the column id it needs, a template for a
    format that takes none, an unreadable template or one that is not the named LMS's download
    (each format's own ``template`` check: a Brightspace grade item the template does not have)."""
    for fmt in formats:
        exporter = _exporter(fmt.lower().strip(), suggest=True)
        if exporter.column_id_required and not column_id:
            raise UsageError(f"--export {exporter.name} needs --column-id: {exporter.column_id}")
        if template is not None and exporter.template is None:
            raise UsageError(f"a downloaded gradebook (--gradebook) is used for "
                             f"{_words(template_formats())} exports only, not {exporter.name}")
    if template is not None and formats:
        rows, _ = read_template(Path(template))
        for fmt in dict.fromkeys(f.lower().strip() for f in formats):
            check = EXPORTERS[fmt].template
            assert check is not None  # refused above
            check(rows[0], path=Path(template), title=assignment_title, grade_item=grade_item)


def export_gradebook(
    results: list[GradeResult],
    fmt: str,
    out: Path,
    *,
    template: Path | None = None,
    assignment_title: str,
    column_id: str | None = None,
    grade_item: str | None = None,
) -> Path:
    """Write the grades of ``results`` in the LMS format ``fmt``; return the path written.

    ``assignment_title`` names the grade column (Canvas, Blackboard, Brightspace). ``column_id``
    is the LMS's id of that column: Canvas's assignment id (without it Canvas creates a new
    assignment), Blackboard's Grade Center column id (required). ``template`` is the file
    downloaded from the LMS: the gradebook (Canvas), the grading worksheet (Moodle) or the grades
    export (Brightspace). ``grade_item`` is the Brightspace grade item's name (default: the only
    one in the template, else ``assignment_title``).

    ``out`` is the file to write, or a folder (an existing one, or a path without a suffix) that
    gets the format's usual name (its ``file_name``); the path written is returned. For
    ``gradescope``, ``out`` is a folder that gets ``<student>/results.json``, or a ``.json`` file
    for a single result.

    A student the LMS file cannot identify (no id of that LMS, or no row in the template) is left
    out with a warning in the log; the others are written. An LMS export that would place none of
    the students raises :class:`~grader.report.exports.gradebook.ExportError` and writes nothing.
    Bad arguments raise :class:`~grader.errors.UsageError`.
    """
    exporter = _exporter(fmt.lower().strip(), suggest=False)
    if not assignment_title or not assignment_title.strip():
        raise UsageError("an export needs the assignment's title as the LMS shows it")
    if template is not None and exporter.template is None:
        raise UsageError(f"a template file is used for {_words(template_formats())} exports only, "
                         f"not {exporter.name}")
    out = Path(out)
    downloaded = Download.read(Path(template)) if template is not None else None
    request = ExportRequest(title=assignment_title.strip(), template=downloaded, column_id=column_id,
                            grade_item=grade_item.strip() if grade_item and grade_item.strip() else None)
    if exporter.write is not None:
        return exporter.write(results, out, request)
    assert exporter.rows is not None and exporter.file_name is not None
    if out.is_dir() or not out.suffix:
        out = out / exporter.file_name
    rows = exporter.rows(results, request)
    write_csv(out, rows, delimiter=downloaded.delimiter if downloaded else ",", quoting=exporter.quoting,
              encoding=exporter.encoding)
    return out
