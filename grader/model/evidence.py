"""Evidence: the facts about one submission that every later stage reads.

Evidence comes from one of two places:

* the grader's own run of the notebook (the in-kernel recorder writes a bundle that
  :func:`grader.execute.bundle.read_bundle` turns into an :class:`Evidence`), or
* the outputs saved in the submitted notebook (:mod:`grader.static.outputs`).

Every figure a grade can depend on carries an evidence :class:`Level` (see the trust model in the
design notes): ``reported`` figures were parsed from the file the student submitted, ``executed``
figures were recorded during the grader's run inside the student's kernel, ``verified`` figures
were measured by the grader in a clean process that never ran student code.

All types here are plain dataclasses that round-trip through JSON (:func:`to_json` /
:func:`from_json`), so a stored result can be re-checked against a changed rubric without
re-executing anything.

Example::

    >>> run = TrainingRun(index=0, model_id="m1", cell=CellRef(index=4),
    ...                   architecture=Architecture(total_params=10, trainable_params=10))
    >>> Evidence(submission="alice.ipynb", runs=[run]).runs_of("m1")[0].index
    0
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from grader.model.kinds import FindingKind, Severity

SCHEMA_VERSION = 1


class Level(enum.IntEnum):
    """How far a figure can be trusted; higher is stronger."""

    REPORTED = 1
    EXECUTED = 2
    VERIFIED = 3

    @property
    def label(self) -> str:
        """The level as every report writes it: ``verified``."""
        return self.name.lower()

    @property
    def help(self) -> str:
        """What the level means, for a reader who asks (the report's tooltip)."""
        return LEVEL_HELP[self]

    @classmethod
    def parse(cls, text: "str | Level") -> "Level":
        if isinstance(text, Level):
            return text
        try:
            return cls[str(text).upper()]
        except KeyError:
            raise ValueError(
                f"unknown evidence level {text!r}: use reported, executed or verified"
            ) from None


LEVEL_HELP = {
    Level.REPORTED: "read from the outputs saved in the submitted notebook; the file could have been edited",
    Level.EXECUTED: "recorded while the grader ran the notebook, inside the student's own kernel",
    Level.VERIFIED: "measured by the grader in a separate clean process, on its own copy of the test data",
}


@dataclass
class Figure:
    """A number with its origin: ``Figure(0.63, Level.VERIFIED, "clean re-evaluation on 10,000 test images")``."""

    value: float
    level: Level
    source: str = ""


@dataclass
class CellRef:
    """Where in the notebook something happened. ``index`` counts every cell from 0, markdown too."""

    index: int
    heading: str | None = None  # nearest markdown heading above the cell
    tags: list[str] = field(default_factory=list)
    cell_id: str | None = None

    @property
    def number(self) -> int:
        """The cell as a reader counts it, from 1: what every message shows."""
        return self.index + 1


@dataclass
class Cell:
    """One cell of the submitted notebook, as the grader read it from the file (not the kernel)."""

    index: int
    cell_type: str  # "code" | "markdown" | "raw"
    source: str
    tags: list[str] = field(default_factory=list)
    cell_id: str | None = None
    heading: str | None = None  # nearest markdown heading at or above this cell
    has_outputs: bool = False


@dataclass
class LayerInfo:
    """One layer as Keras built it. ``output_shape`` omits nothing: ``[None, 28, 28, 32]``."""

    name: str
    class_name: str
    output_shape: list[int | None] | None = None
    params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    activation: str | None = None
    # Key configuration, only what grading and feedback use: filters, kernel_size, strides,
    # padding, units, pool_size, rate, momentum, input_dim (fan-in, for parameter arithmetic).
    config: dict[str, Any] = field(default_factory=dict)
    trainable: bool = True
    # A nested model (a VGG16 base inside a Sequential) keeps its own layers here.
    layers: list[LayerInfo] = field(default_factory=list)


@dataclass
class Architecture:
    name: str = ""
    class_name: str = ""  # Sequential, Functional, or a subclass name
    layers: list[LayerInfo] = field(default_factory=list)  # InputLayer already dropped
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    input_shape: list[int | None] | None = None
    output_shape: list[int | None] | None = None
    # Static mode can see a fit without any summary of its model: ``known`` False means nothing
    # is known of its layers, ``params_known`` False that the parameter counts are not (layers
    # rebuilt from the code whose input shape was not literal). Checks then say "not assessed".
    known: bool = field(default=True, metadata={"omit_if_default": True})
    params_known: bool = field(default=True, metadata={"omit_if_default": True})
    # False when the total is known but not each layer's count (a Keras 3 summary printed
    # narrower than its table loses the "Param #" column): layers are not compared by count.
    layer_params_known: bool = field(default=True, metadata={"omit_if_default": True})

    def layer_classes(self) -> list[str]:
        return [layer.class_name for layer in self.layers]


@dataclass
class CompileInfo:
    optimizer: str | None = None  # class name: "SGD", "Adam"
    learning_rate: float | None = None
    loss: str | None = None  # "categorical_crossentropy", ...
    metrics: list[str] = field(default_factory=list)
    optimizer_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataFingerprint:
    """What the arrays passed to fit/evaluate looked like, without the data itself."""

    samples: int | None = None
    shape: list[int | None] | None = None
    dtype: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    # Hashes of a few fixed rows, to recognise the test set among the training data.
    row_hashes: list[str] = field(default_factory=list)
    # Coarse sketches of the same rows, in the same order, matched to the test images with a tolerance.
    sketches: list[str] = field(default_factory=list)
    source: str | None = None  # where sampled rows came from when fit got no array: "dataset arrays", ...


@dataclass
class FitArgs:
    epochs: int | None = None  # what the student asked for
    epochs_run: int | None = None  # what ran (fast mode may cap it)
    initial_epoch: int = 0
    batch_size: int | None = None
    steps_per_epoch: int | None = None
    train_samples: int | None = None
    validation_split: float | None = None
    validation_samples: int | None = None
    x: DataFingerprint | None = None
    capped: dict[str, Any] = field(default_factory=dict)  # {"epochs": [25, 1], "samples": [50000, 512]}
    rows: DataFingerprint | None = None  # rows sampled from a dataset or generator (x is for arrays)
    batches_per_pass: float | None = None  # training steps in one pass over the training data
    passes_per_epoch: float | None = None  # what one epoch asked for (steps_per_epoch over a repeated dataset)
    steps_run: int | None = None  # training steps that ran


@dataclass
class TrainingRun:
    """One call of ``Model.fit``."""

    index: int  # 0-based order of fit calls in the notebook
    model_id: str  # stable id of the model object: several fits on one model share it
    cell: CellRef
    architecture: Architecture
    compile: CompileInfo = field(default_factory=CompileInfo)
    fit: FitArgs = field(default_factory=FitArgs)
    history: dict[str, list[float]] = field(default_factory=dict)
    level: Level = Level.EXECUTED
    weights_file: str | None = None  # path inside the bundle, .keras
    weights_sha256: str | None = None  # of weights_file as the recorder saved it: a later rewrite shows
    duration_s: float | None = None
    error: str | None = None  # fit raised: "ValueError: ..."
    fast_mode: bool = False
    variable: str | None = None  # global name bound to the model at the end, if any

    @property
    def epochs_trained(self) -> int:
        """Epochs this fit ran: the longer of its history and the recorder's own count, so a
        callback that clears ``logs`` cannot make a fit look shorter than it was."""
        lengths = [len(v) for v in self.history.values()]
        return max(max(lengths, default=0), self.fit.epochs_run or 0)

    @property
    def trained_nothing(self) -> bool:
        """True for a fit that failed before its first training step (a generator that cannot run:
        a missing scipy, a bad path), so the model's weights are what the fit before it left."""
        if not self.error or self.history:
            return False
        if self.fit.steps_run is not None:  # counted by recorders that count training steps
            return self.fit.steps_run == 0
        return self.fit.epochs_run == 0

    def final(self, key: str) -> float | None:
        values = history_values(self.history, key)
        return values[-1] if values else None

    def epochs_counted(self, fast: bool) -> int | None:
        """Epochs of this fit as an epoch limit counts them, passes aside: in fast mode those asked
        for (None when not recorded), else those that ran."""
        asked = max(0, self.fit.epochs - (self.fit.initial_epoch or 0)) if self.fit.epochs is not None else None
        if fast:
            return asked
        if self.history or self.fit.epochs_run is not None:
            return self.epochs_trained
        return asked if asked is not None and not self.error else 0

    def passes(self, fast: bool) -> float | None:
        """Passes over the training data: those that ran (training steps over the steps of one pass),
        in fast mode those asked for; None when the size of a pass is unknown (a Python generator)."""
        fit = self.fit
        if not fast and fit.steps_run is not None and fit.batches_per_pass:
            return fit.steps_run / fit.batches_per_pass
        epochs = self.epochs_counted(fast)
        if fit.passes_per_epoch is not None and epochs is not None:
            return epochs * fit.passes_per_epoch
        return None

    def limit_count(self, fast: bool) -> int | None:
        """What an epoch limit counts for this fit: its epochs, or its passes over the training data
        when they are more (``repeat()`` with a ``steps_per_epoch`` above a pass makes each epoch
        several passes). :meth:`passes_note` says why when it is the passes."""
        epochs = self.epochs_counted(fast)
        passes = self.passes(fast)
        if epochs is not None and passes is not None and round(passes) > epochs:
            return round(passes)
        return epochs

    def passes_note(self, fast: bool) -> str | None:
        """``"3 epochs of 10 passes each over the training data"`` when :meth:`limit_count` counts
        passes, else None."""
        epochs, count = self.epochs_counted(fast), self.limit_count(fast)
        if epochs is None or count is None or count == epochs:
            return None
        passes = self.passes(fast) or 0.0
        each = f"{passes / epochs:.3g}" if epochs else f"{passes:.3g}"
        return (f"{epochs} epoch{'s' if epochs != 1 else ''} of {each} passes each over the training data"
                if epochs else f"{each} passes over the training data")


@dataclass
class Evaluation:
    """One call of ``Model.evaluate`` in the student's kernel, or one printed test score."""

    index: int
    model_id: str | None
    cell: CellRef
    samples: int | None = None
    results: dict[str, float] = field(default_factory=dict)  # {"loss": 1.1, "accuracy": 0.61}
    level: Level = Level.EXECUTED
    x: DataFingerprint | None = None


@dataclass
class ModelSnapshot:
    """A model that exists at the end of the run (trained or not), found through a global name."""

    model_id: str
    variable: str | None
    architecture: Architecture
    compile: CompileInfo | None = None
    weights_file: str | None = None
    built_by: str | None = None  # the function that returned it, when the grader called one


@dataclass
class CellError:
    cell: CellRef
    ename: str
    evalue: str
    traceback: str = ""  # ANSI removed, trimmed
    source: str = ""


# Findings that say the evidence may not mean what it seems (grader.findings.integrity, the bundle reader):
# the class overview has a column for them, and grader.checks.review puts the checks they concern
# under review. ``several_fits`` and ``epoch_passes`` are shown but review nothing: the epochs check adds the
# fits up and counts the passes.
INTEGRITY_KINDS = (FindingKind.TRAINED_ON_TEST, FindingKind.SEVERAL_FITS, FindingKind.EPOCH_PASSES, FindingKind.HISTORY, FindingKind.RETRAIN,
                   FindingKind.MISMATCH, FindingKind.PRINTED, FindingKind.MODEL_FILE, FindingKind.TAMPERED,
                   FindingKind.RECORDER, FindingKind.HIDDEN_TRAINING,
                   FindingKind.REWRITTEN)


@dataclass
class Finding:
    """Something the report should tell, which is not itself a check: a removed API that was
    mapped, weights loaded from a file, training data that contains test images."""

    kind: FindingKind  # the text of a member is accepted too: Finding("compat", ...)
    message: str
    cell: CellRef | None = None
    severity: Severity = Severity.INFO
    # the model it concerns, when it concerns one: its checks need review (grader.checks.review)
    model_id: str | None = field(default=None, metadata={"omit_if_default": True})

    def __post_init__(self) -> None:
        # A kind or severity nobody has a title for is a mistake where the finding is made.
        self.kind = FindingKind(self.kind)
        self.severity = Severity(self.severity)

    @property
    def integrity(self) -> bool:
        """True for a sign that the evidence may not mean what it seems (not a note)."""
        return self.kind in INTEGRITY_KINDS and self.severity is not Severity.INFO


class VerificationStatus(enum.StrEnum):
    """What became of the clean verification of one saved model (:class:`Verification`)."""

    OK = "ok"
    UNSAFE = "unsafe"  # needs unsafe deserialization (a Lambda layer, arbitrary code)
    ERROR = "error"
    MISSING = "missing"  # no saved weights
    TAMPERED = "tampered"  # the file was rewritten after the recorder saved it
    REFUSED = "refused"  # declares more than the grader builds (grader.clean.model_files)
    LIMIT = "limit"  # over the verifier's memory or time limit per model
    INPUTS = "inputs"  # takes more than the test images (the labels as a second input, say)

    @property
    def title(self) -> str:
        """The status in words, as the report says why a model was not verified."""
        return VERIFICATION_TITLES[self]


# The words the report's "Not verified (...)" has always shown; ``ok`` is told as the figure itself.
VERIFICATION_TITLES = {
    VerificationStatus.OK: "verified",
    VerificationStatus.UNSAFE: "needs unsafe deserialization",
    VerificationStatus.ERROR: "could not be loaded",
    VerificationStatus.MISSING: "no saved weights",
    VerificationStatus.TAMPERED: "the model file was rewritten after the recorder saved it",
    VerificationStatus.REFUSED: "refused",
    VerificationStatus.LIMIT: "limit",
    VerificationStatus.INPUTS: "takes more inputs than the test images",
}


class VerificationMethod(enum.StrEnum):
    """How the grader measured a verified figure (:attr:`Verification.method`)."""

    CLEAN = "clean"  # loaded with safe_mode=True in the clean process
    SANDBOX = "sandbox"  # loaded with safe_mode=False in a sandbox that had no labels; scored outside it

    @property
    def title(self) -> str:
        return VERIFICATION_METHOD_TITLES[self]


VERIFICATION_METHOD_TITLES = {
    VerificationMethod.CLEAN: "measured in the grader's clean process",
    VerificationMethod.SANDBOX: "predicted in a sandbox that never saw the test labels, scored by the grader",
}


class RetrainingStatus(enum.StrEnum):
    """What became of one retraining by the grader (:class:`grader.clean.protocol.Retraining`)."""

    OK = "ok"
    SKIPPED = "skipped"  # cannot be reproduced (no optimizer recorded, frozen layers, ...)
    UNSAFE = "unsafe"
    TAMPERED = "tampered"
    REFUSED = "refused"  # declares more than the grader's caps
    LIMIT = "limit"  # over the verifier's memory or time limit
    ERROR = "error"

    @property
    def title(self) -> str:
        """The status in words (the report names it in the verification's retrain message)."""
        return RETRAINING_TITLES[self]


# The words the verification's retrain message has always used ("not retrained (skipped): ...").
RETRAINING_TITLES = {
    RetrainingStatus.OK: "retrained",
    RetrainingStatus.SKIPPED: "skipped",
    RetrainingStatus.UNSAFE: "unsafe",
    RetrainingStatus.TAMPERED: "tampered",
    RetrainingStatus.REFUSED: "refused",
    RetrainingStatus.LIMIT: "limit",
    RetrainingStatus.ERROR: "error",
}


@dataclass
class Verification:
    """Figures measured by the grader outside the student's kernel for one saved model."""

    model_id: str
    status: VerificationStatus  # a name ("ok") is accepted and turned into the status
    message: str = ""
    test_accuracy: Figure | None = None
    test_loss: Figure | None = None
    samples: int | None = None
    confusion: list[list[int]] | None = None
    class_names: list[str] | None = None
    total_params: int | None = None  # counted in the clean process
    trainable_params: int | None = None
    non_trainable_params: int | None = None
    # Retraining (grader.clean.retrain): the recorded architecture trained afresh by the grader with the
    # notebook's compile settings and fit arguments, on its own data, with a fixed seed.
    retrained_accuracy: Figure | None = None
    retrain_seed: int | None = None
    retrain_message: str = ""  # why it was not retrained, or what differs from the notebook's training
    method: VerificationMethod = field(default=VerificationMethod.CLEAN, metadata={"omit_if_default": True})

    def __post_init__(self) -> None:
        self.status = VerificationStatus(self.status)
        self.method = VerificationMethod(self.method)


@dataclass
class Variable:
    """A plain global at the end of the run (int, float, str, bool), for answer checks."""

    name: str
    value: Any
    type_name: str


@dataclass
class Evidence:
    submission: str
    mode: str = "executed"  # "executed" | "static"
    cells: list[Cell] = field(default_factory=list)
    runs: list[TrainingRun] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    models: list[ModelSnapshot] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    cell_errors: list[CellError] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    fast_mode: bool = False
    kernel_died: str | None = None  # why, when the kernel died
    timed_out: str | None = None
    duration_s: float | None = None
    schema_version: int = SCHEMA_VERSION

    def runs_of(self, model_id: str) -> list[TrainingRun]:
        return [run for run in self.runs if run.model_id == model_id]

    def epochs_trained(self, model_id: str) -> int:
        """Epochs a model was trained in total, over every fit call on it."""
        return sum(run.epochs_trained for run in self.runs_of(model_id))

    def verification_of(self, model_id: str) -> Verification | None:
        for verification in self.verifications:
            if verification.model_id == model_id:
                return verification
        return None

    def evaluations_of(self, model_id: str) -> list[Evaluation]:
        return [ev for ev in self.evaluations if ev.model_id == model_id]

    def markdown_cells(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.cell_type == "markdown"]


# Keras 1/2 wrote "acc"/"val_acc"; Keras 3 writes "accuracy"/"val_accuracy" or
# "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy".
_ACCURACY_SUFFIXES = ("accuracy", "acc")


def is_accuracy_key(name: str) -> bool:
    """Whether a history or ``evaluate`` key is an accuracy of some kind, in any Keras spelling:
    ``acc``, ``val_accuracy``, ``sparse_categorical_accuracy``, ``top_k_categorical_accuracy``.
    Which of them is *the* accuracy is :func:`history_values`' rule."""
    return name.endswith(_ACCURACY_SUFFIXES)


def history_values(history: dict[str, list[float]], key: str) -> list[float]:
    """The history series for ``key``, accepting the spellings of every Keras generation.

    ``key`` is one of ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``.
    """
    if key in history:
        return list(history[key])
    if key.endswith("accuracy"):
        prefix = "val_" if key.startswith("val_") else ""
        for name, values in history.items():
            bare = name[len(prefix):] if prefix and name.startswith(prefix) else name
            if prefix and not name.startswith(prefix):
                continue
            if not prefix and name.startswith("val_"):
                continue
            if is_accuracy_key(bare) and "top_k" not in bare:
                return list(values)
    return []


def accuracy_of(results: dict[str, float]) -> float | None:
    """The accuracy among one epoch's logs or an ``evaluate`` result, by the one rule of
    :func:`history_values`: any Keras spelling (``acc``, ``accuracy``, ``categorical_accuracy``),
    never ``top_k_categorical_accuracy``, never a ``val_`` figure."""
    values = history_values({k: [v] for k, v in results.items()}, "accuracy")
    return float(values[0]) if values else None


# ---------------------------------------------------------------------------------------------
# JSON round trip. Hand-rolled because the types are few and fixed; Level is stored as its name.


def to_json(obj: Any) -> Any:
    """A JSON-ready structure for any evidence dataclass (or list/dict of them)."""
    kind = type(obj)
    if kind in _ATOMS:
        return obj
    if kind is list or kind is tuple:
        return [item if type(item) in _ATOMS else to_json(item) for item in obj]
    if kind is dict:
        return {str(k): v if type(v) in _ATOMS else to_json(v) for k, v in obj.items()}
    if isinstance(obj, Level):
        return obj.label
    if isinstance(obj, enum.Enum):
        return obj.value
    plan = _PLANS.get(kind)
    if plan is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        plan = _PLANS[kind] = tuple((f.name, bool(f.metadata.get("omit_if_default")), f.default)
                                    for f in dataclasses.fields(obj))
    if plan is not None:
        # Fields added later are left out at their default, so stored files keep their form.
        out = {}
        for name, omit_if_default, default in plan:
            value = getattr(obj, name)
            if omit_if_default and value == default:
                continue
            out[name] = value if type(value) in _ATOMS else to_json(value)
        return out
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


def copy_evidence(obj: _T) -> _T:
    """A deep copy of an evidence dataclass tree (or list/dict of them), as ``copy.deepcopy``
    makes one but in a fraction of the time: evidence holds no shared or cyclic parts."""
    kind = type(obj)
    if kind in _ATOMS or isinstance(obj, enum.Enum):
        return obj
    if kind is list:
        return [item if type(item) in _ATOMS else copy_evidence(item) for item in obj]  # type: ignore[return-value]
    if kind is dict:
        return {k: v if type(v) in _ATOMS else copy_evidence(v) for k, v in obj.items()}  # type: ignore[return-value]
    if kind is tuple:
        return tuple(copy_evidence(item) for item in obj)  # type: ignore[return-value]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type) and kind.__dict__.get("__slots__") is None:
        copied = object.__new__(kind)
        for name, value in obj.__dict__.items():
            copied.__dict__[name] = value if type(value) in _ATOMS else copy_evidence(value)
        return copied
    return copy.deepcopy(obj)


# Values that are their own JSON (exact types: an IntEnum such as Level is not an int here).
_ATOMS = frozenset({str, int, float, bool, type(None)})
# Each dataclass's fields, as to_json walks them: (name, omitted at its default, the default).
_PLANS: dict[type, tuple[tuple[str, bool, Any], ...]] = {}


_T = typing.TypeVar("_T")


def from_json(cls: type[_T], data: Any) -> _T:
    """Rebuild a dataclass from :func:`to_json` output. Raises ``ValueError`` on a wrong shape."""
    return _build(cls, data, getattr(cls, "__name__", "value"))


# Types whose JSON value of exactly that type is the value itself (a float field given an int
# goes the long way, and becomes a float).
_SAME: dict[Any, type] = {str: str, float: float, int: int, bool: bool}
# Each dataclass's (field name, type) pairs: the annotations are text (postponed), and reading
# them for every object of a result took most of the time of loading it.
_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _fields_of(tp: type) -> tuple[tuple[str, Any], ...]:
    fields = _FIELDS.get(tp)
    if fields is None:
        hints = typing.get_type_hints(tp)
        fields = _FIELDS[tp] = tuple((f.name, hints[f.name]) for f in dataclasses.fields(tp))
    return fields


def _build(tp: Any, data: Any, where: str) -> Any:
    try:
        if _SAME.get(tp) is type(data):  # most of a result: text and numbers already of their type
            return data
    except TypeError:  # an unhashable annotation: the long way
        pass
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _build(arg, data, where)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError(f"{where}: {errors[0] if errors else 'unexpected null'}")
    if origin is list:
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected a list, got {type(data).__name__}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        _, value_tp = typing.get_args(tp) or (str, Any)
        return {str(k): _build(value_tp, v, f"{where}.{k}") for k, v in data.items()}
    if tp is Level:
        try:
            return Level.parse(data)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            raise ValueError(f"{where}: {data!r:.40} is not one of {[m.value for m in tp]}") from None
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        kwargs = {}
        for name, hint in _fields_of(tp):
            if name in data:
                kwargs[name] = _build(hint, data[name], f"{where}.{name}")
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise ValueError(f"{where}: expected a number, got {data!r:.40}")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise ValueError(f"{where}: expected an integer, got {data!r:.40}")
        return data
    if tp is str:
        if not isinstance(data, str):
            raise ValueError(f"{where}: expected text, got {type(data).__name__}")
        return data
    if tp is bool:
        if not isinstance(data, bool):
            raise ValueError(f"{where}: expected true/false, got {data!r:.40}")
        return data
    if tp is type(None):
        if data is not None:
            raise ValueError(f"{where}: expected null")
        return None
    return data
