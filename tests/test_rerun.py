"""Running the same command again keeps what the first run recorded: the execution's run time
(result.json, Gradescope, JUnit), its lines in grading.log, and the human scores, which go only
when the manual item they were given for changes.

Through the command line (Click's runner), as an instructor would run it: one tiny notebook, one
kernel start for the first run; the re-runs re-check the stored evidence without a kernel.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from grader.cli import main
from grader.store.layout import SCORES_FILE
from tests.nbfactory import code, md, notebook, write

# The notebook sleeps, so its execution takes seconds; re-checking it takes a fraction of one.
SLEEP_S = 2.0


def _rubric(path: Path, *, expected: int = 42, manual_points: int = 2,
            guidance: str = "colour, variability, similar classes") -> Path:
    path.write_text(textwrap.dedent(f"""\
        name: tiny
        title: Tiny lab
        tasks:
          - id: q1
            title: the answer
            checks:
              - answer: {{variable: answer, equals: {expected}}}
          - id: why
            title: Why is CIFAR-10 harder than MNIST?
            question: "Question 2"
            checks:
              - manual: {{guidance: "{guidance}", points: {manual_points}}}
        """))
    return path


def _submissions(folder: Path) -> Path:
    write(notebook(md("# Question 1"), code(f"import time\ntime.sleep({SLEEP_S})\nanswer = 42"),
                   md("# Question 2"), md("Colour images, and much more variability within each class.")),
          folder / "alice.ipynb")
    return folder


def _grade(subs: Path, rubric: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(main, ["run", str(subs), "--rubric", str(rubric), "--out", str(out), "--quiet",
                                       "--sandbox", "none", "--no-verify", "--workers", "1", *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)


def _outputs(out: Path) -> dict:
    """The run time as each output says it."""
    saved = json.loads((out / "alice" / "result.json").read_text())
    (gradescope,) = out.glob("exports/**/results.json")
    suites = [s for s in ET.parse(out / "junit.xml").getroot().iter("testsuite") if s.get("name", "").endswith("alice")]
    return {"result.json": saved["duration_s"], "executed_at": saved["executed_at"],
            "gradescope": json.loads(gradescope.read_text())["execution_time"], "junit": suites[0].get("time")}


def test_rerun_and_rubric_change_keep_the_executions_run_time_and_log(tmp_path):
    subs, out = _submissions(tmp_path / "subs"), tmp_path / "out"
    rubric = _rubric(tmp_path / "rubric.yaml")
    outputs = ("--export", "gradescope", "--junit", str(out / "junit.xml"))
    _grade(subs, rubric, out, *outputs)
    first = _outputs(out)
    first_log = (out / "alice" / "grading.log").read_text()
    assert first["result.json"] >= SLEEP_S and first["gradescope"] >= SLEEP_S and first["executed_at"]
    assert "executed" in first_log.splitlines()[0] and "evidence: executed now" in first_log

    _grade(subs, rubric, out, *outputs)  # the same command again: everything is stored
    assert _outputs(out) == first
    log = (out / "alice" / "grading.log").read_text()
    assert log.startswith(first_log)  # the execution's lines, stages and total included, as they were
    second = log[len(first_log):]
    assert "re-checked from the stored execution" in second.splitlines()[1]  # after one blank line
    assert f"run time: {first['result.json']:.2f} s, kept from the execution of {first['executed_at']}" in second
    assert "stages of this re-check (seconds):" in second and "\n  execute " not in second

    _grade(subs, _rubric(tmp_path / "rubric.yaml", expected=7), out, *outputs)  # re-checked, not executed
    assert _outputs(out) == first
    saved = json.loads((out / "alice" / "result.json").read_text())
    assert saved["evidence_reused"] is True and saved["score"] == 0
    log = (out / "alice" / "grading.log").read_text()
    assert log.startswith(first_log) and sum(line.startswith("==== ") for line in log.splitlines()) == 3  # one entry per run


def test_force_executes_again_and_records_the_new_run_time(tmp_path):
    subs, out = _submissions(tmp_path / "subs"), tmp_path / "out"
    rubric = _rubric(tmp_path / "rubric.yaml")
    _grade(subs, rubric, out)
    first = json.loads((out / "alice" / "result.json").read_text())
    _grade(subs, rubric, out, "--force")
    again = json.loads((out / "alice" / "result.json").read_text())
    assert again["evidence_reused"] is False and again["executed_at"] == again["graded_at"]
    assert again["duration_s"] != first["duration_s"] and again["duration_s"] >= SLEEP_S
    log = (out / "alice" / "grading.log").read_text()
    assert log.count("evidence: executed now") == 2


def _scores_export(out: Path) -> dict[str, str]:
    result = CliRunner().invoke(main, ["export", str(out), "--to", "csv"])
    assert result.exit_code == 0, result.output
    (path,) = (out / "exports").glob("grades*.csv")
    import csv

    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 1
    return rows[0]


def _total(out: Path) -> float:
    row = _scores_export(out)
    column = next(name for name in row if name.lower() in ("score", "total", "points"))
    return float(row[column])


def test_human_scores_survive_reruns_and_go_only_when_their_item_changes(tmp_path):
    subs, out = _submissions(tmp_path / "subs"), tmp_path / "out"
    rubric = _rubric(tmp_path / "rubric.yaml")
    scores = tmp_path / "scores.csv"
    scores.write_text("student,task,score,comment\nalice,why,2,Names colour and variability.\n")
    _grade(subs, rubric, out, "--manual", str(scores))
    assert json.loads((out / "alice" / "result.json").read_text())["score"] == 1  # the machine's part
    assert _total(out) == 3  # 1 automatic + 2 by hand, from the store beside the results
    assert (out / SCORES_FILE).is_file()

    _grade(subs, rubric, out)  # again, without --manual
    assert _total(out) == 3
    _grade(subs, _rubric(tmp_path / "rubric.yaml", expected=7), out)  # an automatic check changes
    assert _total(out) == 2  # the answer check fails now; the human score stays

    _grade(subs, _rubric(tmp_path / "rubric.yaml", expected=7, manual_points=3), out)  # the item's points change
    assert _total(out) == 0
    why = next(t for t in json.loads((out / "alice" / "result.json").read_text())["tasks"] if t["task_id"] == "why")
    assert why["points"] == 0
    _grade(subs, _rubric(tmp_path / "rubric.yaml", expected=7), out)  # back to the item it was given for
    assert _total(out) == 2

    _grade(subs, _rubric(tmp_path / "rubric.yaml", expected=7, guidance="names three reasons"), out)
    assert _total(out) == 0  # the item's guidance (what it asks the marker) changed: marked again


def test_a_log_past_its_size_keeps_the_first_entry_and_the_newest():
    from grader.batch.log import _bounded_log

    entries = [f"==== 2026-12-0{i} · {'executed' if i == 1 else 're-checked'} ====\nline {i}\n" * 1 for i in range(1, 8)]
    earlier = "\n".join(entries[:-1]).encode()
    kept = _bounded_log(earlier + b"\n", entries[-1].encode(), limit=120).decode()
    assert kept.startswith(entries[0]) and kept.endswith(entries[-1])
    assert "bytes of earlier runs' entries were left out" in kept and "line 3" not in kept
    assert _bounded_log(b"", entries[0].encode(), limit=120) == entries[0].encode()
