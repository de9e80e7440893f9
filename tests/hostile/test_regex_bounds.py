"""Crafted lines that made the parsers' patterns backtrack for seconds (issue 14).

Each parse must finish well within a bound measured in this process; the bound is a guard
against exponential or cubic backtracking (31 s before the fix), not a benchmark.
"""

from __future__ import annotations

import time

import pytest

from grader.checks.cells import _HEADING
from grader.model.evidence import Cell, Evidence
from grader.checks.cells import headings
from grader.static.logs import parse_test_scores, parse_training_log
from grader.notebook.cells import markdown_headings
from grader.static.summary import parse_summary

BOUND_S = 1.0

HOSTILE_MARKDOWN = [
    "# Q" + " " * 1600 + "x",
    "# Q" + " " * 20000 + "x",
    "## " + "# " * 10000 + "x",
    "**" + "a " * 10000 + "x",
    "**a" + " ** " * 5000,
    "<h1>" * 5000,
    "-" * 50000 + " x",
]

HOSTILE_OUTPUT = [
    "test loss" + " " * 20000 + "x",
    "accuracy on test" + " " * 20000 + ":" + " " * 20000 + "x",
    "test " * 5000 + "= [1",
    " - loss:" + " " * 20000 + "x",
    "Epoch 1/" + " " * 20000 + "x",
    "Layer (type)  Output Shape  Param #\n" + "dense" + " " * 20000 + "(" + " " * 5000 + "x",
    "Layer (type)  Output Shape  Param #\nd (Dense) (None, 8) 72 " + "a " * 10000 + "\n",
    "Layer (type)  Output Shape  Param #\n" + "x" * 30000 + " " * 30000 + "1",
]


def _timed(func, *args):
    started = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - started


@pytest.mark.parametrize("line", HOSTILE_MARKDOWN, ids=range(len(HOSTILE_MARKDOWN)))
def test_markdown_heading_patterns_are_bounded(line):
    _, took = _timed(markdown_headings, line)
    assert took < BOUND_S
    evidence = Evidence(submission="a", cells=[Cell(index=0, cell_type="markdown", source=line)])
    _, took = _timed(headings, evidence)
    assert took < BOUND_S


@pytest.mark.parametrize("text", HOSTILE_OUTPUT, ids=range(len(HOSTILE_OUTPUT)))
def test_output_parsers_are_bounded(text):
    for parse in (parse_summary, parse_training_log, parse_test_scores):
        _, took = _timed(parse, text)
        assert took < BOUND_S, parse.__name__


def test_the_rewritten_heading_patterns_still_read_headings():
    assert markdown_headings("# Q" + " " * 1600 + "x") == ["Q" + " x"]
    assert markdown_headings("## Question 4 ##  ") == ["Question 4"]
    assert markdown_headings("### C# and F#") == ["C# and F#"]
    match = _HEADING.match("## Task 2: CNN ###")
    assert match is not None and match.group(1) == "##" and match.group(2) == "Task 2: CNN"
    assert _HEADING.match("####### seven") is None
    assert _HEADING.match("#nospace") is None


def test_printed_figures_still_read_after_the_rewrite():
    scores = parse_test_scores("Test accuracy: 0.63\ntest loss, test acc: [1.1, 0.62]\n"
                               "Accuracy on the test set: 61%")
    assert [s.results for s in scores] == [{"accuracy": 0.63}, {"loss": 1.1, "accuracy": 0.62},
                                           {"accuracy": 0.61}]
