"""Architectures rebuilt from a notebook's code with :mod:`ast`, for static mode.

A fit whose ``model.summary()`` was never printed still has code that built the model. Where
that code is a plain ``Sequential([...])``, ``model.add(...)`` chain or functional
``Dense(...)(x)`` chain with literal arguments, this module rebuilds the layer classes, units,
filters, kernel sizes and activations, and the parameter counts where the input shape is known
(an ``input_shape=``/``Input(shape=)`` literal, or the dataset the notebook loads: CIFAR-10 is
32×32×3). Keras summaries never print activations, so the same rebuild also supplies the output
layer's activation to a summarised model. Nothing here runs the student's code or raises.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any

from grader.model.evidence import Architecture, LayerInfo
from grader.model.layer_names import canonical_class

_DATASET_SHAPES = {"cifar10": [32, 32, 3], "cifar100": [32, 32, 3]}
_MODEL_CLASSES = {"Sequential", "Model", "Functional"}
_MAGIC = re.compile(r"^[ \t]*[%!?]", re.MULTILINE)


@dataclass
class CodeModel:
    """A model the code defines: where, bound to which variable, and what it is."""

    variable: str | None
    cell: int
    architecture: Architecture
    function: str | None = None  # the builder function that returns it


@dataclass
class _Spec:
    class_name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


def _name_of(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _spec(node: ast.expr) -> _Spec | None:
    """``Dense(10, activation='softmax')`` → a spec; anything else → None."""
    if not isinstance(node, ast.Call):
        return None
    name = _name_of(node.func)
    if not name or not name[:1].isupper() or name in _MODEL_CLASSES:
        return None
    return _Spec(class_name=canonical_class(name),
                 args=[_literal(arg) for arg in node.args],
                 kwargs={kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg})


def _pair(value: Any, rank: int = 2) -> list[int] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return [value] * rank
    if isinstance(value, (list, tuple)) and len(value) == rank and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def _arg(spec: _Spec, position: int, name: str, default: Any = None) -> Any:
    if name in spec.kwargs:
        return spec.kwargs[name]
    return spec.args[position] if position < len(spec.args) else default


def _layers(specs: list[_Spec], input_shape: list[int] | None) -> Architecture:
    """Layers with configs; shapes and parameters while the input shape stays known."""
    shape = list(input_shape) if input_shape else None
    arch = Architecture(class_name="Sequential", input_shape=[None] + shape if shape else None)
    exact = shape is not None
    for index, spec in enumerate(specs):
        name = f"{re.sub(r'(?<!^)(?=[A-Z])', '_', spec.class_name).lower()}_{index}"
        layer = LayerInfo(name=name, class_name=spec.class_name)
        activation = spec.kwargs.get("activation")
        if isinstance(activation, str):
            layer.activation = activation.lower()
        if index == 0 and shape is None:
            given = spec.kwargs.get("input_shape")
            if isinstance(spec.kwargs.get("input_dim"), int):  # Keras 1/2: Dense(8, input_dim=784)
                given = [spec.kwargs["input_dim"]]
            if isinstance(given, (list, tuple)) and all(isinstance(d, int) for d in given):
                shape = list(given)
                arch.input_shape = [None] + shape
                exact = True
        cls = spec.class_name
        params: int | None = 0
        if cls == "Dense":
            units = _arg(spec, 0, "units")
            if isinstance(units, int):
                layer.config["units"] = units
            if shape and isinstance(units, int):
                params = shape[-1] * units + (units if spec.kwargs.get("use_bias", True) else 0)
                layer.config["input_dim"] = shape[-1]
                shape = shape[:-1] + [units]
            else:
                params, shape = None, None
        elif cls == "Conv2D":
            filters, kernel = _arg(spec, 0, "filters"), _pair(_arg(spec, 1, "kernel_size"))
            strides = _pair(spec.kwargs.get("strides", 1)) or [1, 1]
            padding = spec.kwargs.get("padding", "valid")
            if isinstance(filters, int):
                layer.config["filters"] = filters
            if kernel:
                layer.config["kernel_size"] = kernel
            layer.config["padding"] = padding
            if shape and len(shape) == 3 and isinstance(filters, int) and kernel and \
                    padding in ("valid", "same"):
                params = kernel[0] * kernel[1] * shape[2] * filters + \
                    (filters if spec.kwargs.get("use_bias", True) else 0)
                shape = _spatial(shape, kernel, strides, padding) + [filters]
            else:
                params, shape = None, None
        elif cls in ("MaxPooling2D", "AveragePooling2D"):
            pool = _pair(_arg(spec, 0, "pool_size", 2)) or None
            strides = _pair(_arg(spec, 1, "strides", None)) or pool
            padding = _arg(spec, 2, "padding", "valid")
            if pool:
                layer.config["pool_size"] = pool
            if shape and len(shape) == 3 and pool and strides and padding in ("valid", "same"):
                shape = _spatial(shape, pool, strides, padding) + [shape[2]]
            else:
                shape = None
        elif cls == "Flatten":
            shape = [math.prod(shape)] if shape else None
        elif cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            shape = [shape[-1]] if shape else None
        elif cls == "BatchNormalization":
            if shape:
                params = 4 * shape[-1]
                layer.trainable_params, layer.non_trainable_params = 2 * shape[-1], 2 * shape[-1]
            else:
                params = None
        elif cls in ("Dropout", "SpatialDropout2D", "GaussianNoise"):
            rate = _arg(spec, 0, "rate")
            if isinstance(rate, (int, float)):
                layer.config["rate"] = rate
        elif cls == "Activation":
            activation = _arg(spec, 0, "activation")
            if isinstance(activation, str):
                layer.activation = activation.lower()
        elif cls in ("ReLU", "LeakyReLU", "Softmax", "ELU"):
            pass  # no weights, shape unchanged
        else:
            params, shape = None, None  # a layer this rebuild does not model
        if params is None:
            exact = False
            params = 0
        layer.params = params
        if cls != "BatchNormalization":
            layer.trainable_params = params
        layer.output_shape = [None] + shape if shape else None
        arch.layers.append(layer)
    arch.params_known = exact
    arch.total_params = sum(layer.params for layer in arch.layers)
    arch.trainable_params = sum(layer.trainable_params for layer in arch.layers)
    arch.non_trainable_params = arch.total_params - arch.trainable_params
    arch.output_shape = arch.layers[-1].output_shape if arch.layers else None
    return arch


def _spatial(shape: list[int], kernel: list[int], strides: list[int], padding: str) -> list[int]:
    if padding == "same":
        return [math.ceil(n / s) for n, s in zip(shape[:2], strides)]
    return [max(0, (n - k) // s + 1) for n, k, s in zip(shape[:2], kernel, strides)]


class _Scope:
    """Walks one block of statements (a cell, or a function body) in order."""

    def __init__(self, dataset_shape: list[int] | None):
        self.dataset_shape = dataset_shape
        self.sequential: dict[str, list[_Spec]] = {}  # variable -> layers added so far
        # tensor variable -> its node: ("input", shape) or ("layer", spec, parent node); nodes,
        # not names, because `x = Dense(64)(x)` rebinds the name.
        self.graph: dict[str, tuple] = {}
        self.models: dict[str, Architecture] = {}
        self.returned: Architecture | None = None

    def block(self, body: list[ast.stmt]) -> None:
        for statement in body:
            try:
                self.statement(statement)
            except (RecursionError, ValueError, TypeError, AttributeError):
                continue

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self.assign(node.targets[0].id, node.value)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "add" and \
                    isinstance(call.func.value, ast.Name) and call.func.value.id in self.sequential:
                spec = _spec(call.args[0]) if call.args else None
                if spec is not None:
                    self.sequential[call.func.value.id].append(spec)
                    self.models[call.func.value.id] = self.build_sequential(call.func.value.id)
        elif isinstance(node, ast.Return) and node.value is not None:
            self.returned = self.model_of(node.value)
        elif isinstance(node, (ast.If, ast.With, ast.For, ast.Try)):
            self.block(getattr(node, "body", []))

    def assign(self, target: str, value: ast.expr) -> None:
        self.models.pop(target, None)
        self.sequential.pop(target, None)
        if not isinstance(value, ast.Call):
            return
        name = _name_of(value.func)
        if name == "Sequential":
            layers: list[_Spec] = []
            if value.args and isinstance(value.args[0], (ast.List, ast.Tuple)):
                layers = [spec for spec in map(_spec, value.args[0].elts) if spec is not None]
            self.sequential[target] = layers
            self.models[target] = self.build_sequential(target)
            return
        if name == "Input":
            given = next((kw.value for kw in value.keywords if kw.arg == "shape"), None)
            shape = _literal(given) if given is not None else (_literal(value.args[0]) if value.args else None)
            ok = isinstance(shape, (list, tuple)) and all(isinstance(d, int) for d in shape)
            self.graph[target] = ("input", list(shape) if ok else None)
            return
        if name in ("Model", "Functional"):
            arch = self.functional(value)
            if arch is not None:
                self.models[target] = arch
            return
        # Dense(10)(x): one layer of a functional chain.
        if isinstance(value.func, ast.Call) and value.args and isinstance(value.args[0], ast.Name):
            spec = _spec(value.func)
            parent = self.graph.get(value.args[0].id)
            if spec is not None and parent is not None:
                self.graph[target] = ("layer", spec, parent)
                return
        self.graph.pop(target, None)

    def build_sequential(self, variable: str) -> Architecture:
        specs = [spec for spec in self.sequential[variable] if spec.class_name != "InputLayer"]
        shape = None
        first = self.sequential[variable][0] if self.sequential[variable] else None
        if first is not None and first.class_name == "InputLayer":
            given = first.kwargs.get("input_shape") or first.kwargs.get("shape")
            if isinstance(given, (list, tuple)):
                shape = list(given)
        if shape is None and not (specs and ({"input_shape", "input_dim"} & set(specs[0].kwargs))):
            shape = self.dataset_shape
        return _layers(specs, shape)

    def functional(self, call: ast.Call) -> Architecture | None:
        arguments = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        outputs = arguments.get("outputs") or (call.args[1] if len(call.args) > 1 else None)
        inputs = arguments.get("inputs") or (call.args[0] if call.args else None)
        if not isinstance(outputs, ast.Name) or not isinstance(inputs, ast.Name):
            return None
        chain: list[_Spec] = []
        node = self.graph.get(outputs.id)
        while node is not None and node[0] == "layer" and len(chain) < 10_000:
            chain.append(node[1])
            node = node[2]
        if node is None or node is not self.graph.get(inputs.id) or not chain:
            return None
        arch = _layers(list(reversed(chain)), node[1])
        arch.class_name = "Functional"
        return arch

    def model_of(self, value: ast.expr) -> Architecture | None:
        if isinstance(value, ast.Name):
            return self.models.get(value.id)
        if isinstance(value, ast.Call) and _name_of(value.func) in ("Model", "Functional"):
            return self.functional(value)
        return None


def _parse(source: str) -> ast.Module | None:
    """The cell's syntax tree (read, never changed: the trees of the course's own cells, which
    every student's notebook repeats, are kept for the next notebook of the batch)."""
    if len(source) <= _CACHED_SOURCE:
        return _parse_cached(source)
    return _parse_now(source)


_CACHED_SOURCE = 20_000


@functools.lru_cache(maxsize=64)
def _parse_cached(source: str) -> ast.Module | None:
    return _parse_now(source)


def _parse_now(source: str) -> ast.Module | None:
    # IPython magics and shell escapes are not Python; blank them so the rest still parses.
    try:
        return ast.parse(_MAGIC.sub("pass  #", source))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def code_models(cells: list[tuple[int, str]]) -> list[CodeModel]:
    """Every model the code cells build, in cell order: ``(cell index, source)`` pairs in.

    A builder function (``def make_cnn(): ... return model``) yields its model when a later
    statement assigns its call (``model = make_cnn()``). Models that cannot be rebuilt are
    left out.
    """
    text = "\n".join(source for _, source in cells)
    dataset = next((shape for name, shape in _DATASET_SHAPES.items()
                    if re.search(rf"\b{name}\b", text)), None)
    builders: dict[str, Architecture] = {}
    found: list[CodeModel] = []
    for index, source in cells:
        module = _parse(source)
        if module is None:
            continue
        scope = _Scope(dataset)
        for node in module.body:
            if isinstance(node, ast.FunctionDef):
                inner = _Scope(dataset)
                inner.block(node.body)
                if inner.returned is not None:
                    builders[node.name] = inner.returned
                continue
            before = dict(scope.models)
            scope.block([node])
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call) and \
                    _name_of(node.value.func) in builders:
                found.append(CodeModel(variable=node.targets[0].id, cell=index,
                                       architecture=builders[_name_of(node.value.func) or ""],
                                       function=_name_of(node.value.func)))
                continue
            for variable, arch in scope.models.items():
                if before.get(variable) is not arch:
                    found.append(CodeModel(variable=variable, cell=index, architecture=arch))
    return found


def model_in_code(models: list[CodeModel], variable: str | None, cell: int) -> CodeModel | None:
    """The model last bound to ``variable`` at or before ``cell``."""
    if variable is None:
        return None
    last = None
    for model in models:
        if model.cell <= cell and model.variable == variable:
            last = model
    return last


def _weighted(architecture: Architecture) -> list[str]:
    return [canonical_class(layer.class_name) for layer in architecture.layers
            if canonical_class(layer.class_name) not in ("InputLayer",)]


def fill_activations(summarised: Architecture, rebuilt: Architecture) -> bool:
    """Copy the activations the code gives onto a summarised model with the same layer classes;
    False when the classes differ (another model)."""
    if _weighted(summarised) != _weighted(rebuilt):
        return False
    for mine, theirs in zip(summarised.layers, rebuilt.layers):
        if mine.activation is None and theirs.activation is not None:
            mine.activation = theirs.activation
    return True


__all__ = ["CodeModel", "code_models", "fill_activations", "model_in_code"]
