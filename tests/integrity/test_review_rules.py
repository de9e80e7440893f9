"""The rules that turn a check into "needs review", and a person's decision on it (no kernel)."""

from __future__ import annotations

from click.testing import CliRunner

from grader.checks import grade
from grader.cli import main
from grader.model.evidence import Finding, Level
from grader.store.manual import ScoreStore, decide_review, merge_human_scores, pending_reviews, review_items
from grader.model.results import STATUS_ICONS, STATUS_TITLES, GradeResult, Status, Student
from tests.rubric_fixtures import lab_evidence, one_task, rubric, verified

ACCURACY = "- test_accuracy: 62%"


def _check(checks: str, evidence):
    return grade(one_task(checks), evidence)[0].checks[0]


def test_every_status_has_a_title_and_an_icon():
    assert set(STATUS_TITLES) == set(Status) == set(STATUS_ICONS)
    assert Status.NEEDS_REVIEW.title == "needs review"


def test_a_verified_accuracy_earns_its_points_by_default():
    result = _check(ACCURACY, lab_evidence(verifications=[verified("m1", 0.7)]))
    assert result.status is Status.PASSED and result.level is Level.VERIFIED and result.points == 1


def test_a_finding_about_the_model_puts_a_passed_accuracy_under_review():
    evidence = lab_evidence(verifications=[verified("m1", 0.7)])
    evidence.findings.append(Finding("trained_on_test", "fit #2 trained on the test set", model_id="m1", severity="warning"))
    result = _check(ACCURACY, evidence)
    assert result.status is Status.NEEDS_REVIEW and result.points == 0
    assert result.details["needs_review"] == "trained_on_test" and result.details["verdict"] == "passed"
    assert result.message.endswith("Needs review: Fit #2 trained on the test set.")


def test_a_finding_about_another_model_changes_nothing():
    evidence = lab_evidence(verifications=[verified("m1", 0.7)])
    evidence.findings.append(Finding("trained_on_test", "fit #1 trained on the test set", model_id="m0", severity="warning"))
    assert _check(ACCURACY, evidence).status is Status.PASSED


def test_a_finding_concerns_only_the_checks_it_puts_in_doubt():
    evidence = lab_evidence(verifications=[verified("m1", 0.7)])
    evidence.findings.append(Finding("trained_on_test", "trained on the test set", model_id="m1", severity="warning"))
    assert _check("- optimizer: SGD", evidence).status is Status.PASSED  # the compile settings are what they are


def test_tampering_puts_every_passed_automatic_check_under_review():
    evidence = lab_evidence(verifications=[verified("m1", 0.7)])
    evidence.findings.append(Finding("tampered", "the grader's log holds records its recorder did not write", severity="error"))
    assert _check("- optimizer: SGD", evidence).status is Status.NEEDS_REVIEW


def test_an_informational_finding_is_not_a_doubt():
    evidence = lab_evidence(verifications=[verified("m1", 0.7)])
    evidence.findings.append(Finding("history", "noted", model_id="m1", severity="info"))
    assert _check(ACCURACY, evidence).status is Status.PASSED


def test_a_failed_check_stays_failed_whatever_the_finding():
    evidence = lab_evidence(verifications=[verified("m1", 0.5)])
    evidence.findings.append(Finding("trained_on_test", "trained on the test set", model_id="m1", severity="warning"))
    assert _check(ACCURACY, evidence).status is Status.FAILED


def test_the_epochs_check_and_a_cleared_history_agree():
    evidence = lab_evidence()
    target = evidence.runs[1]
    target.fit.epochs, target.fit.epochs_run = 12, 12
    target.history = {k: v[:3] for k, v in target.history.items()}  # logs.clear() left three epochs
    result = _check("- epochs: {at_most: 5}", evidence)
    assert result.status is Status.FAILED and result.figure == 12


def test_a_compare_on_accuracy_is_held_to_the_accuracy_evidence_too():
    text = """
    name: lab
    tasks:
      - id: fc
        model: {before: "Question 2"}
        checks: [{total_params: 12523266}]
      - id: cnn
        model: {before: "Question 4"}
        checks:
          - compare: {task: fc, accuracy: higher}
    """
    assert grade(rubric(text), lab_evidence())[1].checks[0].status is Status.NEEDS_REVIEW
    assert grade(rubric(text.replace("accuracy: higher}", "params: fewer}")), lab_evidence())[1].checks[0].status is Status.PASSED


# -- a person's decision


def _graded(tmp_path) -> list[GradeResult]:
    tasks = grade(one_task(ACCURACY), lab_evidence())
    result = GradeResult(Student("alice"), "alice.ipynb", tasks=tasks, max_score=1.0)
    result.score = sum(t.points for t in tasks)
    return [result]


def test_accepting_a_review_gives_the_points_and_survives_a_second_merge(tmp_path):
    results = _graded(tmp_path)
    assert [item.check_id for item in review_items(results[0].tasks[0])] == ["review-test_accuracy"]
    assert len(pending_reviews(results)) == 1
    decide_review(tmp_path, results, "alice", "t", comment="ran it myself")
    scores = ScoreStore(tmp_path).load()
    for _ in range(2):  # merging is idempotent
        merge_human_scores(results, scores)
    check = results[0].tasks[0].checks[0]
    assert check.status is Status.PASSED and check.points == 1 and results[0].score == 1
    assert check.message.startswith("Reviewed by hand (accepted): ran it myself. Test accuracy 63.1%")
    assert not pending_reviews(results)


def test_rejecting_a_review_gives_nothing(tmp_path):
    results = _graded(tmp_path)
    decide_review(tmp_path, results, "alice", "t", "test_accuracy", accept=False)
    merge_human_scores(results, ScoreStore(tmp_path).load())
    assert results[0].tasks[0].checks[0].status is Status.FAILED and results[0].score == 0


def test_a_decision_on_other_evidence_does_not_carry_over(tmp_path):
    results = _graded(tmp_path)
    decide_review(tmp_path, results, "alice", "t")
    again = _graded(tmp_path)
    again[0].tasks[0].checks[0].details["review_message"] = "Test accuracy 99% (executed ...). Needs review: ..."
    merge_human_scores(again, ScoreStore(tmp_path).load())
    check = again[0].tasks[0].checks[0]
    assert check.status is Status.NEEDS_REVIEW and check.points == 0 and "review again" in check.details["human_score_stale"]


def test_the_cli_lists_and_accepts_reviews(tmp_path):
    from grader.store.result_store import ResultStore

    ResultStore(tmp_path).save_result(_graded(tmp_path)[0])
    runner = CliRunner()
    listed = runner.invoke(main, ["manual", "reviews", str(tmp_path)])
    assert listed.exit_code == 0 and "alice  t  review-test_accuracy" in listed.output, listed.output
    unknown = runner.invoke(main, ["manual", "accept", str(tmp_path), "bob", "t"])
    assert unknown.exit_code == 2 and "no graded result for student 'bob'" in unknown.output
    accepted = runner.invoke(main, ["manual", "accept", str(tmp_path), "alice", "t"])
    assert accepted.exit_code == 0 and "1 of 1 point(s) (accepted)" in accepted.output
    assert "0 check(s) need review" in runner.invoke(main, ["manual", "reviews", str(tmp_path)]).output


def test_the_review_app_lists_a_check_under_review_beside_the_manual_items(tmp_path):
    from grader.review.app import ReviewIndex
    from grader.store.result_store import ResultStore

    ResultStore(tmp_path).save_result(_graded(tmp_path)[0])
    index = ReviewIndex(tmp_path)
    (question,) = [q for q in index.questions.values() if q.check_id == "review-test_accuracy"]
    assert question.students == ["alice"] and "review test accuracy" in question.title
    index.save("alice", question, 1.0, "checked", "ta1")
    merged = index.merged_result("alice")
    assert merged.tasks[0].checks[0].status is Status.PASSED and merged.score == 1


# -- the notebook's own evaluation against the grader's measurement (grader.pipeline.compare)


def _compared(claims, measured, *, samples=10_000, measured_on=10_000, different_data=False, eval_cells=None):
    from grader.model.evidence import CellRef, Evaluation, Evidence, Verification
    from grader.pipeline.compare import compare_with_measurement as _compare
    from tests.rubric_fixtures import cifar_cnn, run

    last = run(1, 9, cifar_cnn(), model_id="m1")
    evidence = Evidence("x.ipynb", runs=[run(0, 5, cifar_cnn(), model_id="m1"), last])
    cells = eval_cells or [10] * len(claims)
    evidence.evaluations = [Evaluation(i, "m1", CellRef(c), samples, {"accuracy": a})
                            for i, (a, c) in enumerate(zip(claims, cells))]
    verification = verified("m1", measured)
    verification.samples = measured_on
    _compare(evidence, last, verification, different_data=different_data)
    return [f for f in evidence.findings if f.kind in ("mismatch", "printed")]


def test_the_same_figure_twice_is_no_finding():
    assert _compared([0.61], 0.61) == []


def test_a_saved_model_better_than_the_one_evaluated_is_a_mismatch_that_counts():
    (finding,) = _compared([0.55], 0.70)
    assert finding.kind == "mismatch" and finding.integrity and finding.model_id == "m1"


def test_a_printed_figure_above_the_measured_one_is_told_but_reviews_nothing():
    from grader.checks.review import AFFECTED

    (finding,) = _compared([0.80], 0.60)
    assert finding.kind == "printed" and "printed" not in AFFECTED  # the grader's own figure is the one used


def test_an_evaluation_before_the_models_last_fit_measured_an_earlier_state():
    # honest: evaluate after fit 1 (cell 6), train on (fit 2, cell 9), the saved model is better
    assert _compared([0.50, 0.61], 0.61, eval_cells=[6, 10]) == []


def test_a_hidden_test_set_is_compared_within_sampling_noise():
    assert _compared([0.60], 0.57, measured_on=2_000, different_data=True) == []
    assert _compared([0.60], 0.57, measured_on=2_000) == []  # other sizes: other images
    assert [f.kind for f in _compared([0.60], 0.75, measured_on=2_000, different_data=True)] == ["mismatch"]
