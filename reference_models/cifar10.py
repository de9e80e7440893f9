"""CIFAR-10 references: the lab of seed 001 (FC ≥ 45%, CNN ≥ 62%, Dropout, BatchNorm, ≥ 75% in 25 epochs).

The seed's FC and CNN answers are Functional models compiled with
``SGD(lr=0.01, momentum=0.9, decay=1e-6, nesterov=True)`` and categorical crossentropy; the
CNN's 11×11 → 3×3 step is a 3×3 max pooling. ``cifar10_cnn75`` is the grader's solution for
question 9: three blocks of (Conv-BN-ReLU) ×2 + MaxPooling + Dropout, then Dense with Dropout.
"""

from __future__ import annotations

from typing import Any

from reference_models._build import LayerNames, load_weights
from reference_models.model import CompileSettings, Figures, ReferenceModel, TrainingSettings


def cifar10_fc(weights: Any = None) -> Any:
    """Flatten, Dense 3072 tanh, Dense 1000 tanh, Dense 10 softmax (seed 001, question 2)."""
    import keras
    from keras import layers

    n = LayerNames()
    inputs = keras.Input((32, 32, 3), name="input_layer")
    x = layers.Flatten(name=n("flatten"))(inputs)
    x = layers.Dense(3072, activation="tanh", name=n("dense"))(x)
    x = layers.Dense(1000, activation="tanh", name=n("dense"))(x)
    outputs = layers.Dense(10, activation="softmax", name=n("dense"))(x)
    return load_weights(keras.Model(inputs, outputs, name="cifar10_fc"), weights)


def _cifar10_cnn(name: str, *, dropout: float | None = None, batch_norm: bool = False, weights: Any = None) -> Any:
    """The seed 001 CNN (5×5, 4×4, 2×2 convolutions), optionally with Dropout or BatchNorm added."""
    import keras
    from keras import layers

    n = LayerNames()
    inputs = keras.Input((32, 32, 3), name="input_layer")
    x = inputs
    for filters, kernel, pool in ((32, 5, 2), (64, 4, 3), (120, 2, 2)):
        if batch_norm:
            # BN between the convolution and its activation, as the course notebooks place it.
            x = layers.Conv2D(filters, kernel, name=n("conv2d"))(x)
            x = layers.BatchNormalization(name=n("batch_normalization"))(x)
            x = layers.Activation("relu", name=n("activation"))(x)
        else:
            x = layers.Conv2D(filters, kernel, activation="relu", name=n("conv2d"))(x)
        x = layers.MaxPooling2D(pool, name=n("max_pooling2d"))(x)
        if dropout:
            x = layers.Dropout(dropout, name=n("dropout"))(x)
    x = layers.Flatten(name=n("flatten"))(x)
    x = layers.Dense(120, activation="relu", name=n("dense"))(x)
    outputs = layers.Dense(10, activation="softmax", name=n("dense"))(x)
    return load_weights(keras.Model(inputs, outputs, name=name), weights)


def cifar10_cnn(weights: Any = None) -> Any:
    """Conv 5×5/32, pool 2, conv 4×4/64, pool 3, conv 2×2/120, pool 2, Dense 120, Dense 10 (question 4)."""
    return _cifar10_cnn("cifar10_cnn", weights=weights)


def cifar10_cnn_dropout(weights: Any = None) -> Any:
    """The question 4 CNN with Dropout(0.2) after each pooling layer, as the seed's answer to question 5."""
    return _cifar10_cnn("cifar10_cnn_dropout", dropout=0.2, weights=weights)


def cifar10_cnn_bn(weights: Any = None) -> Any:
    """The question 4 CNN with BatchNormalization after each convolution (question 7)."""
    return _cifar10_cnn("cifar10_cnn_bn", batch_norm=True, weights=weights)


def cifar10_cnn75(weights: Any = None) -> Any:
    """A model for question 9 (≥ 75% test accuracy in at most 25 epochs).

    Three blocks of (Conv2D 3×3 same, BatchNormalization, ReLU) ×2, MaxPooling2D 2×2 and Dropout
    (0.2, 0.3, 0.4) with 32, 64 and 128 maps; then Flatten, Dense 128 + BN + ReLU, Dropout 0.5,
    Dense 10 softmax. The same design as the seed's own answer (stacks of conv + BN + ReLU + pool +
    dropout, 78.2%), with fewer parameters.
    """
    import keras
    from keras import layers

    n = LayerNames()
    inputs = keras.Input((32, 32, 3), name="input_layer")
    x = inputs
    for filters, rate in ((32, 0.2), (64, 0.3), (128, 0.4)):
        for _ in range(2):
            x = layers.Conv2D(filters, (3, 3), padding="same", name=n("conv2d"))(x)
            x = layers.BatchNormalization(name=n("batch_normalization"))(x)
            x = layers.Activation("relu", name=n("activation"))(x)
        x = layers.MaxPooling2D((2, 2), name=n("max_pooling2d"))(x)
        x = layers.Dropout(rate, name=n("dropout"))(x)
    x = layers.Flatten(name=n("flatten"))(x)
    x = layers.Dense(128, name=n("dense"))(x)
    x = layers.BatchNormalization(name=n("batch_normalization"))(x)
    x = layers.Activation("relu", name=n("activation"))(x)
    x = layers.Dropout(0.5, name=n("dropout"))(x)
    outputs = layers.Dense(10, activation="softmax", name=n("dense"))(x)
    return load_weights(keras.Model(inputs, outputs, name="cifar10_cnn75"), weights)


# The seed's optimizer: SGD(lr=0.01, momentum=0.9, decay=1e-6, nesterov=True).
_SEED_SGD = CompileSettings(
    optimizer="SGD", learning_rate=0.01, loss="categorical_crossentropy",
    options={"momentum": 0.9, "nesterov": True}, lr_time_decay=1e-6,
)
_LAB_TRAINING = TrainingSettings(
    epochs=20, batch_size=64, preprocess="unit",
    source="seed 001 states the optimizer (and 15 epochs for the BatchNorm model) but not the others' "
           "epochs or batch size: 20 and 64 chosen by the grader",
)

REFERENCES: list[ReferenceModel] = [
    ReferenceModel(
        name="cifar10_fc", seed="001", title="CIFAR-10 FC 3072-1000-10",
        description="Flatten, Dense 3072 tanh, Dense 1000 tanh, Dense 10 softmax. The lab asks for "
                    "above 45% test accuracy.",
        dataset="cifar10", builder=cifar10_fc,
        figures=Figures(total=12_523_266, trainable=12_523_266, non_trainable=0, output_shape=(None, 10),
                        source="seed 001, question 2 summary"),
        compile=_SEED_SGD, training=_LAB_TRAINING,
        documented_accuracy="47% test accuracy (seed 001, question 3)",
    ),
    ReferenceModel(
        name="cifar10_cnn", seed="001", title="CIFAR-10 CNN (5×5, 4×4, 2×2 convs)",
        description="Conv2D 32 5×5, MaxPooling 2, Conv2D 64 4×4, MaxPooling 3, Conv2D 120 2×2, "
                    "MaxPooling 2, Flatten, Dense 120 relu, Dense 10 softmax. The lab asks for at "
                    "least 62% test accuracy.",
        dataset="cifar10", builder=cifar10_cnn,
        figures=Figures(total=81_834, trainable=81_834, non_trainable=0, output_shape=(None, 10),
                        source="seed 001, question 4 summary"),
        compile=_SEED_SGD, training=_LAB_TRAINING,
        documented_accuracy="63.07% test accuracy (seed 001, question 6)",
    ),
    ReferenceModel(
        name="cifar10_cnn_dropout", seed="001", title="CIFAR-10 CNN + Dropout 0.2 after each pooling",
        description="The question 4 CNN with Dropout(0.2) after every MaxPooling2D: same parameters.",
        dataset="cifar10", builder=cifar10_cnn_dropout,
        figures=Figures(total=81_834, trainable=81_834, non_trainable=0, output_shape=(None, 10),
                        source="seed 001, question 5 (Dropout adds no parameters)"),
        compile=_SEED_SGD, training=_LAB_TRAINING,
        documented_accuracy="63.24% test accuracy (seed 001, question 6)",
    ),
    ReferenceModel(
        name="cifar10_cnn_bn", seed="001", title="CIFAR-10 CNN + BatchNorm after each conv",
        description="The question 4 CNN with BatchNormalization between each convolution and its "
                    "ReLU: 4 parameters per channel, half of them (moving mean and variance) not "
                    "trainable.",
        dataset="cifar10", builder=cifar10_cnn_bn,
        figures=Figures(total=82_698, trainable=82_266, non_trainable=432, output_shape=(None, 10),
                        source="derived: 81,834 + 4·(32 + 64 + 120); the seed shows no table"),
        compile=_SEED_SGD,
        training=TrainingSettings(epochs=15, batch_size=64, preprocess="unit",
                                  source="seed 001, question 7: 15 epochs; batch size chosen by the grader"),
    ),
    ReferenceModel(
        name="cifar10_cnn75", seed="001", title="CIFAR-10 ≥75% in 25 epochs (Conv-BN-ReLU blocks)",
        description="Blocks of (Conv2D 3×3 same, BN, ReLU) ×2, MaxPooling2D, Dropout with 32/64/128 "
                    "maps and dropout 0.2/0.3/0.4; Flatten, Dense 128 + BN + ReLU, Dropout 0.5, "
                    "Dense 10 softmax. Adam 1e-3, batch 64, 25 epochs, no augmentation.",
        dataset="cifar10", builder=cifar10_cnn75,
        figures=Figures(total=552_874, trainable=551_722, non_trainable=1_152, output_shape=(None, 10),
                        source="derived from the design; the seed's own answer had 654,454"),
        compile=CompileSettings(optimizer="Adam", learning_rate=1e-3, loss="categorical_crossentropy"),
        training=TrainingSettings(epochs=25, batch_size=64, preprocess="unit",
                                  source="question 9 limits training to 25 epochs; the rest chosen by the grader"),
        documented_accuracy="the seed's similar answer reached 78.2% test accuracy",
    ),
]
