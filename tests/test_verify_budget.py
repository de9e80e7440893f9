"""Fast mode bounds the clean verification by time: past the budget the accuracy is that of the
samples evaluated, and the answer says how many of how many (issue 12, item 9).

The budget is injected (0 s, or a fake clock), so nothing here depends on how fast the machine is."""

from __future__ import annotations

import numpy as np

from grader.clean.measure import measure, predict_within
from grader.clean.protocol import VerifyRequest
from grader.clean.protocol import verification_from_json as _verification
from grader.clean.worker import _handle


class _Oracle:
    """A stand-in model that predicts the first class for every sample, counting its calls."""

    def __init__(self, classes: int = 3):
        self.classes = classes
        self.batches: list[int] = []

    def predict_on_batch(self, x):
        self.batches.append(len(x))
        out = np.zeros((len(x), self.classes), dtype="float32")
        out[:, 0] = 1.0
        return out

    def predict(self, x, batch_size=256, verbose=0):
        return self.predict_on_batch(x)


def _data(n: int = 100):
    return np.zeros((n, 4), dtype="float32"), np.arange(n) % 3


def test_a_zero_budget_evaluates_the_first_batch_and_says_how_many_of_how_many():
    x, labels = _data(100)
    answer = measure(np, _Oracle(), x, labels, budget_s=0.0, batch=32)
    assert answer["status"] == "ok"
    assert answer["samples"] == 32
    assert answer["budget"]["requested"] == 100 and answer["budget"]["budget_s"] == 0.0
    assert "32 of 100 test samples" in answer["budget"]["message"]
    assert answer["accuracy"] == float((labels[:32] == 0).mean())
    assert sum(map(sum, answer["confusion"])) == 32


def test_without_a_budget_every_sample_is_evaluated_and_nothing_is_said_about_a_cut():
    x, labels = _data(100)
    answer = measure(np, _Oracle(), x, labels)
    assert answer["samples"] == 100 and "budget" not in answer


def test_a_budget_that_lasts_evaluates_every_sample_without_a_cut():
    x, labels = _data(100)
    model = _Oracle()
    answer = measure(np, model, x, labels, budget_s=1e9, batch=32)
    assert answer["samples"] == 100 and "budget" not in answer
    assert model.batches == [32, 32, 32, 4]


def test_batches_go_on_while_the_budget_lasts():
    ticks = iter(range(100))  # each reading of the clock is one second later
    model = _Oracle()
    probs = predict_within(np, model, _data(100)[0], 2.5, batch=10, clock=lambda: next(ticks))
    # started at 0; after batches 1 and 2 the clock reads 1 and 2 (< 2.5), after batch 3 it reads 3
    assert model.batches == [10, 10, 10] and len(probs) == 30


def test_the_verified_figure_names_the_samples_and_the_budget():
    x, labels = _data(100)
    answer = measure(np, _Oracle(), x, labels, budget_s=0.0, batch=32)
    answer["preprocess_note"] = "pixels divided by 255"
    verification = _verification("m1", answer)
    assert verification.samples == 32
    assert "32 of 100 test samples" in verification.test_accuracy.source
    assert "fast-mode budget of 0 s" in verification.test_accuracy.source
    assert "time budget" in verification.message


def test_the_worker_applies_the_request_budget_to_a_saved_keras_model(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "m.keras")
    x, labels = _data(100)
    np.savez(tmp_path / "d.npz", x_test=x * 255, y_test=labels)
    request = VerifyRequest(model_path=str(tmp_path / "m.keras"), data_path=str(tmp_path / "d.npz"),
                            preprocess="none", time_budget_s=0.0)
    answer = _handle(vars(request))
    assert answer["status"] == "ok", answer
    assert answer["samples"] == 32 and answer["budget"]["requested"] == 100
    assert answer["total_params"] == 4 * 3 + 3
    unbounded = _handle(dict(vars(request), time_budget_s=None))
    assert unbounded["samples"] == 100 and "budget" not in unbounded
