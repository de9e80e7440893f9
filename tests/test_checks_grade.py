"""The check stage as a whole: points, weights, totals, titles, hints, and no crash on odd evidence."""

import json

from grader.checks import KINDS, grade, score_total
from grader.model.evidence import Evidence, from_json, to_json
from grader.model.results import GradeResult, Status, Student, TaskResult
from tests.rubric_fixtures import lab_evidence, rubric

LAB = """
name: lab
dataset: cifar10
pass_mark: 50%
accuracy_evidence: executed  # the evidence's test accuracy is the kernel's
tasks:
  - id: fc
    model: {before: "Question 2"}
    points: 4
    checks:
      - total_params: 12_523_266
      - test_accuracy: {at_least: 45%, points: 3}
  - id: cnn
    model: {before: "Question 4"}
    weight: 2
    checks:
      - total_params: {at_most: 50_000, hint: "Use fewer filters, or pool earlier."}
      - lacks: BatchNormalization
"""


def test_points_partial_credit_and_weight():
    results = grade(rubric(LAB), lab_evidence())
    fc, cnn = results
    assert (fc.points, fc.max_points) == (4.0, 4.0)
    assert [c.max_points for c in cnn.checks] == [2.0, 2.0]
    assert (cnn.points, cnn.max_points) == (2.0, 4.0)


def test_score_total_and_pass_mark():
    loaded = rubric(LAB)
    assert score_total(loaded, grade(loaded, lab_evidence())) == (6.0, 8.0, True)
    assert score_total(loaded, grade(loaded, Evidence("empty"))) == (0.0, 8.0, False)


def test_hint_is_added_to_a_failure():
    check = grade(rubric(LAB), lab_evidence())[1].checks[0]
    assert check.status is Status.FAILED
    assert check.message.endswith("this task asks for at most 50,000. The largest layer is conv2d_1 (4·4·32·64 + 64 = 32,832). "
                                  "Use fewer filters, or pool earlier.")


def test_title_override():
    loaded = rubric(LAB.replace("- lacks: BatchNormalization", "- lacks: {layer: BatchNormalization, title: 'no BatchNorm yet'}"))
    assert grade(loaded, lab_evidence())[1].checks[1].title == "no BatchNorm yet"


def test_every_check_kind_has_a_default_title():
    assert KINDS, "no check kind is registered"
    for name, kind in KINDS.items():
        assert kind.example, name
        assert kind.title(_example_params(kind)), name


def _example_params(kind):
    import yaml

    (value,) = yaml.safe_load(kind.example.lstrip("- ")).values()
    return kind.prepare(value)


def test_every_documented_example_validates(tmp_path):
    """Each kind's example (also in docs/rubrics.md) is a valid check."""
    lines = ["name: examples", "tasks:", "  - id: other", "    model: {fit: 1}", "    checks: [{total_params: 1}]"]
    for i, kind in enumerate(KINDS.values()):
        lines += [f"  - id: t{i}", "    model: {fit: 1}", "    question: 'Question 1'", "    reference: cifar10_cnn", "    checks:",
                  "      " + kind.example.replace("task: fc", "task: other")]
    path = tmp_path / "examples.yaml"
    path.write_text("\n".join(lines) + "\n")
    from grader.rubric.load import validate_rubric_file

    assert validate_rubric_file(path) == []


def test_a_check_that_breaks_on_odd_evidence_is_not_assessed():
    evidence = lab_evidence()
    evidence.runs[1].architecture.layers = None  # a malformed bundle
    results = grade(rubric(LAB), evidence)
    check = results[1].checks[0]
    assert check.status is Status.NOT_ASSESSED and check.points == 0
    assert check.message.startswith("The grader could not evaluate this check (TypeError:")
    assert results[0].points == 4.0  # the other task is untouched


def test_empty_evidence_gives_a_result_for_every_task():
    results = grade(rubric(LAB), Evidence("nothing.ipynb"))
    assert [r.task_id for r in results] == ["fc", "cnn"]
    assert all(r.checks for r in results) and all(c.status is Status.NOT_ASSESSED for r in results for c in r.checks)
    assert results[0].selector_message.startswith("No markdown cell matches 'Question 2'.")


def test_results_round_trip_through_json():
    results = grade(rubric(LAB), lab_evidence())
    result = GradeResult(Student("alice"), "alice.ipynb", tasks=results)
    again = GradeResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.tasks == results


def test_evidence_round_trip_grades_the_same():
    evidence = lab_evidence()
    restored = from_json(Evidence, json.loads(json.dumps(to_json(evidence))))
    assert grade(rubric(LAB), restored) == grade(rubric(LAB), evidence)


def test_task_results_are_typed():
    loaded = rubric(LAB)
    results = grade(loaded, lab_evidence())
    # one result per task, in rubric order (an empty list would pass an all() over it)
    assert [r.task_id for r in results] == [t.id for t in loaded.tasks] and len(results) == 2
    assert all(isinstance(r, TaskResult) and r.checks for r in results)
    assert all(isinstance(c.status, Status) and isinstance(c.points, float) for r in results for c in r.checks)
