"""Gradebook exports: the grades in the file each LMS imports, so no spreadsheet sits in between.

One module per format (``canvas``, ``moodle``, ``blackboard``, ``brightspace``, ``gradescope``,
``plain_csv``), each registered with :func:`~grader.report.exports.registry.export`; its docstring
says what it writes. Every module of this package is imported here, so adding a format is one
new file in this folder (plus its test): the CLI's ``--export`` choices and help
(:func:`export_help`), the messages that list formats and :data:`FORMATS` read the registry.

Shared rules (``gradebook``, ``students``): a format that takes a downloaded file (``template=``:
Canvas's gradebook, Moodle's grading worksheet, Brightspace's grades export) matches its rows with
the results (by LMS id, login, e-mail or full name) and keeps the columns the import reads as
downloaded; only the grade (and feedback) cells of the graded students change. An id is used only
by the LMS it came from (:attr:`grader.model.results.Student.lms`). An export that would reach no
student — plain folders of notebooks carry no LMS ids — raises :class:`ExportError` saying why,
and writes nothing; students it cannot place are left out with a warning in the log. Every text
cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage
return at its start) gets a leading ``'``; numbers stay numbers. The column rules follow the LMS
documentation and source code in the project's research notes (``lms-formats.md``, section 2).

Example::

    export_gradebook(results, "canvas", Path("canvas.csv"), assignment_title="Lab 2",
                     column_id="123456")
    export_gradebook(results, "brightspace", Path("d2l.csv"), assignment_title="Lab 2",
                     template=Path("Lab_GradesExport.csv"), grade_item="Lab 2")
"""

from __future__ import annotations

import importlib
import pkgutil

from grader.report.exports.gradebook import ExportError
from grader.report.exports.registry import (
    EXPORTERS,
    ExportRequest,
    check_export_options,
    export,
    export_gradebook,
    export_help,
    formats,
)

__all__ = ["EXPORTERS", "FORMATS", "ExportError", "ExportRequest", "check_export_options", "export",
           "export_gradebook", "export_help", "formats"]

# Importing a format's module registers it: every module here is imported, so a new format needs
# no line anywhere else.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


FORMATS: tuple[str, ...]  # the registered formats' names, in order (for type checkers: see below)


def __getattr__(name: str) -> object:
    # FORMATS is read from the registry each time, so a format registered after this package was
    # imported (by a course's own module, or a test) is in it too.
    if name == "FORMATS":
        return formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
