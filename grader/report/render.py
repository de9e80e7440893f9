"""The one Jinja environment of the report pages, its filters and globals, and the page policy.

Each page is one self-contained file: the CSS is inlined, the figures are ``data:`` URIs, there is
no script but the overview's sort script (allowed by its hash), and a Content-Security-Policy meta
tag forbids the page to load anything else. A student's notebook is untrusted text: Jinja2
autoescaping is on for every template, so a ``<script>`` in a traceback or an answer shows as text.

The templates are in the top-level ``templates/`` folder (:func:`grader.resources.templates_dir`).
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from markupsafe import Markup

from grader import __version__
from grader.model.format import fmt_count, fmt_percent, fmt_points, fmt_signed
from grader.report.layers import layer_config
from grader.report.text import (
    LEVEL_HELP,
    STATUS_WORDS,
    clean_text,
    fmt_duration,
    fmt_figure,
    fmt_shape,
    fmt_when,
    inline_code,
    percent,
    share,
)
from grader.resources import templates_dir

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _capitalize_first(text: str) -> str:
    """``cell 12 raised …`` → ``Cell 12 raised …`` (Jinja's ``capitalize`` lowers the rest)."""
    text = str(text)
    return text[:1].upper() + text[1:]


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        # On for every template, whatever its name: the pages show untrusted notebook text.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates do not change while the grader runs: no stat per page
    )
    env.filters.update(points=fmt_points, count=fmt_count, duration=fmt_duration,
                       figure=fmt_figure, shape=fmt_shape, clean=clean_text,
                       layer_config=layer_config, signed=fmt_signed, when=fmt_when,
                       inline_code=inline_code, pct=fmt_percent, capitalize_first=_capitalize_first)
    env.globals.update(
        STATUS_WORDS={s.value: w for s, w in STATUS_WORDS.items()},
        LEVEL_HELP=LEVEL_HELP,
        CSP=CSP,
        grader_version=__version__,
        percent=percent,
        share=share,
    )
    return env


# The pages a batch writes; the templates they include are compiled with them.
PAGES = ("student_report.html.j2", "class_overview.html.j2", "render_error.html.j2")


def compile_templates() -> None:
    """Compile the report pages' templates now (about 0.2 s), not when the first page is drawn:
    a static batch does it while its workers grade, and the report renderers it forks next
    inherit them."""
    env = _environment()
    for name in PAGES:
        env.get_template(name)
    _stylesheet()


@functools.lru_cache(maxsize=1)
def _stylesheet() -> str:
    return (templates_dir() / "report.css").read_text(encoding="utf-8")


def render(template: str, **context: Any) -> str:
    """``template`` rendered with the stylesheet inlined and ``context``."""
    # The stylesheet is ours, not the student's: it goes in as is.
    return _environment().get_template(template).render(css=Markup(_stylesheet()), **context)
