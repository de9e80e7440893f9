"""`grade rubric validate`: every problem names the file, the line and the key (issue 3, item 5)."""

import json
import textwrap

import jsonschema
import pytest
import yaml

from grader.errors import RubricError
from grader.rubric.load import load_rubric, validate_rubric_file
from grader.rubric.schema import SCHEMA_PATH, rubric_schema

GOOD = """\
name: lab
dataset: cifar10
tasks:
  - id: cnn
    model: {before: "Question 4"}
    checks:
      - total_params: {at_most: 100_000}
      - test_accuracy: {at_least: 62%}
"""


def write(tmp_path, text, name="cifar10.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path, text):
    return validate_rubric_file(write(tmp_path, text))


def test_valid_rubric_has_no_problems(tmp_path):
    assert problems(tmp_path, GOOD) == []


def test_typo_in_a_check_key_names_file_line_and_suggestion(tmp_path):
    text = GOOD.replace("{at_least: 62%}", "{at_leest: 62%}")
    path = write(tmp_path, text)
    assert validate_rubric_file(path) == [
        f"{path}:8: unknown key 'at_leest' in check 'test_accuracy' of task 'cnn' (did you mean 'at_least'?)"]


def test_typo_in_a_top_level_key(tmp_path):
    found = problems(tmp_path, GOOD.replace("dataset:", "datset:"))
    assert len(found) == 1 and found[0].endswith(":2: unknown key 'datset' in the rubric (did you mean 'dataset'?)")


def test_typo_in_a_selector_key(tmp_path):
    found = problems(tmp_path, GOOD.replace("{before:", "{befor:"))
    assert found[0].endswith(":5: unknown key 'befor' in the model selector of task 'cnn' (did you mean 'before'?)")


def test_typo_in_a_task_key(tmp_path):
    found = problems(tmp_path, GOOD.replace("    model:", "    modle:"))
    assert any(p.endswith(":5: unknown key 'modle' in task 'cnn' (did you mean 'model'?)") for p in found)


def test_unknown_check_kind_suggests_the_closest(tmp_path):
    found = problems(tmp_path, GOOD.replace("- total_params:", "- total_parms:"))
    assert found == [f"{tmp_path / 'cifar10.yaml'}:7: unknown check 'total_parms' in task 'cnn' (did you mean 'total_params'?)"]


def test_unknown_check_without_a_close_match_points_to_the_docs(tmp_path):
    found = problems(tmp_path, GOOD.replace("- total_params:", "- banana:"))
    assert found[0].endswith(":7: unknown check 'banana' in task 'cnn' (see docs/rubrics.md for the check kinds)")


def test_wrong_type_names_the_expected_type(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_most: 100_000}", "{at_most: lots}"))
    assert found[0].endswith(":7: 'at_most' in check 'total_params' of task 'cnn' must be a whole number, not the text 'lots'")


def test_accuracy_as_a_bare_number_asks_for_a_fraction(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_least: 62%}", "62"))
    assert found[0].endswith(":8: check 'test_accuracy' of task 'cnn' must be a fraction like 0.62 or a "
                             "percentage like '62%'; not the number 62")


def test_settings_not_indented_under_the_check(tmp_path):
    text = GOOD.replace("      - total_params: {at_most: 100_000}\n", "      - total_params:\n        at_most: 100\n")
    found = problems(tmp_path, text)
    assert found[0].endswith(":7: the settings of check 'total_params' in task 'cnn' are not indented under it: "
                             "indent 'at_most' below '- total_params:'")
    assert len(found) == 1


def test_check_without_settings(tmp_path):
    found = problems(tmp_path, GOOD.replace("- total_params: {at_most: 100_000}", "- output_layer"))
    assert found[0].endswith(":7: check 'output_layer' of task 'cnn' needs settings: write '- output_layer: true'")


def test_missing_required_key(tmp_path):
    found = problems(tmp_path, GOOD.replace("  - id: cnn\n", "  - title: CNN\n"))
    assert found[0].endswith(":4: task 1 has no 'id'")


def test_check_that_needs_one_of_several_keys(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_least: 62%}", "{min_level: verified}"))
    assert found[0].endswith(":8: check 'test_accuracy' of task 'cnn' needs one of: at_least, at_most")


def test_enum_value_typo(tmp_path):
    found = problems(tmp_path, GOOD.replace("dataset: cifar10", "dataset: cifar-10"))
    assert found[0].endswith(":2: 'dataset' must be one of: cifar10, cifar100, mnist, fashion_mnist, null; "
                             "not the text 'cifar-10' (did you mean 'cifar10'?)")


def test_min_level_value_is_checked(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_least: 62%}", "{at_least: 62%, min_level: trusted}"))
    assert ":8: 'min_level' in check 'test_accuracy' of task 'cnn' must be one of: reported, executed, verified" in found[0]


def test_fit_zero_is_rejected(tmp_path):
    found = problems(tmp_path, GOOD.replace('{before: "Question 4"}', "{fit: 0}"))
    assert found[0].endswith(":5: 'fit' in the model selector of task 'cnn' cannot be 0: count from 1, or from -1 for the last")


def test_duplicate_key_is_reported_with_both_lines(tmp_path):
    found = problems(tmp_path, GOOD.replace("dataset: cifar10\n", "dataset: cifar10\ndataset: mnist\n"))
    assert found[0].endswith(":3: 'dataset' appears twice in the rubric (first on line 2); the second would silently win")


def test_yaml_syntax_error_has_a_line(tmp_path):
    found = problems(tmp_path, GOOD.replace("      - total_params: {at_most: 100_000}", "      - total_params: {at_most: 100_000"))
    assert len(found) == 1 and "this is not valid YAML" in found[0]
    assert found[0].split(":")[1].isdigit()


def test_tab_indentation_is_explained(tmp_path):
    found = problems(tmp_path, "name: x\ntasks:\n\t- id: a\n")
    assert "YAML indents with spaces, not tabs" in found[0]


def test_empty_file(tmp_path):
    assert problems(tmp_path, "") == [f"{tmp_path / 'cifar10.yaml'}: the rubric is empty"]


def test_not_a_mapping(tmp_path):
    assert problems(tmp_path, "- a\n- b\n")[0].endswith(":1: a rubric is a mapping of keys (name, tasks, ...), not a list")


def test_invalid_regex_in_selector(tmp_path):
    found = problems(tmp_path, GOOD.replace('"Question 4"', '"Question (4"'))
    assert found[0].startswith(f"{tmp_path / 'cifar10.yaml'}:5: 'before' in the model selector of task 'cnn' is not a valid regular expression")


def test_bad_layer_pattern_names_the_column(tmp_path):
    found = problems(tmp_path, GOOD.replace("- total_params: {at_most: 100_000}", '- layers: "Conv2D (MaxPooling2D"'))
    assert found == [f"{tmp_path / 'cifar10.yaml'}:7: 'pattern' in check 'layers' of task 'cnn': layer pattern: "
                     "a group '(' is not closed (column 8)"]


def test_layer_class_typo_is_caught(tmp_path):
    found = problems(tmp_path, GOOD.replace("- total_params: {at_most: 100_000}", "- contains: Dropuot"))
    assert found[0].endswith(":7: unknown layer class 'Dropuot' (did you mean 'Dropout'?) in check 'contains' of task 'cnn'")


def test_custom_layer_class_without_close_match_is_allowed(tmp_path):
    assert problems(tmp_path, GOOD.replace("- total_params: {at_most: 100_000}", "- contains: MyAttentionBlock")) == []


def test_model_check_needs_a_selector(tmp_path):
    found = problems(tmp_path, GOOD.replace('    model: {before: "Question 4"}\n', ""))
    assert found[0].endswith(":6: check 'total_params' is about a model, but task 'cnn' has no 'model:' selector "
                             "(for example model: {before: 'Question 4'})")


def test_compare_with_unknown_task(tmp_path):
    found = problems(tmp_path, GOOD + "      - compare: {task: fcc, params: fewer}\n  - id: fc\n    model: {fit: 1}\n"
                                      "    checks: [{total_params: 5}]\n")
    assert found[0].endswith(":9: check 'compare' of task 'cnn' names task 'fcc', which this rubric does not have (did you mean 'fc'?)")


def test_compare_with_itself(tmp_path):
    found = problems(tmp_path, GOOD + "      - compare: {task: cnn, params: fewer}\n")
    assert found[0].endswith(":9: check 'compare' of task 'cnn' compares the task with itself")


def test_duplicate_task_id(tmp_path):
    found = problems(tmp_path, GOOD + "  - id: cnn\n    model: {fit: 1}\n    checks: [{total_params: 5}]\n")
    assert found[0].endswith(":9: task id 'cnn' is used twice (first on line 4)")


def test_function_selector_stands_alone(tmp_path):
    found = problems(tmp_path, GOOD.replace('{before: "Question 4"}', "{function: CreateCNNModel, fit: 2}"))
    assert found[0].endswith(":5: 'function' stands alone in the model selector of task 'cnn'; remove fit")


def test_points_claimed_beyond_the_task_points(tmp_path):
    found = problems(tmp_path, GOOD.replace("    model:", "    points: 2\n    model:").replace("{at_most: 100_000}", "{at_most: 100_000, points: 3}"))
    assert found[0].endswith(":5: task 'cnn' has 2 points, but its checks already claim 3")


def test_max_points_must_match_the_tasks(tmp_path):
    found = problems(tmp_path, "max_points: 10\n" + GOOD)
    assert found[0].endswith(":1: 'max_points' is 10, but the tasks' points add up to 2")


def test_pass_mark_above_max(tmp_path):
    found = problems(tmp_path, "pass_mark: 5\n" + GOOD)
    assert found[0].endswith(":1: 'pass_mark' 5 is above the 2 points there are")


def test_within_needs_of(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_most: 100_000}", "{within: 10%}"))
    assert found[0].endswith(":7: 'within' in check 'total_params' of task 'cnn': 'within' and 'of' go together: within: 10%, of: 81834")


def test_of_reference_needs_a_reference_model(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_most: 100_000}", "{within: 10%, of: reference}"))
    assert found[0].endswith(":7: 'of: reference' needs a 'reference:' model on task 'cnn'")


def test_unknown_reference_model(tmp_path):
    found = problems(tmp_path, GOOD.replace("    model:", "    reference: cifar10_cnnn\n    model:"))
    assert found[0].endswith(":5: unknown reference model 'cifar10_cnnn' (did you mean 'cifar10_cnn'?)")


def test_range_in_the_wrong_order(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_most: 100_000}", "{between: [100, 10]}"))
    assert found[0].endswith(":7: 'between' in check 'total_params' of task 'cnn': 'between' needs [low, high]; 100 is above 10")


def test_missing_support_file(tmp_path):
    found = problems(tmp_path, "support_files: [Custom.py]\n" + GOOD)
    assert found[0].endswith(f":1: support file 'Custom.py' not found (looked in {tmp_path})")


def test_answer_needs_somewhere_to_look(tmp_path):
    found = problems(tmp_path, GOOD + "  - id: q\n    checks:\n      - answer: {number: 160}\n")
    assert found[0].endswith(":11: check 'answer' of task 'q' needs a variable, or a question / answer_tag (on the check "
                             "or the task) to find the written answer")


def test_all_problems_are_reported_in_line_order(tmp_path):
    text = GOOD.replace("dataset:", "datset:").replace("{at_least: 62%}", "{at_leest: 62%}")
    found = problems(tmp_path, text)
    assert [p.split(":")[1] for p in found] == ["2", "8"]


def test_load_rubric_raises_with_location_and_key(tmp_path):
    path = write(tmp_path, GOOD.replace("{at_least: 62%}", "{at_leest: 62%}"))
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    assert info.value.location == f"{path}:8"
    assert info.value.key == "at_leest"
    assert "did you mean 'at_least'" in str(info.value)


def test_validate_a_missing_file_is_a_message_not_an_exception(tmp_path):
    assert validate_rubric_file(tmp_path / "nope.yaml")[0].startswith(str(tmp_path / "nope.yaml"))


def test_shipped_schema_file_is_current():
    """The file editors use is generated from the check registry; regenerate with `python -m grader.rubric.schema`."""
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json.loads(json.dumps(rubric_schema()))


def test_schema_is_valid_draft7_and_accepts_the_example_rubric():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(GOOD), schema)


def test_schema_offers_every_check_kind_for_completion():
    from grader.checks import KINDS

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert set(schema["definitions"]["check"]["properties"]) == set(KINDS)
    assert "description" in schema["definitions"]["check_test_accuracy"]


def test_size_limit_in_words(tmp_path):
    found = problems(tmp_path, "limits: {memory: 8 gigs}\n" + GOOD)
    assert found[0].endswith(":1: 'memory' in 'limits' must be bytes, or a number with a unit: 512MiB, 8GiB, 10MB; "
                             "not the text '8 gigs'")


def test_shorthand_or_mapping_in_words(tmp_path):
    found = problems(tmp_path, GOOD.replace("{at_most: 100_000}", "many"))
    assert found[0].endswith(":7: check 'total_params' of task 'cnn' must be a whole number or a mapping of settings; "
                             "not the text 'many'")


def test_variable_must_be_a_python_name(tmp_path):
    found = problems(tmp_path, GOOD + "      - answer: {variable: 'conv params', equals: 160}\n")
    assert found[0].endswith(":9: 'variable' in check 'answer' of task 'cnn' must be a Python name; not the text 'conv params'")


def test_binary_file_is_not_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(b"\x00\x01")
    assert validate_rubric_file(path)[0].startswith(f"{path}: this is not valid YAML: unacceptable character")
