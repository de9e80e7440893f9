"""The reference models reproduce the course's documented architectures exactly.

Each row of the table in issue 4 is one test; the summary tables printed in the seeds are
checked layer by layer (class, output shape, parameters), with the Keras 1 class names of the
seeds written in today's spelling.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reference_models
from grader.errors import ReferenceModelError

ROOT = Path(__file__).resolve().parent.parent

# (reference, total, trainable, non-trainable, model output shape), as issue 4 lists them.
TABLE = [
    ("mnist_fc", 420_260, 419_160, 1_100, (None, 10)),
    ("mnist_cnn1", 251_210, 251_210, 0, (None, 10)),
    ("mnist_cnn2", 695_970, 695_186, 784, (None, 10)),
    ("eight_faces_vgg_head", 1_805_608, 1_804_008, 1_600, (None, 8)),
    ("cifar10_fc", 12_523_266, 12_523_266, 0, (None, 10)),
    ("cifar10_cnn", 81_834, 81_834, 0, (None, 10)),
    ("dogs_cats_convnet", 3_453_121, 3_453_121, 0, (None, 1)),
    ("vgg16_base", 14_714_688, 14_714_688, 0, (None, 4, 4, 512)),
    ("dogs_cats_vgg16_frozen", 16_812_353, 2_097_665, 14_714_688, (None, 1)),
    ("dogs_cats_vgg16_finetune", 16_812_353, 9_177_089, 7_635_264, (None, 1)),
    ("eight_faces_linear", 55_304, 55_304, 0, (None, 8)),
    ("eight_faces_mlp", 2_847_008, 2_847_008, 0, (None, 8)),
    ("eight_faces_cnn", 1_910_576, 1_910_576, 0, (None, 8)),
    ("eight_faces_cnn_bn", 1_912_144, 1_911_360, 784, (None, 8)),
    # Beyond the table: seed 003, the Dropout variants, and the models without a printed summary.
    ("hello_world_cnn", 596_042, 596_042, 0, (None, 10)),
    ("cifar10_cnn_dropout", 81_834, 81_834, 0, (None, 10)),
    ("cifar10_cnn_bn", 82_698, 82_266, 432, (None, 10)),
    ("cifar10_cnn75", 552_874, 551_722, 1_152, (None, 10)),
    ("dogs_cats_convnet_dropout", 3_453_121, 3_453_121, 0, (None, 1)),
    ("eight_faces_cnn_dropout", 1_910_576, 1_910_576, 0, (None, 8)),
]

C, B, A, P, F, D, R = "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Flatten", "Dense", "Dropout"

# The seeds' summary tables, row by row: (class, output shape without the batch axis, params).
SEED_TABLES = {
    "mnist_fc": [(D, (500,), 392_500), (B, (500,), 2_000), (A, (500,), 0), (R, (500,), 0),
                 (D, (50,), 25_050), (B, (50,), 200), (A, (50,), 0), (R, (50,), 0), (D, (10,), 510), (A, (10,), 0)],
    "mnist_cnn1": [(C, (28, 28, 32), 320), (A, (28, 28, 32), 0), (F, (25_088,), 0), (D, (10,), 250_890),
                   (A, (10,), 0)],
    "mnist_cnn2": [(C, (28, 28, 32), 320), (B, (28, 28, 32), 128), (A, (28, 28, 32), 0),
                   (C, (28, 28, 32), 9_248), (B, (28, 28, 32), 128), (A, (28, 28, 32), 0), (P, (14, 14, 32), 0),
                   (C, (14, 14, 64), 18_496), (B, (14, 14, 64), 256), (A, (14, 14, 64), 0),
                   (C, (14, 14, 64), 36_928), (B, (14, 14, 64), 256), (A, (14, 14, 64), 0), (P, (7, 7, 64), 0),
                   (F, (3_136,), 0), (D, (200,), 627_400), (B, (200,), 800), (R, (200,), 0), (A, (200,), 0),
                   (D, (10,), 2_010), (A, (10,), 0)],
    "eight_faces_vgg_head": [(D, (400,), 1_638_800), (B, (400,), 1_600), (A, (400,), 0), (R, (400,), 0),
                             (D, (400,), 160_400), (B, (400,), 1_600), (A, (400,), 0), (R, (400,), 0),
                             (D, (8,), 3_208), (A, (8,), 0)],
    "cifar10_fc": [(F, (3072,), 0), (D, (3072,), 9_440_256), (D, (1000,), 3_073_000), (D, (10,), 10_010)],
    "cifar10_cnn": [(C, (28, 28, 32), 2_432), (P, (14, 14, 32), 0), (C, (11, 11, 64), 32_832), (P, (3, 3, 64), 0),
                    (C, (2, 2, 120), 30_840), (P, (1, 1, 120), 0), (F, (120,), 0), (D, (120,), 14_520),
                    (D, (10,), 1_210)],
    "dogs_cats_convnet": [(C, (148, 148, 32), 896), (P, (74, 74, 32), 0), (C, (72, 72, 64), 18_496),
                          (P, (36, 36, 64), 0), (C, (34, 34, 128), 73_856), (P, (17, 17, 128), 0),
                          (C, (15, 15, 128), 147_584), (P, (7, 7, 128), 0), (F, (6_272,), 0),
                          (D, (512,), 3_211_776), (D, (1,), 513)],
    "vgg16_base": [(C, (150, 150, 64), 1_792), (C, (150, 150, 64), 36_928), (P, (75, 75, 64), 0),
                   (C, (75, 75, 128), 73_856), (C, (75, 75, 128), 147_584), (P, (37, 37, 128), 0),
                   (C, (37, 37, 256), 295_168), (C, (37, 37, 256), 590_080), (C, (37, 37, 256), 590_080),
                   (P, (18, 18, 256), 0), (C, (18, 18, 512), 1_180_160), (C, (18, 18, 512), 2_359_808),
                   (C, (18, 18, 512), 2_359_808), (P, (9, 9, 512), 0), (C, (9, 9, 512), 2_359_808),
                   (C, (9, 9, 512), 2_359_808), (C, (9, 9, 512), 2_359_808), (P, (4, 4, 512), 0)],
    "dogs_cats_vgg16_frozen": [("Functional", (4, 4, 512), 14_714_688), (F, (8_192,), 0), (D, (256,), 2_097_408),
                               (D, (1,), 257)],
    "eight_faces_linear": [(D, (8,), 55_304), (A, (8,), 0)],
    "eight_faces_mlp": [(D, (400,), 2_765_200), (A, (400,), 0), (D, (200,), 80_200), (A, (200,), 0),
                        (D, (8,), 1_608), (A, (8,), 0)],
    "eight_faces_cnn": [(C, (48, 48, 32), 896), (A, (48, 48, 32), 0), (C, (48, 48, 32), 9_248),
                        (A, (48, 48, 32), 0), (P, (24, 24, 32), 0), (C, (24, 24, 64), 18_496),
                        (A, (24, 24, 64), 0), (C, (24, 24, 64), 36_928), (A, (24, 24, 64), 0),
                        (P, (12, 12, 64), 0), (F, (9_216,), 0), (D, (200,), 1_843_400), (A, (200,), 0),
                        (D, (8,), 1_608), (A, (8,), 0)],
    "eight_faces_cnn_dropout": [(C, (48, 48, 32), 896), (A, (48, 48, 32), 0), (C, (48, 48, 32), 9_248),
                                (A, (48, 48, 32), 0), (P, (24, 24, 32), 0), (R, (24, 24, 32), 0),
                                (C, (24, 24, 64), 18_496), (A, (24, 24, 64), 0), (C, (24, 24, 64), 36_928),
                                (A, (24, 24, 64), 0), (P, (12, 12, 64), 0), (R, (12, 12, 64), 0),
                                (F, (9_216,), 0), (D, (200,), 1_843_400), (A, (200,), 0), (R, (200,), 0),
                                (D, (8,), 1_608), (A, (8,), 0)],
    "eight_faces_cnn_bn": [(C, (48, 48, 32), 896), (B, (48, 48, 32), 128), (A, (48, 48, 32), 0),
                           (C, (48, 48, 32), 9_248), (B, (48, 48, 32), 128), (A, (48, 48, 32), 0),
                           (P, (24, 24, 32), 0), (R, (24, 24, 32), 0), (C, (24, 24, 64), 18_496),
                           (B, (24, 24, 64), 256), (A, (24, 24, 64), 0), (C, (24, 24, 64), 36_928),
                           (B, (24, 24, 64), 256), (A, (24, 24, 64), 0), (P, (12, 12, 64), 0),
                           (R, (12, 12, 64), 0), (F, (9_216,), 0), (D, (200,), 1_843_400), (B, (200,), 800),
                           (A, (200,), 0), (R, (200,), 0), (D, (8,), 1_608), (A, (8,), 0)],
}


def _count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def built():
    """Each reference built once for the module (VGG16 takes a moment)."""
    cache = {}

    def build(name):
        if name not in cache:
            cache[name] = reference_models.get(name).build()
        return cache[name]

    return build


@pytest.mark.parametrize("name, total, trainable, non_trainable, output_shape", TABLE, ids=[row[0] for row in TABLE])
def test_reference_reproduces_documented_parameter_figures(built, name, total, trainable, non_trainable, output_shape):
    model = built(name)
    assert (_count(model.weights), _count(model.trainable_weights), _count(model.non_trainable_weights)) == (
        total, trainable, non_trainable)
    assert tuple(model.outputs[0].shape) == output_shape


@pytest.mark.parametrize("row", TABLE, ids=[row[0] for row in TABLE])
def test_registry_figures_match_the_issue_table(row):
    figures = reference_models.get(row[0]).figures
    assert (figures.total, figures.trainable, figures.non_trainable, figures.output_shape) == row[1:]


@pytest.mark.parametrize("name", sorted(SEED_TABLES))
def test_reference_matches_seed_summary_layer_by_layer(built, name):
    model = built(name)
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    actual = [(type(layer).__name__, tuple(layer.output.shape)[1:], layer.count_params()) for layer in layers]
    assert actual == SEED_TABLES[name]


def test_every_reference_is_in_the_tests():
    assert {row[0] for row in TABLE} == set(reference_models.REGISTRY)


def test_finetuned_vgg16_trains_exactly_block5():
    model = reference_models.get("dogs_cats_vgg16_finetune").build()
    base = model.layers[0]
    assert [layer.name for layer in base.layers if layer.trainable and layer.weights] == [
        "block5_conv1", "block5_conv2", "block5_conv3"]


def test_importing_reference_models_does_not_import_keras():
    code = ("import sys, reference_models; reference_models.architecture('cifar10_cnn'); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(reference_models.REGISTRY))
def test_stored_architecture_equals_a_fresh_build(built, name):
    from grader.model.evidence import to_json
    from grader.kernel.recorder import describe_model

    from reference_models.regenerate import render

    stored = json.loads((reference_models.ARCHITECTURES_DIR / f"{name}.json").read_text())
    fresh = json.loads(render(describe_model(built(name))))
    assert stored == fresh, f"run `python -m reference_models.regenerate {name}`"
    assert to_json(reference_models.architecture(name)) == stored


def test_stored_architecture_carries_the_documented_totals():
    arch = reference_models.architecture("mnist_cnn2")
    assert (arch.total_params, arch.trainable_params, arch.non_trainable_params) == (695_970, 695_186, 784)
    assert arch.layer_classes()[:3] == ["Conv2D", "BatchNormalization", "Activation"]


def test_layer_names_do_not_depend_on_earlier_builds():
    first = reference_models.get("cifar10_cnn").build()
    second = reference_models.get("cifar10_cnn").build()
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]


def test_unknown_reference_names_the_close_match():
    with pytest.raises(ReferenceModelError, match="cifar10_cnn"):
        reference_models.get("cifar10-cnn")


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(ReferenceModelError, match="does not exist"):
        reference_models.get("mnist_cnn1").build(weights=tmp_path / "nope.weights.h5")


def test_local_weights_file_is_loaded(tmp_path):
    source = reference_models.get("mnist_cnn1").build()
    path = tmp_path / "cnn1.weights.h5"
    source.save_weights(path)
    loaded = reference_models.get("mnist_cnn1").build(weights=path)
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_saved_keras_model_is_accepted_as_weights(tmp_path):
    source = reference_models.get("cifar10_cnn").build()
    path = tmp_path / "cnn.keras"
    source.save(path)
    loaded = reference_models.get("cifar10_cnn").build(weights=path)
    np.testing.assert_array_equal(source.get_weights()[0], loaded.get_weights()[0])


def test_weights_of_another_model_are_refused_plainly(tmp_path):
    path = tmp_path / "fc.weights.h5"
    reference_models.get("eight_faces_linear").build().save_weights(path)
    with pytest.raises(ReferenceModelError, match="cannot load"):
        reference_models.get("mnist_cnn1").build(weights=path)


def test_vgg16_base_weights_file_goes_into_the_frozen_classifier(tmp_path):
    base = reference_models.get("vgg16_base").build()
    path = tmp_path / "vgg16_notop.weights.h5"
    base.save_weights(path)
    model = reference_models.get("dogs_cats_vgg16_frozen").build(base_weights=path)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], base.get_weights()[0])
    assert _count(model.trainable_weights) == 2_097_665


def test_seed_sgd_is_rebuilt_with_time_decay():
    import keras

    model = reference_models.get("cifar10_cnn").build(compiled=True)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == 0.9 and optimizer.nesterov
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.InverseTimeDecay)
    assert float(schedule(1_000_000)) == pytest.approx(0.01 / 2)  # lr / (1 + 1e-6 · 10⁶)
    assert model.loss == "categorical_crossentropy"
