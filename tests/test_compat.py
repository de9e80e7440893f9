"""Keras 1/2 spellings run on Keras 3 with their old meaning, and each use is reported once.

The compat layer patches the Keras of the process it runs in; every test installs it afresh
(`findings` fixture) and uninstalls it afterwards, so the order of tests does not matter.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.kernel import compat

ROOT = Path(__file__).resolve().parents[1]
LEGACY_NOTEBOOKS = sorted((ROOT / "tests" / "notebooks" / "legacy").glob("*.ipynb"))


@pytest.fixture(scope="session")
def keras():
    import keras

    return keras


@pytest.fixture
def findings(keras):
    found: list[dict] = []
    compat.install(found.append)
    yield found
    compat.uninstall()


def apis(found: list[dict]) -> list[str]:
    return [f["api"] for f in found]


def tiny_data(n=16, shape=(4,), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, classes, n)


def tiny_model(keras, optimizer="sgd", inputs=(4,), classes=3):
    model = keras.Sequential([keras.Input(inputs), keras.layers.Flatten(),
                              keras.layers.Dense(classes, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def forever(x, y, batch=4):
    while True:
        for start in range(0, len(x), batch):
            yield x[start:start + batch], y[start:start + batch]


# --- optimizers --------------------------------------------------------------------------------


def test_sgd_lr_is_graded_as_learning_rate_and_reported_once(keras, findings):
    first = keras.optimizers.SGD(lr=0.05)
    second = keras.optimizers.SGD(lr=0.2, momentum=0.9)
    assert float(first.learning_rate) == pytest.approx(0.05)
    assert float(second.learning_rate) == pytest.approx(0.2)
    assert second.momentum == 0.9
    assert apis(findings) == ["SGD(lr=...)"]
    assert findings[0] == {"kind": "compat", "api": "SGD(lr=...)", "severity": "info",
                           "message": "used the removed argument `lr`; graded as `learning_rate`"}


def test_lr_works_for_every_optimizer_reached_through_keras_or_tf_keras(keras, findings):
    import tensorflow as tf
    from tensorflow.keras.optimizers import SGD

    assert SGD is keras.optimizers.SGD  # tf.keras reaches the same classes
    names = ["SGD", "Adam", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "AdamW"]
    for name in names:
        optimizer = getattr(tf.keras.optimizers, name)(lr=0.125)
        assert float(optimizer.learning_rate) == pytest.approx(0.125), name
    assert apis(findings) == [f"{name}(lr=...)" for name in names]


def test_sgd_decay_is_the_keras2_inverse_time_decay_during_fit(keras, findings):
    optimizer = keras.optimizers.SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)
    model = tiny_model(keras, optimizer)
    x, y = tiny_data(16)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)

    steps = int(optimizer.iterations.numpy())
    assert steps == 4
    assert float(optimizer.learning_rate) == pytest.approx(0.01 / (1 + 1e-6 * steps), rel=1e-6)
    for k in (0, 1, 1000, 10**6):
        assert float(optimizer._learning_rate(k)) == pytest.approx(0.01 / (1 + 1e-6 * k), rel=1e-6)
    assert optimizer.momentum == 0.9 and optimizer.nesterov
    assert apis(findings) == ["SGD(lr=...)", "SGD(decay=...)"]
    assert "InverseTimeDecay(initial_learning_rate=0.01, decay_steps=1, decay_rate=1e-06)" \
        in findings[1]["message"]


def test_decay_scales_the_kth_update_by_one_over_one_plus_decay_times_k(keras, findings):
    # One weight, gradient exactly 1 per step: after 3 steps it has moved by the sum of the
    # three learning rates Keras 2 used, lr/(1+decay*k) for k = 0, 1, 2.
    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(lr=0.1, decay=0.5),
                  loss=lambda y_true, y_pred: y_pred)
    model.fit(np.ones((3, 1), "float32"), np.zeros((3, 1), "float32"), batch_size=1, epochs=1,
              shuffle=False, verbose=0)
    moved = -float(model.layers[0].kernel.numpy()[0, 0])
    assert moved == pytest.approx(sum(0.1 / (1 + 0.5 * k) for k in range(3)), rel=1e-5)


def test_decay_zero_is_dropped_and_reported(keras, findings):
    optimizer = keras.optimizers.Adam(lr=0.002, decay=0.0)
    assert float(optimizer.learning_rate) == pytest.approx(0.002)
    assert apis(findings) == ["Adam(lr=...)", "Adam(decay=0)"]


def test_decay_with_a_schedule_is_not_mapped_and_reported_as_a_warning(keras, findings):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    with pytest.warns(UserWarning, match="decay"):
        optimizer = keras.optimizers.SGD(learning_rate=schedule, decay=0.01)
    assert optimizer._learning_rate is schedule
    assert findings[0]["api"] == "SGD(decay=...)" and findings[0]["severity"] == "warning"


def test_tf_keras_legacy_optimizers_are_the_keras3_classes(keras, findings):
    import tensorflow as tf

    optimizer = tf.keras.optimizers.legacy.Adam(lr=0.003)
    assert type(optimizer) is keras.optimizers.Adam
    assert float(optimizer.learning_rate) == pytest.approx(0.003)
    from keras.optimizers.legacy import SGD

    assert SGD is keras.optimizers.SGD
    assert apis(findings) == ["optimizers.legacy.Adam", "Adam(lr=...)", "optimizers.legacy.SGD"]


def test_lowercase_optimizer_alias_of_standalone_keras2(keras, findings):
    from keras import optimizers

    optimizer = optimizers.rmsprop(lr=1e-4, decay=1e-6)
    assert type(optimizer) is keras.optimizers.RMSprop
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
    assert apis(findings)[0] == "keras.optimizers.rmsprop"


def test_optimizer_lr_attribute_reads_and_sets_the_learning_rate(keras, findings):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    assert float(optimizer.lr) == pytest.approx(0.1)
    optimizer.lr = 0.01
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    assert apis(findings) == ["optimizer.lr"]


# --- fit / evaluate / predict ---------------------------------------------------------------------


def test_fit_nb_epoch_is_graded_as_epochs(keras, findings):
    model = tiny_model(keras)
    x, y = tiny_data()
    history = model.fit(x, y, nb_epoch=2, batch_size=8, verbose=0)
    model.fit(x, y, nb_epoch=1, batch_size=8, verbose=0)
    assert history.epoch == [0, 1]
    assert apis(findings) == ["fit(nb_epoch=...)"]


def test_fit_drops_tf_keras2_data_loading_arguments(keras, findings):
    model = tiny_model(keras)
    x, y = tiny_data()
    model.fit(x, y, epochs=1, verbose=0, workers=4, use_multiprocessing=True, max_queue_size=5)
    model.evaluate(x, y, verbose=0, workers=2)
    assert set(apis(findings)) == {"fit(workers=...)", "fit(use_multiprocessing=...)",
                                   "fit(max_queue_size=...)", "evaluate(workers=...)"}


def test_fractional_steps_per_epoch_runs_the_ceil_like_keras2(keras, findings):
    model = tiny_model(keras)
    x, y = tiny_data()
    model.fit(forever(x, y), steps_per_epoch=len(x) / 5, epochs=1, verbose=0)  # 3.2
    assert int(model.optimizer.iterations.numpy()) == 4
    assert apis(findings) == ["fit(steps_per_epoch=<fraction>)"]


def test_fit_on_a_zip_of_iterators_trains_like_on_a_generator(keras, findings):
    x, y = tiny_data(8)
    on_zip, on_generator = tiny_model(keras), tiny_model(keras)
    on_generator.set_weights(on_zip.get_weights())
    on_zip.fit(zip(iter(np.split(x, 2)), iter(np.split(y, 2))), epochs=1, verbose=0)
    on_generator.fit((batch for batch in zip(np.split(x, 2), np.split(y, 2))), epochs=1,
                     verbose=0)
    for trained, reference in zip(on_zip.get_weights(), on_generator.get_weights()):
        assert np.allclose(trained, reference)
    assert not np.allclose(on_zip.get_weights()[0], tiny_model(keras).get_weights()[0])
    assert apis(findings) == ["fit(<iterator>)"]


def test_fit_generator_trains_on_a_python_generator_for_steps_per_epoch(keras, findings):
    model = tiny_model(keras)
    x, y = tiny_data()
    history = model.fit_generator(forever(x, y), steps_per_epoch=3, epochs=2,
                                  validation_data=forever(x, y), validation_steps=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 6
    assert set(history.history) == {"loss", "val_loss"}
    assert apis(findings) == ["fit_generator"]


def test_fit_generator_keras1_sample_counts_become_steps(keras, findings):
    model = tiny_model(keras)
    x, y = tiny_data()
    model.fit_generator(forever(x, y, batch=4), samples_per_epoch=10, nb_epoch=1,
                        validation_data=forever(x, y, batch=4), nb_val_samples=8,
                        nb_worker=2, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == math.ceil(10 / 4)
    messages = {f["api"]: f["message"] for f in findings}
    assert "`steps_per_epoch=3`" in messages["fit_generator(samples_per_epoch=...)"]
    assert "`validation_steps=2`" in messages["fit_generator(nb_val_samples=...)"]
    assert "fit_generator(nb_epoch=...)" in messages


def test_evaluate_and_predict_generator_use_evaluate_and_predict(keras, findings):
    model = tiny_model(keras)
    x, y = tiny_data(8)
    loss = model.evaluate_generator(forever(x, y), steps=2)
    assert loss == pytest.approx(model.evaluate(x, y, batch_size=4, verbose=0), rel=1e-5)
    predictions = model.predict_generator(forever(x, y), 2)
    assert predictions.shape == (8, 3)
    assert np.allclose(predictions, model.predict(x, verbose=0), atol=1e-6)
    assert apis(findings) == ["evaluate_generator", "predict_generator"]


def test_predict_classes_is_argmax_and_predict_proba_is_predict(keras, findings):
    model = tiny_model(keras)
    x, _ = tiny_data(8)
    probabilities = model.predict(x, verbose=0)
    assert np.array_equal(model.predict_classes(x), probabilities.argmax(axis=-1))
    assert np.allclose(model.predict_proba(x), probabilities)
    binary = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    assert set(np.unique(binary.predict_classes(x))) <= {0, 1}
    assert apis(findings) == ["predict_classes", "predict_proba"]


# --- ImageDataGenerator iterators ----------------------------------------------------------------


def test_iterator_next_returns_the_next_batch_like_builtin_next(keras, findings):
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    x, y = tiny_data(10, shape=(8, 8, 1))
    iterator = ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)
    batch_x, batch_y = iterator.next()
    assert batch_x.shape == (4, 8, 8, 1) and np.array_equal(batch_y, y[:4])
    assert np.array_equal(iterator.next()[1], y[4:8])
    assert np.array_equal(next(iterator)[1], y[8:])
    assert apis(findings) == ["iterator.next()"]


# --- Keras 1 layer arguments ---------------------------------------------------------------------


def layer_configs(model):
    configs = []
    for layer in model.layers:
        config = layer.get_config()
        config.pop("name")
        configs.append((type(layer), config))
    return configs


def test_convolution2d_keras1_spelling_has_the_keras3_parameter_count(keras, findings):
    inputs = keras.Input((28, 28, 1))
    legacy = keras.layers.Convolution2D(32, 3, 3, border_mode="same")
    modern = keras.layers.Conv2D(32, (3, 3), padding="same")
    legacy_model = keras.Model(inputs, legacy(inputs))
    modern_model = keras.Model(inputs, modern(inputs))
    assert legacy_model.count_params() == modern_model.count_params() == 320
    assert legacy_model.output_shape == modern_model.output_shape == (None, 28, 28, 32)
    assert layer_configs(legacy_model) == layer_configs(modern_model)
    assert apis(findings) == ["Conv2D(nb_filter, nb_row, nb_col)", "Conv2D(border_mode=...)"]


def test_keras1_cnn_builds_exactly_the_keras3_cnn(keras, findings):
    regularizer = keras.regularizers.l2(1e-4)
    legacy = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Convolution2D(32, 3, 3, border_mode="same", init="he_normal",
                                   W_regularizer=regularizer, subsample=(2, 2), dim_ordering="tf"),
        keras.layers.Convolution2D(nb_filter=16, nb_row=3, nb_col=3, bias=False),
        keras.layers.MaxPooling2D(pool_size=(2, 2), border_mode="valid"),
        keras.layers.Dropout(p=0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(output_dim=10, init="glorot_uniform"),
        keras.layers.BatchNormalization(mode=0, axis=-1),
    ])
    modern = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, (3, 3), padding="same", kernel_initializer="he_normal",
                            kernel_regularizer=regularizer, strides=(2, 2),
                            data_format="channels_last"),
        keras.layers.Conv2D(filters=16, kernel_size=(3, 3), use_bias=False),
        keras.layers.MaxPooling2D(pool_size=(2, 2), padding="valid"),
        keras.layers.Dropout(rate=0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(units=10, kernel_initializer="glorot_uniform"),
        keras.layers.BatchNormalization(axis=-1),
    ])
    assert legacy.count_params() == modern.count_params()
    assert layer_configs(legacy) == layer_configs(modern)
    assert "BatchNormalization(mode=0)" in apis(findings)
    assert len(apis(findings)) == len(set(apis(findings)))


def test_keras1_pooling_and_noise_arguments(keras, findings):
    layers = keras.layers
    assert layers.MaxPooling1D(pool_length=3, stride=1, border_mode="same").pool_size == (3,)
    pooling = layers.AveragePooling2D(dim_ordering="th")
    assert pooling.data_format == "channels_first" and pooling.pool_size == (2, 2)
    assert layers.GaussianNoise(sigma=0.2).stddev == 0.2
    assert layers.SpatialDropout2D(p=0.1).rate == 0.1
    assert layers.Embedding(10, 4, init="uniform").embeddings_initializer.__class__.__name__ \
        == "RandomUniform"
    assert "AveragePooling2D()" in apis(findings)  # Keras 3 removed the default pool_size


def test_three_positional_numbers_without_keras1_arguments_keep_their_keras3_meaning(
        keras, findings):
    layer = keras.layers.Convolution2D(32, 3, 3, activation="relu")
    assert layer.kernel_size == (3, 3) and layer.strides == (3, 3)  # kernel 3, strides 3
    patchify = keras.layers.Conv2D(4, 2, 2)
    assert patchify.kernel_size == (2, 2) and patchify.strides == (2, 2)
    assert apis(findings) == ["Conv2D(filters, 3, 3)", "Conv2D(filters, 2, 2)"]
    assert {f["severity"] for f in findings} == {"warning"}
    assert "write `Conv2D(32, (3, 3))`" in findings[0]["message"]


def test_keras3_spellings_pass_untouched_and_unreported(keras, findings):
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, strides=1, padding="same"),
        keras.layers.Conv2D(4, (3, 3), (2, 2)),
        keras.layers.AveragePooling2D(2),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                  "sparse_categorical_crossentropy")
    x, y = tiny_data(8, shape=(8, 8, 1))
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.fit(forever(x, y), steps_per_epoch=2, epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert findings == []


def test_both_spellings_given_leave_keras3_error_standing(keras, findings):
    with pytest.raises(ValueError, match="output_dim"):
        keras.layers.Dense(units=3, output_dim=4)
    with pytest.raises(ValueError, match="mode"):
        keras.layers.BatchNormalization(mode=2)
    assert findings == []


def test_keras1_functional_model_input_output_keywords(keras, findings):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(inputs)
    model = keras.Model(input=inputs, output=outputs)
    assert isinstance(model, keras.Model) and model.count_params() == 10
    assert apis(findings) == ["Model(input=...)", "Model(output=...)"]


def test_legacy_spelled_model_saves_a_plain_keras3_file(keras, findings, tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 1)),
                              keras.layers.Convolution2D(2, 3, 3, border_mode="same"),
                              keras.layers.Flatten(), keras.layers.Dense(output_dim=2)])
    model.compile(keras.optimizers.SGD(lr=0.01, decay=1e-3), "mse")
    path = tmp_path / "model.keras"
    model.save(path)
    compat.uninstall()  # the file must load where no compat layer exists
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.count_params() == model.count_params()
    assert layer_configs(loaded) == layer_configs(model)


# --- module paths, plot_model --------------------------------------------------------------------


def test_old_module_paths_import_the_keras3_objects(keras, findings):
    from keras.layers.convolutional import Conv2D, MaxPooling2D
    from keras.layers.core import Dense
    from keras.preprocessing.image import ImageDataGenerator
    from keras.utils.np_utils import to_categorical

    import keras.utils.np_utils

    assert Conv2D is keras.layers.Conv2D and MaxPooling2D is keras.layers.MaxPooling2D
    assert Dense is keras.layers.Dense
    assert ImageDataGenerator().flow(np.zeros((2, 4, 4, 1)), batch_size=2).next().shape \
        == (2, 4, 4, 1)
    assert keras.utils.np_utils.to_categorical is to_categorical is keras.utils.to_categorical
    assert set(apis(findings)) == {
        "import keras.layers.convolutional", "import keras.layers.core",
        "keras.preprocessing.image.ImageDataGenerator", "import keras.utils.np_utils",
        "iterator.next()"}


def test_star_import_from_an_old_module_path(keras, findings):
    namespace: dict = {}
    exec("from keras.layers.core import *", namespace)
    assert namespace["Dense"] is keras.layers.Dense
    assert apis(findings) == ["import keras.layers.core"]


def test_tf_keras_experimental_preprocessing_layers(keras, findings):
    import tensorflow as tf
    from tensorflow.keras.layers.experimental.preprocessing import RandomFlip

    assert RandomFlip is keras.layers.RandomFlip
    assert tf.keras.layers.experimental.preprocessing.Rescaling is keras.layers.Rescaling


def test_unknown_names_on_old_paths_still_fail_with_import_error(keras, findings):
    with pytest.raises(ImportError):
        from keras.layers.core import NoSuchLayer  # noqa: F401
    with pytest.raises(AttributeError):
        keras.layers.no_such_module  # noqa: B018


def test_plot_model_without_graphviz_returns_none_and_reports(keras, findings, monkeypatch):
    from keras.src.utils import model_visualization

    monkeypatch.setattr(model_visualization, "check_graphviz", lambda: False)
    model = tiny_model(keras)
    assert keras.utils.plot_model(model, to_file="unused.png", show_shapes=True) is None
    from keras.utils.vis_utils import plot_model

    assert plot_model(model) is None
    assert apis(findings) == ["plot_model", "import keras.utils.vis_utils"]


def test_plot_model_with_graphviz_is_keras_own(keras, findings, monkeypatch):
    from keras.src.utils import model_visualization

    calls = []
    monkeypatch.setattr(model_visualization, "check_graphviz", lambda: True)
    monkeypatch.setattr(model_visualization, "model_to_dot", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(model_visualization, "check_pydot", lambda: True)
    assert keras.utils.plot_model(tiny_model(keras)) is None  # model_to_dot returned None
    assert len(calls) == 1 and findings == []


# --- the install contract ----------------------------------------------------------------------


def test_install_twice_wraps_once_and_keeps_classes(keras, findings):
    init = keras.layers.Conv2D.__init__
    compat.install(findings.append)
    assert keras.layers.Conv2D.__init__ is init
    layer = keras.layers.Convolution2D(8, 3, 3, border_mode="valid")
    assert type(layer) is keras.layers.Conv2D and keras.layers.Convolution2D is keras.layers.Conv2D
    assert "filters" in inspect.signature(keras.layers.Conv2D.__init__).parameters
    assert keras.layers.Conv2D.__init__.__doc__ == init.__wrapped__.__doc__


def test_uninstall_restores_keras(keras):
    originals = (keras.layers.Conv2D.__init__, keras.Model.fit, keras.utils.plot_model)
    compat.install(lambda finding: None)
    compat.uninstall()
    assert (keras.layers.Conv2D.__init__, keras.Model.fit, keras.utils.plot_model) == originals
    assert not hasattr(keras.Model, "fit_generator")
    assert "keras.layers.core" not in sys.modules
    with pytest.raises(ValueError, match="lr"):
        keras.optimizers.SGD(lr=0.1)


def test_features_can_be_switched_off(keras):
    found: list[dict] = []
    compat.install(found.append, features={compat.PLOT_MODEL_HARMLESS})
    try:
        with pytest.raises(ValueError, match="lr"):
            keras.optimizers.SGD(lr=0.1)
        assert not hasattr(keras.Model, "fit_generator")
    finally:
        compat.uninstall()
    with pytest.raises(ValueError, match="unknown compat features"):
        compat.install(found.append, features={"everything"})


def test_a_feature_that_cannot_install_is_reported_and_the_rest_still_works(keras, monkeypatch):
    def moved():
        raise ImportError("keras.src.legacy moved")

    monkeypatch.setattr(compat, "_install_iterator_next", moved)
    found: list[dict] = []
    compat.install(found.append)
    try:
        assert float(keras.optimizers.SGD(lr=0.3).learning_rate) == pytest.approx(0.3)
    finally:
        compat.uninstall()
    assert found[0]["api"] == "install iterator_next" and found[0]["severity"] == "warning"
    assert "keras.src.legacy moved" in found[0]["message"]


def test_a_failing_report_does_not_fail_the_student_cell(keras):
    def broken(finding):
        raise RuntimeError("recorder bug")

    compat.install(broken)
    try:
        assert float(keras.optimizers.SGD(lr=0.3).learning_rate) == pytest.approx(0.3)
    finally:
        compat.uninstall()


def test_compat_imports_only_the_standard_library_and_no_keras_at_import():
    tree = ast.parse(Path(compat.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - {"keras", "numpy"} <= set(sys.stdlib_module_names)
    code = ("import sys, runpy; runpy.run_path(sys.argv[1]); "
            "assert 'keras' not in sys.modules and 'numpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, compat.__file__], check=True, timeout=60)


# --- notebooks -----------------------------------------------------------------------------------

# Runs each notebook's code cells in a fresh namespace of one process (no kernel: the grader's
# own execution tests run them through nbclient), with compat installed afresh per notebook or not.
RUN_NOTEBOOKS = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
sys.path.insert(0, sys.argv[2])
from grader.kernel import compat
results = {}
for path in sys.argv[3:]:
    found = []
    if sys.argv[1] == "on":
        compat.install(found.append)
    try:
        namespace = {"__name__": "__main__"}
        for cell in json.load(open(path))["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), path, "exec"), namespace)
        results[path] = {"ok": True, "findings": [f["api"] for f in found]}
    except Exception as error:
        results[path] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        compat.uninstall()
print("RESULTS" + json.dumps(results))
"""


def run_notebooks(mode: str, tmp_path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUN_NOTEBOOKS, mode, str(ROOT), *map(str, LEGACY_NOTEBOOKS)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    line = [row for row in done.stdout.splitlines() if row.startswith("RESULTS")]
    assert line, done.stderr[-3000:]
    return json.loads(line[-1][len("RESULTS"):])


def test_each_legacy_notebook_names_its_expected_findings():
    assert len(LEGACY_NOTEBOOKS) >= 7
    for path in LEGACY_NOTEBOOKS:
        expected = json.loads(path.read_text())["metadata"]["nn_grader_test"]["expected_findings"]
        assert expected, path.name


def expected_findings(path: Path, graphviz: bool) -> set[str]:
    test = json.loads(path.read_text())["metadata"]["nn_grader_test"]
    extra = [] if graphviz else test.get("expected_findings_without_graphviz", [])
    return {*test["expected_findings"], *extra}


@pytest.mark.slow
def test_legacy_notebooks_fail_on_keras3_and_run_with_compat(tmp_path):
    from keras.src.utils import model_visualization

    without = run_notebooks("off", tmp_path)
    assert [Path(p).name for p, r in without.items() if r["ok"]] == []
    with_compat = run_notebooks("on", tmp_path)
    for path in LEGACY_NOTEBOOKS:
        result = with_compat[str(path)]
        assert result["ok"], (path.name, result)
        expected = expected_findings(path, model_visualization.check_graphviz())
        assert expected <= set(result["findings"]), (path.name, result["findings"])


def test_tf1_set_random_seed_is_tf_random_set_seed(findings):
    tf = pytest.importorskip("tensorflow")
    tf.set_random_seed(3)
    first = tf.random.uniform(())
    tf.random.set_seed(3)
    assert float(first) == float(tf.random.uniform(()))
    assert any(f["api"] == "tf.set_random_seed" for f in findings)


def test_tensorboard_callback_without_tensorboard_is_a_noop(findings, keras, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed: the real callback runs")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    callback = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))
    assert isinstance(callback, keras.callbacks.TensorBoard)
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0, callbacks=[callback])
    assert any(f["api"] == "TensorBoard" for f in findings)
    assert not (tmp_path / "logs").exists()
