"""Round trips with today's Keras: build a model, print its summary, parse it, compare.

Three forms of the same summaries:

* ``summary(print_fn=...)`` text (plain box table), built in this process;
* the ANSI-coloured text a terminal gets, built in this process;
* the outputs a real Jupyter kernel saved (tests/data/summaries/keras3_jupyter.ipynb, made by
  make_keras3_notebook.py; its last cell printed Keras's own account of every model). The slow
  test re-runs that notebook with the installed Keras.

Only the in-process tests import Keras.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import nbformat
import pytest

from grader.static.logs import parse_training_log
from grader.static.outputs import output_text, static_evidence
from grader.static.summary import parse_summary

DATA = Path(__file__).parent / "data" / "summaries"
TRUTH_MARK = "KERAS-TRUTH "


def _name_matches(printed: str, true: str) -> bool:
    """Keras 3 cuts long names with an ellipsis: ``left_branch_with_a…``."""
    return printed == true or (printed.endswith("…") and true.startswith(printed[:-1]))


def assert_matches_truth(summary, truth: dict) -> None:
    architecture = summary.architecture
    true_layers = [row for row in truth["layers"] if row[1] != "InputLayer"]
    assert len(architecture.layers) == len(true_layers)
    for layer, (name, class_name, shape, params, nested) in zip(architecture.layers, true_layers):
        assert _name_matches(layer.name, name), (layer.name, name)
        assert layer.class_name == class_name
        assert layer.output_shape == shape
        assert layer.params == params
        if layer.layers:  # an expand_nested summary
            assert [inner.name for inner in layer.layers] == [n for n in nested if "input" not in n]
    assert architecture.trainable_params == truth["trainable"]
    assert architecture.non_trainable_params == truth["non_trainable"]
    assert architecture.total_params == truth["trainable"] + truth["non_trainable"]
    inputs = [row for row in truth["layers"] if row[1] == "InputLayer"]
    if inputs:
        assert architecture.input_shape == inputs[0][2]
    assert summary.problems == [] or all("cut short" in p for p in summary.problems)


# ---------------------------------------------------------------------------------------------
# In this process


@pytest.fixture(scope="module")
def keras():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("keras")


def _truth(model) -> dict:
    rows = []
    for layer in model.layers:
        try:
            shape = list(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append([layer.name, type(layer).__name__, shape,
                     layer.count_params() if layer.built else 0,
                     [inner.name for inner in getattr(layer, "layers", [])]])

    def count(weights):
        total = 0
        for weight in weights:
            size = 1
            for dim in weight.shape:
                size *= int(dim)
            total += size
        return total

    return {"layers": rows, "trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}


@pytest.fixture(scope="module")
def models(keras):
    from keras import layers

    sequential = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, (5, 5), activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same"),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])
    image = keras.Input((32, 32, 3), name="image")
    extra = keras.Input((5,), name="extra")
    x = layers.Conv2D(8, 3, name="a_convolution_with_a_name_too_long_for_its_cell")(image)
    x = layers.Flatten()(x)
    joined = layers.Concatenate()([x, extra])
    functional = keras.Model([image, extra], layers.Dense(3)(joined), name="two_inputs")
    base = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(4, 3),
                             layers.BatchNormalization()], name="base")
    base.trainable = False
    nested = keras.Sequential([keras.Input((16, 16, 3)), base, layers.Flatten(), layers.Dense(2)],
                              name="nested")
    return {"sequential": sequential, "functional": functional, "nested": nested}


def _plain_summary(model, **options) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.append(text), **options)
    return "\n".join(lines)


def _ansi_summary(model, monkeypatch, **options) -> str:
    """The summary as rich renders it for a colour terminal (the codes Jupyter also saves)."""
    import rich.console

    buffer = io.StringIO()
    original = rich.console.Console

    def colour_console(*args, **kwargs):
        kwargs.update(file=buffer, force_terminal=True, force_jupyter=False,
                      color_system="256", width=120)
        return original(*args, **kwargs)

    monkeypatch.setattr(rich.console, "Console", colour_console)
    model.summary(**options)
    monkeypatch.setattr(rich.console, "Console", original)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["sequential", "functional", "nested"])
def test_print_fn_summary_round_trips(models, kind):
    model = models[kind]
    (summary,) = parse_summary(_plain_summary(model))
    assert_matches_truth(summary, _truth(model))
    assert summary.architecture.name == model.name


@pytest.mark.parametrize("kind", ["sequential", "functional", "nested"])
def test_ansi_coloured_summary_round_trips(models, kind, monkeypatch):
    model = models[kind]
    text = _ansi_summary(model, monkeypatch)
    assert "\x1b[" in text
    (summary,) = parse_summary(text)
    assert_matches_truth(summary, _truth(model))


def test_expand_nested_summary_keeps_inner_layers_inside_the_nested_one(models):
    model = models["nested"]
    (summary,) = parse_summary(_plain_summary(model, expand_nested=True, show_trainable=True))
    assert_matches_truth(summary, _truth(model))
    base = summary.architecture.layers[0]
    assert [layer.class_name for layer in base.layers] == ["Conv2D", "BatchNormalization"]
    assert base.trainable is False
    assert summary.architecture.layers[-1].trainable is True


def test_model_class_is_told_from_the_table(models):
    (functional,) = parse_summary(_plain_summary(models["functional"]))
    assert functional.architecture.class_name == "Functional"
    assert functional.architecture.input_shape == [None, 32, 32, 3]
    for kind in ("sequential", "nested"):
        (summary,) = parse_summary(_plain_summary(models[kind]))
        assert summary.architecture.class_name == "Sequential"


# ---------------------------------------------------------------------------------------------
# Outputs saved by a real Jupyter kernel


def _truth_of(nb) -> dict:
    for cell in nb.cells:
        for line in output_text(cell).split("\n") if cell.cell_type == "code" else []:
            if line.startswith(TRUTH_MARK):
                return json.loads(line[len(TRUTH_MARK):])
    raise AssertionError("the notebook printed no truth")


def check_jupyter_notebook(nb) -> None:
    truth = _truth_of(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    texts = [output_text(cell) for cell in code]
    summaries = [s for text in texts for s in parse_summary(text)]
    cnn, cnn_after_fit, branches, transfer, transfer_expanded, unbuilt = summaries
    models = truth["models"]
    for summary, model in ((cnn, models[0]), (cnn_after_fit, models[0]), (branches, models[1]),
                           (transfer, models[2]), (transfer_expanded, models[2]),
                           (unbuilt, models[3])):
        assert_matches_truth(summary, model)
    assert cnn_after_fit.optimizer_params and cnn_after_fit.optimizer_params > 0

    (log,) = [log for text in texts for log in parse_training_log(text)]
    assert set(log.history) == set(truth["history"])
    for key, values in truth["history"].items():
        assert log.history[key] == pytest.approx(values, abs=6e-5)  # printed with 4 decimals

    evidence = static_evidence(nb, "keras3.ipynb")
    (run,) = evidence.runs
    assert run.model_id == evidence.models[0].model_id  # the summary printed after fit: same model
    assert run.compile.optimizer == "SGD" and run.compile.learning_rate == 0.01
    assert run.fit.epochs == 3 and run.fit.batch_size == 16
    assert run.cell.heading == "Question 1: a small CNN"
    (evaluation,) = evidence.evaluations
    assert evaluation.results["accuracy"] == pytest.approx(truth["score"][1])
    assert evaluation.results["loss"] == pytest.approx(truth["score"][0])
    assert evaluation.model_id == run.model_id


def test_outputs_saved_by_jupyter_match_what_keras_knew():
    check_jupyter_notebook(nbformat.read(str(DATA / "keras3_jupyter.ipynb"), as_version=4))


@pytest.mark.slow
def test_installed_keras_in_a_real_kernel_round_trips(tmp_path):
    import sys

    sys.path.insert(0, str(DATA))
    try:
        import make_keras3_notebook
    finally:
        sys.path.remove(str(DATA))
    nb = make_keras3_notebook.execute(tmp_path / "keras3_jupyter.ipynb")
    check_jupyter_notebook(nb)
