"""Notebooks written for Keras 1/2 run under the grader's recorder, record their models, and
say which removed API was mapped (issue: real course notebooks run)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.execute.bundle import read_bundle
from grader.data.load import load_dataset
from grader.execute.client import run_notebook
from grader.execute.settings import ExecutionSettings
from grader.notebook.cells import cells_from_notebook

LEGACY = sorted((Path(__file__).parent / "notebooks" / "legacy").glob("*.ipynb"))
DEFAULT_RUN = {"optimizer_lr_decay.ipynb", "fit_nb_epoch.ipynb"}


def _run(path: Path, tmp_path: Path, *, compat: bool = True):
    nb = nbformat.read(path, as_version=4)
    data = load_dataset("cifar10", source="synthetic", train_size=200, test_size=50).save_npz(tmp_path / "c.npz")
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(cell_timeout=120, compat=compat, datasets={"cifar10": data}))
    evidence = read_bundle(execution.bundle_dir, submission=path.name, cells=cells_from_notebook(nb))
    return nb, execution, evidence


def _check(path: Path, tmp_path: Path) -> None:
    nb, execution, evidence = _run(path, tmp_path)
    assert execution.cell_errors == [], [f"{e.cell.index}: {e.ename}: {e.evalue}" for e in execution.cell_errors]
    compat_messages = " | ".join(f.message for f in evidence.findings if f.kind == "compat")
    expected = nb.metadata["nn_grader_test"]["expected_findings"]
    missing = [api for api in expected if api not in compat_messages]
    assert not missing, f"findings not shown: {missing}; shown: {compat_messages}"
    if "fit(" in "".join(c.source for c in nb.cells) or "fit_generator(" in "".join(c.source for c in nb.cells):
        assert evidence.runs and all(run.architecture.total_params > 0 for run in evidence.runs)


@pytest.mark.parametrize("path", [p for p in LEGACY if p.name in DEFAULT_RUN], ids=lambda p: p.stem)
def test_legacy_notebook_runs_records_and_reports_the_mapping(path, tmp_path):
    _check(path, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in LEGACY if p.name not in DEFAULT_RUN], ids=lambda p: p.stem)
def test_every_legacy_notebook_runs_under_the_recorder(path, tmp_path):
    _check(path, tmp_path)


def test_nb_epoch_is_recorded_as_the_epochs_asked_for(tmp_path):
    from tests.nbfactory import code, notebook, write

    nb = notebook(code("import numpy as np\nimport keras\n"
                       "x = np.random.rand(64, 8); y = keras.utils.to_categorical(np.arange(64) % 2, 2)\n"
                       "model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation='softmax')])\n"
                       "model.compile(optimizer='sgd', loss='categorical_crossentropy')\n"
                       "model.fit(x, y, nb_epoch=3, verbose=0)"))
    _, execution, evidence = _run(write(nb, tmp_path / "nb_epoch.ipynb"), tmp_path)
    (run,) = evidence.runs
    assert (run.fit.epochs, run.epochs_trained) == (3, 3)


def test_without_compat_the_removed_argument_is_a_student_error(tmp_path):
    _, execution, _ = _run(next(p for p in LEGACY if p.name == "optimizer_lr_decay.ipynb"), tmp_path, compat=False)
    assert any("lr" in e.evalue for e in execution.cell_errors)
