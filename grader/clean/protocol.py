"""The clean process's messages: what the grader asks its worker, and what comes back.

Requests and answers travel as JSON lines over the worker's stdin/stdout (nothing is pickled:
the worker never unpickles what a grader process wrote, and the grader never unpickles what
came out of a model's process). Each request names its ``kind``; the worker
(:mod:`grader.clean.worker`) has one handler per kind. Every request carries ``limits``, the
memory and seconds its model's process may use.

An answer is a JSON object with a ``status`` (a :class:`~grader.model.evidence.VerificationStatus`
or :class:`~grader.model.evidence.RetrainingStatus` value) and a ``message``; the grader turns it
into a :class:`~grader.model.evidence.Verification` (:func:`verification_from_json`) or a
:class:`Retraining` (:func:`retraining_from_json`).

Example::

    payload = request_json(VerifyRequest(model_path="m1.keras", data_path="cifar10.npz"), memory=2**32, seconds=600)
    verification_from_json("m1", {"status": "refused", "message": "declares 3e9 parameters"}).status
    # VerificationStatus.REFUSED
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from grader.model.evidence import (
    Figure,
    Level,
    RetrainingStatus,
    Verification,
    VerificationMethod,
    VerificationStatus,
    from_json,
)

__all__ = ["DEFAULT_SEED", "METHOD_VARIABLE", "RetrainRequest", "Retraining", "SANDBOX_NOTE", "VerifyRequest",
           "request_json", "retraining_from_json", "verification_from_json"]

DEFAULT_SEED = 0
# NN_GRADER_MODEL_PROCESS=fork|spawn: how the worker starts the process for one model
# (grader.clean.worker.start_method); the grader's Verifier sets it on request.
METHOD_VARIABLE = "NN_GRADER_MODEL_PROCESS"
SANDBOX_NOTE = ("measured in a sandbox: the model needs unsafe deserialization (a Lambda layer), so the grader loaded "
                "it with safe_mode=False in a sandboxed process that saw only the model file and the test images, "
                "and scored its predictions against the labels itself")


@dataclass
class VerifyRequest:
    """What the worker needs to measure one saved model."""

    model_path: str
    data_path: str  # .npz with x_test, y_test (and x_train for standardization statistics)
    model_id: str = ""
    preprocess: str = "auto"  # auto | none | scale255 | symmetric | center | center_raw | standardize
    observed: dict[str, float | None] = field(default_factory=dict)  # min/max/mean the kernel fed to fit
    max_samples: int | None = None
    class_names: list[str] = field(default_factory=list)
    expected_sha256: str | None = None  # what the recorder saw when it saved the file
    # Seconds of evaluation (fast mode): past it the accuracy is that of the samples evaluated,
    # and the answer says how many of how many. None: every sample, however long it takes.
    time_budget_s: float | None = None
    # Bytes this model's process may allocate (beyond the worker's own); None: the Verifier's.
    memory_limit: int | None = None
    kind: str = "verify"


@dataclass
class RetrainRequest:
    """What the verifier's worker needs to retrain one model (JSON over its stdin)."""

    model_path: str  # the saved .keras file: only its configuration is used
    train_data: str  # .npz with x_train, y_train: the data the notebook was given
    test_data: str  # .npz with x_test, y_test: the grader's copy or the hidden test set
    run: dict[str, Any]  # the model's last TrainingRun (evidence JSON): compile settings, fit arguments
    model_id: str = ""
    epochs: int | None = None  # None: the epochs of the run's own fit
    seed: int = DEFAULT_SEED
    caps: dict[str, int] | None = None  # fast mode: epochs, train_samples, test_samples
    preprocess: str = "auto"
    expected_sha256: str | None = None
    kind: str = "retrain"


@dataclass
class Retraining:
    """The outcome of one retraining."""

    model_id: str
    status: RetrainingStatus  # a name ("skipped") is accepted and turned into the status
    message: str = ""
    accuracy: Figure | None = None
    loss: float | None = None
    seed: int = DEFAULT_SEED
    epochs: int = 0
    batch_size: int | None = None
    train_samples: int = 0
    test_samples: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    device: str = ""
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)  # how this training differs from the notebook's

    def __post_init__(self) -> None:
        self.status = RetrainingStatus(self.status)


def request_json(request: VerifyRequest | RetrainRequest, *, memory: int | None, seconds: float | None) -> dict[str, Any]:
    """``request`` as the worker reads it, with the limits of its model's process."""
    return dict(asdict(request), limits={"memory": memory, "seconds": seconds})


def verification_from_json(model_id: str, answer: dict[str, Any]) -> Verification:
    """The worker's answer to a verify request as a :class:`Verification` (an answer whose
    status is no :class:`VerificationStatus` becomes an error that says so)."""
    try:
        status = VerificationStatus(answer.get("status", VerificationStatus.ERROR))
    except ValueError:
        return Verification(model_id, VerificationStatus.ERROR,
                            f"the verifier's answer was malformed: unknown status {answer.get('status')!r:.40}")
    verification = Verification(model_id, status, answer.get("message", ""))
    if status is VerificationStatus.OK:
        cut = answer.get("budget") or {}
        counted = (f"{answer['samples']:,} of {cut['requested']:,} test samples, stopped at the fast-mode budget of "
                   f"{cut['budget_s']:g} s" if cut else f"{answer['samples']:,} test samples")
        source = f"clean re-evaluation on {counted} ({answer.get('preprocess_note', '')})"
        if answer.get("method") == VerificationMethod.SANDBOX:
            verification.method = VerificationMethod.SANDBOX
            source = (f"re-evaluation in a sandbox on {counted} ({answer.get('preprocess_note', '')}; "
                      f"{VerificationMethod.SANDBOX.title})")
            verification.message = SANDBOX_NOTE
        if cut:
            verification.message = f"{verification.message}; {cut['message']}" if verification.message else cut["message"]
        verification.test_accuracy = Figure(answer["accuracy"], Level.VERIFIED, source)
        if answer.get("loss") is not None:
            verification.test_loss = Figure(answer["loss"], Level.VERIFIED, source)
        verification.samples = answer["samples"]
        verification.confusion = answer.get("confusion")
        verification.class_names = answer.get("class_names")
    for key in ("total_params", "trainable_params", "non_trainable_params"):
        setattr(verification, key, answer.get(key))
    return verification


def retraining_from_json(model_id: str, answer: dict[str, Any]) -> Retraining:
    """The worker's JSON answer as a :class:`Retraining` (a malformed answer becomes an error)."""
    try:
        retraining = from_json(Retraining, dict(answer, model_id=model_id))
    except ValueError as exc:
        return Retraining(model_id, RetrainingStatus.ERROR, f"the verifier's answer was malformed: {exc}")
    if retraining.accuracy is not None:
        retraining.accuracy.level = Level.VERIFIED
    return retraining
