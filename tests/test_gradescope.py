"""The Gradescope autograder zip (``grade gradescope build``) and its ``run_autograder``, run for
real in a fake ``/autograder`` root (``AUTOGRADER_ROOT``), as Gradescope's harness lays it out:
the zip unpacked in ``source/``, ``run_autograder`` copied to the root, the student's files in
``submission/``. Every results.json is checked against the rules of Gradescope's specification
(lms-formats.md 2.5) by :func:`gradescope_oracle`.

The notebooks are graded from their saved outputs (``--mode static``) and the zips ship a stand-in
wheel, so no kernel starts and nothing is built: each test takes about a second.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.report.gradescope import build_autograder, find_notebook
from tests.nbfactory import code, md, notebook, write

RUBRIC = """
name: gs-tiny
title: Tiny Gradescope lab
tasks:
  - id: q1
    title: "Question 1: the answer"
    question: "Question 1"
    checks:
      - answer: {pattern: '\\b42\\b', points: 2}
  - id: q2
    title: "Question 2: why"
    question: "Question 2"
    points: 3
    checks:
      - manual: {guidance: "any reason"}
"""
RUBRIC_MAX = 5.0

TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def gradescope_oracle(path: Path) -> dict:
    """What Gradescope's reader requires of results.json (its specification), asserted; returns it."""
    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)
    assert isinstance(doc, dict) and set(doc) <= TOP_KEYS, set(doc) - TOP_KEYS
    tests = doc.get("tests", [])
    assert isinstance(tests, list)
    # "score" is required unless every test has one.
    assert "score" in doc or (tests and all("score" in t for t in tests))
    for key in ("score", "execution_time"):
        if key in doc:
            assert isinstance(doc[key], (int, float)) and not isinstance(doc[key], bool) and doc[key] >= 0
            assert math.isfinite(doc[key])
    if "execution_time" in doc:
        assert isinstance(doc["execution_time"], int)  # seconds
    assert isinstance(doc.get("output", ""), str)
    for key in ("visibility", "stdout_visibility"):
        assert doc.get(key, "visible") in VISIBILITIES
    for key in ("output_format", "test_output_format", "test_name_format"):
        assert doc.get(key, "text") in FORMATS
    for test in tests:
        assert set(test) <= TEST_KEYS, set(test) - TEST_KEYS
        assert isinstance(test["name"], str) and test["name"].strip()
        assert isinstance(test["max_score"], (int, float)) and test["max_score"] >= 0
        assert isinstance(test["score"], (int, float)) and 0 <= test["score"] <= test["max_score"]
        assert test.get("status", "passed") in ("passed", "failed")
        assert test.get("visibility", "visible") in VISIBILITIES
        assert isinstance(test.get("output", ""), str)
        assert isinstance(test.get("number", ""), str)
        assert all(isinstance(tag, str) for tag in test.get("tags", []))
    if tests and "score" in doc:
        assert doc["score"] <= sum(t["max_score"] for t in tests) + 1e-9
    return doc


def max_points(doc: dict) -> float:
    return sum(t["max_score"] for t in doc["tests"])


@pytest.fixture
def rubric(tmp_path):
    path = tmp_path / "lab" / "rubric.yaml"
    path.parent.mkdir()
    path.write_text(RUBRIC)
    return path


@pytest.fixture
def wheel(tmp_path):
    """A stand-in for the nn-grader wheel (the tests run the grader installed here)."""
    path = tmp_path / "nn_grader-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("nn_grader-0.1.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: nn-grader\nVersion: 0.1.0\nRequires-Dist: click>=8.1\n"
                         "Requires-Dist: not-installed-here>=1\nRequires-Dist: pytest>=8; extra == \"test\"\n")
    return path


def answer_notebook(answer: str = "It is 42."):
    return notebook(md("## Question 1\nWhat is the answer?"), md(answer), code("x = 1"),
                    md("## Question 2\nWhy?"), md("Because it is."))


def unpack(zip_path: Path, root: Path) -> Path:
    """Lay out ``root`` as Gradescope's harness does, with the zip's mode bits applied."""
    source = root / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path, python: str = sys.executable) -> dict:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "NN_GRADER_PYTHON": python}
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr  # Gradescope reads results.json, not the code
    return gradescope_oracle(root / "results" / "results.json")


@pytest.fixture
def autograder(tmp_path, rubric, wheel):
    """An unpacked static-mode autograder; ``root/submission`` is empty."""
    built = build_autograder(rubric, tmp_path / "autograder.zip", mode="static", wheel=wheel)
    return unpack(built.path, tmp_path / "autograder")


# ---- the zip ------------------------------------------------------------------------------------


def test_zip_holds_the_scripts_executable_the_rubric_and_the_wheel_at_its_root(tmp_path, rubric, wheel):
    built = build_autograder(rubric, tmp_path / "autograder.zip", mode="static", wheel=wheel, notebook="lab.ipynb",
                             requirements=["scikit-learn>=1.3"])
    with zipfile.ZipFile(built.path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        config = json.loads(archive.read("nn-grader.json"))
        constraints = archive.read("constraints.txt").decode()
        setup = archive.read("setup.sh").decode()
    assert set(infos) == {"setup.sh", "run_autograder", "nn-grader.json", "constraints.txt", "rubric/rubric.yaml",
                          "dist/nn_grader-0.1.0-py3-none-any.whl"}
    for name in ("setup.sh", "run_autograder"):
        mode = infos[name].external_attr >> 16
        assert infos[name].create_system == 3 and stat.S_ISREG(mode) and mode & 0o111 == 0o111, oct(mode)
    assert infos["rubric/rubric.yaml"].external_attr >> 16 & 0o111 == 0
    assert config["rubric"] == "rubric/rubric.yaml" and config["notebook"] == "lab.ipynb" and config["mode"] == "static"
    assert config["max_points"] == RUBRIC_MAX
    # Only what the wheel requires and this machine has is pinned; extras are not.
    assert f"click=={metadata.version('click')}" in constraints.splitlines()
    assert "not-installed-here" not in constraints and "pytest" not in constraints
    assert "dist/nn_grader-0.1.0-py3-none-any.whl" in setup and "'scikit-learn>=1.3'" in setup


def test_setup_downloads_the_rubrics_keras_dataset_into_the_image_unless_data_is_given(tmp_path, wheel):
    built = build_autograder("cifar10", tmp_path / "a.zip", wheel=wheel)
    with zipfile.ZipFile(built.path) as archive:
        setup = archive.read("setup.sh").decode()
    assert 'keras.datasets.cifar10.load_data()' in setup and built.max_points == 36
    static = build_autograder("cifar10", tmp_path / "s.zip", wheel=wheel, mode="static")
    with zipfile.ZipFile(static.path) as archive:
        assert "load_data" not in archive.read("setup.sh").decode()


def test_setup_checks_the_unpacked_configuration(autograder):
    done = subprocess.run([sys.executable, "-m", "grader.report.gradescope", "check-config", str(autograder / "source")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "Tiny Gradescope lab (5 points), mode static" in done.stdout, done.stderr


def test_both_scripts_are_valid_bash(tmp_path, autograder):
    for script in (autograder / "source" / "setup.sh", autograder / "run_autograder"):
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_support_files_and_data_move_into_the_zip_and_the_copied_rubric_finds_them(tmp_path, wheel):
    lab = tmp_path / "course"
    (lab / "helpers").mkdir(parents=True)
    (lab / "helpers" / "Custom.py").write_text("def PlotModelEval(*a):\n    pass\n")
    (lab / "extra.py").write_text("X = 1\n")
    rubric = lab / "r.yaml"
    rubric.write_text(RUBRIC + "support_files: [helpers/Custom.py]\n")
    built = build_autograder(rubric, tmp_path / "a.zip", mode="fast", wheel=wheel, support=[lab / "extra.py"])
    assert {"rubric/support/Custom.py", "support/extra.py"} <= set(built.members)
    root = unpack(built.path, tmp_path / "root")
    config = json.loads((root / "source" / "nn-grader.json").read_text())
    assert config["support"] == ["support/extra.py"]
    from grader.rubric.load import load_rubric

    staged = load_rubric(root / "source" / config["rubric"])
    assert [p.name for p in staged.support_files] == ["Custom.py"]
    assert staged.support_files[0].is_relative_to((root / "source").resolve())


def test_data_goes_into_the_zip_and_replaces_the_dataset_download(tmp_path, wheel):
    import numpy as np

    rubric = tmp_path / "r.yaml"
    rubric.write_text(RUBRIC + "dataset: mnist\n")
    data = tmp_path / "mnist_small.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x_train=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), y_train=np.arange(20) % 10,
             x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10) % 10)
    built = build_autograder(rubric, tmp_path / "a.zip", wheel=wheel, data=data)
    with zipfile.ZipFile(built.path) as archive:
        config = json.loads(archive.read("nn-grader.json"))
        setup = archive.read("setup.sh").decode()
    assert config["data"] == "data/mnist_small.npz" and "data/mnist_small.npz" in built.members
    assert "load_data" not in setup


def test_a_broken_rubric_is_refused_and_no_zip_is_written(tmp_path, wheel):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks: [{id: q1, checks: [{nonsense: {}}]}]\n")
    result = CliRunner().invoke(main, ["gradescope", "build", "--rubric", str(bad), "--wheel", str(wheel),
                                       "--out", str(tmp_path / "a.zip")])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "a.zip").exists()


def test_cli_builds_the_zip_and_its_help_ends_with_an_example(tmp_path, rubric, wheel):
    out = tmp_path / "ag.zip"
    result = CliRunner().invoke(main, ["gradescope", "build", "--rubric", str(rubric), "--wheel", str(wheel),
                                       "--out", str(out), "--mode", "static"])
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(out) and "5 points" in result.output
    help_text = CliRunner().invoke(main, ["gradescope", "build", "--help"]).output
    assert "Example" in help_text
    assert help_text.rstrip().endswith("grade gradescope build --rubric cifar10 --support Custom.py --requirement scikit-learn")


def test_a_wheel_that_is_not_nn_graders_is_refused(tmp_path, rubric):
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"")
    result = CliRunner().invoke(main, ["gradescope", "build", "--rubric", str(rubric), "--wheel", str(other),
                                       "--out", str(tmp_path / "a.zip")])
    assert result.exit_code == 2 and "not an nn-grader wheel" in result.output


@pytest.mark.slow
def test_the_default_wheel_is_built_from_this_source_tree_offline(tmp_path, rubric):
    built = build_autograder(rubric, tmp_path / "a.zip", mode="static")
    with zipfile.ZipFile(built.path) as archive:
        with zipfile.ZipFile(archive.open(f"dist/{built.wheel}")) as inner:
            names = set(inner.namelist())
    assert {"grader/report/gradescope.py", "grader/schemas/rubric.schema.json", "grader/_rubrics/cifar10.yaml"} <= names


# ---- run_autograder -------------------------------------------------------------------------------


def test_run_autograder_grades_the_notebook_and_the_pending_manual_item_keeps_the_maximum(autograder):
    write(answer_notebook(), autograder / "submission" / "lab.ipynb")
    doc = run_autograder(autograder)
    assert doc["score"] == 2.0, doc["output"]
    assert max_points(doc) == RUBRIC_MAX  # the unmarked 3-point answer is counted, not dropped
    by_tag = {t["tags"][0]: t for t in doc["tests"]}
    assert (by_tag["q1"]["score"], by_tag["q1"]["status"]) == (2.0, "passed")
    pending = by_tag["q2"]
    assert (pending["score"], pending["max_score"], pending["tags"][-1]) == (0.0, 3.0, "pending")
    assert "a person marks" in pending["output"]
    assert doc["stdout_visibility"] == "hidden" and isinstance(doc["execution_time"], int)


def test_a_failed_check_scores_zero_and_says_why(autograder):
    write(answer_notebook("It is 41."), autograder / "submission" / "lab.ipynb")
    doc = run_autograder(autograder)
    q1 = next(t for t in doc["tests"] if t["tags"][0] == "q1")
    assert (doc["score"], q1["status"], q1["score"]) == (0.0, "failed", 0.0) and q1["output"]


def test_manual_items_left_out_for_gradescope_questions(tmp_path, rubric, wheel):
    built = build_autograder(rubric, tmp_path / "a.zip", mode="static", wheel=wheel, manual_items="leave-out")
    root = unpack(built.path, tmp_path / "root")
    write(answer_notebook(), root / "submission" / "lab.ipynb")
    doc = run_autograder(root)
    assert max_points(doc) == 2.0 and "Graded by hand later" in doc["output"]


def test_no_notebook_in_the_submission_still_writes_results(autograder):
    (autograder / "submission" / "lab.py").write_text("print(42)\n")
    doc = run_autograder(autograder)
    assert doc["score"] == 0.0 and doc["tests"] == []
    assert "No Jupyter notebook (.ipynb) was found" in doc["output"]


def test_several_notebooks_without_a_name_to_choose_by_say_so(autograder):
    write(answer_notebook(), autograder / "submission" / "lab.ipynb")
    write(answer_notebook(), autograder / "submission" / "scratch" / "old.ipynb")
    doc = run_autograder(autograder)
    assert doc["score"] == 0.0
    assert "2 notebooks (lab.ipynb, scratch/old.ipynb)" in doc["output"] and "submit only" in doc["output"]


def test_several_notebooks_the_named_one_is_graded(tmp_path, rubric, wheel):
    built = build_autograder(rubric, tmp_path / "a.zip", mode="static", wheel=wheel, notebook="Lab.ipynb")
    root = unpack(built.path, tmp_path / "root")
    write(answer_notebook("It is 41."), root / "submission" / "draft.ipynb")
    write(answer_notebook(), root / "submission" / "hw" / "lab.ipynb")
    write(answer_notebook("41"), root / "submission" / ".ipynb_checkpoints" / "lab.ipynb")
    assert run_autograder(root)["score"] == 2.0


def test_find_notebook_names_what_was_found_when_the_named_one_is_missing(tmp_path):
    write(answer_notebook(), tmp_path / "other.ipynb")
    found, why = find_notebook(tmp_path, "lab.ipynb")
    assert found is None and "No notebook named lab.ipynb" in why and "other.ipynb" in why


def test_a_grader_error_is_written_into_results_json(autograder):
    # A rubric that no longer loads makes the grader itself fail on every submission.
    (autograder / "source" / "rubric" / "rubric.yaml").write_text("name: [unclosed\n")
    write(answer_notebook(), autograder / "submission" / "lab.ipynb")
    doc = run_autograder(autograder)
    assert doc["score"] == 0.0 and doc["output"].startswith("The grader failed on this submission (")
    assert "not your notebook's fault" in doc["output"]


def test_python_dying_before_it_writes_still_leaves_results_json(tmp_path, autograder):
    # What Python printed last (quotes, backslashes, tabs included) reaches the output as valid JSON.
    stub = tmp_path / "python"
    stub.write_text("#!/bin/sh\nprintf 'Traceback: \"quoted\" C:\\\\path\\ttab\\n' >&2\nexit 3\n")
    stub.chmod(0o755)
    write(answer_notebook(), autograder / "submission" / "lab.ipynb")
    doc = run_autograder(autograder, python=str(stub))
    assert doc["score"] == 0.0 and "The grader crashed (exit status 3)" in doc["output"]
    assert 'Traceback: "quoted" C:\\path tab' in doc["output"]


def test_a_run_stopped_from_outside_leaves_the_placeholder_that_says_why(tmp_path, autograder):
    # As Gradescope's time limit would: the whole run_autograder is killed mid-grading.
    stub = tmp_path / "python"
    stub.write_text("#!/bin/sh\nkill -9 $PPID\n")
    stub.chmod(0o755)
    env = {**os.environ, "AUTOGRADER_ROOT": str(autograder), "NN_GRADER_PYTHON": str(stub)}
    subprocess.run([str(autograder / "run_autograder")], env=env, capture_output=True, timeout=60)
    doc = gradescope_oracle(autograder / "results" / "results.json")
    assert doc["score"] == 0.0 and doc["output"].startswith("Grading did not finish")


@pytest.mark.slow
def test_fast_mode_runs_the_notebook_in_a_kernel(tmp_path, rubric, wheel):
    built = build_autograder(rubric, tmp_path / "a.zip", mode="fast", wheel=wheel)
    root = unpack(built.path, tmp_path / "root")
    write(answer_notebook(), root / "submission" / "lab.ipynb")
    doc = run_autograder(root)
    assert doc["score"] == 2.0, doc["output"]
    assert max_points(doc) == RUBRIC_MAX and doc["execution_time"] >= 1
