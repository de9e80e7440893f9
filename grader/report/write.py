"""Writing the reports: ``<student>/report.html`` for each result and the class overview
``index.html``, each file written atomically; one result that cannot be drawn gets a short page.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote

from grader.model.evidence import Architecture
from grader.model.results import GradeResult
from grader.report.overview import render_class_overview
from grader.report.render import render
from grader.report.student import render_student_report
from grader.report.text import clean_text
from grader.store.atomic import write_atomic

log = logging.getLogger(__name__)


def report_folder(key: str) -> str:
    """A folder name for a student's report that is safe on every file system."""
    name = unicodedata.normalize("NFC", key).strip()
    name = re.sub(r'[\x00-\x1f<>:"/\\|?*]+', "_", name).strip(". ")
    return name[:100] or "student"


def _fallback_page(result: GradeResult, error: Exception) -> str:
    return render("render_error.html.j2", r=result, error=clean_text(f"{type(error).__name__}: {error}")[:2000])


def write_reports(results: list[GradeResult], out_dir: Path, *,
                  references: dict[str, Architecture] | None = None) -> Path:
    """Write ``out_dir/<student>/report.html`` for each result and ``out_dir/index.html``.

    Returns the path of the class overview. A result whose page cannot be rendered gets a short
    page saying so; the other reports are written all the same.
    """
    out_dir = Path(out_dir)
    links: dict[str, str] = {}
    used: set[str] = set()
    for result in results:
        folder = report_folder(result.student.key)
        candidate, n = folder, 2
        while candidate.casefold() in used:
            candidate, n = f"{folder}-{n}", n + 1
        used.add(candidate.casefold())
        try:
            html = render_student_report(result, reference=references)
        except Exception as exc:  # one odd result must not cost the other reports
            log.exception("report for %s could not be rendered", result.student.key)
            html = _fallback_page(result, exc)
        (out_dir / candidate).mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / candidate / "report.html", html.encode("utf-8"))
        links[result.student.key] = quote(candidate) + "/report.html"
    index = out_dir / "index.html"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(index, render_class_overview(results, report_links=links).encode("utf-8"))
    return index
