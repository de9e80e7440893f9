"""How the grader feeds its data to a saved or retrained model: inferred from what the notebook
fed to ``fit`` (grader.clean.measure.infer_preprocess), and checked before a retraining."""

from __future__ import annotations

import numpy as np
import pytest

from grader.clean.measure import infer_preprocess, prepare_inputs
from grader.clean.retrain import _inputs_differ

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, size=(400, 8, 8, 3)).astype("uint8")
X[:, :4] //= 2  # an image whose mean differs from pixel to pixel, as real ones do


def _stats(x):
    return {"minimum": float(x.min()), "maximum": float(x.max()), "mean": float(x.mean())}


PREPROCESSING = {
    "scale255": lambda a: a / 255.0,
    "symmetric": lambda a: a / 127.5 - 1.0,
    "center": lambda a: a / 255.0 - (X / 255.0).mean(axis=0),
    "center_raw": lambda a: a - X.astype("float32").mean(axis=0),
    "standardize": lambda a: (a - X.mean()) / X.std(),
    "none": lambda a: a.astype("float32"),
}


@pytest.mark.parametrize("mode", sorted(PREPROCESSING))
def test_the_preprocessing_is_inferred_from_the_range_the_notebook_fed_to_fit(mode):
    seen = _stats(PREPROCESSING[mode](X))
    assert infer_preprocess(seen["minimum"], seen["maximum"]) == mode


@pytest.mark.parametrize("mode", sorted(PREPROCESSING))
def test_the_grader_prepares_its_data_as_the_notebook_did(mode):
    student = PREPROCESSING[mode](X).astype("float32")
    ours, note = prepare_inputs(np, X, {"preprocess": "auto", "observed": _stats(student)}, X, None)
    assert np.allclose(ours, student, atol=1e-4), note
    assert _inputs_differ(np, ours, _stats(student)) is None


def test_a_retraining_whose_inputs_do_not_match_the_notebooks_says_how():
    student = (X / 255.0 - (X / 255.0).mean(axis=0)).astype("float32")
    ours, _ = prepare_inputs(np, X, {"preprocess": "standardize"}, X, None)  # a rubric that states the wrong one
    words = _inputs_differ(np, ours, _stats(student))
    assert words is not None and "where the notebook's was" in words
