"""Loading a rubric: metadata, defaults, points, and what the recorder must collect (issue 3, item 1)."""

import textwrap

import pytest

from grader.errors import RubricError
from grader.model.evidence import Level
from grader.rubric.load import load_rubric
from grader.rubric.model import FastCaps
from tests.rubric_fixtures import rubric

FULL = """\
name: cifar10-lab
title: "CIFAR-10 lab"
dataset: cifar10
data_source: synthetic
preprocess: {scale: 255}
support_files: [Custom.py, "data/*.npz"]
packages: [sklearn, matplotlib.pyplot]
kernel: course-env
cell_timeout: 30m
notebook_timeout: 2h
fast: {epochs: 2, train_samples: 1000}
limits: {memory: 8GiB, processes: 256, disk: 2GB, output: 10MiB, cpu_time: 1h}
compat: false
pass_mark: 60%
tasks:
  - id: fc
    title: "Question 2: FC model"
    model: {before: "Question 3"}
    points: 4
    reference: cifar10_fc
    checks:
      - total_params: 12_523_266
      - test_accuracy: {at_least: 45%, points: 3}
  - id: cnn
    model: {function: CreateCNNModel}
    weight: 2
    checks:
      - layers: "(Conv2D MaxPooling2D)+ Flatten Dense+"
      - answer: {variable: conv_params, equals: 160}
  - id: why
    question: "Why is CIFAR-10 harder"
    checks:
      - manual: {guidance: "colour, variability", points: 2}
  - id: tagged
    model: {variable: cnn_model}
    checks:
      - contains: Dropout
"""


@pytest.fixture()
def full(tmp_path):
    (tmp_path / "Custom.py").write_text("def PlotModelEval(): pass\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.npz").write_bytes(b"")
    (tmp_path / "data" / "b.npz").write_bytes(b"")
    path = tmp_path / "lab.yaml"
    path.write_text(FULL)
    return load_rubric(path), tmp_path


def test_metadata_is_read(full):
    loaded, folder = full
    assert (loaded.name, loaded.title, loaded.dataset, loaded.kernel) == ("cifar10-lab", "CIFAR-10 lab", "cifar10", "course-env")
    assert loaded.packages == ["sklearn", "matplotlib.pyplot"]
    assert loaded.compat is False
    assert loaded.path == folder / "lab.yaml"


def test_support_files_resolve_next_to_the_rubric_with_globs(full):
    loaded, folder = full
    assert loaded.support_files == [(folder / "Custom.py").resolve(), (folder / "data/a.npz").resolve(),
                                    (folder / "data/b.npz").resolve()]


def test_durations_and_sizes_are_normalised(full):
    loaded, _ = full
    assert (loaded.cell_timeout, loaded.notebook_timeout) == (1800.0, 7200.0)
    assert loaded.limits == {"memory": 8 * 2**30, "processes": 256, "disk": 2 * 10**9, "output": 10 * 2**20, "cpu_time": 3600.0}


def test_fast_caps_keep_defaults_for_keys_not_given(full):
    assert full[0].fast == FastCaps(epochs=2, train_samples=1000, steps_per_epoch=8, test_samples=512)


def test_preprocess_scale_becomes_the_verifier_mode(full):
    assert full[0].preprocess == "scale255"


def test_points_are_shared_among_checks_without_their_own(full):
    fc = full[0].task("fc")
    assert [c.points for c in fc.checks] == [1.0, 3.0]
    assert fc.max_points == 4.0


def test_weight_multiplies_check_points(full):
    cnn = full[0].task("cnn")
    assert [c.points for c in cnn.checks] == [2.0, 2.0] and cnn.weight == 2


def test_max_points_and_percentage_pass_mark(full):
    loaded, _ = full
    assert loaded.max_points == 4 + 4 + 2 + 1
    assert loaded.pass_mark == pytest.approx(0.6 * 11)


def test_functions_to_call_come_from_function_selectors(full):
    assert full[0].functions_to_call() == ["CreateCNNModel"]


def test_variables_wanted_come_from_answers_and_variable_selectors(full):
    assert full[0].variables_wanted() == ["conv_params", "cnn_model"]


def test_reference_names(full):
    assert full[0].reference_names() == ["cifar10_fc"]


def test_shorthand_is_expanded():
    loaded = rubric("""
        name: t
        tasks:
          - id: a
            model: {fit: 1}
            checks:
              - total_params: 81834
              - contains: Dropout
              - test_accuracy: 62%
              - layers: [Conv2D, Flatten, Dense]
    """)
    assert [(c.kind, c.params) for c in loaded.tasks[0].checks] == [
        ("total_params", {"equals": 81834}),
        ("contains", {"layer": "Dropout"}),
        ("test_accuracy", {"at_least": "62%"}),
        ("layers", {"pattern": ["Conv2D", "Flatten", "Dense"]}),
    ]


def test_common_keys_leave_the_params():
    loaded = rubric("""
        name: t
        tasks:
          - id: a
            model: {fit: 1}
            checks:
              - test_accuracy: {at_least: 0.62, points: 3, title: "CNN reaches 62%", hint: "See lecture 7.", min_level: verified}
    """)
    check = loaded.tasks[0].checks[0]
    assert check.params == {"at_least": 0.62}
    assert (check.points, check.title, check.hint, check.min_level) == (3.0, "CNN reaches 62%", "See lecture 7.", Level.VERIFIED)
    assert check.line == 7  # the text starts with an empty line


def test_defaults():
    loaded = rubric("name: t\ntasks: [{id: a, model: {fit: 1}, checks: [{total_params: 5}]}]\n")
    assert (loaded.title, loaded.dataset, loaded.data_source, loaded.preprocess, loaded.compat) == ("t", None, "auto", "auto", True)
    assert loaded.pass_mark is None and loaded.max_points == 1.0
    assert loaded.fast == FastCaps() and loaded.limits == {} and loaded.support_files == []
    assert loaded.tasks[0].title == "a" and loaded.tasks[0].model_name == "model"


def test_npz_data_source_resolves_next_to_the_rubric(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: t\ndataset: mnist\ndata_source: data/mnist.npz\ntasks: [{id: a, model: {fit: 1}, checks: [{total_params: 5}]}]\n")
    assert load_rubric(path).data_source == str((tmp_path / "data/mnist.npz").resolve())


def test_built_in_rubric_by_name(tmp_path, monkeypatch):
    (tmp_path / "mylab.yaml").write_text("name: mylab\ntasks: [{id: a, model: {fit: 1}, checks: [{total_params: 5}]}]\n")
    monkeypatch.setattr("grader.rubric.load.rubrics_dir", lambda: tmp_path)
    assert load_rubric("mylab").name == "mylab"


def test_unknown_built_in_rubric_suggests_names(tmp_path, monkeypatch):
    (tmp_path / "cifar10.yaml").write_text("name: c\ntasks: [{id: a, model: {fit: 1}, checks: [{total_params: 5}]}]\n")
    monkeypatch.setattr("grader.rubric.load.rubrics_dir", lambda: tmp_path)
    with pytest.raises(RubricError, match="Did you mean 'cifar10'.*Built-in rubrics: cifar10"):
        load_rubric("cifar01")


def test_missing_rubric_file(tmp_path):
    with pytest.raises(RubricError, match="no such rubric file"):
        load_rubric(tmp_path / "missing.yaml")


def test_merge_keys_and_anchors_work():
    loaded = rubric(textwrap.dedent("""
        name: t
        tasks:
          - id: a
            model: {fit: 1}
            checks:
              - total_params: &common {at_most: 100, points: 2}
              - trainable_params: {<<: *common, points: 1}
    """))
    assert [(c.params, c.points) for c in loaded.tasks[0].checks] == [({"at_most": 100}, 2.0), ({"at_most": 100}, 1.0)]
