"""Saved model files are untrusted: checked before Keras sees them, loaded under limits of their own.

A ``.keras`` file of a few kilobytes whose configuration declares a Dense layer with hundreds of
millions of units made the clean verifier, shared by the whole batch, allocate 12.7 GB (issue 14).
Now the declared sizes are read from ``config.json`` without Keras and checked against caps, and
each model is loaded in a process of its own with a memory and a time limit: one bad file costs
its own verification, and the verifier goes on with the next model.

Limits are set small through parameters; nothing here allocates more than a few hundred MB.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.clean.model_files import Caps, ModelFileRefused, inspect_keras_bytes
from grader.clean.client import Verifier
from grader.clean.measure import load_saved_model
from grader.clean.protocol import VerifyRequest
from grader.clean.worker import _handle, run_limited

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and fork: Linux")


def _layer(class_name: str, config: dict, input_shape: list | None = None) -> dict:
    layer = {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}
    if input_shape is not None:
        layer["build_config"] = {"input_shape": input_shape}
    return layer


def _sequential(features: int, *units: int) -> dict:
    """A config.json as Keras 3 writes it for Input(features) → Dense(u) → … ."""
    layers = [_layer("InputLayer", {"batch_shape": [None, features], "dtype": "float32", "name": "input_layer"})]
    width = features
    for i, n in enumerate(units):
        layers.append(_layer("Dense", {"name": f"dense_{i}", "units": n, "activation": "relu", "use_bias": True},
                             [None, width]))
        width = n
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
            "registered_name": None, "build_config": {"input_shape": [None, features]}}


def _keras_zip(config: dict | bytes, weights: bytes = b"\0" * 12_000, extra: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", config if isinstance(config, bytes) else json.dumps(config))
        archive.writestr("model.weights.h5", weights)
        for i in range(extra):
            archive.writestr(f"assets/{i}", b"")
    return buffer.getvalue()


def _rewritten(path: Path, target: Path, units: int) -> Path:
    """``path`` (a real saved model) with its first Dense layer's units replaced: the attack."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            if name == "config.json":
                config = json.loads(data)
                dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
                dense["config"]["units"] = units
                data = json.dumps(config).encode()
            out.writestr(name, data)
    return target


# -- the declared sizes, checked without Keras


def test_a_dense_layer_with_absurd_units_is_refused_before_keras_is_imported(tmp_path, monkeypatch):
    path = tmp_path / "m1.keras"
    path.write_bytes(_keras_zip(_sequential(8, 400_000_000, 3)))
    monkeypatch.setitem(sys.modules, "keras", None)  # any `import keras` now fails: nothing may be built
    model, problem = load_saved_model(path)
    assert model is None
    assert problem["status"] == "refused"
    assert "400,000,000" in problem["message"] and "cap" in problem["message"]


def test_a_declared_total_over_the_parameter_cap_is_refused_with_the_count():
    # 3072 inputs × 100,000 units: every dimension is plausible, the total is not.
    with pytest.raises(ModelFileRefused, match=r"declares 307,300,000 parameters, over the grader's cap of 200,000,000"):
        inspect_keras_bytes(_keras_zip(_sequential(3072, 100_000)), Caps())


def test_a_configuration_far_larger_than_its_weights_file_is_refused():
    # 18M parameters declared, 12 kB of weights: the configuration was rewritten after the save.
    with pytest.raises(ModelFileRefused, match="weights file holds only"):
        inspect_keras_bytes(_keras_zip(_sequential(8, 2_000_000, 3)))


def test_an_honest_configuration_is_counted_and_accepted():
    declared = inspect_keras_bytes(_keras_zip(_sequential(3072, 64, 10)))
    assert declared.parameters == 3072 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize("archive, caps, words", [
    (b"not a zip at all", Caps(), "not a readable zip"),
    (_keras_zip(_sequential(8, 4), extra=80), Caps(), "holds 83 files"),
    (_keras_zip(_sequential(8, 4)), Caps(config_bytes=100), "config.json is"),
    (_keras_zip(_sequential(8, 4), weights=b"\0" * 50_000), Caps(total_bytes=40_000), "unpacks to"),
    (_keras_zip(b"[" * 100_000 + b"]" * 100_000), Caps(), "nested too deeply"),
    (_keras_zip(b"{not json"), Caps(), "not valid JSON"),
])
def test_zip_and_config_caps(archive, caps, words):
    with pytest.raises(ModelFileRefused, match=words):
        inspect_keras_bytes(archive, caps)


# -- one process per model, under its own limits (pure-Python handlers: no Keras needed)


def _allocate(request):
    block = bytearray(request["bytes"])  # touched, so it is really held
    return {"status": "ok", "held": len(block)}


def _sleep(request):
    time.sleep(request["seconds"])
    return {"status": "ok"}


def _crash(request):
    os.abort()


@linux_only
def test_an_allocation_over_the_memory_limit_is_that_models_limit_and_the_next_one_runs():
    answer = run_limited(_allocate, {"bytes": 512 * 2**20}, memory=32 * 2**20, seconds=60, method="fork")
    assert answer["status"] == "limit" and "memory limit of 32 MiB" in answer["message"]
    answer = run_limited(_allocate, {"bytes": 2**20}, memory=32 * 2**20, seconds=60, method="fork")
    assert answer == {"status": "ok", "held": 2**20}


@linux_only
def test_a_model_over_its_time_limit_is_stopped():
    answer = run_limited(_sleep, {"seconds": 60}, memory=None, seconds=0.5, method="fork")
    assert answer["status"] == "limit" and "longer than the verifier's limit" in answer["message"]


@linux_only
def test_a_crash_under_the_memory_limit_is_reported_as_the_limit_and_otherwise_as_a_crash():
    assert run_limited(_crash, {}, memory=2**30, seconds=60, method="fork")["status"] == "limit"
    answer = run_limited(_crash, {}, memory=None, seconds=60, method="fork")
    assert answer["status"] == "error" and "SIGABRT" in answer["message"]


@linux_only
def test_a_models_process_ends_with_the_worker():
    import subprocess

    import psutil

    code = ("from grader.clean.worker import run_limited; from tests.hostile.test_untrusted_models import _sleep; "
            "run_limited(_sleep, {'seconds': 120}, seconds=300, method='fork')")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
    try:
        children: list = []
        for _ in range(300):
            children = psutil.Process(worker.pid).children()
            if children:
                break
            time.sleep(0.1)
        assert children, "the worker started no process for the model"
        time.sleep(0.5)  # past the child's set-up, so that it is the parent's death it notices
    finally:
        worker.kill()
        worker.wait()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive


# -- with Keras: real saved models


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    import keras

    base = tmp_path_factory.mktemp("untrusted-models")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(base / "honest.keras")
    rng = np.random.default_rng(0)
    np.savez(base / "data.npz", x_test=rng.random((64, 8)).astype("float32"), y_test=rng.integers(0, 3, 64),
             x_train=rng.random((64, 8)).astype("float32"))
    return {
        "honest": base / "honest.keras",
        "huge": _rewritten(base / "honest.keras", base / "huge.keras", 400_000_000),  # 12.8 GB of kernel
        # 13.6M parameters: within the caps, about 110 MB to build (kernel and its initial values).
        "big": _rewritten(base / "honest.keras", base / "big.keras", 1_700_000),
        "data": base / "data.npz",
    }


def test_a_real_model_rewritten_to_absurd_units_is_refused_without_building(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    model, problem = load_saved_model(saved["huge"])
    assert model is None and problem["status"] == "refused" and "400,000,000 (units)" in problem["message"]


def test_retraining_refuses_the_same_file_before_building_it(saved, monkeypatch):
    from grader.data.dataset import Dataset
    from grader.model.evidence import Architecture, CellRef, CompileInfo, FitArgs, TrainingRun
    from grader.clean.retrain import retrain

    run = TrainingRun(index=0, model_id="m1", cell=CellRef(3), architecture=Architecture(),
                      compile=CompileInfo(optimizer="Adam", learning_rate=0.001, loss="categorical_crossentropy"),
                      fit=FitArgs(epochs=1, batch_size=32), weights_file=str(saved["huge"]))
    x, y = np.zeros((8, 8), "float32"), np.zeros(8, "int64")
    result = retrain(run, Dataset("tiny", x, y, x, y, source="test"))
    assert result.status == "refused" and "400,000,000 (units)" in result.message and result.accuracy is None


def test_the_estimate_matches_keras_for_course_layers(tmp_path):
    import keras

    layers = keras.layers
    model = keras.Sequential([
        keras.Input((32, 32, 3)), layers.Conv2D(8, 3, activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling2D(), layers.SeparableConv2D(8, 3), layers.Flatten(), layers.Dense(16),
        layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])
    model.save(tmp_path / "cnn.keras")
    assert inspect_keras_bytes((tmp_path / "cnn.keras").read_bytes()).parameters == model.count_params()


@pytest.mark.slow  # one verifier worker: a Keras import and a few model processes
@linux_only
def test_one_verifier_session_refuses_limits_and_still_verifies_the_honest_model(saved):
    def request(name, **extra):
        return VerifyRequest(model_path=str(saved[name]), data_path=str(saved["data"]), model_id=name, **extra)

    expected = _handle({"model_path": str(saved["honest"]), "data_path": str(saved["data"])})
    with Verifier() as verifier:
        refused = verifier.verify(request("huge"))
        limited = verifier.verify(request("big", memory_limit=160 * 2**20))
        honest = verifier.verify(request("honest"))
    assert refused.status == "refused" and "400,000,000" in refused.message, refused.message
    assert limited.status == "limit" and "memory limit of 160 MiB" in limited.message, limited.message
    assert honest.status == "ok", honest.message
    assert honest.test_accuracy.value == expected["accuracy"]
    assert honest.total_params == expected["total_params"] == 51
    assert honest.confusion == expected["confusion"]
