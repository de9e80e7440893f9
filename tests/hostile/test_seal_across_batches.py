"""The seal survives from one batch to the next, and covers the grader's dataset copies.

A process left by an earlier unsandboxed batch (or anything else) may change the output folder
between two batches; the next batch checks it against what the previous one sealed when it
ended (``.store/.seal``) before it trusts anything, and the dataset copies in ``.store/.data``
are sealed like the rest. No kernel runs here: the folder is changed by the test, as such a
process would.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from grader.store.seal import END_SEAL, RunSeal, verify_store

KEY = "ab" * 32


@pytest.fixture
def out(tmp_path) -> Path:
    """An output folder as a finished batch leaves it: a result, an execution, a dataset copy."""
    out = tmp_path / "out"
    (out / "alice").mkdir(parents=True)
    (out / "alice" / "result.json").write_text(json.dumps({"score": 2.0}))
    entry = out / ".store" / KEY
    entry.mkdir(parents=True)
    (entry / "evidence.json").write_text(json.dumps({"answer": 42}))
    (entry / "execution.json").write_text(json.dumps({"duration_s": 1.0}))
    data = out / ".store" / ".data"
    data.mkdir()
    (data / "cifar10-1234.npz").write_bytes(b"honest test labels" * 1000)
    (data / "cifar10-1234.json").write_text(json.dumps({"fingerprint": "1234"}))
    first = RunSeal()
    first.take_manifest(out)
    first.save(out)  # the batch ends: no kernel is left
    return out


def test_a_finished_batch_leaves_its_seals_private_to_the_grader(out):
    assert stat.S_IMODE((out / END_SEAL).stat().st_mode) == 0o600


def test_an_unchanged_folder_is_trusted_by_the_next_batch(out):
    second = RunSeal()
    assert second.take_manifest(out) == 5
    assert second.tampered == []
    assert (out / ".store" / KEY / "evidence.json").is_file()
    assert not (out / END_SEAL).exists()  # taken off the disk before any kernel of this batch starts


def test_evidence_changed_between_batches_is_not_reused(out):
    evidence = out / ".store" / KEY / "evidence.json"
    evidence.write_text(evidence.read_text().replace("42", "41"))
    second = RunSeal()
    second.take_manifest(out)
    assert not (out / ".store" / KEY).exists()  # the notebook runs again
    [item] = second.tampered
    assert item.what == "evidence" and item.before
    assert "since the previous batch ended" in item.message()


def test_a_dataset_copy_changed_between_batches_is_prepared_again(out):
    data = out / ".store" / ".data" / "cifar10-1234.npz"
    data.write_bytes(b"labels the notebook chose" * 1000)
    second = RunSeal()
    second.take_manifest(out)
    assert not data.exists()
    assert [item.what for item in second.tampered] == ["data"]


def test_a_result_planted_between_batches_is_refused(out):
    (out / "zz_fake").mkdir()
    (out / "zz_fake" / "result.json").write_text(json.dumps({"score": 26.0}))
    second = RunSeal()
    second.take_manifest(out)
    assert not (out / "zz_fake" / "result.json").exists()
    assert (out / "zz_fake" / "result.json.refused").is_file()
    assert [(item.what, item.student) for item in second.tampered] == [("result", "zz_fake")]
    assert (out / "alice" / "result.json").is_file()  # the honest one stays


def test_seals_rewritten_with_another_key_do_not_verify(out):
    (out / ".store" / KEY / "evidence.json").write_text(json.dumps({"answer": 41}))
    forged = json.loads((out / END_SEAL).read_text())
    forger = RunSeal()
    forged["macs"][f".store/{KEY}/evidence.json"] = forger.mac(f".store/{KEY}/evidence.json",
                                                                b'{"answer": 41}').hex()
    (out / END_SEAL).write_text(json.dumps(forged))
    second = RunSeal()
    second.take_manifest(out)
    assert not (out / ".store" / KEY).exists()


def test_a_dataset_copy_changed_during_the_batch_is_found(out):
    seal = RunSeal()
    seal.take_manifest(out)
    data = out / ".store" / ".data" / "cifar10-1234.npz"
    data.write_bytes(b"labels the notebook chose" * 1000)  # through the kernels' link to it
    found = verify_store(seal, out)
    assert [item.what for item in found] == ["data"] and not found[0].before
    assert not data.exists()


def test_a_dataset_copy_the_batch_prepared_is_sealed_before_the_kernels(tmp_path):
    out = tmp_path / "out"
    (out / ".store").mkdir(parents=True)
    seal = RunSeal()
    seal.take_manifest(out)
    (out / ".store" / ".data").mkdir()
    (out / ".store" / ".data" / "mnist-99.npz").write_bytes(b"prepared now")  # session.prepare_data
    assert seal.take_data(out) == 1
    assert verify_store(seal, out) == []
    assert (out / ".store" / ".data" / "mnist-99.npz").is_file()
