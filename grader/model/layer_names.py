"""One table of layer class names across Keras generations.

Rubric checks compare canonical names, so ``Convolution2D`` (Keras 1) and ``Conv2D`` (Keras 2/3)
satisfy the same "a Conv2D layer" check, and a nested ``Model`` (Keras 2) is a ``Functional``.
The static parser and the rubric's layer patterns both use :func:`canonical_class`.
"""

from __future__ import annotations

# Keras 1 (and a few Keras 2) class names -> the Keras 3 class that does the same job.
_CANONICAL = {
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D",
    "AtrousConvolution1D": "Conv1D",
    "AtrousConvolution2D": "Conv2D",
    "SeparableConvolution1D": "SeparableConv1D",
    "SeparableConvolution2D": "SeparableConv2D",
    "Deconvolution2D": "Conv2DTranspose",
    "Deconvolution3D": "Conv3DTranspose",
    "MaxPool1D": "MaxPooling1D",
    "MaxPool2D": "MaxPooling2D",
    "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D",
    "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalMaxPool3D": "GlobalMaxPooling3D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAvgPool3D": "GlobalAveragePooling3D",
    "TimeDistributedDense": "TimeDistributed",
    "CuDNNLSTM": "LSTM",
    "CuDNNGRU": "GRU",
    "Model": "Functional",
    "Container": "Functional",
    "BatchNorma": "BatchNormalization",  # Keras 1 summaries cut the class column at 10 characters
    "BatchNormalisation": "BatchNormalization",
}
_BY_LOWER = {old.lower(): new for old, new in _CANONICAL.items()}


def canonical_class(name: str) -> str:
    """The Keras 3 class name for a layer class printed or written by any Keras generation.

    Case and spaces do not matter for the old names; unknown names (custom layers) come back
    unchanged, without spaces.

    >>> canonical_class("Convolution2D"), canonical_class("maxpool2d"), canonical_class("Model")
    ('Conv2D', 'MaxPooling2D', 'Functional')
    """
    compact = name.replace(" ", "")
    return _BY_LOWER.get(compact.lower(), compact)
