"""The words of the clean process and the sandbox: verification and retraining statuses, sandbox
modes. Each is a closed vocabulary with a title for every member; result.json, the cache key and
the worker's JSON keep the plain text they always held."""

from __future__ import annotations

import json

import pytest

from grader.clean.protocol import Retraining, retraining_from_json, verification_from_json
from grader.clean.worker import _handle
from grader.errors import SandboxUnavailable
from grader.execute.settings import ExecutionSettings
from grader.model.kinds import SANDBOX_TITLES, SandboxMode
from grader.model.evidence import (
    RETRAINING_TITLES,
    VERIFICATION_TITLES,
    RetrainingStatus,
    Verification,
    VerificationStatus,
    from_json,
    to_json,
)


@pytest.mark.parametrize("vocabulary, titles", [(VerificationStatus, VERIFICATION_TITLES),
                                                (RetrainingStatus, RETRAINING_TITLES),
                                                (SandboxMode, SANDBOX_TITLES)])
def test_every_member_has_a_title(vocabulary, titles):
    assert set(titles) == set(vocabulary)
    for member in vocabulary:
        assert isinstance(member.title, str) and member.title.strip(), member


def test_a_verification_status_is_stored_as_its_plain_word():
    stored = to_json(Verification("m1", "refused", "declares 3e9 parameters"))
    assert stored["status"] == "refused" and type(stored["status"]) is str
    assert from_json(Verification, json.loads(json.dumps(stored))).status is VerificationStatus.REFUSED


def test_a_status_nobody_has_words_for_is_refused_where_it_is_made():
    with pytest.raises(ValueError):
        Verification("m1", "fine")
    with pytest.raises(ValueError):
        Retraining("m1", "done")


def test_a_worker_answer_with_an_unknown_status_is_an_error_that_says_so():
    verification = verification_from_json("m1", {"status": "fine", "accuracy": 0.9})
    assert verification.status is VerificationStatus.ERROR and "unknown status 'fine'" in verification.message
    assert retraining_from_json("m1", {"status": "done"}).status is RetrainingStatus.ERROR


def test_a_request_of_a_kind_the_worker_has_no_handler_for_is_answered_with_an_error():
    answer = _handle({"kind": "explain", "model_path": "m.keras"})
    assert answer["status"] == "error" and "'explain'" in answer["message"]


def test_the_sandbox_mode_reads_and_prints_as_its_name():
    settings = ExecutionSettings(sandbox="none")
    assert settings.sandbox is SandboxMode.NONE and f"{settings.sandbox}" == "none"
    assert json.dumps(settings.fingerprint()["sandbox"]) == '"none"'
    with pytest.raises(SandboxUnavailable, match="auto, bwrap or none"):
        ExecutionSettings(sandbox="docker")
