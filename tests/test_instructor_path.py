"""The instructor's whole path, end to end through the command line (issue 16): a Canvas
download is graded, human scores come in with ``--manual``, the same command runs again without
it, the gradebook is exported, and Canvas's importer (the oracle of tests/test_lms_roundtrip.py)
sees the human scores. The notebooks never import Keras, so this runs in seconds."""

from __future__ import annotations

import csv
import zipfile

from click.testing import CliRunner

from grader.cli import main
from tests.nbfactory import code, md, notebook, write
from tests.test_lms_roundtrip import LMS, canvas_import, canvas_roster

RUBRIC = """
name: lab2
title: "Lab 2: CIFAR-10"
tasks:
  - id: q1
    title: "Question 1: the answer"
    checks:
      - answer: {variable: answer, equals: 42, points: 16}
  - id: q2
    title: "Question 2: explain"
    question: "Question 2"
    checks:
      - manual: {points: 2, guidance: "names the reason"}
"""
COLUMN = "Lab 2: CIFAR-10 (123456)"


def _nb(value: int):
    return notebook(md("# Lab 2\n## Question 1"), code(f"answer = {value}"), md("## Question 2\nWhy?"),
                    md("Because of the colour channels."))


def _run(*args):
    result = CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_canvas_download_to_canvas_import_with_human_scores_that_survive_a_rerun(tmp_path):
    files = tmp_path / "files"
    write(_nb(42), files / "lindqvistalice_482913_9001_lab2.ipynb")
    write(_nb(41), files / "builderbob_late_482977_9002_lab2.ipynb")
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(files.iterdir()):
            handle.write(path, path.name)
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    out = tmp_path / "out"
    template = LMS / "canvas_gradebook_download.csv"
    common = ["--rubric", rubric, "--out", out, "--sandbox", "none", "--quiet"]

    _run("run", archive, *common)
    _run("manual", "template", out)  # the CSV the docs promise, filled in as a TA would
    filled = tmp_path / "scores.csv"
    with (out / "exports" / "manual_template.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    assert len(rows) == 2 and {r["task"] for r in rows} == {"q2"}, rows
    with filled.open("w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["student", "task", "score", "comment"])
        for row in rows:
            writer.writerow([row["student"], row["task"], "2" if "alice" in row["student"] else "1", "ok"])
    _run("run", archive, *common, "--manual", filled)
    _run("run", archive, *common)  # the same command again, without --manual

    _run("export", out, "--export", "canvas", "--gradebook", template, "--column-id", "123456")
    (exported,) = [p for p in (out / "exports").glob("*.csv") if "canvas" in p.name]
    changes, problems = canvas_import(exported, canvas_roster(template))
    assert problems == []
    assert changes == {("482913", COLUMN): "18", ("482977", COLUMN): "1"}
