"""What a reference model is: its documented figures, compile settings and training settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from grader.errors import ReferenceModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras


@dataclass(frozen=True)
class Figures:
    """Parameter figures a seed documents for a model, and where it does."""

    total: int
    trainable: int
    non_trainable: int
    output_shape: tuple[int | None, ...]
    source: str  # "seed 001, question 4 summary" or "derived: the seed gives no table"


@dataclass(frozen=True)
class CompileSettings:
    """How the course compiles the model. ``options`` go to the optimizer (momentum, nesterov).

    ``lr_time_decay`` is the ``decay=`` argument of Keras 1/2 optimizers, which the seeds use
    (``SGD(lr=0.01, decay=1e-6)``): the learning rate falls as ``lr / (1 + decay · iterations)``.
    Keras 3 removed the argument; :meth:`optimizer` rebuilds it as an ``InverseTimeDecay``.
    """

    optimizer: str  # Keras class name: "SGD", "Adam", "RMSprop"
    learning_rate: float
    loss: str
    metrics: tuple[str, ...] = ("accuracy",)
    options: dict[str, Any] = field(default_factory=dict)
    lr_time_decay: float | None = None

    def make_optimizer(self) -> Any:
        """A fresh Keras optimizer with these settings."""
        import keras

        learning_rate: Any = self.learning_rate
        if self.lr_time_decay:
            learning_rate = keras.optimizers.schedules.InverseTimeDecay(
                self.learning_rate, decay_steps=1, decay_rate=self.lr_time_decay
            )
        cls = getattr(keras.optimizers, self.optimizer)
        return cls(learning_rate=learning_rate, **self.options)

    def describe(self) -> str:
        parts = [f"{self.optimizer}(learning_rate={self.learning_rate:g}"]
        parts += [f", {key}={value!r}" for key, value in self.options.items()]
        if self.lr_time_decay:
            parts.append(f", time decay {self.lr_time_decay:g} per step")
        return "".join(parts) + f"), loss={self.loss}, metrics={list(self.metrics)}"


@dataclass(frozen=True)
class TrainingSettings:
    """How the reference is trained by ``grade reference train`` unless told otherwise.

    ``preprocess`` is ``"unit"`` (pixels divided by 255) or ``"standardize"`` (minus the training
    set's mean, divided by its standard deviation, as the MNIST notebooks of seed 000 do).
    ``train_size`` is a subset the course trains on (seed 000: 4,000 MNIST images), or None.
    """

    epochs: int
    batch_size: int
    preprocess: str = "unit"
    train_size: int | None = None
    source: str = ""  # which of these the seed states, and which the grader chose


@dataclass(frozen=True)
class ReferenceModel:
    """One reference architecture: how to build, compile and train it, and what it must measure."""

    name: str
    seed: str  # the seed file's number: "001"
    title: str
    description: str
    dataset: str  # a name of grader.data.registry.SPECS, or a course dataset the grader cannot load
    builder: Callable[..., Any]
    figures: Figures
    compile: CompileSettings
    training: TrainingSettings
    documented_accuracy: str | None = None  # what the seed reports, in its words

    def build(self, weights: str | Path | None = None, *, compiled: bool = False, **options: Any) -> "keras.Model":
        """A fresh Keras model. ``weights`` is a local weights file (``.weights.h5`` or ``.keras``)
        loaded into it; VGG16-based models also take ``base_weights``, the ImageNet no-top file.
        Nothing is ever downloaded.
        """
        for value in (weights, options.get("base_weights")):
            if value is not None and not Path(value).is_file():
                raise ReferenceModelError(f"weights file {value} does not exist (nothing is downloaded: "
                                          f"put the file there first)")
        model = self.builder(weights=weights, **options)
        if compiled:
            self.compile_model(model)
        return model

    def compile_model(self, model: "keras.Model") -> "keras.Model":
        """Compile ``model`` with this reference's settings (a fresh optimizer each time)."""
        model.compile(optimizer=self.compile.make_optimizer(), loss=self.compile.loss,
                      metrics=list(self.compile.metrics))
        return model
