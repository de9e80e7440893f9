"""Dogs vs. Cats references (seed 002, Lecture 7): a small convnet, then VGG16 transfer learning.

Images are 150×150×3, labels binary (sigmoid output, binary crossentropy, RMSprop). The lecture
trains on 2,000 images, validates on 1,000 and tests on 1,000. The VGG16 models are built with
``weights=None``: ImageNet weights cannot be downloaded here, so ``base_weights`` takes the local
file Keras would download (``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``).
"""

from __future__ import annotations

from typing import Any

from grader.errors import ReferenceModelError
from reference_models._build import LayerNames, load_weights
from reference_models.model import CompileSettings, Figures, ReferenceModel, TrainingSettings

INPUT_SHAPE = (150, 150, 3)
# The layers the lecture unfreezes for fine tuning.
BLOCK5 = ("block5_conv1", "block5_conv2", "block5_conv3", "block5_pool")


def _convnet(name: str, *, dropout: bool, weights: Any) -> Any:
    import keras
    from keras import layers

    n = LayerNames()
    model = keras.Sequential(name=name)
    model.add(keras.Input(INPUT_SHAPE))
    for filters in (32, 64, 128, 128):
        model.add(layers.Conv2D(filters, (3, 3), activation="relu", name=n("conv2d")))
        model.add(layers.MaxPooling2D((2, 2), name=n("max_pooling2d")))
    model.add(layers.Flatten(name=n("flatten")))
    if dropout:
        # "If a layer has too many parameters, place a dropout layer before it."
        model.add(layers.Dropout(0.5, name=n("dropout")))
    model.add(layers.Dense(512, activation="relu", name=n("dense")))
    model.add(layers.Dense(1, activation="sigmoid", name=n("dense")))
    return load_weights(model, weights)


def dogs_cats_convnet(weights: Any = None) -> Any:
    """Four Conv2D 3×3 + MaxPooling 2×2 pairs (32, 64, 128, 128 maps), Dense 512, Dense 1 sigmoid."""
    return _convnet("dogs_cats_convnet", dropout=False, weights=weights)


def dogs_cats_convnet_dropout(weights: Any = None) -> Any:
    """The small convnet with Dropout(0.5) before the first Dense layer (trick 1)."""
    return _convnet("dogs_cats_convnet_dropout", dropout=True, weights=weights)


def vgg16_base(weights: Any = None) -> Any:
    """The VGG16 convolutional base for 150×150×3 inputs. ``weights``: the ImageNet no-top file."""
    import keras

    try:
        return keras.applications.VGG16(
            weights=None if weights is None else str(weights), include_top=False, input_shape=INPUT_SHAPE
        )
    except Exception as exc:  # a wrong file: ValueError/OSError from h5py or Keras
        raise ReferenceModelError(f"cannot load {weights} as VGG16 no-top weights: {exc}") from None


def _vgg16_classifier(name: str, *, fine_tune: bool, weights: Any, base_weights: Any) -> Any:
    import keras
    from keras import layers

    n = LayerNames()
    conv_base = vgg16_base(base_weights)
    if fine_tune:
        conv_base.trainable = True
        for layer in conv_base.layers:
            layer.trainable = layer.name in BLOCK5
    else:
        conv_base.trainable = False
    model = keras.Sequential(name=name)
    model.add(keras.Input(INPUT_SHAPE))
    model.add(conv_base)
    model.add(layers.Flatten(name=n("flatten")))
    model.add(layers.Dense(256, activation="relu", name=n("dense")))
    model.add(layers.Dense(1, activation="sigmoid", name=n("dense")))
    return load_weights(model, weights)


def dogs_cats_vgg16_frozen(weights: Any = None, base_weights: Any = None) -> Any:
    """VGG16 base (frozen) + Flatten + Dense 256 relu + Dense 1 sigmoid: train the new top first."""
    return _vgg16_classifier("dogs_cats_vgg16_frozen", fine_tune=False, weights=weights, base_weights=base_weights)


def dogs_cats_vgg16_finetune(weights: Any = None, base_weights: Any = None) -> Any:
    """The same classifier with block5 of the base trainable again (fine tuning, lr 1e-5)."""
    return _vgg16_classifier("dogs_cats_vgg16_finetune", fine_tune=True, weights=weights, base_weights=base_weights)


_RMSPROP = CompileSettings(optimizer="RMSprop", learning_rate=1e-4, loss="binary_crossentropy")
_LECTURE = TrainingSettings(epochs=30, batch_size=20, preprocess="unit", train_size=2000,
                            source="seed 002: 2,000 training images, batch 20, 30 epochs")
_VGG_CAVEAT = (" Built with weights=None: pass base_weights= the ImageNet no-top file for the "
               "lecture's transfer learning.")

REFERENCES: list[ReferenceModel] = [
    ReferenceModel(
        name="dogs_cats_convnet", seed="002", title="Dogs vs Cats small convnet, 150×150×3",
        description="Conv2D 3×3 + MaxPooling2D 2×2 with 32, 64, 128, 128 maps, Flatten, Dense 512 relu, "
                    "Dense 1 sigmoid; RMSprop 1e-4, binary crossentropy.",
        dataset="dogs_vs_cats", builder=dogs_cats_convnet,
        figures=Figures(total=3_453_121, trainable=3_453_121, non_trainable=0, output_shape=(None, 1),
                        source="seed 002, 'Build the CNN' summary"),
        compile=_RMSPROP, training=_LECTURE,
        documented_accuracy="training 99.0%, validation 72.4% after 30 epochs: overfitting (seed 002)",
    ),
    ReferenceModel(
        name="dogs_cats_convnet_dropout", seed="002", title="Dogs vs Cats convnet + Dropout before Dense",
        description="The small convnet with Dropout(0.5) between Flatten and the first Dense layer; the "
                    "lecture trains it with data augmentation on the training images only.",
        dataset="dogs_vs_cats", builder=dogs_cats_convnet_dropout,
        figures=Figures(total=3_453_121, trainable=3_453_121, non_trainable=0, output_shape=(None, 1),
                        source="seed 002, trick 1 (Dropout adds no parameters)"),
        compile=_RMSPROP,
        training=TrainingSettings(epochs=100, batch_size=32, preprocess="unit", train_size=2000,
                                  source="seed 002: 100 epochs, batch 32, with augmentation (not applied here)"),
        documented_accuracy="training 84.9%, validation 84.4% with augmentation (seed 002)",
    ),
    ReferenceModel(
        name="vgg16_base", seed="002", title="VGG16 conv base (weights=None)",
        description="keras.applications.VGG16(include_top=False, input_shape=(150, 150, 3)): 13 "
                    "convolutions in 5 blocks." + _VGG_CAVEAT,
        dataset="dogs_vs_cats", builder=vgg16_base,
        figures=Figures(total=14_714_688, trainable=14_714_688, non_trainable=0, output_shape=(None, 4, 4, 512),
                        source="seed 002, VGG16 summary"),
        compile=_RMSPROP, training=_LECTURE,
    ),
    ReferenceModel(
        name="dogs_cats_vgg16_frozen", seed="002", title="VGG16 + Flatten + Dense 256 + Dense 1, base frozen",
        description="The VGG16 base with conv_base.trainable = False and a new top: Flatten, Dense 256 "
                    "relu, Dense 1 sigmoid." + _VGG_CAVEAT,
        dataset="dogs_vs_cats", builder=dogs_cats_vgg16_frozen,
        figures=Figures(total=16_812_353, trainable=2_097_665, non_trainable=14_714_688, output_shape=(None, 1),
                        source="seed 002, summary after conv_base.trainable = False"),
        compile=_RMSPROP, training=_LECTURE,
        documented_accuracy="training 98.9%, validation 95.1% with ImageNet weights (seed 002)",
    ),
    ReferenceModel(
        name="dogs_cats_vgg16_finetune", seed="002", title="VGG16 classifier, block5 fine-tuned",
        description="The frozen-base classifier with block5_conv1..3 and block5_pool trainable again, "
                    "recompiled with RMSprop 1e-5." + _VGG_CAVEAT,
        dataset="dogs_vs_cats", builder=dogs_cats_vgg16_finetune,
        figures=Figures(total=16_812_353, trainable=9_177_089, non_trainable=7_635_264, output_shape=(None, 1),
                        source="seed 002, 'Fine Tuning the Top Conv Layers' summary"),
        compile=CompileSettings(optimizer="RMSprop", learning_rate=1e-5, loss="binary_crossentropy"),
        training=TrainingSettings(epochs=100, batch_size=20, preprocess="unit", train_size=2000,
                                  source="seed 002: 100 epochs, batch 20, RMSprop 1e-5"),
        documented_accuracy="validation 97.5%, test 96.8% with ImageNet weights (seed 002)",
    ),
]
