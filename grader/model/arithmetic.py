"""Parameter and shape arithmetic per layer, written the way the course asks students to do it.

Feedback that only says "wrong parameter count" teaches nothing. These functions show where a
count comes from::

    >>> from grader.model.evidence import LayerInfo
    >>> explain_layer(LayerInfo("dense", "Dense", [None, 500], params=392_500,
    ...                         config={"units": 500, "input_dim": 784}))
    'Dense 784→500: 784×500 weights + 500 biases = 392,500'
    >>> explain_layer(LayerInfo("conv2d", "Conv2D", [None, 28, 28, 32], params=320,
    ...                         config={"filters": 32, "kernel_size": [3, 3], "in_channels": 1}))
    'Conv2D 3×3, 1→32 channels: 3·3·1·32 + 32 = 320'

The recorder fills :attr:`LayerInfo.config` for executed notebooks. Layers parsed from saved
outputs (static mode) usually have no config: then the missing sizes are inferred from output
shapes and the parameter count where that is unambiguous, else the count is given without
arithmetic. A formula is only shown when it reproduces the recorded count exactly, so feedback
never contradicts the summary the student sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grader.model.evidence import Architecture, LayerInfo
from grader.model.format import fmt_int

__all__ = [
    "Formula",
    "explain_architecture",
    "explain_layer",
    "explain_output_shape",
    "layer_formula",
]

# Layers that never hold weights; their explanation is just "0 parameters".
_PARAMETER_FREE = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "Flatten", "Reshape", "Permute", "RepeatVector", "Activation",
    "ReLU", "LeakyReLU", "ELU", "Softmax", "InputLayer", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "Add", "Concatenate", "Multiply", "Average", "Maximum", "Minimum", "Subtract",
    "Rescaling", "Resizing", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
    "RandomContrast", "RandomCrop", "Lambda",
)


@dataclass
class Formula:
    """A layer's parameter count as a sum students can redo by hand.

    ``label`` names the layer ("Dense 784→500"), ``terms`` is the sum ("784×500 weights + 500
    biases"), ``total`` the result, ``note`` an optional remark (", of which 64 are not trainable").
    """

    label: str
    terms: str
    total: int
    note: str = ""

    def __str__(self) -> str:
        return f"{self.label}: {self.terms} = {fmt_int(self.total)}{self.note}"


def explain_layer(layer: LayerInfo, *, input_shape: list[int | None] | None = None) -> str:
    """One line that explains where ``layer``'s parameter count comes from.

    ``input_shape`` (the previous layer's output shape) helps when the layer came from a saved
    summary without configuration. Layers without a known formula get their count only:
    ``'LSTM lstm: 17,920 parameters'``.
    """
    formula = layer_formula(layer, input_shape=input_shape)
    if formula is not None:
        return str(formula)
    label = _pool_label(layer) if _is_pooling(layer.class_name) else layer.class_name
    if layer.layers:
        count = len(layer.layers)
        return f"{layer.name} ({layer.class_name}, {count} layer{'' if count == 1 else 's'}): " + _count_text(layer)
    if layer.params == 0 and _parameter_free(layer.class_name):
        return f"{label}: 0 parameters"
    return f"{layer.class_name} {layer.name}: " + _count_text(layer)


def explain_architecture(architecture: Architecture) -> list[str]:
    """:func:`explain_layer` for every layer, each given its predecessor's output shape."""
    lines = []
    previous = architecture.input_shape
    for layer in architecture.layers:
        if layer.class_name == "InputLayer":
            previous = layer.output_shape or previous
            continue
        lines.append(explain_layer(layer, input_shape=previous))
        previous = layer.output_shape or previous
    return lines


def layer_formula(layer: LayerInfo, *, input_shape: list[int | None] | None = None) -> Formula | None:
    """The :class:`Formula` for ``layer``, or None when no formula reproduces its count.

    A formula whose total differs from the recorded count is dropped: the recorded count is what
    the student's summary shows, and feedback must agree with it.
    """
    if layer.layers:
        return None
    builder = _FORMULAS.get(_family(layer.class_name))
    if builder is None:
        return None
    try:
        formula = builder(layer, input_shape)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None  # config of an unexpected shape (static parse, old Keras): no arithmetic
    if formula is None:
        return None
    if layer.params and formula.total != layer.params:
        return None
    if not formula.note and layer.non_trainable_params:
        frozen = layer.non_trainable_params
        formula.note = (" (all frozen: none are trainable)" if frozen == formula.total
                        else f", of which {fmt_int(frozen)} are not trainable")
    return formula


def explain_output_shape(layer: LayerInfo, input_shape: list[int | None] | None) -> str | None:
    """How a convolution or pooling layer turns its input size into its output size.

    ``'28 − 5 + 1 = 24 (valid padding)'``, ``'⌈28 / 2⌉ = 14 (same padding, stride 2)'``. None
    when the layer is not a convolution or pooling, or its configuration is not recorded.
    """
    family = _family(layer.class_name)
    if family not in ("conv", "depthwise", "separable", "pool") or not input_shape or len(input_shape) < 3:
        return None
    config = layer.config or {}
    window = config.get("pool_size") if family == "pool" else config.get("kernel_size")
    if window is None:
        return None
    window = _as_list(window)
    strides = config.get("strides")
    strides = _as_list(strides) if strides is not None else (window if family == "pool" else [1] * len(window))
    padding = str(config.get("padding", "valid")).lower()
    size = input_shape[1]
    if not isinstance(size, int) or not window:
        return None
    k, s = int(window[0]), int(strides[0] if strides else 1)
    stride_text = f", stride {s}" if s != 1 else ""
    if padding == "same":
        out = math.ceil(size / s)
        text = f"{size}" if s == 1 else f"⌈{size} / {s}⌉"
        return f"{text} = {out} (same padding{stride_text})"
    out = (size - k) // s + 1
    if s == 1:
        return f"{size} − {k} + 1 = {out} (valid padding)"
    return f"⌊({size} − {k}) / {s}⌋ + 1 = {out} (valid padding{stride_text})"


# ---------------------------------------------------------------------------------------------
# Formulas per layer family


def _family(class_name: str) -> str:
    name = class_name.replace(" ", "")
    if name in ("Dense",):
        return "dense"
    if name.startswith("SeparableConv") or name.startswith("SeparableConvolution"):
        return "separable"
    if name.startswith("DepthwiseConv"):
        return "depthwise"
    if name.startswith("Conv") or name.startswith("Convolution"):
        return "conv"
    if name.startswith("BatchNorm"):
        return "batchnorm"
    if name == "LayerNormalization":
        return "layernorm"
    if name == "Embedding":
        return "embedding"
    if _is_pooling(name):
        return "pool"
    return name


def _is_pooling(class_name: str) -> bool:
    return "Pooling" in class_name or class_name in ("MaxPool2D", "AvgPool2D", "MaxPool1D", "AvgPool1D")


def _parameter_free(class_name: str) -> bool:
    return class_name in _PARAMETER_FREE or _is_pooling(class_name)


def _as_list(value: object) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]  # type: ignore[call-overload]


def _last_dim(shape: list[int | None] | None) -> int | None:
    if shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


def _count_text(layer: LayerInfo) -> str:
    text = f"{fmt_int(layer.params)} parameters"
    if layer.non_trainable_params:
        text += f", of which {fmt_int(layer.non_trainable_params)} are not trainable"
    return text


def _dense(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    config = layer.config or {}
    units = config.get("units") or _last_dim(layer.output_shape)
    use_bias = config.get("use_bias", True)
    fan_in = config.get("input_dim") or _last_dim(input_shape)
    if not units:
        return None
    if not fan_in and layer.params:
        # Static mode: params = fan_in·units (+ units); solve for fan_in when it divides exactly.
        rest = layer.params - (units if use_bias else 0)
        if rest <= 0 or rest % units:
            return None
        fan_in = rest // units
    if not fan_in:
        return None
    total = fan_in * units + (units if use_bias else 0)
    weights = f"{fmt_int(fan_in)}×{fmt_int(units)} weights"
    terms = f"{weights} + {fmt_int(units)} biases" if use_bias else f"{weights}, no biases"
    return Formula(f"Dense {fmt_int(fan_in)}→{fmt_int(units)}", terms, total)


def _kernel_text(kernel: list[int], sep: str) -> str:
    return sep.join(str(k) for k in kernel)


def _infer_kernel(params: int, filters: int, in_channels: int, rank: int, use_bias: bool) -> list[int] | None:
    rest = params - (filters if use_bias else 0)
    if rest <= 0 or rest % (filters * in_channels):
        return None
    area = rest // (filters * in_channels)
    side = round(area ** (1 / rank))
    if side ** rank != area:
        return None
    return [side] * rank


def _conv(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    config = layer.config or {}
    filters = config.get("filters") or _last_dim(layer.output_shape)
    use_bias = config.get("use_bias", True)
    cin = config.get("in_channels") or _last_dim(input_shape)
    kernel = _as_list(config["kernel_size"]) if config.get("kernel_size") is not None else None
    rank = len(kernel) if kernel else (len(layer.output_shape) - 2 if layer.output_shape else 2)
    if not filters:
        return None
    if kernel and not cin and layer.params:
        rest = layer.params - (filters if use_bias else 0)
        area = math.prod(kernel)
        if rest > 0 and rest % (area * filters) == 0:
            cin = rest // (area * filters)
    if cin and not kernel and layer.params:
        kernel = _infer_kernel(layer.params, filters, cin, max(rank, 1), use_bias)
    if not cin or not kernel:
        return None
    total = math.prod(kernel) * cin * filters + (filters if use_bias else 0)
    name = layer.class_name.replace("Convolution", "Conv")
    window = _kernel_text(kernel, "×") if len(kernel) > 1 else f"width {kernel[0]}"
    product = "·".join([*(str(k) for k in kernel), fmt_int(cin), fmt_int(filters)])
    terms = f"{product} + {fmt_int(filters)}" if use_bias else f"{product} (no biases)"
    return Formula(f"{name} {window}, {fmt_int(cin)}→{fmt_int(filters)} channels", terms, total)


def _depthwise(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    config = layer.config or {}
    cin = config.get("in_channels") or _last_dim(input_shape)
    multiplier = int(config.get("depth_multiplier", 1))
    kernel = _as_list(config["kernel_size"]) if config.get("kernel_size") is not None else None
    use_bias = config.get("use_bias", True)
    if not cin or not kernel:
        return None
    outputs = cin * multiplier
    total = math.prod(kernel) * outputs + (outputs if use_bias else 0)
    product = "·".join([*(str(k) for k in kernel), fmt_int(cin)] + ([str(multiplier)] if multiplier != 1 else []))
    terms = f"{product} + {fmt_int(outputs)}" if use_bias else product
    return Formula(f"{layer.class_name} {_kernel_text(kernel, '×')} over {fmt_int(cin)} channels", terms, total)


def _separable(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    config = layer.config or {}
    filters = config.get("filters") or _last_dim(layer.output_shape)
    cin = config.get("in_channels") or _last_dim(input_shape)
    kernel = _as_list(config["kernel_size"]) if config.get("kernel_size") is not None else None
    multiplier = int(config.get("depth_multiplier", 1))
    use_bias = config.get("use_bias", True)
    if not filters or not cin or not kernel:
        return None
    depthwise = math.prod(kernel) * cin * multiplier
    pointwise = cin * multiplier * filters
    total = depthwise + pointwise + (filters if use_bias else 0)
    terms = (f"{'·'.join(str(k) for k in kernel)}·{fmt_int(cin)} (depthwise) + "
             f"{fmt_int(cin * multiplier)}·{fmt_int(filters)} (pointwise)")
    if use_bias:
        terms += f" + {fmt_int(filters)}"
    label = f"{layer.class_name} {_kernel_text(kernel, '×')}, {fmt_int(cin)}→{fmt_int(filters)} channels"
    return Formula(label, terms, total)


def _batchnorm(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    config = layer.config or {}
    channels = config.get("channels") or _last_dim(layer.output_shape) or _last_dim(input_shape)
    if not channels:
        return None
    # γ and β are trained; the moving mean and variance are not. center/scale=False drop γ or β.
    per_channel = layer.params // channels if layer.params and layer.params % channels == 0 else 4
    total = per_channel * channels
    frozen = layer.non_trainable_params or (2 * channels if per_channel >= 2 else 0)
    note = f", of which {fmt_int(frozen)} are not trainable" if frozen else ""
    return Formula(f"BatchNormalization over {fmt_int(channels)} channels",
                   f"{per_channel}·{fmt_int(channels)}", total, note)


def _layernorm(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    channels = (layer.config or {}).get("channels") or _last_dim(layer.output_shape)
    if not channels:
        return None
    return Formula(f"LayerNormalization over {fmt_int(channels)} features", f"2·{fmt_int(channels)}", 2 * channels)


def _embedding(layer: LayerInfo, input_shape: list[int | None] | None) -> Formula | None:
    config = layer.config or {}
    vocabulary, width = config.get("input_dim"), config.get("output_dim") or _last_dim(layer.output_shape)
    if not vocabulary or not width:
        return None
    return Formula(f"Embedding {fmt_int(vocabulary)} words → {fmt_int(width)}",
                   f"{fmt_int(vocabulary)}×{fmt_int(width)}", vocabulary * width)


def _pool_label(layer: LayerInfo) -> str:
    size = (layer.config or {}).get("pool_size")
    if size is None:
        return layer.class_name
    try:
        return f"{layer.class_name} {_kernel_text(_as_list(size), '×')}"
    except (TypeError, ValueError):
        return layer.class_name


_FORMULAS = {
    "dense": _dense,
    "conv": _conv,
    "depthwise": _depthwise,
    "separable": _separable,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "embedding": _embedding,
}
