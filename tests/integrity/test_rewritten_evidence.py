"""Cheats that rewrite what the recorder wrote, or train where it does not look.

The kernel can write every file in its working folder, the recorder's log and model files
included. The grade rests on the copy of the log the recorder sent the grader as it ran
(grader.execute.witness), on the hashes in that copy, and on the optimizer's step count, which
says when a model was trained outside every fit the recorder saw. Same rubric and noisy stand-in
data as tests/integrity/test_cheats.py: a cheat is caught when it gains nothing over the honest
base, or when what it forges is "needs review" (or failed) with a finding naming it.
"""

from __future__ import annotations

import pytest

from grader.batch.local import grade_batch
from grader.collect import Submission
from grader.config import GradingOptions
from grader.data.load import load_dataset
from grader.model.results import GradeResult, Status, Student
from grader.rubric.load import load_rubric_text
from tests.integrity.test_cheats import EVALUATE, FIND_BUNDLE, RECORDER, RUBRIC, TRAIN, _check, _noisy
from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, code, notebook, write

pytestmark = pytest.mark.slow  # real kernels and the clean verifier

LONG = "model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0)"
SHORT = "history = model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)"
REWRITE = FIND_BUNDLE + """import json
path = os.path.join(bundle, 'events.jsonl')
kept, epochs = [], 0
for line in open(path).read().splitlines():
    event = json.loads(line)
    if event['event'] == 'epoch':
        epochs += 1
        if epochs > 3:
            continue
    if event['event'] == 'fit':
        event['fit']['epochs_run'] = 3
        event['history'] = {k: v[:3] for k, v in event.get('history', {}).items()}
    kept.append(json.dumps(event))
open(path, 'w').write('\\n'.join(kept) + '\\n')
"""
SWAP = FIND_BUNDLE + """import json, hashlib, shutil
better = CreateCNNModel()
keras.Model.fit.__nn_grader_original__(better, x_test, y_test, epochs=15, batch_size=16, verbose=0)
better.save('better.keras')
target = os.path.join(bundle, 'models', os.listdir(os.path.join(bundle, 'models'))[0])
shutil.copyfile('better.keras', target)
digest = hashlib.sha256(open(target, 'rb').read()).hexdigest()
path = os.path.join(bundle, 'events.jsonl')
lines = []
for line in open(path).read().splitlines():
    event = json.loads(line)
    if event['event'] == 'fit':
        event['weights_sha256'] = digest
    lines.append(json.dumps(event))
open(path, 'w').write('\\n'.join(lines) + '\\n')
model = better
"""

CHEATS = {
    # the nesting counter the recorder once kept: setting it no longer hides a fit
    "depth_counter": [code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\n" + RECORDER
                                             + "r = rec.recorder()\nr._depth = getattr(r, '_depth', 0) + 1\n" + LONG
                                             + "\nr._depth -= 1\n" + SHORT), code(EVALUATE)],
    # a long fit through the recorder's own pass-through, then a short recorded one
    "unrecorded_call": [code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\n" + RECORDER
                                               + f"rec._unrecorded(lambda: {LONG})\n" + SHORT), code(EVALUATE)],
    # a long fit through Keras's own fit, then a short recorded one
    "unhooked_then_fit": [code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                                 "keras.Model.fit.__nn_grader_original__(model, x_train, y_train, epochs=8,"
                                                 " batch_size=32, verbose=0)\n" + SHORT), code(EVALUATE)],
    # 8 epochs rewritten as 3 in the recorder's log
    "rewritten_epochs": [code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\nhistory = " + LONG),
                         code(REWRITE), code(EVALUATE)],
    # a model trained on the test set swapped in for the recorded one, its hash patched in the log
    "swapped_model": [code(LOAD_CIFAR), code(TRAIN), code(SWAP), code(EVALUATE)],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, GradeResult]:
    root = tmp_path_factory.mktemp("rewritten")
    data = _noisy(load_dataset("cifar10", source="synthetic", train_size=300, test_size=200)).save_npz(root / "cifar10.npz")
    every = {**CHEATS, "honest": [code(LOAD_CIFAR), code(TRAIN), code(EVALUATE)]}
    submissions = [Submission(write(notebook(*cells), root / "in" / f"{name}.ipynb"), Student(name))
                   for name, cells in every.items()]
    options = GradingOptions(data=str(data), preflight=False, cell_timeout=120, notebook_timeout=300, sandbox="none")
    results = grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=options, workers=2)
    return {r.student.key: r for r in results}


def _kinds(result: GradeResult) -> set[str]:
    return {f.kind for f in result.evidence.findings if f.integrity}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_no_rewrite_gains_a_point_over_the_honest_base(graded, name):
    assert graded[name].score <= graded["honest"].score, [(c.check, c.status, c.message) for c in graded[name].checks]


@pytest.mark.parametrize("name", ["depth_counter", "rewritten_epochs"])
def test_the_epochs_check_counts_every_epoch_that_ran(graded, name):
    epochs = _check(graded[name], "hard", "epochs")
    assert epochs.status is not Status.PASSED and epochs.points == 0, epochs.message
    assert epochs.figure is None or epochs.figure >= 8, epochs.message


@pytest.mark.parametrize("name", ["unrecorded_call", "unhooked_then_fit"])
def test_training_outside_the_recorded_fits_is_named_and_its_checks_need_review(graded, name):
    assert "hidden_training" in _kinds(graded[name]), _kinds(graded[name])
    epochs = _check(graded[name], "hard", "epochs")
    assert epochs.status is Status.NEEDS_REVIEW and epochs.details["verdict"] == "passed", epochs.message
    assert "outside the recorded fits" in epochs.message
    easy = _check(graded[name], "easy", "test_accuracy")
    assert easy.status is not Status.PASSED and easy.points == 0, easy.message


def test_a_rewritten_log_is_read_as_the_recorder_sent_it_and_named(graded):
    result = graded["rewritten_epochs"]
    assert "rewritten" in _kinds(result)
    assert "rewrote the recorder's log" in next(f.message for f in result.evidence.findings if f.kind == "rewritten")
    run = result.evidence.runs[0]
    assert run.epochs_trained == 8 and run.fit.epochs_run == 8 and len(run.history["loss"]) == 8


def test_a_swapped_model_file_is_not_measured_and_earns_no_accuracy_point(graded):
    result = graded["swapped_model"]
    assert "rewritten" in _kinds(result)
    easy = _check(result, "easy", "test_accuracy")
    assert easy.status is not Status.PASSED and easy.points == 0, easy.message
    verification = result.evidence.verification_of(result.evidence.runs[0].model_id)
    assert verification is None or verification.status != "ok", verification


def test_the_honest_base_has_no_finding_of_tampering(graded):
    assert not _kinds(graded["honest"]) & {"tampered", "rewritten", "hidden_training"}
    assert _check(graded["honest"], "easy", "test_accuracy").status is Status.PASSED
