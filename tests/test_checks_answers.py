"""Answers, manual items with human scores from a CSV, code patterns and integrity findings."""

import copy

import pytest

from grader.checks import apply_manual_scores, grade, load_manual_scores, write_manual_template
from grader.checks.answers import numbers_in
from grader.errors import UsageError
from grader.model.evidence import CellRef, Evidence, Finding, Level, Variable
from grader.model.results import Status
from tests.rubric_fixtures import cells, lab_evidence, rubric

LESSON = cells(
    ("md", "# Lesson 07"),                                                                  # 0
    ("md", "Question 3: For an input image of 28x28, what is the shape after a 5x5 conv?\n"
           "1. `24x28` 2. `20x28` 3. `26x26` 4. `24x24`"),                                # 1
    ("md", "The feature map is 24 × 24."),                                                # 2
    ("md", "Question 4: How many parameters do the Conv2D and the Dense layer have?"),     # 3
    ("md", "Conv2D: 3·3·1·16 + 16 = 160 parameters. Dense: 784·16 + 16 = 12,560."),        # 4
    ("code", "conv_params = 160\ndense_params = 12560\nshape = '24x24'"),                  # 5
    ("md", "Question 5: Why is CIFAR-10 harder than MNIST?"),                              # 6
    ("code", "print('no answer here')"),                                                   # 7
)


def lesson(**overrides):
    evidence = Evidence("s", cells=copy.deepcopy(LESSON), variables=[Variable("conv_params", 160, "int"),
                                                            Variable("shape", "24x24", "str"),
                                                            Variable("ratio", 0.6234, "float")])
    for key, value in overrides.items():
        setattr(evidence, key, value)
    return evidence


def answer(checks: str, evidence=None, *, question: str | None = None):
    head = "name: lesson\ntasks:\n  - id: q\n"
    if question:
        head += f"    question: '{question}'\n"
    return grade(rubric(head + "    checks:\n" + "\n".join("      " + line for line in checks.strip().splitlines()) + "\n"),
                 evidence or lesson())[0]


def test_markdown_answer_matches_a_pattern():
    result = answer(r"- answer: {pattern: '24\s*[x×]\s*24'}", question="Question 3").checks[0]
    assert result.status is Status.PASSED and result.level is Level.REPORTED
    assert result.message == "Your answer ('The feature map is 24 × 24.') is right."


def test_choices_in_the_question_do_not_count_as_the_answer():
    evidence = lesson()
    evidence.cells[2].source = "26x26"
    result = answer(r"- answer: {pattern: '24\s*x\s*24'}", evidence, question="Question 3").checks[0]
    assert result.status is Status.FAILED and result.message == "Your answer ('26x26') is not what this question expects."


def test_markdown_answer_contains_numbers_with_thousands_separators():
    task = answer("- answer: {number: 160}\n- answer: {number: 12560}\n- answer: {number: 1256}", question="Question 4")
    assert [c.status for c in task.checks] == [Status.PASSED, Status.PASSED, Status.FAILED]


def test_missing_written_answer_says_where_it_was_looked_for():
    result = answer("- answer: {pattern: 'colou?r'}", question="Question 5").checks[0]
    assert result.status is Status.FAILED
    assert result.message == ("No answer found after cell 7 ('Question 5: Why is CIFAR-10 harder than MNIST?'): write it in a "
                              "markdown cell right after the question.")


def test_question_cell_deleted_is_not_assessed():
    result = answer("- answer: {pattern: x}", question="Question 9").checks[0]
    assert result.status is Status.NOT_ASSESSED and result.message.startswith("No markdown cell matches 'Question 9'.")


def test_check_level_question_overrides_the_task():
    task = answer("- answer: {question: 'Question 3', pattern: '24'}\n- answer: {question: 'Question 4', number: 160}")
    assert [c.status for c in task.checks] == [Status.PASSED, Status.PASSED]


def test_variable_equals_a_number():
    result = answer("- answer: {variable: conv_params, equals: 160}").checks[0]
    assert result.status is Status.PASSED and result.level is Level.EXECUTED and result.message == "conv_params = 160 is right."


def test_variable_with_a_wrong_value_does_not_reveal_the_answer():
    result = answer("- answer: {variable: conv_params, equals: 320}").checks[0]
    assert result.status is Status.FAILED and result.message == "conv_params = 160 is not what this question expects."
    assert "320" not in result.message and "320" not in result.title


def test_variable_text_compared_loosely():
    assert answer("- answer: {variable: shape, equals: '24 X 24'}").checks[0].status is Status.FAILED  # spacing inside matters
    assert answer("- answer: {variable: shape, equals: '24X24'}").checks[0].status is Status.PASSED
    assert answer("- answer: {variable: shape, one_of: ['(24, 24)', 24x24]}").checks[0].status is Status.PASSED


def test_variable_number_with_tolerance():
    assert answer("- answer: {variable: ratio, equals: 0.62, tolerance: 0.01}").checks[0].status is Status.PASSED
    assert answer("- answer: {variable: ratio, equals: 0.62}").checks[0].status is Status.FAILED


def test_number_written_as_text_equals_the_number():
    evidence = lesson(variables=[Variable("conv_params", "160", "str")])
    assert answer("- answer: {variable: conv_params, equals: 160}", evidence).checks[0].status is Status.PASSED
    evidence = lesson(variables=[Variable("conv_params", "about 160", "str")])
    assert answer("- answer: {variable: conv_params, equals: 160}", evidence).checks[0].status is Status.FAILED


def test_missing_variable_fails_with_what_to_do():
    result = answer("- answer: {variable: dense_params, equals: 12560}").checks[0]
    assert result.status is Status.FAILED
    assert result.message == "There is no variable dense_params at the end of the run: assign your answer to dense_params in a code cell."


def test_variable_in_static_mode_is_not_assessed():
    result = answer("- answer: {variable: dense_params, equals: 12560}", lesson(mode="static", variables=[])).checks[0]
    assert result.status is Status.NOT_ASSESSED


def test_answer_tag():
    evidence = lesson()
    evidence.cells[4].tags = ["q4-answer"]
    head = "name: l\ntasks:\n  - id: q\n    answer_tag: q4-answer\n    checks:\n      - answer: {number: 12560}\n"
    assert grade(rubric(head), evidence)[0].checks[0].status is Status.PASSED


def test_numbers_in_text():
    assert numbers_in("12,560 params, 3·3·1·16 + 16 = 160; lr 1e-4; 0.62") == [12560, 3, 3, 1, 16, 16, 160, 1e-4, 0.62]


# -- manual items


MANUAL = """
name: lab
tasks:
  - id: why
    title: "Why is CIFAR-10 harder than MNIST?"
    question: "Question 3"
    checks:
      - manual: {guidance: "colour, variability, similar classes", points: 2}
  - id: fc
    model: {fit: 1}
    checks: [{total_params: 12523266}]
"""


def test_manual_item_waits_for_a_human_with_the_answer_shown():
    task = grade(rubric(MANUAL), lab_evidence())[0]
    assert task.manual is True and task.answer == "Colour images, much more variability within each class."
    check = task.checks[0]
    assert check.status is Status.MANUAL and check.points == 0 and check.max_points == 2
    assert check.details["guidance"] == "colour, variability, similar classes"


def test_manual_items_do_not_fail_the_self_check():
    from grader.model.results import GradeResult, Student

    result = GradeResult(Student("alice"), "alice.ipynb", tasks=grade(rubric(MANUAL), lab_evidence()))
    assert result.all_automatic_passed


def write_scores(tmp_path, text):
    path = tmp_path / "scores.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_human_scores_merge_from_a_csv(tmp_path):
    scores = load_manual_scores(write_scores(tmp_path, "student,task,score,comment\nalice,why,1.5,Names colour only.\nbob,why,,\n"))
    assert list(scores) == [("alice", "why")]
    tasks = grade(rubric(MANUAL), lab_evidence())
    assert apply_manual_scores(tasks, scores, "alice") == []
    why = tasks[0]
    assert (why.human_score, why.human_comment, why.points) == (1.5, "Names colour only.", 1.5)
    assert why.checks[0].points == 1.5 and why.checks[0].status is Status.MANUAL
    assert why.checks[0].message == "Graded by hand: Names colour only."


def test_grade_merges_scores_when_given(tmp_path):
    scores = load_manual_scores(write_scores(tmp_path, "Student;Task;Score\nalice;why;2\n"))
    tasks = grade(rubric(MANUAL), lab_evidence(), manual_scores=scores, student_key="alice")
    assert tasks[0].points == 2


def test_scores_above_the_maximum_or_for_automatic_tasks_are_refused(tmp_path):
    scores = load_manual_scores(write_scores(tmp_path, "student,task,score\nalice,why,5\nalice,fc,1\nalice,nope,1\n"))
    tasks = grade(rubric(MANUAL), lab_evidence())
    warnings = apply_manual_scores(tasks, scores, "alice")
    assert warnings == ["line 2: alice / why: score 5 is above the 2 points of its manual checks; not used",
                        "line 3: task 'fc' is graded automatically; the score for alice was not used",
                        "line 4: the rubric has no task 'nope'; the score for alice was not used"]
    assert tasks[0].human_score is None and tasks[0].points == 0


def test_scores_file_errors_name_file_and_line(tmp_path):
    with pytest.raises(UsageError, match=r"scores.csv:1: missing column\(s\) score"):
        load_manual_scores(write_scores(tmp_path, "student,task,points\n"))
    with pytest.raises(UsageError, match=r"scores.csv:3: score 'two' for bob / why is not a number"):
        load_manual_scores(write_scores(tmp_path, "student,task,score\nalice,why,1\nbob,why,two\n"))
    with pytest.raises(UsageError, match=r"scores.csv:3: a second score for alice / why \(the first is on line 2\)"):
        load_manual_scores(write_scores(tmp_path, "student,task,score\nalice,why,1\nalice,why,2\n"))
    with pytest.raises(UsageError, match="no such scores file"):
        load_manual_scores(tmp_path / "missing.csv")


def test_decimal_comma_and_bom_from_spreadsheets(tmp_path):
    scores = load_manual_scores(write_scores(tmp_path, "\ufeffstudent;task;score\nalice;why;1,5\n"))
    assert scores[("alice", "why")].score == 1.5


def test_template_lists_manual_items_and_reads_back(tmp_path):
    tasks = grade(rubric(MANUAL), lab_evidence())
    path = tmp_path / "to-grade.csv"
    assert write_manual_template(path, [("alice", tasks), ("bob", tasks)]) == 2
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "student,task,score,comment,title,max_points,answer"
    assert "alice,why,,,Why is CIFAR-10 harder than MNIST?,2,\"Colour images" in text or "alice,why,,,Why is CIFAR-10 harder than MNIST?,2,Colour images" in text
    filled = text.replace("alice,why,,", "alice,why,2,")
    path.write_text(filled, encoding="utf-8")
    assert load_manual_scores(path)[("alice", "why")].score == 2


# -- code patterns and findings


def test_code_pattern_present():
    evidence = lab_evidence()
    result = grade(rubric("name: c\ntasks:\n  - id: t\n    checks:\n      - code: 'CreateCNNModel\\(dropout=True\\)'\n"), evidence)[0].checks[0]
    assert result.status is Status.PASSED and result.message == "Found in cell 14: model = CreateCNNModel(dropout=True)"


def test_code_pattern_that_must_be_absent():
    evidence = Evidence("s", cells=cells(
        ("code", "train_datagen = ImageDataGenerator(rescale=1./255, rotation_range=40)"),
        ("code", "test_datagen = ImageDataGenerator(rescale=1./255, horizontal_flip=True)")))
    text = ("name: c\ntasks:\n  - id: t\n    checks:\n      - code: {pattern: 'test_datagen\\s*=\\s*ImageDataGenerator\\([^)]*"
            "(rotation|shift|shear|zoom|flip)', present: false, title: no augmentation of test data}\n")
    result = grade(rubric(text), evidence)[0].checks[0]
    assert result.status is Status.FAILED and result.title == "no augmentation of test data"
    assert result.message == ("Cell 2 does what this task asks you not to do: "
                              "test_datagen = ImageDataGenerator(rescale=1./255, horizontal_flip=True)")
    evidence.cells[1].source = "test_datagen = ImageDataGenerator(rescale=1./255)"
    assert grade(rubric(text), evidence)[0].checks[0].status is Status.PASSED


def test_code_pattern_in_a_section():
    text = "name: c\ntasks:\n  - id: t\n    checks:\n      - code: {pattern: 'build_fc', section: CNN}\n"
    evidence = lab_evidence()
    evidence.cells[3].source = "model = build_fc()"
    assert grade(rubric(text), evidence)[0].checks[0].status is Status.FAILED
    assert grade(rubric(text.replace("CNN", "Fully")), evidence)[0].checks[0].status is Status.PASSED


def test_no_finding_of_training_on_the_test_set():
    text = "name: c\ntasks:\n  - id: t\n    checks:\n      - no_finding: trained_on_test\n"
    assert grade(rubric(text), lab_evidence())[0].checks[0].status is Status.PASSED
    evidence = lab_evidence(findings=[Finding("trained_on_test", "the training data contains 10,000 test images", CellRef(9))])
    result = grade(rubric(text), evidence)[0].checks[0]
    assert result.status is Status.FAILED and result.message == "the training data contains 10,000 test images (cell 10)"


def test_manual_check_with_its_own_question_shows_the_answer():
    text = "name: l\ntasks:\n  - id: t\n    checks:\n      - manual: {guidance: g, question: 'Question 3'}\n"
    task = grade(rubric(text), lab_evidence())[0]
    assert task.manual and task.answer == "Colour images, much more variability within each class."
