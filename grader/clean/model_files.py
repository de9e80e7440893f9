"""What a saved ``.keras`` file declares, read without Keras, before anything is built from it.

A ``.keras`` file is a zip holding ``config.json`` (the architecture), ``metadata.json`` and
``model.weights.h5``. Keras builds every layer of the configuration, allocating and initializing
its weights, before it reads a single saved weight, so a file of a few kilobytes that declares a
``Dense`` layer with a billion units makes the process that loads it allocate gigabytes. The
clean verifier loads files that came out of a student's kernel, so it first reads the
configuration as plain JSON, estimates the parameters each layer declares, and refuses the file
when the zip, one declared dimension or the estimated total is over a cap, or when the
configuration declares far more parameters than the weights file could hold.

The estimate is deliberately rough and errs high (a layer's input size comes from the
``build_config`` Keras records for every built layer). It only needs to tell a model a course
could train from one that would exhaust the grader's memory; the memory limit the verifier puts
on each model (:func:`grader.clean.worker.run_limited`) catches whatever the estimate misses.

Example::

    try:
        declared = inspect_keras_bytes(Path("m1.keras").read_bytes())
    except ModelFileRefused as refusal:
        print(refusal)  # the saved model declares 3,200,000,032 parameters, over the grader's cap of 200,000,000
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["Caps", "DeclaredModel", "ModelFileRefused", "declared_inputs", "inspect_keras_bytes", "layer_parameters"]

MiB, GiB = 2**20, 2**30


@dataclass(frozen=True)
class Caps:
    """What the grader accepts in one saved model file."""

    # VGG16 has 138M parameters; the course's largest nets have 12.5M.
    parameters: int = 200_000_000
    # Any single declared size (units, filters, a shape's dimension, a vocabulary).
    dimension: int = 2**24
    members: int = 64  # a .keras zip holds three files, a few more with assets
    config_bytes: int = 16 * MiB
    total_bytes: int = 2 * GiB  # the result channel's cap on one model file
    # Declared parameters per byte of the weights file: an honest file holds 4 bytes per
    # parameter (float32), 2 (float16), half a byte at the least (int4 quantization), so a
    # configuration declaring this many per byte cannot be the saved model.
    parameters_per_weight_byte: int = 8
    slack_parameters: int = 16_000_000  # small models, whose weights file has fixed overhead


class ModelFileRefused(ValueError):
    """The file is refused before Keras sees it; the message says why, for the report."""


@dataclass
class DeclaredModel:
    """What the configuration declares."""

    parameters: int  # estimated, erring high
    layers: int
    weights_bytes: int  # uncompressed size of model.weights.h5 (0 if absent)
    inputs: int | None = None  # the inputs the model takes (None: not told by the configuration)


# Layers whose first weight is a kernel of (input channels × units-like size).
_DENSE_LIKE = {"Dense": "units", "QDense": "units"}
_CONV = {"Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
         "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Convolution2DTranspose",
         "Convolution3DTranspose"}
_SEPARABLE = {"SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D"}
_DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
_RNN_GATES = {"SimpleRNN": 1, "SimpleRNNCell": 1, "GRU": 3, "GRUCell": 3, "LSTM": 4, "LSTMCell": 4,
              "ConvLSTM1D": 4, "ConvLSTM2D": 4, "ConvLSTM3D": 4}
_NORMALIZATION = {"BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
                  "RMSNormalization"}
# Integer hyperparameters that size something, checked against Caps.dimension wherever they appear.
_SIZE_KEYS = {"units", "filters", "input_dim", "output_dim", "num_heads", "key_dim", "value_dim",
              "depth_multiplier", "num_tokens", "max_tokens", "num_bins", "intermediate_dim", "groups"}
_SHAPE_KEYS = {"batch_shape", "batch_input_shape", "input_shape", "shape", "target_shape", "output_shape",
               "kernel_size", "pool_size", "strides", "size", "dims", "cropping", "padding", "dilation_rate"}


def inspect_keras_bytes(data: bytes, caps: Caps = Caps()) -> DeclaredModel:
    """The parameters ``data`` (a ``.keras`` file's bytes) declares; raises
    :class:`ModelFileRefused` with a message for the report when it is over ``caps``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ModelFileRefused(f"the saved model is not a .keras file (not a readable zip: {exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > caps.members:
            raise ModelFileRefused(f"the saved model's zip holds {len(members):,} files; a .keras file holds a few "
                                   f"(the grader's cap is {caps.members})")
        total = sum(m.file_size for m in members)
        if total > caps.total_bytes:
            raise ModelFileRefused(f"the saved model unpacks to {_size(total)}, over the grader's cap of "
                                   f"{_size(caps.total_bytes)}")
        config_info = next((m for m in members if m.filename == "config.json"), None)
        if config_info is None:
            raise ModelFileRefused("the saved model has no config.json: it is not a Keras 3 .keras file")
        if config_info.file_size > caps.config_bytes:
            raise ModelFileRefused(f"the saved model's config.json is {_size(config_info.file_size)}, over the "
                                   f"grader's cap of {_size(caps.config_bytes)}")
        try:
            # Bounded read: the size in the zip's header is the sender's word, not a fact.
            with archive.open(config_info) as handle:
                raw = handle.read(caps.config_bytes + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
            raise ModelFileRefused(f"the saved model's config.json cannot be read: {exc}") from None
        if len(raw) > caps.config_bytes:
            raise ModelFileRefused(f"the saved model's config.json is over the grader's cap of {_size(caps.config_bytes)}")
        weights = next((m for m in members if m.filename == "model.weights.h5"), None)
        weights_bytes = weights.file_size if weights is not None else 0
    try:
        config = json.loads(raw)
    except RecursionError:
        raise ModelFileRefused("the saved model's config.json is nested too deeply to be a model") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileRefused(f"the saved model's config.json is not valid JSON ({str(exc)[:200]})") from None
    try:
        _check_sizes(config, caps)
        parameters, layers = _model_parameters(config, caps)
    except RecursionError:
        raise ModelFileRefused("the saved model's config.json is nested too deeply to be a model") from None
    if parameters > caps.parameters:
        raise ModelFileRefused(f"the saved model declares {parameters:,} parameters, over the grader's cap of "
                               f"{caps.parameters:,}; it was not loaded")
    if parameters > caps.parameters_per_weight_byte * weights_bytes + caps.slack_parameters:
        raise ModelFileRefused(f"the saved model declares {parameters:,} parameters but its weights file holds only "
                               f"{_size(weights_bytes)}: the configuration does not describe the saved weights; it was "
                               "not loaded")
    return DeclaredModel(parameters, layers, weights_bytes, declared_inputs(config))


def declared_inputs(config: Any) -> int | None:
    """How many inputs the model of a ``config.json`` takes: 1 for a ``Sequential``, the length of a
    functional model's ``input_layers`` (one ``[name, 0, 0]``, a list of them, or a dict of them);
    None when the configuration does not say (a subclassed model)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        return None
    if config.get("class_name") == "Sequential":
        return 1
    inputs = config["config"].get("input_layers")
    if isinstance(inputs, dict):
        return len(inputs)
    if isinstance(inputs, list):
        return len(inputs) if inputs and all(isinstance(item, list) for item in inputs) else (1 if inputs else 0)
    return None


def layer_parameters(class_name: str, config: dict[str, Any], input_shape: list[Any] | None) -> int:
    """Estimated parameters of one layer (an upper bound for the common layers, 0 for layers
    without weights). ``input_shape`` is the layer's input with the batch axis, ``None`` if
    unknown (then the input is counted as one channel: the memory limit covers the rest)."""
    channels = _channels(input_shape)
    if class_name in _DENSE_LIKE:
        units = _int(config.get(_DENSE_LIKE[class_name]))
        return units * channels + units
    if class_name == "EinsumDense":
        out = math.prod(_int(d) for d in _list(config.get("output_shape")) if d is not None) or 1
        return out * channels + out
    if class_name in _CONV:
        filters, kernel = _int(config.get("filters")), _kernel(config)
        groups = max(1, _int(config.get("groups"), 1))
        return kernel * max(1, channels // groups) * filters + filters
    if class_name in _SEPARABLE:
        filters, kernel, depth = _int(config.get("filters")), _kernel(config), _int(config.get("depth_multiplier"), 1)
        return kernel * channels * depth + channels * depth * filters + filters
    if class_name in _DEPTHWISE:
        kernel, depth = _kernel(config), _int(config.get("depth_multiplier"), 1)
        return kernel * channels * depth + channels * depth
    if class_name == "Embedding":
        return _int(config.get("input_dim")) * _int(config.get("output_dim"))
    if class_name in _RNN_GATES:
        units = _int(config.get("units"))
        kernel = _kernel(config) if class_name.startswith("ConvLSTM") else 1
        return _RNN_GATES[class_name] * (units * channels * kernel + units * units * kernel + 2 * units)
    if class_name == "MultiHeadAttention":
        heads, key, value = _int(config.get("num_heads")), _int(config.get("key_dim")), _int(config.get("value_dim"))
        value = value or key
        return heads * (2 * key + value) * (channels + 1) + heads * value * channels + channels
    if class_name in _NORMALIZATION:
        return 4 * channels
    if class_name == "PReLU":
        return math.prod(_int(d, 1) for d in _list(input_shape)[1:] if d is not None)
    return 0


# ---------------------------------------------------------------------------------------------


def _model_parameters(config: Any, caps: Caps) -> tuple[int, int]:
    """Sum of :func:`layer_parameters` over every layer object in ``config``, nested models and
    wrapped layers (Bidirectional, TimeDistributed) included; stops early once over the cap."""
    total = layers = 0
    last_channels: int | None = None  # the running channel count along a Sequential stack
    for node in _layer_objects(config):
        class_name, layer_config = node["class_name"], node["config"]
        layers += "build_config" in node
        shape = _input_shape(node)
        if class_name == "InputLayer":
            shape_out = _list(layer_config.get("batch_shape") or layer_config.get("batch_input_shape"))
            last_channels = _int(shape_out[-1], 0) if shape_out else None
            continue
        if shape is None and last_channels:
            shape = [None, last_channels]
        parameters = layer_parameters(class_name, layer_config, shape)
        if class_name == "Bidirectional":
            parameters = 0  # its wrapped layer is counted twice below
        total += parameters
        if total > caps.parameters:
            break
        produced = _int(layer_config.get("units") or layer_config.get("filters") or layer_config.get("output_dim"), 0)
        if produced:
            last_channels = produced
        elif class_name in {"Flatten", "Reshape", "Concatenate", "Permute"}:
            last_channels = None
    return total, layers


def _layer_objects(config: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every ``{"class_name": ..., "config": {...}}`` object in ``config``, outermost first
    (Bidirectional's wrapped layer twice: forward and backward)."""
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
                yield node
                if node["class_name"] == "Bidirectional" and isinstance(node["config"].get("layer"), dict):
                    stack.append(node["config"]["layer"])
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))


def _check_sizes(config: Any, caps: Caps) -> None:
    """Refuse any single declared size over ``caps.dimension`` (or negative, or not a number)."""
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SIZE_KEYS or key in _SHAPE_KEYS:
                    for number in _numbers(value):
                        if number > caps.dimension:
                            raise ModelFileRefused(
                                f"the saved model declares a size of {number:,} ({key}), over the grader's cap of "
                                f"{caps.dimension:,} for one dimension; it was not loaded")
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def _numbers(value: Any) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            yield 2**63
        else:
            yield abs(int(value))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)


def _input_shape(node: dict[str, Any]) -> list[Any] | None:
    build = node.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        shape = shape[0]  # a layer with several inputs: the first one sizes its kernel
    return shape if isinstance(shape, list) else None


def _channels(shape: list[Any] | None) -> int:
    if not shape:
        return 1
    return max(1, _int(shape[-1], 1))


def _kernel(config: dict[str, Any]) -> int:
    return math.prod(max(1, _int(k, 1)) for k in _list(config.get("kernel_size"))) or 1


def _list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [] if value is None else [value]


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return 2**63
    return abs(int(value))


def _size(n: int) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"
