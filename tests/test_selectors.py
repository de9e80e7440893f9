"""Selectors: which recorded model a task is about (issue 3, item 2). Never a crash; a hint when nothing matches."""

from grader.checks import grade
from grader.checks.cells import find_answer, headings
from grader.checks.selectors import select_model
from grader.rubric.model import ModelSelector
from grader.model.evidence import CellRef, Evidence, Finding, Level, ModelSnapshot
from grader.model.results import Status
from tests.rubric_fixtures import SGD, big_cnn, cells, cifar_cnn, cifar_fc, lab_evidence, one_task, run


def chosen(evidence, **selector):
    selection = select_model(ModelSelector(**selector), evidence)
    assert selection.target is not None, selection.message
    return selection.target


def test_nth_fit():
    assert chosen(lab_evidence(), fit=2).run.index == 1


def test_negative_fit_counts_from_the_end():
    assert chosen(lab_evidence(), fit=-1).run.index == 2
    assert chosen(lab_evidence(), fit=-3).run.index == 0


def test_fit_beyond_the_runs_says_how_many_there_are():
    selection = select_model(ModelSelector(fit=5), lab_evidence())
    assert selection.target is None
    assert selection.message.startswith("Asked for the 5th training run, but there are only 3 training runs. Found 3 trained models: "
                                        "fit 1 in cell 4 under '2. Fully connected model' (12,523,266 params);")


def test_section_picks_the_last_model_under_a_matching_heading():
    assert chosen(lab_evidence(), section=r"\bCNN").run.index == 2


def test_section_with_fit_picks_within_the_section():
    assert chosen(lab_evidence(), section="CNN", fit=1).run.index == 1


def test_section_includes_subsections():
    evidence = Evidence("s", cells=cells(("md", "## 3. CNN classifier"), ("md", "### 3.1 Training"), ("code", "fit"),
                                         ("md", "## 4. Next")),
                        runs=[run(0, 2, cifar_cnn(), heading="3.1 Training")])
    assert chosen(evidence, section=r"3\. CNN classifier").run.index == 0


def test_section_ends_at_the_next_heading_of_its_level():
    evidence = Evidence("s", cells=cells(("md", "## 3. CNN"), ("code", "fit"), ("md", "## 4. FC"), ("code", "fit")),
                        runs=[run(0, 1, cifar_cnn()), run(1, 3, cifar_fc())])
    assert chosen(evidence, section="3. CNN").run.index == 0


def test_section_heading_not_found_lists_headings_and_models():
    selection = select_model(ModelSelector(section="Transfer learning"), lab_evidence())
    assert selection.target is None
    assert selection.message.startswith("No heading matches 'Transfer learning'. Headings in this notebook: 'CIFAR-10 lab', "
                                        "'2. Fully connected model', '4. CNN'. Found 3 trained models:")


def test_section_without_cells_uses_the_recorded_heading():
    evidence = lab_evidence(cells=[])
    assert chosen(evidence, section="Fully connected").run.index == 0


def test_before_picks_the_last_model_trained_before_the_question():
    assert chosen(lab_evidence(), before="Question 4").run.index == 1
    assert chosen(lab_evidence(), before="Question 2").run.index == 0


def test_after_picks_the_first_model_trained_after_the_question():
    assert chosen(lab_evidence(), after="Question 4").run.index == 2


def test_before_ignores_code_cells_that_mention_the_question():
    evidence = lab_evidence()
    evidence.cells[1].source = "# Question 4 helper\nimport keras"
    assert chosen(evidence, before="Question 4").run.index == 1


def test_before_a_question_that_is_missing():
    selection = select_model(ModelSelector(before="Question 9"), lab_evidence())
    assert selection.target is None and selection.message.startswith("No markdown cell matches 'Question 9'.")


def test_before_the_first_question_with_no_model_yet():
    evidence = lab_evidence()
    evidence.cells[1].cell_type, evidence.cells[1].source = "markdown", "Question 1: what shape is X_train?"
    selection = select_model(ModelSelector(before="Question 1"), evidence)
    assert selection.target is None
    assert selection.message.startswith("No model was trained before cell 2 ('Question 1: what shape is X_train?'). Found 3 trained models")


def test_question_matching_is_case_insensitive_regex():
    assert chosen(lab_evidence(), before=r"question\s+4").run.index == 1


def test_tag_on_the_training_cell():
    assert chosen(lab_evidence(), tag="cnn").run.index == 1


def test_tag_from_the_notebook_cells():
    evidence = lab_evidence()
    evidence.runs[1].cell.tags = []  # the run's cell reference lacks tags; the notebook's cell has them
    assert chosen(evidence, tag="cnn").run.index == 1


def test_tag_not_found():
    selection = select_model(ModelSelector(tag="q9"), lab_evidence())
    assert selection.message.startswith("No model was trained in a cell tagged 'q9'.")


def test_variable_links_the_snapshot_to_its_runs():
    target = chosen(lab_evidence(), variable="model")
    assert target.run.index == 2 and target.snapshot.variable == "model"


def test_variable_bound_to_an_untrained_model():
    evidence = lab_evidence(models=[ModelSnapshot("m9", "spare", big_cnn(), SGD)])
    target = chosen(evidence, variable="spare")
    assert target.run is None and target.architecture.total_params == big_cnn().total_params
    assert target.where == "the variable 'spare' (1,293,922 params), never trained"


def test_variable_not_found_lists_model_variables():
    selection = select_model(ModelSelector(variable="cnn"), lab_evidence())
    assert selection.message.startswith("No model is bound to the variable 'cnn' at the end of the run. Variables holding models: model.")


def test_function_links_to_the_run_with_the_same_architecture():
    evidence = lab_evidence(models=[ModelSnapshot("fresh", None, cifar_cnn(), SGD, built_by="CreateCNNModel")])
    target = chosen(evidence, function="CreateCNNModel")
    assert target.run.index == 1 and target.model_id == "m1" and target.snapshot.built_by == "CreateCNNModel"
    assert target.where.startswith("returned by CreateCNNModel(), trained as fit 2 in cell 10")


def test_function_whose_model_was_never_trained():
    evidence = lab_evidence(models=[ModelSnapshot("fresh", None, big_cnn(), SGD, built_by="CreateCNNModel")])
    target = chosen(evidence, function="CreateCNNModel")
    assert target.run is None and target.model_id == "fresh"
    assert target.where == "returned by CreateCNNModel() (1,293,922 params), never trained"


def test_function_falls_back_to_the_cell_that_calls_it():
    """Static mode: nothing was called, but the training cell calls the function."""
    target = chosen(lab_evidence(models=[]), function="CreateCNNModel")
    assert target.run.index == 2 and "in a cell that calls CreateCNNModel()" in target.where


def test_function_that_failed_says_why():
    evidence = lab_evidence(models=[], findings=[Finding("function", "CreateModel() raised NameError: name 'x' is not defined")])
    evidence.cells = [c for c in evidence.cells if "CreateCNNModel" not in c.source]
    selection = select_model(ModelSelector(function="CreateModel"), evidence)
    assert selection.message.startswith("No model built by CreateModel() was recorded. CreateModel() raised NameError")


def test_function_not_defined_lists_the_functions_that_are():
    evidence = lab_evidence(models=[])
    evidence.cells[1].source = "def build_fc():\n    pass\ndef helper(x):\n    pass"
    selection = select_model(ModelSelector(function="BuildModel"), evidence)
    assert "The notebook defines no function BuildModel() (functions defined: build_fc, helper)." in selection.message


def test_no_training_at_all_names_the_first_error():
    from grader.model.evidence import CellError

    evidence = Evidence("s", cells=cells(("code", "x")), cell_errors=[CellError(CellRef(0), "NameError", "name 'x' is not defined")])
    selection = select_model(ModelSelector(fit=1), evidence)
    assert selection.message == ("No model was trained in this notebook (no fit call was recorded). "
                                 "1 cell raised errors; the first, in cell 1: NameError: name 'x' is not defined.")


def test_several_fits_of_one_model_are_listed_as_one_model():
    evidence = lab_evidence()
    evidence.runs[2].model_id = "m1"
    selection = select_model(ModelSelector(fit=9), evidence)
    assert "Found 2 trained models:" in selection.message and "fit 3 in cell 14 under '4. CNN' (81,834 params), continuing fit 2" in selection.message


def test_failed_fit_is_described():
    evidence = lab_evidence()
    evidence.runs[0].error = "ValueError: Shapes (None, 1) and (None, 10) are incompatible"
    selection = select_model(ModelSelector(fit=9), evidence)
    assert "fit 1 in cell 4 under '2. Fully connected model' (12,523,266 params), failed: ValueError: Shapes" in selection.message


def test_describe_words():
    assert ModelSelector(before="Question 4").describe() == "the last model trained before 'Question 4'"
    assert ModelSelector(fit=2).describe() == "the 2nd model trained in the notebook"
    assert ModelSelector(fit=-1, section="CNN").describe() == "the last model trained under a heading matching 'CNN'"
    assert ModelSelector(after="Question 5").describe() == "the first model trained after 'Question 5'"
    assert ModelSelector(function="CreateCNNModel").describe() == "the model returned by CreateCNNModel()"


def test_unmatched_selector_gives_not_assessed_checks_with_the_hint():
    result = grade(one_task("- total_params: 81834\n- test_accuracy: 62%", model="{section: Transfer}"), lab_evidence())[0]
    assert result.points == 0 and result.model_id is None
    assert [c.status for c in result.checks] == [Status.NOT_ASSESSED, Status.NOT_ASSESSED]
    assert result.selector_message.startswith("No heading matches 'Transfer'.")
    assert "Found 3 trained models: fit 1 in cell 4 under '2. Fully connected model' (12,523,266 params)" in result.selector_message


def test_found_model_is_named_in_the_task_result():
    result = grade(one_task("- total_params: 81834", model='{before: "Question 4"}'), lab_evidence())[0]
    assert result.model_id == "m1"
    assert result.selector == ("the last model trained before 'Question 4' → fit 2 in cell 10 under '4. CNN' (81,834 params)"
                               " (2 models were trained here: fit 1 (cell 4), fit 2 (cell 10); chose the last)")
    assert result.selector_message == ""


def test_selector_on_broken_evidence_is_not_a_crash():
    evidence = lab_evidence()
    evidence.runs[1].cell = None  # a malformed bundle
    result = grade(one_task("- total_params: 81834", model='{before: "Question 4"}'), evidence)[0]
    assert result.checks[0].status is Status.NOT_ASSESSED
    assert result.selector_message.startswith("The grader could not apply this task's selector")


# -- markdown answers


def test_answer_is_the_markdown_after_the_question():
    answer = find_answer(lab_evidence(), question="Question 3")
    assert answer.text == "Colour images, much more variability within each class." and answer.cells == [7]


def test_answer_stops_at_the_next_code_cell_or_heading():
    evidence = Evidence("s", cells=cells(("md", "Question 1: why?"), ("md", "Because."), ("md", "Also this."),
                                         ("md", "## Next part"), ("md", "not an answer")))
    assert find_answer(evidence, question="Question 1").text == "Because.\n\nAlso this."


def test_answer_heading_right_after_the_question_opens_the_answer():
    evidence = Evidence("s", cells=cells(("md", "Question 1: why?"), ("md", "### Answer\nBecause."), ("code", "x")))
    # The label opens the answer and is not part of it.
    assert find_answer(evidence, question="Question 1").text == "Because."


def test_question_cell_itself_is_not_the_answer():
    evidence = Evidence("s", cells=cells(("md", "Question 3: 1. `24x28` 2. `20x28` 3. `26x26` 4. `24x24`"), ("code", "x")))
    answer = find_answer(evidence, question="Question 3")
    assert answer.text == "" and "after cell 1" in answer.message


def test_answer_by_tag():
    evidence = Evidence("s", cells=cells(("md", "Q"), ("md", "my answer", ["q1-answer"])))
    assert find_answer(evidence, answer_tag="q1-answer").text == "my answer"


def test_answer_tag_missing_lists_tags():
    evidence = Evidence("s", cells=cells(("md", "Q", ["intro"])))
    answer = find_answer(evidence, answer_tag="q1")
    assert answer.text is None and answer.message == "No cell is tagged 'q1'. Cell tags in this notebook: intro."


def test_headings_skip_code_fences_in_markdown():
    evidence = Evidence("s", cells=cells(("md", "# Title\n```\n# not a heading\n```\n## Part 2")))
    assert [(h.level, h.text) for h in headings(evidence)] == [(1, "Title"), (2, "Part 2")]


def test_static_runs_keep_their_level():
    evidence = lab_evidence()
    for r in evidence.runs:
        r.level = Level.REPORTED
    assert chosen(evidence, fit=1).level is Level.REPORTED


def test_answer_stops_at_the_next_question():
    evidence = Evidence("s", cells=cells(("md", "Question 3: shape?"), ("md", "24x24"), ("md", "Question 4: how many?"),
                                         ("md", "160"), ("md", "**Q5** why?"), ("md", "because")))
    assert find_answer(evidence, question="Question 3").text == "24x24"
    assert find_answer(evidence, question="Question 4").text == "160"


def test_multiple_choice_answer_starting_with_a_number_is_kept():
    evidence = Evidence("s", cells=cells(("md", "Question 2: How does Flatten work?"), ("md", "4. all rows are concatenated")))
    assert find_answer(evidence, question="Question 2").text == "4. all rows are concatenated"


def test_section_matches_a_model_built_there_and_trained_under_a_later_heading():
    # Chollet's 5.2 notebook: the network is built under "Building our network" and trained
    # under "Data preprocessing".
    evidence = Evidence("s", cells=cells(
        ("md", "## Building our network"),
        ("code", "model = models.Sequential()\nmodel.add(layers.Conv2D(32, (3, 3)))\nmodel.compile(loss='binary_crossentropy')"),
        ("md", "## Data preprocessing"),
        ("code", "history = model.fit_generator(train_generator, epochs=30)"),
        ("md", "## Using data augmentation"),
        ("code", "model = models.Sequential()\nmodel.add(layers.Dropout(0.5))\nhistory = model.fit(train_generator)"),
    ))
    evidence.runs = [run(0, 3, cifar_cnn(), model_id="m1"), run(1, 5, cifar_cnn(), model_id="m2")]
    built = select_model(ModelSelector(section="building our network"), evidence)
    assert built.target is not None and built.target.model_id == "m1"
    augmented = select_model(ModelSelector(section="data augmentation"), evidence)
    assert augmented.target.model_id == "m2"
    # The preprocessing section trains the first model, and only that one.
    assert select_model(ModelSelector(section="data preprocessing"), evidence).target.model_id == "m1"
