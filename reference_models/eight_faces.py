"""8 faces references (seed 004, and the fine-tuning head of seed 000).

The 8 faces dataset has 350 images of 8 celebrities from the Oxford VGG Face dataset, 48×48×3.
The fully connected nets take the image as a flat vector of 6,912 values (the seed's
``dense_input_1``); the CNNs take it as an image. The fine-tuning head of seed 000 takes the 4,096
VGG16 ``fc1`` features extracted beforehand.
"""

from __future__ import annotations

from typing import Any

from reference_models._build import LayerNames, load_weights
from reference_models.model import CompileSettings, Figures, ReferenceModel, TrainingSettings

IMAGE_SHAPE = (48, 48, 3)
FLAT = 48 * 48 * 3  # 6,912


def eight_faces_linear(weights: Any = None) -> Any:
    """Dense 8 softmax on the flattened image: 6,912 × 8 weights + 8 biases."""
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name="eight_faces_linear")
    model.add(keras.Input((FLAT,)))
    model.add(layers.Dense(8, name=n("dense")))
    model.add(layers.Activation("softmax", name=n("activation")))
    return load_weights(model, weights)


def eight_faces_mlp(weights: Any = None) -> Any:
    """Dense 400, Dense 200, Dense 8 on the flattened image, each followed by its Activation layer."""
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name="eight_faces_mlp")
    model.add(keras.Input((FLAT,)))
    for units, activation in ((400, "relu"), (200, "relu"), (8, "softmax")):
        model.add(layers.Dense(units, name=n("dense")))
        model.add(layers.Activation(activation, name=n("activation")))
    return load_weights(model, weights)


def _cnn(name: str, *, dropout: bool, batch_norm: bool, weights: Any) -> Any:
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name=name)
    model.add(keras.Input(IMAGE_SHAPE))
    for filters in (32, 64):
        for _ in range(2):
            model.add(layers.Conv2D(filters, (3, 3), padding="same", name=n("conv2d")))
            if batch_norm:
                model.add(layers.BatchNormalization(name=n("batch_normalization")))
            model.add(layers.Activation("relu", name=n("activation")))
        model.add(layers.MaxPooling2D((2, 2), name=n("max_pooling2d")))
        if dropout:
            model.add(layers.Dropout(0.25, name=n("dropout")))
    model.add(layers.Flatten(name=n("flatten")))
    model.add(layers.Dense(200, name=n("dense")))
    if batch_norm:
        model.add(layers.BatchNormalization(name=n("batch_normalization")))
    model.add(layers.Activation("relu", name=n("activation")))
    if dropout:
        model.add(layers.Dropout(0.5, name=n("dropout")))
    model.add(layers.Dense(8, name=n("dense")))
    model.add(layers.Activation("softmax", name=n("activation")))
    return load_weights(model, weights)


def eight_faces_cnn(weights: Any = None) -> Any:
    """Two blocks of two Conv2D 3×3 same (32, then 64 maps) + MaxPooling, Dense 200, Dense 8."""
    return _cnn("eight_faces_cnn", dropout=False, batch_norm=False, weights=weights)


def eight_faces_cnn_dropout(weights: Any = None) -> Any:
    """The CNN with Dropout after each pooling layer and after Dense 200 (seed 004, b)."""
    return _cnn("eight_faces_cnn_dropout", dropout=True, batch_norm=False, weights=weights)


def eight_faces_cnn_bn(weights: Any = None) -> Any:
    """The CNN with Dropout and BatchNormalization before every activation (seed 004, c)."""
    return _cnn("eight_faces_cnn_bn", dropout=True, batch_norm=True, weights=weights)


def eight_faces_vgg_head(weights: Any = None) -> Any:
    """The seed 000 fine-tuning head on 4,096 VGG16 fc1 features: (Dense 400, BN, ReLU, Dropout) ×2, Dense 8."""
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name="eight_faces_vgg_head")
    model.add(keras.Input((4096,)))
    for _ in range(2):
        model.add(layers.Dense(400, name=n("dense")))
        model.add(layers.BatchNormalization(name=n("batch_normalization")))
        model.add(layers.Activation("relu", name=n("activation")))
        model.add(layers.Dropout(0.5, name=n("dropout")))
    model.add(layers.Dense(8, name=n("dense")))
    model.add(layers.Activation("softmax", name=n("activation")))
    return load_weights(model, weights)


_ADAM = CompileSettings(optimizer="Adam", learning_rate=1e-3, loss="categorical_crossentropy")
_TRAINING = TrainingSettings(epochs=30, batch_size=32, preprocess="unit",
                             source="seed 004 gives no training settings; chosen by the grader")
_DATA = "eight_faces"

REFERENCES: list[ReferenceModel] = [
    ReferenceModel(
        name="eight_faces_vgg_head", seed="000", title="8 faces fine-tuning head on 4096 VGG features",
        description="Dense 400 + BN + ReLU + Dropout, twice, then Dense 8 softmax, on the 4,096 fc1 "
                    "features of an ImageNet VGG16.",
        dataset="eight_faces_vgg16_features", builder=eight_faces_vgg_head,
        figures=Figures(total=1_805_608, trainable=1_804_008, non_trainable=1_600, output_shape=(None, 8),
                        source="seed 000, 8 faces fine tuning summary"),
        compile=_ADAM, training=_TRAINING,
    ),
    ReferenceModel(
        name="eight_faces_linear", seed="004", title="8 faces linear (48×48×3 → 8)",
        description="One Dense layer from the 6,912 pixel values to 8 classes, softmax.",
        dataset=_DATA, builder=eight_faces_linear,
        figures=Figures(total=55_304, trainable=55_304, non_trainable=0, output_shape=(None, 8),
                        source="seed 004, fully connected a)"),
        compile=_ADAM, training=_TRAINING,
    ),
    ReferenceModel(
        name="eight_faces_mlp", seed="004", title="8 faces MLP 400-200-8",
        description="Dense 400, Dense 200, Dense 8 on the 6,912 pixel values.",
        dataset=_DATA, builder=eight_faces_mlp,
        figures=Figures(total=2_847_008, trainable=2_847_008, non_trainable=0, output_shape=(None, 8),
                        source="seed 004, fully connected b)"),
        compile=_ADAM, training=_TRAINING,
    ),
    ReferenceModel(
        name="eight_faces_cnn", seed="004", title="8 faces CNN",
        description="Conv2D 32 ×2, MaxPooling, Conv2D 64 ×2, MaxPooling (3×3, same), Flatten, Dense 200, "
                    "Dense 8 softmax.",
        dataset=_DATA, builder=eight_faces_cnn,
        figures=Figures(total=1_910_576, trainable=1_910_576, non_trainable=0, output_shape=(None, 8),
                        source="seed 004, convolutional a)"),
        compile=_ADAM, training=_TRAINING,
    ),
    ReferenceModel(
        name="eight_faces_cnn_dropout", seed="004", title="8 faces CNN + Dropout",
        description="The CNN with Dropout after each pooling layer and after Dense 200.",
        dataset=_DATA, builder=eight_faces_cnn_dropout,
        figures=Figures(total=1_910_576, trainable=1_910_576, non_trainable=0, output_shape=(None, 8),
                        source="seed 004, convolutional b)"),
        compile=_ADAM, training=_TRAINING,
    ),
    ReferenceModel(
        name="eight_faces_cnn_bn", seed="004", title="8 faces CNN + BN (+ Dropout)",
        description="The CNN with Dropout and BatchNormalization between every Conv2D/Dense and its "
                    "activation.",
        dataset=_DATA, builder=eight_faces_cnn_bn,
        figures=Figures(total=1_912_144, trainable=1_911_360, non_trainable=784, output_shape=(None, 8),
                        source="seed 004, convolutional c)"),
        compile=_ADAM, training=_TRAINING,
    ),
]
