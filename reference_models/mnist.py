"""MNIST references: seed 000 (fully connected net vs. cnn1 and cnn2) and seed 003 (hello-world-cnn).

Seed 000 trains on 4,000 MNIST images and reaches "~91% accuracy on the validation data set"
with the FC net; its notebooks center and standardize the pixels first. Seed 003 is the
fill-in-the-blanks CNN of Lesson 07.
"""

from __future__ import annotations

from typing import Any

from reference_models._build import LayerNames, load_weights
from reference_models.model import CompileSettings, Figures, ReferenceModel, TrainingSettings


def mnist_fc(weights: Any = None) -> Any:
    """784-500-50-10 with BatchNormalization and Dropout after each hidden Dense (seed 000)."""
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name="mnist_fc")
    model.add(keras.Input((784,)))
    for units in (500, 50):
        model.add(layers.Dense(units, name=n("dense")))
        model.add(layers.BatchNormalization(name=n("batch_normalization")))
        model.add(layers.Activation("relu", name=n("activation")))
        model.add(layers.Dropout(0.3, name=n("dropout")))
    model.add(layers.Dense(10, name=n("dense")))
    model.add(layers.Activation("softmax", name=n("activation")))
    return load_weights(model, weights)


def mnist_cnn1(weights: Any = None) -> Any:
    """One 3×3 convolution with 32 maps and same padding, then Dense 10 (seed 000, cnn1)."""
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name="mnist_cnn1")
    model.add(keras.Input((28, 28, 1)))
    model.add(layers.Conv2D(32, (3, 3), padding="same", name=n("conv2d")))
    model.add(layers.Activation("relu", name=n("activation")))
    model.add(layers.Flatten(name=n("flatten")))
    model.add(layers.Dense(10, name=n("dense")))
    model.add(layers.Activation("softmax", name=n("activation")))
    return load_weights(model, weights)


def mnist_cnn2(weights: Any = None) -> Any:
    """Two Conv-BN-ReLU pairs per block, blocks of 32 and 64 maps, then Dense 200 (seed 000, cnn2).

    The second block's second convolution and its pooling are the "missing layers" students add.
    The seed puts Dropout between BatchNormalization and the activation of the Dense layer; so
    does this model.
    """
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name="mnist_cnn2")
    model.add(keras.Input((28, 28, 1)))
    for filters in (32, 64):
        for _ in range(2):
            model.add(layers.Conv2D(filters, (3, 3), padding="same", name=n("conv2d")))
            model.add(layers.BatchNormalization(name=n("batch_normalization")))
            model.add(layers.Activation("relu", name=n("activation")))
        model.add(layers.MaxPooling2D((2, 2), name=n("max_pooling2d")))
    model.add(layers.Flatten(name=n("flatten")))
    model.add(layers.Dense(200, name=n("dense")))
    model.add(layers.BatchNormalization(name=n("batch_normalization")))
    model.add(layers.Dropout(0.5, name=n("dropout")))
    model.add(layers.Activation("relu", name=n("activation")))
    model.add(layers.Dense(10, name=n("dense")))
    model.add(layers.Activation("softmax", name=n("activation")))
    return load_weights(model, weights)


def hello_world_cnn(weights: Any = None) -> Any:
    """The Lesson 07 CNN with its blanks filled in (seed 003): a Functional model.

    Conv2D 16 3×3 relu → Conv2D 32 3×3 relu → MaxPooling2D 2×2 → Flatten → Dense 128 relu →
    Dense 10 softmax, on 28×28×1 MNIST images.
    """
    import keras
    from keras import layers

    n = LayerNames()
    x_inputs = keras.Input(shape=(28, 28, 1), name="input_layer")
    x = layers.Conv2D(16, kernel_size=(3, 3), activation="relu", name=n("conv2d"))(x_inputs)
    x = layers.Conv2D(32, kernel_size=(3, 3), activation="relu", name=n("conv2d"))(x)
    x = layers.MaxPooling2D(pool_size=(2, 2), name=n("max_pooling2d"))(x)
    x = layers.Flatten(name=n("flatten"))(x)
    x = layers.Dense(128, activation="relu", name=n("dense"))(x)
    output_yhat = layers.Dense(10, activation="softmax", name=n("dense"))(x)
    model = keras.Model(inputs=x_inputs, outputs=output_yhat, name="hello-world-cnn")
    return load_weights(model, weights)


_SEED_000_TRAINING = TrainingSettings(
    epochs=10, batch_size=128, preprocess="standardize", train_size=4000,
    source="seed 000: 4,000 training images, standardized pixels; epochs and batch size chosen by the grader",
)

_ADAM = CompileSettings(optimizer="Adam", learning_rate=1e-3, loss="categorical_crossentropy")

REFERENCES: list[ReferenceModel] = [
    ReferenceModel(
        name="mnist_fc", seed="000", title="MNIST FC 784-500-50-10 with BN + Dropout",
        description="The best fully connected net of the MNIST exercises: Dense 500 and Dense 50, each "
                    "followed by BatchNormalization, ReLU and Dropout, then Dense 10 softmax.",
        dataset="mnist", builder=mnist_fc,
        figures=Figures(total=420_260, trainable=419_160, non_trainable=1_100, output_shape=(None, 10),
                        source="seed 000, exercise 1 summary"),
        compile=_ADAM, training=_SEED_000_TRAINING,
        documented_accuracy="~91% validation accuracy with 4,000 training images (seed 000)",
    ),
    ReferenceModel(
        name="mnist_cnn1", seed="000", title="MNIST cnn1: one 3×3 conv (32 maps, same padding)",
        description="One convolutional layer and one Dense layer: Conv2D 32 3×3 same, ReLU, Flatten, "
                    "Dense 10 softmax. Most parameters sit in the Dense layer (25,088 × 10 + 10).",
        dataset="mnist", builder=mnist_cnn1,
        figures=Figures(total=251_210, trainable=251_210, non_trainable=0, output_shape=(None, 10),
                        source="seed 000, exercise 1b summary"),
        compile=_ADAM, training=_SEED_000_TRAINING,
    ),
    ReferenceModel(
        name="mnist_cnn2", seed="000", title="MNIST cnn2, with the missing layers added",
        description="Blocks of (Conv2D 3×3 same, BatchNormalization, ReLU) ×2 + MaxPooling2D with 32 "
                    "then 64 maps, Flatten, Dense 200 + BN + Dropout + ReLU, Dense 10 softmax.",
        dataset="mnist", builder=mnist_cnn2,
        figures=Figures(total=695_970, trainable=695_186, non_trainable=784, output_shape=(None, 10),
                        source="seed 000, exercise 1c summary"),
        compile=_ADAM, training=_SEED_000_TRAINING,
    ),
    ReferenceModel(
        name="hello_world_cnn", seed="003", title="Lesson 07 hello-world-cnn (fill in the blanks)",
        description="Functional model: Conv2D 16 3×3 relu, Conv2D 32 3×3 relu, MaxPooling2D 2×2, "
                    "Flatten, Dense 128 relu, Dense 10 softmax.",
        dataset="mnist", builder=hello_world_cnn,
        figures=Figures(total=596_042, trainable=596_042, non_trainable=0, output_shape=(None, 10),
                        source="derived from the seed 003 code (it prints no summary)"),
        compile=_ADAM,
        training=TrainingSettings(epochs=5, batch_size=128, preprocess="unit",
                                  source="seed 003 gives no training settings; chosen by the grader"),
    ),
]
