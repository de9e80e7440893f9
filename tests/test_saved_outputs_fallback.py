"""A notebook that no longer runs is graded from what its saved outputs show, at level reported."""

from __future__ import annotations

import nbformat

from grader.batch.local import grade_batch
from grader.model.evidence import Level
from grader.config import GradingOptions
from grader.model.results import Status, Student
from grader.rubric.load import load_rubric_text
from grader.collect import Submission
from tests.nbfactory import code, md, notebook, write

SUMMARY = """Layer (type)                 Output Shape              Param #
=================================================================
conv2d_1 (Conv2D)            (None, 28, 28, 32)        320
_________________________________________________________________
flatten_1 (Flatten)          (None, 25088)             0
_________________________________________________________________
dense_1 (Dense)              (None, 10)                250890
=================================================================
Total params: 251,210
Trainable params: 251,210
Non-trainable params: 0
_________________________________________________________________
"""
LOG = """Epoch 1/2
60000/60000 [==============================] - 12s - loss: 0.31 - acc: 0.91 - val_loss: 0.12 - val_acc: 0.96
Epoch 2/2
60000/60000 [==============================] - 12s - loss: 0.10 - acc: 0.97 - val_loss: 0.08 - val_acc: 0.97
"""

RUBRIC = """
name: saved-outputs
tasks:
  - id: cnn1
    title: the one-layer CNN
    model: {section: 'cnn1'}
    checks:
      - total_params: {equals: 251_210, points: 2}
      - epochs: {at_most: 5, points: 1}
      - total_params: {equals: 251_210, points: 1, min_level: executed, title: "executed parameter count"}
"""


def _old_notebook(tmp_path):
    build = code("from keras.layers.convolutional import Convolution2D_that_no_longer_exists\nmodel.summary()")
    build.outputs = [nbformat.v4.new_output("stream", name="stdout", text=SUMMARY)]
    train = code("model.fit(X_train, Y_train, nb_epoch=2, validation_data=(X_test, Y_test))")
    train.outputs = [nbformat.v4.new_output("stream", name="stdout", text=LOG)]
    return write(notebook(md("## cnn1"), build, train), tmp_path / "old.ipynb")


def test_notebook_that_no_longer_runs_is_graded_from_its_saved_outputs(tmp_path):
    path = _old_notebook(tmp_path)
    rubric = load_rubric_text(RUBRIC)
    (result,) = grade_batch([Submission(path=path, student=Student(key="old"))], rubric, tmp_path / "out",
                            options=GradingOptions(preflight=False, verify=False))
    params, epochs, executed_only = result.tasks[0].checks
    assert (params.status, params.level) == (Status.PASSED, Level.REPORTED)
    assert epochs.status is Status.PASSED
    assert executed_only.status is Status.NEEDS_REVIEW and executed_only.points == 0  # min_level refuses the saved figure
    finding = next(f for f in result.evidence.findings if f.kind == "saved_outputs")
    assert "cell 2" in finding.message and "reported" in finding.message


def test_saved_outputs_are_not_used_when_the_run_trains(tmp_path):
    from grader.model.evidence import Architecture, Evidence, TrainingRun, CellRef
    from grader.pipeline.problems import fall_back_to_saved_outputs

    ran = Evidence("x", runs=[TrainingRun(0, "m1", CellRef(1), Architecture(total_params=5))])
    saved = Evidence("x", runs=[TrainingRun(0, "s1", CellRef(1), Architecture(total_params=9), level=Level.REPORTED)])
    fall_back_to_saved_outputs(ran, saved)
    assert [r.model_id for r in ran.runs] == ["m1"] and not ran.findings
