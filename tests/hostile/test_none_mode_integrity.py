"""What ``--sandbox none`` still guarantees (issue 14): a kernel running as the grader's own user
may write anywhere in the output folder, but what it changed is found and undone before any
report or export (grader.store.seal), and nothing it started is left running when the batch ends.

Real kernels with tiny notebooks (no Keras), graded with ``grade_batch`` as ``grade run`` does.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import psutil
import pytest

from grader.batch.local import grade_batch
from grader.config import GradingOptions
from grader.report.exports import export_gradebook
from grader.model.results import GradeResult, Student
from grader.rubric.load import load_rubric_text
from grader.store.result_store import ResultStore
from grader.collect import Submission
from tests.nbfactory import code, md, notebook, write

# Two batches of real kernels, each graded twice: 5-7 s here, so not marked slow.

RUBRIC = """
name: none-mode-integrity
title: "None-mode integrity"
tasks:
  - id: q1
    question: "Question 1"
    points: 2
    checks:
      - answer: {variable: answer, equals: 42}
"""
HONEST = [code("answer = 42")]


def _vandal(out: Path) -> list:
    """Waits for alice's result, then rewrites it at 0 points, rewrites every stored execution,
    and plants a student who was never submitted at 26/26."""
    fake = GradeResult(student=Student("zz_fake", name="Fake Student"), path="fake.ipynb", score=26.0, max_score=26.0,
                       assignment="None-mode integrity", grader_version="0")
    source = f"""
import json, os, pathlib, time
out = pathlib.Path({str(out)!r})
target = out / 'alice' / 'result.json'
for _ in range(1000):
    if target.is_file():
        break
    time.sleep(0.05)
data = json.loads(target.read_text())
data['score'] = 0.0
for task in data.get('tasks', []):
    task['score'] = 0.0
target.write_text(json.dumps(data))
for evidence in (out / '.store').glob('*/evidence.json'):
    evidence.write_text(evidence.read_text().replace('42', '41'))
(out / 'zz_fake').mkdir(exist_ok=True)
(out / 'zz_fake' / 'result.json').write_text({json.dumps(fake.to_json())!r})
answer = 42
"""
    return [code(source)]


def _daemon(pid_file: Path, victim: Path) -> list:
    """Leaves a process that left the kernel's tree (double fork, setsid) and would empty a file later."""
    source = f"""
import os, time
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    with open({str(pid_file)!r} + '.tmp', 'w') as f:
        f.write(str(os.getpid()))
    os.rename({str(pid_file)!r} + '.tmp', {str(pid_file)!r})
    time.sleep(120)
    open({str(victim)!r}, 'w').close()
    os._exit(0)
os.waitpid(first, 0)
for _ in range(200):
    if os.path.exists({str(pid_file)!r}):
        break
    time.sleep(0.05)
answer = 42
"""
    return [code(source)]


def _options() -> GradingOptions:
    return GradingOptions(preflight=False, verify=False, cell_timeout=30, notebook_timeout=120, sandbox="none")


def _write(root: Path, notebooks: dict[str, list]) -> list[Submission]:
    return [Submission(write(notebook(md("## Question 1"), *cells), root / "in" / f"{name}.ipynb"), Student(name))
            for name, cells in notebooks.items()]


def _grade(submissions: list[Submission], out: Path) -> dict[str, GradeResult]:
    # Two at once: the vandal waits in its cell for alice's result, which must not wait for it.
    results = grade_batch(submissions, load_rubric_text(RUBRIC), out, options=_options(), workers=2)
    return {r.student.key: r for r in results}


def _exported(results: list[GradeResult], folder: Path) -> dict[str, dict[str, str]]:
    """The csv gradebook of ``results``, by student."""
    path = export_gradebook(results, "csv", folder, assignment_title="None-mode integrity")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _tamper_notes(result: GradeResult) -> list[str]:
    return [p.message for p in result.problems if "tampered with during grading" in p.message]


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacked")
    out = root / "out"
    pid_file = root / "daemon.pid"
    victim = root / "victim.txt"
    victim.write_text("keep me")
    submissions = _write(root, {"alice": HONEST, "mallory": _vandal(out), "dmitri": _daemon(pid_file, victim)})
    first = _grade(submissions, out)
    daemon = int(pid_file.read_text())
    stored_after_first = {r.student.key: r for r in ResultStore(out).load_results()}
    second = _grade(submissions, out)  # the resume: nothing changed in the submissions
    return {"out": out, "first": first, "second": second, "daemon": daemon, "victim": victim,
            "stored_after_first": stored_after_first}


def test_a_rewritten_classmate_result_is_put_back_and_told(attacked):
    alice = attacked["first"]["alice"]
    assert alice.score == 2.0
    assert _tamper_notes(alice), alice.problems  # the overview's row says it
    stored = attacked["stored_after_first"]["alice"]
    assert stored.score == 2.0 and _tamper_notes(stored)  # what `grade export` reads later
    exported = _exported(list(attacked["stored_after_first"].values()), attacked["out"] / "exports")
    assert exported["alice"]["score"] == "2", exported["alice"]


def test_a_planted_student_is_not_a_result(attacked):
    out = attacked["out"]
    assert "zz_fake" not in attacked["first"] and "zz_fake" not in attacked["stored_after_first"]
    assert not (out / "zz_fake" / "result.json").exists()
    assert (out / "zz_fake" / "result.json.refused").is_file()  # kept for the instructor to look at
    log = (out / "tampering.log").read_text()
    assert "zz_fake/result.json" in log and "alice/result.json" in log
    exported = _exported(list(attacked["stored_after_first"].values()), out / "exports-planted")
    assert set(exported) == {"alice", "mallory", "dmitri"}


def test_tampered_stored_executions_do_not_reach_the_resume(attacked):
    # The vandal rewrote alice's stored evidence (42 -> 41) after the grader used it: the entry
    # was removed at the end of the first run, so the resume executed alice again.
    alice = attacked["second"]["alice"]
    assert alice.score == 2.0 and not alice.evidence_reused
    assert attacked["second"]["mallory"].evidence_reused  # its own entry was sealed and unchanged
    assert not (attacked["out"] / "zz_fake" / "result.json").exists()


def test_no_process_of_the_batch_is_left_running(attacked):
    pid = attacked["daemon"]
    alive = psutil.pid_exists(pid)
    if alive:
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
    assert not alive
    assert attacked["victim"].read_text() == "keep me"


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest")
    out = root / "out"
    submissions = _write(root, {"alice": HONEST, "bob": HONEST})
    handler = _Capture()
    logging.getLogger("grader.store.seal").addHandler(handler)
    try:
        first = _grade(submissions, out)
        second = _grade(submissions, out)
    finally:
        logging.getLogger("grader.store.seal").removeHandler(handler)
    return {"out": out, "first": first, "second": second, "warnings": handler.messages}


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_an_honest_batch_reports_no_tampering(honest):
    assert honest["warnings"] == []
    for result in honest["first"].values():
        assert result.score == 2.0 and not _tamper_notes(result)
    assert not list(honest["out"].glob("*/*.refused")) and not (honest["out"] / "tampering.log").exists()


def test_a_resumed_honest_batch_accepts_its_stored_results(honest):
    for key, result in honest["second"].items():
        assert result.evidence_reused, key  # verified against the start manifest, not executed again
        assert result.score == 2.0 and not _tamper_notes(result)
    assert {r.student.key for r in ResultStore(honest["out"]).load_results()} == {"alice", "bob"}


def test_the_class_overview_names_a_planted_result(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    out = tmp_path / "out"
    _write(tmp_path, {"alice": HONEST, "mallory": _vandal(out)})
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--rubric", str(rubric), "--out", str(out),
                                       "--sandbox", "none", "-j", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    overview = (out / "index.html").read_text()
    assert "zz_fake" in overview and "the grader did not write it" in overview
    assert "Fake Student" not in overview  # the planted result itself is not shown as a student
