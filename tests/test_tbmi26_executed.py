"""The TBMI26 lab templates, filled in and run for real through ``grade check`` (fast mode,
synthetic CIFAR-10, the course's Custom.py next to the notebook): each model task grades the
model its question is about, with that model's own parameter count.

The student code is tests/tbmi26.py's; its parameter counts, worked out by hand:
  FC        3072·48+48 + 48·24+24 + 24·10+10                              = 148,930
  CNN       (27·8+8) + (72·12+12) + (432·16+16) + (16·10+10)              =   8,198
  Dropout   the CNN with Dropout layers (no parameters)                   =   8,198
  BatchNorm the CNN + BatchNormalization(8) 4·8 and (12) 4·12             =   8,278
  final     (27·16+16) + 4·16 + (144·24+24) + 4·24 + (1536·32+32) + 330   =  53,602
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tbmi26 import filled

PARAMS = {"fc": 148_930, "cnn": 8_198, "cnn_efficiency": 8_198, "dropout": 8_198, "batchnorm": 8_278, "target": 53_602}
LAYER = {"dropout": "Dropout", "batchnorm": "BatchNormalization"}


def _check(lab, tmp_path: Path) -> dict:
    notebook = lab.write(tmp_path / "student")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(notebook), "--rubric", "cifar10",
                          "--data", "synthetic", "--sandbox", "none", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    (result,) = list(out.rglob("result.json"))
    return json.loads(result.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("version", ["2021", "2023", "2024"])
def test_filled_lab_grades_each_question_on_its_own_model(version, tmp_path):
    lab = filled(version)
    result = _check(lab, tmp_path)
    tasks = {t["task_id"]: t for t in result["tasks"]}
    ids = {}
    for task_id, params in PARAMS.items():
        task = tasks[task_id]
        assert task["model_id"], f"{task_id}: {task['selector_message']}"
        assert f"({params:,} params)" in task["selector"], f"{task_id}: {task['selector']}"
        ids[task_id] = task["model_id"]
    # Five models bound to `model` (2021, 2023) or built in functions (2024): five ids.
    assert len({ids[t] for t in ("fc", "cnn", "dropout", "batchnorm", "target")}) == 5, ids
    for task_id in ("fc", "cnn", "dropout", "batchnorm", "target"):
        for check in tasks[task_id]["checks"]:
            if check["check"] in ("contains", "lacks", "layers", "output_layer", "epochs"):
                assert check["status"] == "passed", f"{task_id}: {check['title']}: {check['message']}"


@pytest.mark.slow
def test_lab_batch_to_canvas_with_answers_marked_in_the_review_app(tmp_path):
    # The instructor's path without a CSV: grade a Canvas-named batch, mark every free-text
    # answer through the review app, export for Canvas: the gradebook carries the human points.
    import csv

    import nbformat

    from grader.review.app import ReviewIndex, create_app
    from tests.tbmi26 import CUSTOM_PY

    subs = tmp_path / "subs"
    subs.mkdir()
    lab = filled("2024")
    for question in (1, 3, 5, 6, 7, 8):
        lab.answer(question, f"Answer to question {question}.")
    nbformat.write(lab.notebook, subs / "doejane_101_9001_lab.ipynb")
    out = tmp_path / "out"
    graded = subprocess.run([sys.executable, "-m", "grader.cli", str(subs), "--rubric", "cifar10", "--fast",
                             "--data", "synthetic", "--sandbox", "none", "--support", str(CUSTOM_PY), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert graded.returncode in (0, 1), graded.stdout[-3000:] + graded.stderr[-3000:]
    (result,) = [json.loads(p.read_text()) for p in out.glob("*/result.json")]

    client = create_app(out, token="secret").test_client()
    assert client.get("/?token=secret").status_code == 302  # the token once, then its cookie
    index = ReviewIndex(out)
    marked = 0.0
    for key, question in index.questions.items():
        for student in question.students:
            response = client.post("/api/score", json={"token": "secret", "question": key, "student": student,
                                                       "score": question.max_points})
            assert response.status_code == 200, response.data
            marked += question.max_points
    assert marked == 13  # the rubric's free-text points

    exported = subprocess.run([sys.executable, "-m", "grader.cli", "export", str(out), "--to", "canvas"],
                              capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader((out / "exports" / "canvas-gradebook.csv").open(encoding="utf-8")))
    jane = next(row for row in rows if row[0] == "doejane")
    assert float(jane[-1]) == result["score"] + marked
