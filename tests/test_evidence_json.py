"""The evidence tree's JSON and copies (grader.model.evidence.to_json, copy_evidence): the fast
walks give what the plain dataclass walk and ``copy.deepcopy`` give, on every sample result."""

from __future__ import annotations

import copy
import dataclasses
import enum
import json

import pytest

from grader.model.evidence import Architecture, LayerInfo, Level, copy_evidence, to_json
from tests import report_samples

SAMPLES = [name for name in dir(report_samples) if name.endswith("_student")]


def _plain_to_json(obj):
    """to_json as the dataclass definitions say it, one isinstance at a time."""
    if isinstance(obj, Level):
        return obj.label
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain_to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_if_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, dict):
        return {str(k): _plain_to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_to_json(v) for v in obj]
    return obj


@pytest.mark.parametrize("sample", SAMPLES)
def test_result_json_is_the_plain_walk_of_its_dataclasses(sample):
    result = getattr(report_samples, sample)()
    fast, plain = to_json(result), _plain_to_json(result)
    assert fast == plain
    assert json.dumps(fast) == json.dumps(plain)  # key order too: result.json keeps its form


def test_levels_in_lists_and_dicts_are_labels_and_defaults_marked_omitted_are_left_out():
    arch = Architecture(known=False, layers=[LayerInfo(name="d", class_name="Dense", config={"units": 10})])
    data = to_json({"levels": [Level.VERIFIED, Level.REPORTED], 1: (Level.EXECUTED,), "arch": arch})
    assert data["levels"] == ["verified", "reported"] and data["1"] == ["executed"]
    assert data["arch"]["known"] is False and "params_known" not in data["arch"]
    assert data["arch"]["layers"][0]["config"] == {"units": 10}


@pytest.mark.parametrize("sample", SAMPLES)
def test_an_evidence_copy_equals_a_deep_copy_and_shares_nothing_mutable(sample):
    result = getattr(report_samples, sample)()
    copied = copy_evidence(result)
    assert copied == copy.deepcopy(result)
    assert to_json(copied) == to_json(result)
    for run in (copied.evidence.runs if copied.evidence else []):
        original = next(r for r in result.evidence.runs if r.index == run.index)
        layers, losses = len(original.architecture.layers), list(original.history.get("loss", []))
        run.architecture.layers.append(LayerInfo(name="extra", class_name="Dense"))
        run.history.setdefault("loss", []).append(9.9)
        assert len(original.architecture.layers) == layers
        assert original.history.get("loss", []) == losses


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_result_read_back_from_its_json_is_the_same_result(sample):
    from grader.model.results import GradeResult

    result = getattr(report_samples, sample)()
    data = json.loads(json.dumps(to_json(result)))
    assert to_json(GradeResult.from_json(data)) == data


def test_reading_back_still_refuses_a_wrong_shape_and_widens_an_integer_to_a_float():
    from grader.model.evidence import FitArgs, TrainingRun, from_json

    with pytest.raises(ValueError, match="expected a number"):
        from_json(FitArgs, {"batch_size": 32, "validation_split": "a fifth"})
    with pytest.raises(ValueError, match="expected an integer"):
        from_json(FitArgs, {"epochs": 2.5})
    assert from_json(dict[str, list[float]], {"loss": [1, 0.5]}) == {"loss": [1.0, 0.5]}
    assert type(from_json(dict[str, list[float]], {"loss": [1]})["loss"][0]) is float
    with pytest.raises(ValueError, match="missing"):
        from_json(TrainingRun, {"index": 0, "model_id": "m1"})
