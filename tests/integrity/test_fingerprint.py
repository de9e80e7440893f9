"""The trained-on-test fingerprint on small arrays: sketches that survive small noise, rows sampled
from tf.data datasets, generators and PyDatasets without disturbing training, and honest
preprocessing that is never taken for the test set."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from grader.findings.integrity import integrity_findings
from grader.kernel.recorder import SIGNATURE_ROWS, rank_signatures, row_sketches, training_facts, training_rows
from grader.model.evidence import DataFingerprint, Evidence, FitArgs
from tests.rubric_fixtures import cifar_cnn, run


def _count(test_images, x) -> int:
    return test_images.count(rank_signatures(x, rows=None), row_sketches(x, rows=None))


def _noise(x, sigma: float, seed: int = 0):
    return x + np.random.default_rng(seed).normal(0, sigma, x.shape)


# -- small noise


@pytest.mark.parametrize("prepare", [
    lambda x: _noise(x / 255.0, 1e-3),
    lambda x: _noise(x / 255.0, 1e-2),
    lambda x: _noise(x.astype("float32"), 1.0),
    lambda x: _noise((x - x.mean()) / x.std(), 1e-2),
    lambda x: _noise(x / 255.0, 1e-3).reshape(len(x), -1),  # flattened for a dense network
], ids=["scaled-1e-3", "scaled-1e-2", "raw-1", "standardized", "flattened"])
def test_test_images_with_small_noise_are_recognised_by_their_sketches(cifar, test_images, prepare):
    x = prepare(cifar.x_test[:50])
    assert test_images.count(rank_signatures(x, rows=None)) < 5  # the ranks do not survive noise
    assert _count(test_images, x) == 50


def test_sketches_run_parallel_to_signatures_and_are_bounded():
    x = np.random.default_rng(0).integers(0, 255, (5000, 32, 32, 3), dtype=np.uint8)
    sketches = row_sketches(x)
    assert len(sketches) == len(rank_signatures(x)) == SIGNATURE_ROWS
    assert {s.split(":")[0] for s in sketches} == {"s32x32x3"}
    assert {len(base64.b64decode(s.split(":")[1])) for s in sketches} == {8 * 8 * 3}


def test_a_blank_image_has_no_sketch_to_match(test_images):
    assert row_sketches(np.full((2, 32, 32, 3), 7.0), rows=None) == ["s32x32x3:-"] * 2


def test_forged_sketches_match_nothing_and_raise_nothing(test_images):
    wrong_length = "s32x32x3:" + base64.b64encode(b"\x00" * 10).decode()
    assert test_images.matches(["r3:zz"], ["s32x32x3:!!", wrong_length, "no kind", 5, "f7:AAAA", "s1x2:AA=="]) == [None] * 6


# -- honest preprocessing and augmentation


def _flip(x):
    return x[:, :, ::-1]


def _shift(x):
    return np.roll(x, 3, axis=2)


@pytest.mark.parametrize("prepare", [
    lambda x: x / 255.0,
    lambda x: (x - x.mean()) / x.std(),
    lambda x: (x - x.mean(axis=0)) / 255.0,  # per-pixel mean subtraction
    lambda x: (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2)),
    lambda x: _flip(x) / 255.0,
    lambda x: _shift(x) / 255.0,
    lambda x: _noise(x / 255.0, 1e-2),
    lambda x: (x / 255.0).reshape(len(x), -1),
], ids=["scaled", "standardized", "per-pixel-mean", "per-channel", "flipped", "shifted", "noisy", "flattened"])
def test_honest_training_images_are_never_taken_for_test_images(cifar, test_images, prepare):
    assert _count(test_images, prepare(cifar.x_train)) == 0


def test_honest_training_with_validation_split_is_no_finding(cifar, test_images):
    x = cifar.x_train / 255.0
    fit = FitArgs(epochs=2, epochs_run=2, train_samples=len(x), validation_split=0.2, x={})
    fit.x = DataFingerprint(len(x), row_hashes=rank_signatures(x, train_fraction=0.8),
                            sketches=row_sketches(x, train_fraction=0.8))
    evidence = Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), fit=fit)])
    assert [f for f in integrity_findings(evidence, test_images=test_images) if f.kind == "trained_on_test"] == []


# -- the threshold is a share of the sampled rows


def _fit_on(x) -> Evidence:
    fit = FitArgs(epochs=2, epochs_run=2, train_samples=len(x),
                  x=DataFingerprint(len(x), row_hashes=rank_signatures(x, rows=None), sketches=row_sketches(x, rows=None)))
    return Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), fit=fit)])


def _on_test(evidence, test_images):
    return [f for f in integrity_findings(evidence, test_images=test_images) if f.kind == "trained_on_test"]


def test_a_share_of_test_images_below_one_percent_is_not_reported(cifar, test_images):
    x = np.concatenate([cifar.x_train, _noise(cifar.x_test[:5] / 1.0, 0.5)]) / 255.0  # 5 of 605
    assert _on_test(_fit_on(x), test_images) == []


def test_a_share_above_it_is_reported_with_the_matched_rows(cifar, test_images):
    x = np.concatenate([cifar.x_train, _noise(cifar.x_test[:60] / 1.0, 0.5)]) / 255.0  # 60 of 660
    (finding,) = _on_test(_fit_on(x), test_images)
    assert "(60 of 660 sampled rows matched, 60 of them only nearly: noise" in finding.message
    assert "of the 660 images fit #1 trained on are test images" in finding.message


# -- rows from tf.data, generators, PyDatasets, dicts


def _tf():
    return pytest.importorskip("tensorflow")


def test_rows_of_a_tf_data_dataset_come_from_the_arrays_beneath_it(cifar, test_images):
    tf = _tf()
    ds = tf.data.Dataset.from_tensor_slices((cifar.x_test, cifar.y_test)).shuffle(200).batch(32).repeat().prefetch(1)
    rows, source = training_rows(ds)
    assert source == "dataset arrays" and rows.shape == (200, 32, 32, 3)
    assert test_images.count(rank_signatures(rows, rows=None), row_sketches(rows, rows=None)) == 200


def test_a_dataset_without_arrays_gives_its_first_batches(cifar, test_images):
    tf = _tf()
    x = cifar.x_test.astype("float32") / 255.0
    ds = tf.data.Dataset.range(200).map(lambda i: (tf.gather(x, i) + 1e-3, i)).batch(32)
    rows, source = training_rows(ds)
    assert source == "dataset batches" and len(rows) == 200
    assert test_images.count(rank_signatures(rows, rows=None), row_sketches(rows, rows=None)) == 200


def test_a_dict_input_gives_the_rows_of_its_images(cifar):
    tf = _tf()
    ds = tf.data.Dataset.from_tensor_slices(({"image": cifar.x_test, "id": np.arange(200)}, cifar.y_test)).batch(32)
    assert training_rows(ds)[0].shape == (200, 32, 32, 3)
    assert training_rows({"image": cifar.x_test, "id": np.arange(200)})[0].shape == (200, 32, 32, 3)


def test_a_python_generator_is_never_read(cifar):
    def batches():
        for start in range(0, 200, 32):
            yield cifar.x_test[start:start + 32], cifar.y_test[start:start + 32]

    generator = batches()
    assert training_rows(generator) == (None, None)
    assert np.array_equal(next(generator)[0], cifar.x_test[:32])  # training still gets every batch


def test_a_dataset_that_may_share_a_generator_is_not_iterated(cifar):
    tf = _tf()
    generator = (cifar.x_test[i:i + 32] for i in range(0, 200, 32))
    ds = tf.data.Dataset.from_generator(lambda: generator, output_signature=tf.TensorSpec((None, 32, 32, 3), tf.uint8))
    assert training_rows(ds) == (None, "dataset from a generator")
    assert np.array_equal(next(generator), cifar.x_test[:32])


def test_a_pydataset_gives_its_first_batches_by_index(cifar):
    keras = pytest.importorskip("keras")

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return cifar.x_test[i * 32:(i + 1) * 32], cifar.y_test[i * 32:(i + 1) * 32]

    rows, source = training_rows(Batches())
    assert source == "sequence batches" and len(rows) == 200


def test_a_dataset_trained_on_is_a_finding_that_says_where_its_rows_came_from(cifar, test_images):
    tf = _tf()
    ds = tf.data.Dataset.from_tensor_slices((cifar.x_test, cifar.y_test)).batch(32)
    facts = training_facts(ds, {"x": None, "batch_size": None, "steps_per_epoch": None, "validation_split": None})
    fit = FitArgs(epochs=2, epochs_run=2, rows=DataFingerprint(**{k: facts["rows"][k] for k in ("source", "row_hashes", "sketches")}))
    (finding,) = _on_test(Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), fit=fit)]), test_images)
    assert finding.message.startswith("fit #1 trained on the test set: all 200 rows of the arrays its tf.data dataset "
                                      "was made from the grader sampled are images of its test set (200 of 200 sampled rows matched)")
