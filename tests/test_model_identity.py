"""Each Keras model object gets its own id for the whole run, never reused after another model is
garbage-collected; several fits of one object share its id."""

from __future__ import annotations

from grader.execute.bundle import read_bundle
from grader.data.load import load_dataset
from grader.execute.client import run_notebook
from grader.execute.settings import ExecutionSettings
from grader.notebook.cells import cells_from_notebook
from tests.nbfactory import code, notebook

SETUP = """import gc
import numpy as np
import keras
x = np.random.rand(64, 8).astype('float32'); y = keras.utils.to_categorical(np.arange(64) % 2, 2)
def make(units):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(units, activation='relu'),
                              keras.layers.Dense(2, activation='softmax')])
    model.compile(optimizer='sgd', loss='categorical_crossentropy', metrics=['accuracy'])
    return model"""


def _run(nb, tmp_path):
    data = load_dataset("cifar10", source="synthetic", train_size=50, test_size=20).save_npz(tmp_path / "c.npz")
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(cell_timeout=120, datasets={"cifar10": data}))
    assert execution.cell_errors == [], [f"{e.ename}: {e.evalue}" for e in execution.cell_errors]
    return read_bundle(execution.bundle_dir, submission="t.ipynb", cells=cells_from_notebook(nb))


def test_reused_model_variable_gives_each_model_its_own_id_after_garbage_collection(tmp_path):
    cells = [code(SETUP)]
    cells += [code(f"gc.collect()\nmodel = make({units})\nhistory = model.fit(x, y, epochs=1, verbose=0)")
              for units in (3, 4, 5, 6, 7)]
    # A second fit of the last object continues the same model.
    cells.append(code("history = model.fit(x, y, epochs=1, verbose=0)"))
    evidence = _run(notebook(*cells), tmp_path)
    ids = [run.model_id for run in evidence.runs]
    assert len(ids) == 6
    assert len(set(ids[:5])) == 5, ids
    assert ids[5] == ids[4]
    # Each model's own architecture: 8·u+u + u·2+2 parameters.
    assert [run.architecture.total_params for run in evidence.runs[:5]] == [8 * u + u + 2 * u + 2 for u in (3, 4, 5, 6, 7)]
    # Five saved models, one per object.
    assert len({run.weights_file for run in evidence.runs[:5] if run.weights_file}) == 5


def test_models_built_in_functions_and_trained_by_one_helper_get_distinct_ids(tmp_path):
    helper = code("def train(get_model):\n    model = get_model()\n    model.fit(x, y, epochs=1, verbose=0)\n"
                  "    return model.evaluate(x, y, verbose=0)")
    cells = [code(SETUP), helper] + [code(f"gc.collect()\ntrain(lambda: make({u}))") for u in (3, 4, 5)]
    evidence = _run(notebook(*cells), tmp_path)
    assert len({run.model_id for run in evidence.runs}) == 3
