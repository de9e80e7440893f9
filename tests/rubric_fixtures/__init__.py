"""Evidence built by hand for rubric, selector and check tests: no notebook runs, no Keras.

The builders compute parameter counts the way Keras does, so the architectures below carry the
figures the course material documents (the CIFAR-10 FC net has 12,523,266 parameters, the CNN
81,834) without importing TensorFlow.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from grader.model.evidence import (
    Architecture,
    Cell,
    CellRef,
    CompileInfo,
    DataFingerprint,
    Evaluation,
    Evidence,
    Figure,
    FitArgs,
    LayerInfo,
    Level,
    ModelSnapshot,
    TrainingRun,
    Verification,
)
from grader.rubric.load import load_rubric_text
from grader.rubric.model import Rubric

FIXTURES = Path(__file__).resolve().parent


def dense(name: str, units: int, fan_in: int, *, activation: str | None = None, bias: bool = True) -> LayerInfo:
    params = fan_in * units + (units if bias else 0)
    return LayerInfo(name, "Dense", [None, units], params, params, 0, activation,
                     {"units": units, "input_dim": fan_in, "use_bias": bias})


def conv(name: str, filters: int, kernel: int, cin: int, out: int, *, padding: str = "valid",
         activation: str | None = "relu", cls: str = "Conv2D") -> LayerInfo:
    params = kernel * kernel * cin * filters + filters
    return LayerInfo(name, cls, [None, out, out, filters], params, params, 0, activation,
                     {"filters": filters, "kernel_size": [kernel, kernel], "strides": [1, 1], "padding": padding,
                      "in_channels": cin, "use_bias": True})


def bn(name: str, shape: list[int | None]) -> LayerInfo:
    channels = shape[-1]
    assert channels is not None
    return LayerInfo(name, "BatchNormalization", shape, 4 * channels, 2 * channels, 2 * channels, None,
                     {"channels": channels, "momentum": 0.99})


def plain(name: str, cls: str, shape: list[int | None], *, activation: str | None = None, **config: Any) -> LayerInfo:
    return LayerInfo(name, cls, shape, 0, 0, 0, activation, dict(config))


def arch(*layers: LayerInfo, input_shape: list[int | None] | None = None, name: str = "model") -> Architecture:
    trainable = sum(layer.trainable_params for layer in layers)
    frozen = sum(layer.non_trainable_params for layer in layers)
    return Architecture(name, "Sequential", list(layers), trainable + frozen, trainable, frozen,
                        input_shape, layers[-1].output_shape if layers else None)


def cifar_fc() -> Architecture:
    """CIFAR-10 FC 3072-1000-10 (seed 001): 12,523,266 parameters."""
    return arch(plain("flatten", "Flatten", [None, 3072]),
                dense("dense", 3072, 3072, activation="tanh"),
                dense("dense_1", 1000, 3072, activation="tanh"),
                dense("dense_2", 10, 1000, activation="softmax"), input_shape=[None, 32, 32, 3])


def cifar_cnn(*, dropout: bool = False) -> Architecture:
    """The seed 001 CIFAR-10 CNN: 81,834 parameters."""
    layers = [conv("conv2d", 32, 5, 3, 28), plain("max_pooling2d", "MaxPooling2D", [None, 14, 14, 32], pool_size=[2, 2]),
              conv("conv2d_1", 64, 4, 32, 11), plain("max_pooling2d_1", "MaxPooling2D", [None, 3, 3, 64], pool_size=[3, 3]),
              conv("conv2d_2", 120, 2, 64, 2), plain("max_pooling2d_2", "MaxPooling2D", [None, 1, 1, 120], pool_size=[2, 2]),
              plain("flatten", "Flatten", [None, 120]), dense("dense", 120, 120, activation="relu"),
              dense("dense_1", 10, 120, activation="softmax")]
    if dropout:
        layers.insert(2, plain("dropout", "Dropout", [None, 14, 14, 32], rate=0.2))
        layers.insert(5, plain("dropout_1", "Dropout", [None, 3, 3, 64], rate=0.2))
    return arch(*layers, input_shape=[None, 32, 32, 3])


def big_cnn() -> Architecture:
    """A CNN with a huge Dense layer: 6,272 → 200 holds most of its parameters."""
    return arch(conv("conv2d", 32, 3, 1, 28, padding="same"),
                plain("max_pooling2d", "MaxPooling2D", [None, 14, 14, 32], pool_size=[2, 2]),
                conv("conv2d_1", 128, 3, 32, 14, padding="same"),
                plain("max_pooling2d_1", "MaxPooling2D", [None, 7, 7, 128], pool_size=[2, 2]),
                plain("flatten", "Flatten", [None, 6272]), dense("dense_1", 200, 6272, activation="relu"),
                dense("dense_2", 10, 200, activation="softmax"), input_shape=[None, 28, 28, 1])


SGD = CompileInfo("SGD", 0.01, "categorical_crossentropy", ["accuracy"], {"momentum": 0.9})


def history(epochs: int, *, acc: float = 0.6, val_acc: float = 0.58, loss: float = 1.0, val_loss: float = 1.1) -> dict[str, list[float]]:
    """A history that ends at the given figures, improving steadily."""
    def ramp(end: float, start: float) -> list[float]:
        return [round(start + (end - start) * (e + 1) / epochs, 4) for e in range(epochs)]
    return {"loss": ramp(loss, loss + 1.0), "accuracy": ramp(acc, 0.1), "val_loss": ramp(val_loss, val_loss + 0.5),
            "val_accuracy": ramp(val_acc, 0.1)}


def run(index: int, cell: int, architecture: Architecture, *, model_id: str | None = None, heading: str | None = None,
        epochs: int = 3, hist: dict[str, list[float]] | None = None, compile: CompileInfo | None = None,
        level: Level = Level.EXECUTED, tags: list[str] | None = None, variable: str | None = None,
        fit: FitArgs | None = None, fast_mode: bool = False, error: str | None = None) -> TrainingRun:
    return TrainingRun(
        index=index, model_id=model_id or f"m{index}", cell=CellRef(cell, heading, tags or []),
        architecture=architecture, compile=compile or SGD,
        fit=fit or FitArgs(epochs=epochs, epochs_run=epochs, batch_size=64, train_samples=50_000,
                           x=DataFingerprint(50_000, [None, 32, 32, 3], "float32", 0.0, 1.0, 0.47)),
        history=hist if hist is not None else history(epochs), level=level, fast_mode=fast_mode,
        variable=variable, error=error,
    )


def cells(*specs: tuple[str, str] | tuple[str, str, list[str]]) -> list[Cell]:
    """Notebook cells from ("md" | "code", source[, tags]) tuples, each given its nearest heading."""
    out: list[Cell] = []
    heading = None
    for index, spec in enumerate(specs):
        kind, source = spec[0], textwrap.dedent(spec[1]).strip()
        tags = list(spec[2]) if len(spec) > 2 else []  # type: ignore[misc]
        cell_type = {"md": "markdown", "code": "code", "raw": "raw"}[kind]
        if cell_type == "markdown":
            for line in source.splitlines():
                if line.lstrip().startswith("#"):
                    heading = line.lstrip("#").strip()
        out.append(Cell(index, cell_type, source, tags, None, heading, cell_type == "code"))
    return out


def lab_notebook() -> list[Cell]:
    """A CIFAR-10 lab laid out like real submissions: questions in markdown, answers after them."""
    return cells(
        ("md", "# CIFAR-10 lab"),                                           # 0
        ("code", "import keras"),                                           # 1
        ("md", "## 2. Fully connected model"),                               # 2
        ("code", "model = build_fc()\nhistory = model.fit(x, y, epochs=3)"),  # 3
        ("md", "Question 2: Train a Fully Connected model that achieves above 45% test accuracy."),  # 4
        ("md", "It has two hidden layers and 12,523,266 parameters."),     # 5
        ("md", "Question 3: Why is CIFAR-10 harder than MNIST?"),         # 6
        ("md", "Colour images, much more variability within each class."),  # 7
        ("md", "## 4. CNN"),                                                # 8
        ("code", "model = CreateCNNModel()\nhistory = model.fit(x, y, epochs=3)", ["cnn"]),  # 9
        ("code", "model.evaluate(x_test, y_test)"),                         # 10
        ("md", "Question 4: Train a CNN model that achieves at least 62% test accuracy."),  # 11
        ("md", "Question 5: Add Dropout layers."),                          # 12
        ("code", "model = CreateCNNModel(dropout=True)\nmodel.fit(x, y, epochs=3)"),  # 13
    )


def lab_evidence(**overrides: Any) -> Evidence:
    """The lab notebook's evidence: an FC fit (cell 4), a CNN fit (cell 10) evaluated in cell 11,
    a CNN with Dropout (cell 14)."""
    evidence = Evidence(
        submission="alice.ipynb",
        cells=lab_notebook(),
        runs=[
            run(0, 3, cifar_fc(), heading="2. Fully connected model", hist=history(3, acc=0.55, val_acc=0.47)),
            run(1, 9, cifar_cnn(), heading="4. CNN", tags=["cnn"], hist=history(3, acc=0.7, val_acc=0.64)),
            run(2, 13, cifar_cnn(dropout=True), heading="4. CNN", variable="model",
                hist=history(3, acc=0.66, val_acc=0.65)),
        ],
        evaluations=[Evaluation(0, "m1", CellRef(10, "4. CNN"), 10_000, {"loss": 1.05, "accuracy": 0.631})],
        models=[ModelSnapshot("m2", "model", cifar_cnn(dropout=True), SGD)],
    )
    for key, value in overrides.items():
        setattr(evidence, key, value)
    return evidence


def verified(model_id: str, accuracy: float, *, status: str = "ok", message: str = "", total: int | None = None) -> Verification:
    return Verification(model_id, status, message,
                        Figure(accuracy, Level.VERIFIED, "clean re-evaluation on 10,000 test images") if status == "ok" else None,
                        None, 10_000, total_params=total)


def rubric(text: str, **kwargs: Any) -> Rubric:
    """A rubric from YAML text (dedented)."""
    return load_rubric_text(textwrap.dedent(text), **kwargs)


def one_task(checks: str, *, model: str = "{fit: 2}", extra: str = "", dataset: str = "cifar10") -> Rubric:
    """A rubric with one task 't' whose model is ``model`` and whose checks are the YAML ``checks``."""
    body = textwrap.indent(textwrap.dedent(checks).strip(), " " * 6)
    head = f"name: test\ndataset: {dataset}\ntasks:\n  - id: t\n    model_name: CNN\n"
    if model:
        head += f"    model: {model}\n"
    if extra:
        head += textwrap.indent(textwrap.dedent(extra).strip(), " " * 4) + "\n"
    return load_rubric_text(head + "    checks:\n" + body + "\n")

