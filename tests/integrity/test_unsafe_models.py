"""Models the clean verifier cannot load safely, and models that want more than the test images.

A Lambda layer needs ``safe_mode=False``: the grader runs such a model only in a sandbox that has
the model file and the test images, never the labels, and scores the predictions that come back
itself. A cheat that pairs a Lambda with code that reads the labels gets what an honest model
gets; an answer that is not one row of float32 predictions per image is refused. A model that
takes a second input (the labels) is not measured and its accuracy is never credited.

The sandboxed runs start Python and Keras in bubblewrap (seconds each): marked slow.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

import grader
from grader.checks import grade
from grader.clean import sandboxed
from grader.clean.measure import integer_labels, score, serve_request
from grader.clean.client import Verifier
from grader.clean.protocol import VerifyRequest, verification_from_json
from grader.clean.worker import run_limited
from grader.execute.sandbox import probe_bwrap
from grader.model.evidence import (
    VERIFICATION_METHOD_TITLES,
    Level,
    Verification,
    VerificationMethod,
    VerificationStatus,
    from_json,
    to_json,
)
from grader.model.results import Status
from tests.rubric_fixtures import lab_evidence, rubric, verified

N, CLASSES = 64, 3
needs_bwrap = pytest.mark.skipif(probe_bwrap() is not None, reason=f"no sandbox here: {probe_bwrap()}")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("grader-data")
    path = folder / "test.npz"
    np.savez(path, x_test=rng.integers(0, 256, (N, 4, 4, 3)).astype("uint8"), y_test=rng.integers(0, CLASSES, (N, 1)))
    # Readable by anyone, like a shared dataset cache: what keeps the labels from the sandboxed
    # process must be that the sandbox does not show them, not their permissions.
    os.chmod(folder, 0o755)
    os.chmod(path, 0o644)
    return path


def _save(model, folder: Path, name: str) -> Path:
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def _lambda_model(source: str, *, dense: bool = True, output_shape=None, seed: int = 1):
    """A tiny CIFAR-shaped Sequential ending in ``Lambda(eval(source))`` (a lambda: Keras stores its bytecode)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((4, 4, 3)), keras.layers.Flatten()]
    if dense:
        layers.append(keras.layers.Dense(CLASSES, activation="softmax"))
    layers.append(keras.layers.Lambda(eval(source), output_shape=output_shape))
    return keras.Sequential(layers)


def _request(model_path: Path, data: Path, **extra) -> dict:
    return {"model_path": str(model_path), "data_path": str(data), "preprocess": "scale255", **extra}


def _honest_accuracy(model, data: Path) -> float:
    with np.load(data) as npz:
        x, y = npz["x_test"].astype("float32") / 255.0, npz["y_test"]
    return score(np, np.asarray(model.predict(x, batch_size=256, verbose=0)), integer_labels(y))["accuracy"]


# -- the sandboxed process's answer is untrusted


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_well_formed_answer_gives_its_predictions():
    probs, problem = sandboxed.read_answer(_npy(np.eye(3, dtype="<f4")[[0, 1, 2, 0]]), rows=4)
    assert problem is None and probs.shape == (4, 3) and probs.dtype == np.float32


@pytest.mark.parametrize("raw, words", [
    (_npy(np.zeros((3, 3), dtype="<f4")), "3 rows of predictions for 4 test images"),
    (_npy(np.zeros((5, 3), dtype="<f4")), "5 rows of predictions for 4 test images"),
    (_npy(np.zeros((4, 3), dtype="<f8")), "float64 values, not float32"),
    (_npy(np.zeros((4, 3), dtype="int64")), "int64 values"),
    (_npy(np.zeros((4, 3, 2), dtype="<f4")), "shape (4, 3, 2)"),
    (_npy(np.asfortranarray(np.zeros((4, 3), dtype="<f4"))), "Fortran order"),
    (_npy(np.zeros((4, sandboxed.MAX_COLUMNS + 1), dtype="<f4")), "1,001 outputs per image"),
    (_npy(np.zeros((4, 3), dtype="<f4")) + b"tail", "bytes of data where its shape says 48"),
    (_npy(np.zeros((4, 3), dtype="<f4"))[:-4], "bytes of data where its shape says 48"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}\n", "header is not valid"),
    (b"PK\x03\x04 a zip, or anything else", "not a .npy array"),
])
def test_a_malformed_answer_is_refused_saying_what_is_wrong(raw, words):
    probs, problem = sandboxed.read_answer(raw, rows=4)
    assert probs is None and problem["status"] is VerificationStatus.REFUSED
    assert words in problem["message"] and "refused" in problem["message"]


def test_a_header_claiming_a_huge_array_is_refused_before_anything_is_allocated():
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 3)})
    probs, problem = sandboxed.read_answer(buffer.getvalue() + bytes(48), rows=4)
    assert probs is None and problem["status"] is VerificationStatus.REFUSED
    assert "1,000,000,000,000 rows of predictions for 4 test images" in problem["message"]


def test_under_a_budget_the_first_batch_at_least_is_expected():
    assert sandboxed.read_answer(_npy(np.zeros((32, 3), dtype="<f4")), rows=64, budget=True, batch=32)[1] is None
    _, problem = sandboxed.read_answer(_npy(np.zeros((8, 3), dtype="<f4")), rows=64, budget=True, batch=32)
    assert problem["status"] is VerificationStatus.REFUSED and "32 to 64 expected" in problem["message"]


def test_the_models_own_error_in_the_sandbox_is_an_error_in_printable_words():
    _, problem = sandboxed.read_answer(b'{"error": "ValueError: bad\\u0000\\nthing"}', rows=4)
    assert problem["status"] is VerificationStatus.ERROR and problem["message"].endswith("ValueError: bad thing")


def test_no_answer_from_a_killed_process_is_a_limit():
    assert sandboxed.read_answer(b"", rows=4, code=137)[1]["status"] is VerificationStatus.LIMIT
    assert sandboxed.read_answer(b"", rows=4, code=1)[1]["status"] is VerificationStatus.ERROR


def test_the_models_process_hands_its_limits_to_the_handler():
    """What bounds the sandboxed run: the handler sees the seconds its model's process has."""
    answer = run_limited(lambda request: {"status": "ok", "limits": request.get("limits")}, {"kind": "verify"},
                         memory=None, seconds=30.0, method="fork")
    assert answer["limits"] == {"memory": None, "seconds": 30.0}


def test_every_verification_method_has_a_title_and_the_default_is_not_stored():
    assert set(VERIFICATION_METHOD_TITLES) == set(VerificationMethod)
    assert all(method.title.strip() for method in VerificationMethod)
    assert "method" not in to_json(Verification("m1", "ok"))
    assert from_json(Verification, to_json(Verification("m1", "ok", method="sandbox"))).method is VerificationMethod.SANDBOX


# -- without a sandbox


def test_without_bubblewrap_a_lambda_model_stays_unsafe_and_says_what_would_verify_it(tmp_path, data, monkeypatch):
    path = _save(_lambda_model("lambda t: t"), tmp_path, "lambda")
    monkeypatch.setattr("grader.execute.sandbox.probe_bwrap", lambda: "bubblewrap is not installed")
    monkeypatch.setattr(sandboxed, "predict", lambda *a, **k: pytest.fail("no sandbox: nothing may run the model"))
    answer = serve_request(_request(path, data))
    assert answer["status"] is VerificationStatus.UNSAFE
    assert "bubblewrap is not installed" in answer["message"] and "installing bubblewrap" in answer["message"]
    assert verification_from_json("m1", answer).test_accuracy is None


# -- a model that takes the labels as an input


def test_a_model_given_the_labels_as_a_second_input_is_not_measured(tmp_path, data):
    import keras

    images, labels = keras.Input((4, 4, 3)), keras.Input((1,))
    hidden = keras.layers.Concatenate()([keras.layers.Flatten()(images), labels])
    path = _save(keras.Model([images, labels], keras.layers.Dense(CLASSES, activation="softmax")(hidden)), tmp_path, "two")
    answer = serve_request(_request(path, data))
    assert answer["status"] is VerificationStatus.INPUTS
    assert answer["message"].startswith("the model takes 2 inputs; the grader feeds only the test images")
    verification = verification_from_json("m1", answer)
    assert verification.status.title == "takes more inputs than the test images" and verification.test_accuracy is None


def _two_inputs_evidence():
    evidence = lab_evidence(verifications=[verified("m1", 0, status="inputs", message="the model takes 2 inputs; "
                                                    "the grader feeds only the test images")])
    evidence.evaluations[0].results = {"loss": 0.0, "accuracy": 1.0}  # evaluate([x_test, y_test], y_test) in the kernel
    return evidence


@pytest.mark.parametrize("evidence_line", ["", "accuracy_evidence: executed"])
def test_an_accuracy_check_of_a_model_with_two_inputs_is_never_passed(evidence_line):
    marks = rubric(f"""
        name: t
        dataset: cifar10
        {evidence_line}
        tasks:
          - id: cnn
            model: {{fit: 2}}
            checks:
              - test_accuracy: 62%
              - val_accuracy: 10%
              - epochs: {{at_most: 25}}
        """)
    accuracy, val, epochs = grade(marks, _two_inputs_evidence())[0].checks
    for check in (accuracy, val):
        assert check.status is Status.NEEDS_REVIEW and check.points == 0, check.message
        assert check.details["needs_review"] == "inputs" and "the model takes 2 inputs" in check.message.lower()
    assert epochs.status is Status.PASSED  # nothing about the epochs is in doubt


# -- in the sandbox (bubblewrap)


@pytest.mark.slow
@needs_bwrap
def test_a_lambda_model_is_verified_in_the_sandbox_with_its_accuracy(tmp_path, data):
    model = _lambda_model("lambda t: t * 2.0")
    path = _save(model, tmp_path, "lambda")
    with Verifier(timeout_s=300) as verifier:  # the worker's own process per model, under its limits
        verification = verifier.verify(VerifyRequest(model_path=str(path), data_path=str(data), model_id="m1",
                                                     preprocess="scale255"))
    assert verification.status is VerificationStatus.OK, verification.message
    assert verification.method is VerificationMethod.SANDBOX and verification.samples == N
    assert verification.test_accuracy.level is Level.VERIFIED
    assert verification.test_accuracy.value == pytest.approx(_honest_accuracy(model, data))
    assert "sandbox" in verification.test_accuracy.source and "measured in a sandbox" in verification.message


@pytest.mark.slow
@needs_bwrap
def test_a_sandboxed_run_past_its_time_limit_is_stopped(tmp_path):
    path = _save(_lambda_model("lambda t: t"), tmp_path, "lambda")
    probs, problem = sandboxed.predict(path.read_bytes(), np.zeros((4, 4, 4, 3), "float32"), budget_s=None, seconds=0.5)
    assert probs is None and problem["status"] is VerificationStatus.LIMIT and "limit of 0.5 s" in problem["message"]


@pytest.mark.slow
@needs_bwrap
def test_a_lambda_that_reads_the_labels_gets_no_better_than_an_honest_model(tmp_path, data):
    cheat = (f"lambda t: t if not __import__('os').access({str(data)!r}, 4) else t * 0.0 + __import__('keras').ops."
             f"one_hot(__import__('numpy').load({str(data)!r})['y_test'].reshape(-1)[:{N}], {CLASSES})")
    model = _lambda_model(cheat, output_shape=(CLASSES,))
    path = _save(model, tmp_path, "cheat")
    honest = _lambda_model("lambda t: t")
    honest.set_weights(model.get_weights())
    assert _honest_accuracy(model, data) == 1.0  # where the labels can be read, the cheat works
    answer = serve_request(_request(path, data))
    assert answer["status"] is VerificationStatus.OK
    assert answer["accuracy"] == pytest.approx(_honest_accuracy(honest, data)) and answer["accuracy"] < 1.0


@pytest.mark.slow
@needs_bwrap
def test_the_sandbox_shows_neither_the_labels_nor_the_graders_files_nor_its_environment(tmp_path, data, monkeypatch):
    secret = "NN_GRADER_TEST_SECRET"
    monkeypatch.setenv(secret, "token")
    model_file = tmp_path / "probe.keras"
    paths = [str(data), str(model_file), grader.__file__, str(Path.home() / ".bashrc")]
    visible = [p for p in paths if os.access(p, os.R_OK) and os.path.getsize(p) > 0]  # what the grader itself sees
    probe = ("lambda t: t[:, :1] * 0.0 + __import__('keras').ops.convert_to_tensor([[float(__import__('os').access(p, 4) "
             f"and __import__('os').path.getsize(p) > 0) for p in {paths!r}] + [float({secret!r} in __import__('os').environ)]])")
    _save(_lambda_model(probe, dense=False, output_shape=(len(paths) + 1,)), tmp_path, "probe")
    assert len(visible) >= 3 and os.environ[secret]
    with np.load(data) as npz:
        x = npz["x_test"].astype("float32")
    probs, problem = sandboxed.predict(model_file.read_bytes(), x, budget_s=None, seconds=300)
    assert problem is None, problem
    assert probs.shape == (N, len(paths) + 1) and not probs.any(), dict(zip(paths + [secret], probs[0]))


@pytest.mark.slow
@needs_bwrap
def test_a_lambda_that_forges_the_answer_is_refused(tmp_path, data):
    forged = _npy(np.eye(CLASSES)[np.zeros(N, dtype=int)])  # float64: not what the grader's program writes
    forge = ("lambda t: (lambda os: t if __import__('socket').gethostname() == 'nn-grader' and "
             f"[os.write(int(f), {forged!r}) for f in os.listdir('/proc/self/fd') if int(f) > 2 and "
             "os.path.islink('/proc/self/fd/' + f) and os.readlink('/proc/self/fd/' + f).startswith('pipe:')] "
             "and os._exit(0) else t)(__import__('os'))")
    path = _save(_lambda_model(forge), tmp_path, "forge")
    answer = serve_request(_request(path, data))
    assert answer["status"] is VerificationStatus.REFUSED and "float64 values" in answer["message"]


@pytest.mark.slow
@needs_bwrap
def test_fast_modes_budget_bounds_the_sandboxed_evaluation(tmp_path, data):
    path = _save(_lambda_model("lambda t: t"), tmp_path, "lambda")
    verification = verification_from_json("m1", serve_request(_request(path, data, time_budget_s=0.0)))
    assert verification.status is VerificationStatus.OK and verification.method is VerificationMethod.SANDBOX
    assert verification.samples == 32 and "32 of 64 test samples" in verification.message
    assert "fast-mode budget of 0 s" in verification.test_accuracy.source
