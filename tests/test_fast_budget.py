"""Fast mode bounds each fit by wall-clock time: the recorder's budget callback stops training and
the cut is recorded with the fit."""

from __future__ import annotations

from grader.execute.bundle import read_bundle
from grader.execute.client import run_notebook
from grader.execute.settings import ExecutionSettings
from grader.notebook.cells import cells_from_notebook
from tests.nbfactory import code, notebook

TRAIN = """import numpy as np
import keras
x = np.random.rand(4096, 8).astype('float32'); y = keras.utils.to_categorical(np.arange(4096) % 2, 2)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation='relu'),
                          keras.layers.Dense(2, activation='softmax')])
model.compile(optimizer='sgd', loss='categorical_crossentropy')
history = model.fit(x, y, epochs=50, batch_size=8, verbose=0)"""


def test_fit_over_its_fast_mode_budget_stops_early_and_records_the_cut(tmp_path):
    nb = notebook(code(TRAIN))
    # A budget of zero seconds: the first step is over budget, so training stops after it.
    fast = {"epochs": 50, "train_samples": 4096, "fit_seconds": 0}
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(cell_timeout=120, fast=fast))
    assert execution.cell_errors == [], [f"{e.ename}: {e.evalue}" for e in execution.cell_errors]
    evidence = read_bundle(execution.bundle_dir, submission="t.ipynb", cells=cells_from_notebook(nb))
    (run,) = evidence.runs
    cut = run.fit.capped["time_budget"]
    assert cut["steps_run"] < 50 * 512
    assert run.fit.epochs_run == 1
    assert "fast-mode budget" in cut["message"]
    assert run.architecture.total_params == 8 * 4 + 4 + 4 * 2 + 2
