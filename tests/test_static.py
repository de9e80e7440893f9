"""Static mode: Evidence from a notebook's saved outputs (grader.static.outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.model.evidence import Evidence, Level, from_json, to_json
from grader.notebook.cells import cells_from_notebook, markdown_headings
from grader.static.outputs import output_text, static_evidence
from grader.static.summary import canonical_class

DATA = Path(__file__).parent / "data" / "summaries"
CNN2 = (DATA / "seed000_3_cnn2_mnist.txt").read_text()  # Keras 1, 21 layers, 695,970 params
FACES = (DATA / "seed004_1_faces_fc.txt").read_text()  # Keras 1, 2 layers, 55,304 params
MODEL_2 = (DATA / "seed001_2_model_2.txt").read_text()  # tf.keras 2.4, 81,834 params


def code(source: str, *texts: str, outputs=None):
    cell = new_code_cell(source)
    cell.outputs = [new_output("stream", name="stdout", text=text) for text in texts]
    cell.outputs += outputs or []
    return cell


def notebook(*cells):
    return new_notebook(cells=list(cells))


def epochs(n: int, first: int = 1, total: int | None = None, acc: float = 0.5) -> str:
    """A Keras 1 epoch log as a kernel wrote it: redraws after backspaces and a carriage return."""
    total = total or n
    out = []
    for k in range(first, first + n):
        value = acc + k / 100
        out.append(f"Epoch {k}/{total}\n")
        out.append(f"\r 128/4000 [>....] - ETA: 3s - loss: 2.3000 - acc: 0.1000" + "\b" * 54)
        out.append(f"\r4000/4000 [=====] - 2s - loss: {1 - value:.4f} - acc: {value:.4f} - "
                   f"val_loss: {1.1 - value:.4f} - val_acc: {value - 0.01:.4f}\n")
    return "".join(out)


KERAS1_NOTEBOOK = notebook(
    new_markdown_cell("**Question 1**\n\nBuild the CNN of the exercise and reach 98%."),
    code("model = Sequential()\n"
         "model.add(Convolution2D(32, 3, 3, border_mode='same', input_shape=(28, 28, 1)))\n"
         "# ... 20 more layers\n"
         "model.summary()", CNN2),
    code("model.compile(loss='categorical_crossentropy',\n"
         "              optimizer=SGD(lr=0.01, momentum=0.9, nesterov=True),\n"
         "              metrics=['accuracy'])"),
    code("history = model.fit(X_train, Y_train, batch_size=128, nb_epoch=3, verbose=1,\n"
         "                    validation_data=(X_test, Y_test))",
         "Train on 4000 samples, validate on 1000 samples\n", epochs(3)),
    code("score = model.evaluate(X_test, Y_test, verbose=0)\n"
         "print 'Test score:', score[0]\nprint 'Test accuracy:', score[1]",
         "Test score: 0.0712\nTest accuracy: 0.9781\n"),
)


def test_keras1_notebook_gives_a_reported_training_run():
    evidence = static_evidence(KERAS1_NOTEBOOK, "old.ipynb")
    assert evidence.mode == "static"
    (run,) = evidence.runs
    assert run.level is Level.REPORTED
    assert run.architecture.total_params == 695_970
    assert len(run.architecture.layers) == 21
    assert canonical_class(run.architecture.layers[0].class_name) == "Conv2D"
    assert run.history["acc"] == [0.51, 0.52, 0.53]
    assert run.final("val_accuracy") == pytest.approx(0.52)


def test_training_run_records_the_cell_that_holds_the_log():
    run = static_evidence(KERAS1_NOTEBOOK, "old.ipynb").runs[0]
    assert run.cell.index == 3
    assert run.cell.heading == "Question 1"
    assert run.variable == "model"


def test_fit_arguments_come_from_the_log_and_the_removed_keras1_spelling():
    fit = static_evidence(KERAS1_NOTEBOOK, "old.ipynb").runs[0].fit
    assert (fit.epochs, fit.epochs_run, fit.batch_size) == (3, 3, 128)
    assert (fit.train_samples, fit.validation_samples) == (4000, 1000)
    assert fit.steps_per_epoch is None  # Keras 1 counted samples, not steps


def test_compile_settings_are_read_from_the_code_even_with_removed_arguments():
    compile_info = static_evidence(KERAS1_NOTEBOOK, "old.ipynb").runs[0].compile
    assert compile_info.optimizer == "SGD"
    assert compile_info.learning_rate == 0.01
    assert compile_info.optimizer_config == {"momentum": 0.9, "nesterov": True}
    assert compile_info.loss == "categorical_crossentropy"
    assert compile_info.metrics == ["accuracy"]


def test_printed_test_scores_become_one_reported_evaluation_of_the_trained_model():
    evidence = static_evidence(KERAS1_NOTEBOOK, "old.ipynb")
    (evaluation,) = evidence.evaluations
    assert evaluation.results == {"loss": 0.0712, "accuracy": 0.9781}
    assert evaluation.level is Level.REPORTED
    assert evaluation.model_id == evidence.runs[0].model_id


def test_each_summary_is_a_model_snapshot():
    evidence = static_evidence(KERAS1_NOTEBOOK, "old.ipynb")
    (model,) = evidence.models
    assert model.model_id == evidence.runs[0].model_id
    assert model.variable == "model"
    assert model.architecture.class_name == "Sequential"


def test_two_fits_of_the_same_summarised_model_share_its_id():
    nb = notebook(code("model.summary()", FACES),
                  code("model.fit(x, y, epochs=2)", epochs(2)),
                  code("model.fit(x, y, epochs=3)", epochs(3)))
    evidence = static_evidence(nb, "a.ipynb")
    first, second = evidence.runs
    assert first.model_id == second.model_id
    assert evidence.epochs_trained(first.model_id) == 5


def test_summary_printed_again_after_training_is_the_same_model():
    nb = notebook(code("model.summary()", FACES), code("model.fit(x, y)", epochs(2)),
                  code("model.summary()", FACES), code("model.fit(x, y)", epochs(1)))
    evidence = static_evidence(nb, "a.ipynb")
    assert len(evidence.models) == 1
    assert len({run.model_id for run in evidence.runs}) == 1


def test_a_new_summary_starts_a_new_model():
    nb = notebook(code("model.summary()", FACES), code("model.fit(x, y)", epochs(2)),
                  code("model = Sequential()\nmodel.add(Dense(10))\nmodel.summary()", CNN2),
                  code("model.fit(x, y)", epochs(2)))
    first, second = static_evidence(nb, "a.ipynb").runs
    assert first.model_id != second.model_id
    assert second.architecture.total_params == 695_970


def test_fit_attaches_to_the_summary_of_the_variable_it_fits():
    nb = notebook(code("cnn.summary()", CNN2), code("fc.summary()", FACES),
                  code("history = cnn.fit(x, y, epochs=2)", epochs(2)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert run.architecture.total_params == 695_970


def test_variable_rebuilt_after_its_summary_has_no_architecture_and_a_finding():
    nb = notebook(code("model.summary()", FACES),
                  code("model = Sequential()\nmodel.add(Dense(8, input_dim=6912))"),
                  code("model.fit(x, y)", epochs(2)))
    evidence = static_evidence(nb, "a.ipynb")
    (run,) = evidence.runs
    # No summary of the new model: its layers come from the code, not from the old summary.
    assert run.architecture.layer_classes() == ["Dense"]
    assert run.architecture.total_params == 6912 * 8 + 8 and run.architecture.params_known
    assert run.model_id != evidence.models[0].model_id
    assert any(f.kind == "static" and "no summary" in f.message for f in evidence.findings)


def test_model_built_by_a_function_defined_earlier_counts_as_rebuilt():
    nb = notebook(code("def create_model():\n    m = Sequential()\n    m.add(Dense(8))\n"
                       "    return m"),
                  code("model = create_model()\nmodel.summary()", FACES),
                  code("model = create_model()"),
                  code("model.fit(x, y)", epochs(1)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert run.architecture.layer_classes() == ["Dense"]  # rebuilt from create_model()
    assert run.architecture.known and not run.architecture.params_known  # no input shape


def test_defining_a_builder_function_does_not_invalidate_a_summary():
    nb = notebook(code("model.summary()", FACES),
                  code("def other():\n    return Sequential([Dense(3)])"),
                  code("model.fit(x, y)", epochs(1)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert run.architecture.total_params == 55_304


def test_fit_printed_before_the_summary_of_a_model_built_in_the_same_cell():
    nb = notebook(code("model.summary()", FACES),
                  code("model = Sequential()\nmodel.add(Dense(200))\nmodel.fit(x, y)\n"
                       "model.summary()", epochs(1), CNN2))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert run.architecture.total_params == 695_970


def test_summary_printed_by_a_helper_function_is_used():
    nb = notebook(code("def train(m):\n    m.summary()\n    return m.fit(x, y, epochs=2)"),
                  code("history = train(build())", MODEL_2, epochs(2)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert run.architecture.total_params == 81_834


def test_log_without_any_summary_is_a_finding():
    evidence = static_evidence(notebook(code("model.fit(x, y)", epochs(2))), "a.ipynb")
    (run,) = evidence.runs
    assert run.architecture.layers == []
    (finding,) = evidence.findings
    assert finding.kind == "static" and finding.cell.index == 0


def test_evaluate_bar_counts_only_when_the_cell_evaluates_test_data():
    bar = "313/313 [==============================] - 1s 3ms/step - loss: 1.1000 - acc: 0.6300\n"
    nb = notebook(code("model.summary()", MODEL_2), code("model.fit(x, y)", epochs(1)),
                  code("model.evaluate(x_train, y_train)", bar),
                  code("model.evaluate(x_test, y_test)", bar))
    evidence = static_evidence(nb, "a.ipynb")
    (evaluation,) = evidence.evaluations
    assert evaluation.cell.index == 3
    assert evaluation.results == {"loss": 1.1, "accuracy": 0.63}


def test_evaluate_result_shown_as_a_list_is_loss_and_accuracy():
    result = new_output("execute_result", data={"text/plain": "[1.1271319389343262, 0.296875]"},
                        execution_count=5)
    nb = notebook(code("model.evaluate(x_test, y_test, verbose=0)", outputs=[result]))
    (evaluation,) = static_evidence(nb, "a.ipynb").evaluations
    assert evaluation.results == {"loss": 1.1271319389343262, "accuracy": 0.296875}


def test_interrupted_training_is_an_info_finding():
    text = epochs(1, total=5) + "Epoch 2/5\n\r 40/100 [=>...] - ETA: 5s - loss: 0.5\n"
    evidence = static_evidence(notebook(code("model.summary()", FACES),
                                        code("model.fit(x, y, epochs=5)", text)), "a.ipynb")
    assert evidence.runs[0].fit.epochs_run == 1
    assert any("interrupted" in f.message and f.severity == "info" for f in evidence.findings)


def test_saved_errors_become_cell_errors():
    error = new_output("error", ename="TypeError",
                       evalue="__init__() got an unexpected keyword argument 'border_mode'",
                       traceback=["\x1b[0;31mTypeError\x1b[0m: got an unexpected keyword"])
    evidence = static_evidence(notebook(code("Convolution2D(32, 3, 3, border_mode='same')",
                                             outputs=[error])), "a.ipynb")
    (cell_error,) = evidence.cell_errors
    assert cell_error.ename == "TypeError"
    assert "\x1b" not in cell_error.traceback
    assert cell_error.source.startswith("Convolution2D")


def test_notebook_without_outputs_is_an_error_finding():
    evidence = static_evidence(notebook(code("model.fit(x, y)")), "empty.ipynb")
    assert evidence.runs == []
    assert [f.severity for f in evidence.findings] == ["error"]


def test_unreadable_summary_table_is_a_warning_finding():
    mangled = (DATA / "seed000_2_cnn1_mnist.seed.txt").read_text()
    evidence = static_evidence(notebook(code("model.summary()", mangled)), "a.ipynb")
    assert evidence.models == []
    assert any(f.severity == "warning" and "no layer rows" in f.message for f in evidence.findings)


def test_keras3_summary_split_over_display_outputs_is_joined():
    table = [
        'Model: "sequential"',
        "┏━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┓\n"
        "┃ Layer (type)          ┃ Output Shape       ┃  Param # ┃\n"
        "┡━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━┩\n"
        "│ dense (\x1b[38;5;33mDense\x1b[0m) │ (\x1b[38;5;45mNone\x1b[0m, 10) │      \x1b[38;5;34m110\x1b[0m │\n"
        "└───────────────────────┴────────────────────┴──────────┘",
        " Total params: \x1b[38;5;34m110\x1b[0m (440.00 B)",
        " Trainable params: 110 (440.00 B)",
        " Non-trainable params: 0 (0.00 B)",
    ]
    outputs = [new_output("display_data", data={"text/plain": text, "text/html": "<pre></pre>"})
               for text in table]
    (model,) = static_evidence(notebook(code("model.summary()", outputs=outputs)), "a").models
    assert model.architecture.total_params == 110
    assert model.architecture.layers[0].output_shape == [None, 10]


def test_stderr_between_two_rows_of_a_summary_does_not_spoil_the_table():
    lines = FACES.split("\n")
    cell = code("model.summary()", outputs=[
        new_output("stream", name="stdout", text="\n".join(lines[:5]) + "\n"),
        new_output("stream", name="stderr", text="W0000 00:00 cuda_driver.cc: no GPU found"),
        new_output("stream", name="stdout", text="\n".join(lines[5:])),
    ])
    (model,) = static_evidence(notebook(cell), "a.ipynb").models
    assert [layer.name for layer in model.architecture.layers] == ["dense_1", "activation_1"]


def test_html_only_output_is_read_as_text():
    html = "<pre>" + MODEL_2.replace("<", "&lt;") + "</pre>"
    outputs = [new_output("display_data", data={"text/html": html})]
    assert "Total params: 81,834" in output_text(code("x", outputs=outputs))


def test_stream_text_given_as_a_list_of_lines_is_joined():
    cell = {"cell_type": "code", "source": ["model.fit(x, y)\n"], "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout",
                         "text": ["Epoch 1/1\n", "10/10 [===] - 1s - loss: 0.5\n"]}]}
    evidence = static_evidence({"cells": [cell], "metadata": {}, "nbformat": 4}, "raw.ipynb")
    assert evidence.runs[0].history == {"loss": [0.5]}


@pytest.mark.parametrize("outputs", [
    [None], [{"output_type": "stream"}], [{"output_type": "display_data", "data": None}],
    [{"output_type": "execute_result", "data": {"text/plain": None}}],
    [{"output_type": "error"}], [{"output_type": "stream", "text": 42}],
])
def test_odd_outputs_never_raise(outputs):
    cell = {"cell_type": "code", "source": "x", "metadata": {}, "outputs": outputs}
    evidence = static_evidence({"cells": [cell]}, "odd.ipynb")
    assert evidence.mode == "static"


@pytest.mark.parametrize("nb", [{}, {"cells": None}, {"cells": [None, 3, "x"]}, []])
def test_odd_notebooks_never_raise(nb):
    assert static_evidence(nb, "odd.ipynb").runs == []


def test_evidence_round_trips_through_json():
    evidence = static_evidence(KERAS1_NOTEBOOK, "old.ipynb")
    assert from_json(Evidence, to_json(evidence)) == evidence


# ---------------------------------------------------------------------------------------------
# Cells and headings


@pytest.mark.parametrize("source, headings", [
    ("# Question 4\ntext", ["Question 4"]),
    ("## Question 4: at least 62% test accuracy ##", ["Question 4: at least 62% test accuracy"]),
    ("Question 4\n==========\nTrain a CNN", ["Question 4"]),
    ("Part b\n------", ["Part b"]),
    ("**Question 4**\n\nTrain a CNN", ["Question 4"]),
    ("**Question 4:** Train a CNN with at least 62%", ["Question 4:"]),
    ("**Note:** do not forget", []),
    ("<h2>Question 5</h2>", ["Question 5"]),
    ("```\n# not a heading\n```\ntext", []),
    ("- item\n---", []),
    ("# [Question 6](#q6) *CNN*", ["Question 6 *CNN*"]),
])
def test_markdown_headings(source, headings):
    assert markdown_headings(source) == headings


def test_each_cell_gets_the_nearest_heading_at_or_above_it():
    nb = notebook(code("import keras"), new_markdown_cell("# Part A\ntext\n## Question 1"),
                  code("model.fit()"), new_markdown_cell("Answer: it overfits."),
                  new_markdown_cell("**Question 2**"), code("x"))
    headings = [cell.heading for cell in cells_from_notebook(nb)]
    assert headings == [None, "Part A", "Question 1", "Question 1", "Question 2", "Question 2"]


def test_cells_keep_tags_ids_and_whether_they_have_outputs():
    cell = code("model.fit()", "Epoch 1/1\n")
    cell.metadata["tags"] = ["q4", "graded"]
    cell.id = "train-cnn"
    (parsed,) = cells_from_notebook(notebook(cell))
    assert (parsed.tags, parsed.cell_id, parsed.has_outputs) == (["q4", "graded"], "train-cnn", True)
    assert (parsed.index, parsed.cell_type, parsed.source) == (0, "code", "model.fit()")


def test_static_mode_does_not_import_tensorflow_or_keras():
    import subprocess
    import sys

    code = ("import sys, grader.static.outputs\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"


def test_docstring_examples_hold():
    import doctest

    import grader.notebook.cells
    import grader.static.calls
    import grader.static.logs
    import grader.static.outputs
    import grader.static.summary

    for module in (grader.notebook.cells, grader.static.calls, grader.static.outputs, grader.static.summary,
                   grader.static.logs):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# -- architecture unknown, or rebuilt from the code (issue 12, item 10)

KERAS3_SOFTMAX_SUMMARY = """Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ flatten (Flatten)               │ (None, 3072)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 10)             │        30,730 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 30,730 (120.04 KB)
 Trainable params: 30,730 (120.04 KB)
 Non-trainable params: 0 (0.00 B)
"""

TBMI26_CNN = """from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Conv2D, MaxPooling2D, Flatten, Dense, Dropout
(X_train, Y_train), (X_test, Y_test) = keras.datasets.cifar10.load_data()
model = Sequential()
model.add(Conv2D(32, (3, 3), activation='relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Conv2D(64, 3, activation='relu', padding='same'))
model.add(MaxPooling2D())
model.add(Flatten())
model.add(Dropout(0.5))
model.add(Dense(10, activation='softmax'))
model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
"""

TBMI26_FUNCTIONAL = """def CreateFCModel(units):
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Flatten()(inputs)
    x = layers.Dense(units, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)
"""


def _static_grade(nb, checks: str):
    from grader.checks import grade
    from tests.rubric_fixtures import one_task

    evidence = static_evidence(nb, "a.ipynb")
    return grade(one_task(checks, model="{fit: 1}"), evidence)[0].checks[0]


@pytest.mark.parametrize("checks", ["- total_params: {at_most: 100000}", "- lacks: Dropout",
                                    "- layers: [Dense]", "- output_layer: true"])
def test_unknown_architecture_is_not_assessed(checks):
    nb = notebook(code("model = build_it()\nmodel.compile(loss='categorical_crossentropy')\n"
                       "model.fit(x, y)", epochs(2)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert not run.architecture.known
    result = _static_grade(nb, checks)
    assert result.status.value == "not_assessed", result.message
    assert "unknown" in result.message


def test_unknown_architecture_round_trips_through_json():
    nb = notebook(code("model.fit(x, y)", epochs(2)))
    evidence = static_evidence(nb, "a.ipynb")
    again = from_json(Evidence, to_json(evidence))
    assert again.runs[0].architecture.known is False
    old = to_json(evidence)
    del old["runs"][0]["architecture"]["known"]  # results stored before the field existed
    assert from_json(Evidence, old).runs[0].architecture.known is True


def test_output_activation_comes_from_the_code_of_a_softmax_model():
    nb = notebook(code("model = Sequential([Flatten(input_shape=(32, 32, 3)), "
                       "Dense(10, activation='softmax')])\n"
                       "model.compile(loss='categorical_crossentropy', optimizer='adam')\n"
                       "model.summary()", KERAS3_SOFTMAX_SUMMARY),
                  code("model.fit(x, y)", epochs(2)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert run.architecture.total_params == 30_730  # from the summary
    assert run.architecture.layers[-1].activation == "softmax"  # from the code
    result = _static_grade(nb, "- output_layer: true")
    assert result.status.value == "passed", result.message
    assert "softmax" in result.message


def test_sequential_tbmi26_cnn_is_rebuilt_from_the_code_with_cifar10_input():
    nb = notebook(code(TBMI26_CNN), code("history = model.fit(X_train, Y_train)", epochs(2)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    architecture = run.architecture
    assert architecture.layer_classes() == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                                            "Flatten", "Dropout", "Dense"]
    assert [layer.output_shape for layer in architecture.layers] == [
        [None, 30, 30, 32], [None, 15, 15, 32], [None, 15, 15, 64], [None, 7, 7, 64],
        [None, 3136], [None, 3136], [None, 10]]
    assert [layer.params for layer in architecture.layers] == [896, 0, 18_496, 0, 0, 0, 31_370]
    assert architecture.total_params == 50_762 and architecture.params_known
    assert architecture.layers[-1].activation == "softmax"
    assert architecture.layers[0].config["kernel_size"] == [3, 3]
    assert run.compile.loss == "categorical_crossentropy"
    result = _static_grade(nb, "- total_params: {at_most: 60000}")
    assert result.status.value == "passed"


def test_functional_model_built_in_a_function_is_rebuilt_from_the_code():
    nb = notebook(code(TBMI26_FUNCTIONAL),
                  code("model = CreateFCModel(128)\nmodel.compile(loss='categorical_crossentropy')"),
                  code("model.fit(X_train, Y_train)", epochs(2)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    architecture = run.architecture
    assert architecture.class_name == "Functional"
    assert architecture.layer_classes() == ["Flatten", "Dense", "Dense", "Dense"]
    assert architecture.layers[-1].activation == "softmax"
    # units is a parameter of the function: the counts after it cannot be known.
    assert not architecture.params_known
    result = _static_grade(nb, "- total_params: {at_most: 1000}")
    assert result.status.value == "not_assessed"
    assert _static_grade(nb, "- output_layer: true").status.value == "passed"


def test_functional_model_with_literal_units_gets_exact_params():
    source = TBMI26_FUNCTIONAL.replace("Dense(units,", "Dense(256,")
    nb = notebook(code(source), code("model = CreateFCModel(256)"),
                  code("model.fit(X_train, Y_train)", epochs(1)))
    (run,) = static_evidence(nb, "a.ipynb").runs
    assert [layer.params for layer in run.architecture.layers] == [0, 3072 * 256 + 256,
                                                                   256 * 64 + 64, 650]
    assert run.architecture.params_known
