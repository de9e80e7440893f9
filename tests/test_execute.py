"""Execution and the recorder: what a real kernel run records.

One notebook that exercises most behaviours runs once per module (a kernel with Keras costs a few
seconds); each test asserts one fact about it. Kernel deaths and timeouts run small notebooks of
their own that never import Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.execute.bundle import read_bundle
from grader.data.load import load_dataset
from grader.execute.client import kernel_environment, run_notebook
from grader.execute.settings import ExecutionSettings
from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, SMALL_CNN_PARAMS, code, md, notebook


def _cells(nb):
    from grader.notebook.cells import cells_from_notebook

    return cells_from_notebook(nb)


@pytest.fixture(scope="module")
def cifar_npz(tmp_path_factory) -> Path:
    data = load_dataset("cifar10", source="synthetic", train_size=600, test_size=200)
    return data.save_npz(tmp_path_factory.mktemp("data") / "cifar10.npz")


LAB = notebook(
    md("# Lab\n## 1. Data"),                                                        # 0
    code(LOAD_CIFAR),                                                              # 1
    md("## 2. CNN classifier"),                                                    # 2
    code(SMALL_CNN + "\nmodel = CreateCNNModel()\n"
         "history = model.fit(x_train, y_train, epochs=3, batch_size=32, validation_split=0.25, verbose=0)"),  # 3
    code("score = model.evaluate(x_test, y_test, verbose=0)"),                     # 4
    md("## 3. Again, reusing `model`"),                                            # 5
    code("model = CreateCNNModel()\nhistory = model.fit(x_train, y_train, epochs=2, verbose=0)\n"
         "history = model.fit(x_train, y_train, epochs=1, verbose=0)"),            # 6
    code("undefined_name + 1"),                                                    # 7
    code("import os\nleaked = sorted(k for k in os.environ if 'SECRET' in k)\nprint(leaked)"),  # 8
    code("answer = 160"),                                                          # 9
)


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory, cifar_npz):
    os.environ["NN_GRADER_TEST_SECRET"] = "do-not-leak"
    try:
        workdir = tmp_path_factory.mktemp("lab")
        settings = ExecutionSettings(cell_timeout=120, datasets={"cifar10": cifar_npz},
                                     functions=["CreateCNNModel"], variables=["answer"])
        execution = run_notebook(LAB.copy(), workdir / "run", settings)
    finally:
        del os.environ["NN_GRADER_TEST_SECRET"]
    evidence = read_bundle(execution.bundle_dir, submission="lab.ipynb", cells=_cells(LAB))
    return execution, evidence


def test_every_fit_call_is_recorded_in_order(lab_run):
    _, evidence = lab_run
    assert [run.index for run in evidence.runs] == [0, 1, 2]


def test_reassigned_model_variable_gets_a_new_model_id(lab_run):
    _, evidence = lab_run
    first, second, third = evidence.runs
    assert first.model_id != second.model_id
    assert second.model_id == third.model_id  # two fits on one model share it


def test_epochs_of_several_fits_on_one_model_add_up(lab_run):
    _, evidence = lab_run
    second = evidence.runs[1]
    assert evidence.epochs_trained(second.model_id) == 3


def test_recorded_parameter_count_is_exact(lab_run):
    _, evidence = lab_run
    arch = evidence.runs[0].architecture
    assert arch.total_params == SMALL_CNN_PARAMS
    assert arch.layer_classes() == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert arch.layers[0].output_shape == [None, 30, 30, 8]
    assert arch.layers[0].config["filters"] == 8 and arch.layers[0].config["in_channels"] == 3


def test_history_has_one_value_per_epoch_with_validation(lab_run):
    _, evidence = lab_run
    history = evidence.runs[0].history
    assert len(history["accuracy"]) == 3 and len(history["val_accuracy"]) == 3


def test_fit_arguments_are_recorded(lab_run):
    _, evidence = lab_run
    fit = evidence.runs[0].fit
    assert (fit.epochs, fit.batch_size, fit.validation_split, fit.train_samples) == (3, 32, 0.25, 600)
    assert fit.x is not None and fit.x.maximum <= 1.0


def test_compile_settings_are_recorded(lab_run):
    _, evidence = lab_run
    compiled = evidence.runs[0].compile
    assert compiled.optimizer == "Adam" and compiled.loss == "categorical_crossentropy"
    assert compiled.learning_rate == pytest.approx(0.001)


def test_fit_records_the_calling_cell_and_its_heading(lab_run):
    _, evidence = lab_run
    assert evidence.runs[0].cell.index == 3
    assert "CNN classifier" in (evidence.runs[0].cell.heading or "")
    assert [run.cell.index for run in evidence.runs[1:]] == [6, 6]


def test_evaluate_is_recorded_with_named_results(lab_run):
    _, evidence = lab_run
    (evaluation,) = evidence.evaluations
    assert evaluation.cell.index == 4 and evaluation.samples == 200
    assert set(evaluation.results) == {"loss", "accuracy"}
    assert evaluation.model_id == evidence.runs[0].model_id


def test_failing_cell_is_recorded_and_later_cells_still_run(lab_run):
    execution, evidence = lab_run
    (error,) = execution.cell_errors
    assert (error.cell.index, error.ename) == (7, "NameError")
    assert "undefined_name" in error.traceback
    assert any(v.name == "answer" and v.value == 160 for v in evidence.variables)


def test_kernel_environment_is_scrubbed_of_grader_secrets(lab_run):
    execution, _ = lab_run
    printed = "".join(o.get("text", "") for o in execution.notebook.cells[8].outputs)
    assert printed.strip() == "[]"


def test_weights_are_saved_once_per_model_inside_the_bundle(lab_run):
    execution, evidence = lab_run
    files = {run.weights_file for run in evidence.runs}
    assert files == {f"models/{evidence.runs[0].model_id}.keras", f"models/{evidence.runs[1].model_id}.keras"}
    assert all((execution.bundle_dir / f).is_file() for f in files)


def test_model_built_by_named_function_is_recorded_untrained(lab_run):
    _, evidence = lab_run
    built = [m for m in evidence.models if m.built_by == "CreateCNNModel"]
    assert len(built) == 1 and built[0].architecture.total_params == SMALL_CNN_PARAMS


def test_model_left_in_a_variable_is_linked_to_its_runs(lab_run):
    _, evidence = lab_run
    assert evidence.runs[2].variable == "model"
    assert evidence.runs[0].variable is None  # the first model was replaced


def test_dataset_loader_serves_the_graders_copy(lab_run):
    _, evidence = lab_run
    assert any(f.kind == "dataset" and "600 training" in f.message for f in evidence.findings)


def test_fast_mode_caps_epochs_and_samples_but_records_what_was_asked(tmp_path, cifar_npz):
    nb = notebook(code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                         "model.fit(x_train, y_train, epochs=25, batch_size=32, verbose=0)"))
    settings = ExecutionSettings(datasets={"cifar10": cifar_npz}, fast={"epochs": 1, "train_samples": 64})
    execution = run_notebook(nb, tmp_path / "run", settings)
    (run,) = read_bundle(execution.bundle_dir, submission="x", cells=_cells(nb)).runs
    assert run.fit.epochs == 25 and run.fit.epochs_run == 1
    assert run.fit.capped == {"epochs": [25, 1], "train_samples": [600, 64]}
    assert run.fast_mode


def test_dead_kernel_is_detected_and_recorded(tmp_path):
    nb = notebook(code("x = 1"), code("import os\nos._exit(3)"), code("print('never')"))
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(cell_timeout=30))
    assert execution.kernel_died and "cell 2" in execution.kernel_died  # counted from 1
    assert execution.cells_run == 1


def test_the_next_notebook_runs_normally_after_a_dead_kernel(tmp_path):
    run_notebook(notebook(code("import os\nos._exit(1)")), tmp_path / "a", ExecutionSettings(cell_timeout=30))
    execution = run_notebook(notebook(code("print(6 * 7)")), tmp_path / "b", ExecutionSettings(cell_timeout=30))
    assert execution.kernel_died is None
    assert "42" in execution.notebook.cells[0].outputs[0]["text"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts this process's threads in /proc")
def test_each_kernels_client_is_ended_no_zmq_thread_is_left_per_notebook(tmp_path):
    """Its sockets are closed and its context ended in the event loop's thread (another thread
    ending them under the loop aborts the grader); a batch of a thousand must not keep a
    thousand zmq I/O threads."""
    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    run_notebook(notebook(code("x = 0")), tmp_path / "warm", ExecutionSettings(cell_timeout=30))
    before = threads()
    for n in range(3):
        run_notebook(notebook(code(f"x = {n}")), tmp_path / f"run{n}", ExecutionSettings(cell_timeout=30))
    assert threads() <= before


def test_cell_timeout_interrupts_the_cell_and_later_cells_run(tmp_path):
    nb = notebook(code("import time\ntime.sleep(60)"), code("print('still here')"))
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(cell_timeout=2))
    assert execution.cell_errors[0].cell.index == 0
    assert "still here" in execution.notebook.cells[1].outputs[0]["text"]


def test_notebook_timeout_stops_the_run(tmp_path):
    nb = notebook(code("import time\ntime.sleep(1.5)"), code("time.sleep(1.5)"), code("time.sleep(1.5)"), code("print('late')"))
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(cell_timeout=30, notebook_timeout=3))
    assert execution.timed_out and "limit" in execution.timed_out
    assert not execution.notebook.cells[3].get("outputs")


def test_support_files_are_copied_into_the_working_folder(tmp_path):
    helper = tmp_path / "Custom.py"
    helper.write_text("def PlotModelEval():\n    return 'plotted'\n")
    nb = notebook(code("from Custom import PlotModelEval\nprint(PlotModelEval())"))
    execution = run_notebook(nb, tmp_path / "run", ExecutionSettings(support_files=[helper]))
    assert execution.cell_errors == []
    assert "plotted" in execution.notebook.cells[0].outputs[0]["text"]


def test_kernel_home_and_temp_point_into_the_working_folder(tmp_path):
    env = kernel_environment(tmp_path, ExecutionSettings())
    assert env["HOME"] == str(tmp_path) and env["TMPDIR"].startswith(str(tmp_path))
    assert not any("SECRET" in key or "TOKEN" in key for key in env)
