"""Writing the reports: ``<student>/report.html`` for each result and the class overview
``index.html``, each file written atomically; one result that cannot be drawn gets a short page.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from grader.model.evidence import Architecture
from grader.model.results import GradeResult
from grader.report.overview import all_static, render_class_overview
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


def _page(result: GradeResult, references: dict[str, Architecture] | None) -> bytes:
    try:
        html = render_student_report(result, reference=references)
    except Exception as exc:  # one odd result must not cost the other reports
        log.exception("report for %s could not be rendered", result.student.key)
        html = _fallback_page(result, exc)
    return html.encode("utf-8")


# A forked renderer's results and references: inherited, never pickled (a result carries its evidence).
_RENDERING: tuple[list[GradeResult], dict[str, Architecture] | None] | None = None
# Reports rendered in one process below this many; above, one process per core.
POOL_FROM = 16


def _page_at(index: int) -> bytes:
    assert _RENDERING is not None
    results, references = _RENDERING
    return _page(results[index], references)


def _pages(results: list[GradeResult], references: dict[str, Architecture] | None) -> Iterator[bytes]:
    """Each result's page, in order: many of them on every core (forked processes), once the
    results are graded from saved outputs and a page costs about what grading it did."""
    global _RENDERING
    processes = _cores()
    if processes > 1 and len(results) >= POOL_FROM and "fork" in multiprocessing.get_all_start_methods():
        # The first page here: the templates are compiled once, before the renderers are forked.
        yield _page(results[0], references)
        _RENDERING = (results, references)
        done = 1
        try:
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                for page in pool.map(_page_at, range(1, len(results)), chunksize=4):
                    done += 1
                    yield page
        except BrokenProcessPool:  # a renderer died: the rest are rendered here
            log.warning("a report renderer stopped; the remaining reports are rendered in this process")
        finally:
            _RENDERING = None
        results = results[done:]
    for result in results:
        yield _page(result, references)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def write_reports(results: list[GradeResult], out_dir: Path, *,
                  references: dict[str, Architecture] | None = None) -> Path:
    """Write ``out_dir/<student>/report.html`` for each result and ``out_dir/index.html``.

    Returns the path of the class overview. A result whose page cannot be rendered gets a short
    page saying so; the other reports are written all the same. The reports of a class graded
    from saved outputs are not flushed to disk one by one: the next run writes them again in seconds.
    """
    out_dir = Path(out_dir)
    links: dict[str, str] = {}
    used: set[str] = set()
    sync = not all_static(results)
    folders = []
    for result in results:
        folder = report_folder(result.student.key)
        candidate, n = folder, 2
        while candidate.casefold() in used:
            candidate, n = f"{folder}-{n}", n + 1
        used.add(candidate.casefold())
        folders.append(candidate)
    for result, candidate, page in zip(results, folders, _pages(list(results), references)):
        (out_dir / candidate).mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / candidate / "report.html", page, sync=sync)
        links[result.student.key] = quote(candidate) + "/report.html"
    index = out_dir / "index.html"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(index, render_class_overview(results, report_links=links).encode("utf-8"))
    return index
