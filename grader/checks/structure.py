"""Structure checks: parameter counts, layer sequences and types, output shapes, the output layer.

Structure facts stay exact in fast mode (capping epochs and samples does not change a model), so
none of these kinds is skipped there. Failure messages show the arithmetic: where the
parameters are, which layer departs from the asked sequence, how a shape came about.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from grader.model.arithmetic import explain_architecture, explain_output_shape, layer_formula
from grader.model.format import fmt_int, fmt_number, fmt_pct
from grader.checks.base import (
    COUNT,
    FRACTION,
    INTEGER,
    TEXT,
    CheckContext,
    Outcome,
    check,
    failed,
    fraction,
    not_assessed,
    passed,
    range_ok,
    range_symbol,
    range_validate,
    range_words,
    ranged,
)
from grader.model.words import ordinal, plural, sentence
from grader.checks.figures import params_figure
from grader.checks.pattern import PatternError, canonical_class, parse_pattern
from grader.model.evidence import Architecture, LayerInfo, Level

def _unknown_architecture(ctx: CheckContext, *, params: bool = False) -> Outcome | None:
    """"Not assessed" for a model whose architecture (or parameter counts) static mode could not
    read: an empty layer list must not pass "fewer parameters than" or "no Dropout layer"."""
    assert ctx.target is not None
    architecture = ctx.target.architecture
    if not architecture.known:
        return not_assessed(f"The architecture of {ctx.target.where} is unknown: no model summary of it was "
                            "printed and its code could not be read; print model.summary() after building it.",
                            level=ctx.target.level)
    if params and not architecture.params_known:
        return not_assessed(f"The parameter counts of {ctx.target.where} are unknown: its layers were read from "
                            "the code, but its input shape was not; print model.summary() after building it.",
                            level=ctx.target.level)
    return None


def _verified_params(ctx: CheckContext) -> bool:
    """The grader counted the parameters itself on the saved model: that count stands."""
    assert ctx.target is not None
    verification = ctx.evidence.verification_of(ctx.target.model_id)
    return verification is not None and verification.status == "ok" and verification.total_params is not None


# ---------------------------------------------------------------------------------------------
# Parameter counts

_WHICH = {
    "total_params": ("total", "parameters", "total parameters"),
    "trainable_params": ("trainable", "trainable parameters", "trainable parameters"),
    "non_trainable_params": ("non_trainable", "non-trainable parameters", "non-trainable parameters"),
}

_PARAM_SCHEMA: dict[str, dict[str, Any]] = {
    **ranged(COUNT, noun="count"),
    "within": {**FRACTION, "description": "a tolerance around 'of': 0.1 or '10%'"},
    "of": {"description": "the count 'within' is measured from: a number, or 'reference' (the task's reference model)",
           "anyOf": [COUNT, {"const": "reference"}]},
}


def _layer_inputs(architecture: Architecture) -> list[tuple[LayerInfo, list[int | None] | None]]:
    """Each layer with its input shape (the previous layer's output shape)."""
    out = []
    previous = architecture.input_shape
    for layer in architecture.layers:
        out.append((layer, previous))
        previous = layer.output_shape or previous
    return out


def where_the_parameters_are(architecture: Architecture, which: str = "total") -> str:
    """"Most of them are in dense_1 (6,272×200 weights + 200 biases = 1,254,600)." """
    attr = {"total": "params", "trainable": "trainable_params", "non_trainable": "non_trainable_params"}[which]
    total = sum(getattr(layer, attr) for layer in architecture.layers)
    weighted = [(layer, shape) for layer, shape in _layer_inputs(architecture) if getattr(layer, attr) > 0]
    if not weighted or total <= 0:
        return ""
    if which == "non_trainable":
        parts = ", ".join(f"{layer.name} ({fmt_int(layer.non_trainable_params)})" for layer, _ in weighted[:6])
        return ("Non-trainable parameters are BatchNormalization's moving mean and variance (2 per channel) "
                f"and the weights of frozen layers; yours are in {parts}.")
    layer, shape = max(weighted, key=lambda item: getattr(item[0], attr))
    formula = layer_formula(layer, input_shape=shape)
    count = getattr(layer, attr)
    how = f"{formula.terms} = {fmt_int(formula.total)}" if formula else f"{fmt_int(count)} parameters"
    if layer.layers:
        how = f"a nested {layer.class_name} model with {fmt_int(count)} parameters"
    if count * 2 > total:
        return f"Most of them are in {layer.name} ({how})."
    return f"The largest layer is {layer.name} ({how})."


def _params_expectation(ctx: CheckContext, p: dict[str, Any], attr: str) -> tuple[dict[str, Any], str] | str:
    """The range to test and its words; a string when the reference is unavailable."""
    expect: dict[str, Any] = {k: p[k] for k in ("equals", "at_least", "at_most", "between") if k in p}
    words = range_words(expect) if expect else ""
    if "within" in p:
        tolerance = fraction(p["within"])
        if p["of"] == "reference":
            name = ctx.task.reference
            arch = ctx.references.get(name) if name else None
            if arch is None:
                return f"the reference model '{name}' is not available to the grader"
            base = int(getattr(arch, attr))
            label = f"the reference model {name} ({fmt_int(base)})"
        else:
            base = int(p["of"])
            label = fmt_int(base)
        low, high = base * (1 - tolerance), base * (1 + tolerance)
        if "between" in expect:  # both given: the narrower range
            low, high = max(low, expect["between"][0]), min(high, expect["between"][1])
        expect["between"] = [low, high]
        within = f"within {fmt_pct(tolerance)} of {label} ({fmt_int(round(low))}–{fmt_int(round(high))})"
        words = f"{words} and {within}" if words else within
    return expect, words


_EXAMPLES = {
    "total_params": "- total_params: {at_most: 100_000}",
    "trainable_params": "- trainable_params: 2_097_665",
    "non_trainable_params": "- non_trainable_params: {equals: 784}",
}


def _params_check(kind: str) -> None:
    which, noun, title_noun = _WHICH[kind]
    attr = f"{which}_params"

    def title(p: dict[str, Any]) -> str:
        parts = [range_symbol({k: v for k, v in p.items() if k in ("equals", "at_least", "at_most", "between")})]
        if "within" in p:
            base = "the reference" if p.get("of") == "reference" else fmt_number(p.get("of"))
            parts.append(f"within {fmt_pct(fraction(p['within']))} of {base}")
        return f"{title_noun} " + ", ".join(x for x in parts if x)

    def validate(p: dict[str, Any]) -> list[tuple[str | None, str]]:
        problems = range_validate(p)
        if ("within" in p) != ("of" in p):
            problems.append(("within" if "within" in p else "of", "'within' and 'of' go together: within: 10%, of: 81834"))
        return problems

    def evaluate(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
        assert ctx.target is not None
        unknown = _unknown_architecture(ctx, params=True)
        if unknown is not None and not _verified_params(ctx):
            return unknown
        figure = params_figure(ctx.evidence, ctx.target, which)
        value = int(figure.value)
        expectation = _params_expectation(ctx, p, attr)
        if isinstance(expectation, str):
            return not_assessed(f"Cannot compare: {expectation}.", figure=value, level=figure.level)
        expect, words = expectation
        ok = range_ok(value, expect)
        details = {"arithmetic": explain_architecture(ctx.target.architecture), "source": figure.source}
        if ok:
            return passed(f"{ctx.model_word} has {fmt_int(value)} {noun} ({words}).", figure=value,
                          level=figure.level, details=details)
        message = f"{ctx.model_word} has {fmt_int(value)} {noun}; this task asks for {words}."
        where = where_the_parameters_are(ctx.target.architecture, which)
        if where:
            message += " " + where
        too_many = ("at_most" in expect and value > expect["at_most"]) or ("equals" in expect and value > expect["equals"])
        if which == "trainable" and too_many and any(layer.layers for layer in ctx.target.architecture.layers):
            message += (" To train only the new layers, freeze the pretrained base (base.trainable = False) "
                        "and compile again before fit.")
        return failed(message, figure=value, level=figure.level, details=details)

    check(kind, summary=f"The model's {title_noun}: exact, a range, or within a tolerance of a reference.",
          title=title, params=_PARAM_SCHEMA, one_of=("equals", "at_least", "at_most", "between", "within"),
          shorthand=COUNT, expand=lambda v: {"equals": v}, validate=validate,
          example=_EXAMPLES[kind])(evaluate)


for _kind in _WHICH:
    _params_check(_kind)


# ---------------------------------------------------------------------------------------------
# Layer sequences


def _classes(architecture: Architecture) -> list[LayerInfo]:
    return [layer for layer in architecture.layers if layer.class_name != "InputLayer"]


def _sequence_text(layers: list[LayerInfo]) -> str:
    return " → ".join(canonical_class(layer.class_name) for layer in layers) or "(no layers)"


def _either(names: list[str]) -> str:
    if len(names) <= 1:
        return names[0] if names else "nothing"
    return ", ".join(names[:-1]) + " or " + names[-1]


def _layer_ref(layers: list[LayerInfo], i: int) -> str:
    layer = layers[i]
    return f"layer {i + 1} ({canonical_class(layer.class_name)}, {layer.name})"


def _plain_differences(expected: list[str], layers: list[LayerInfo]) -> list[str]:
    actual = [canonical_class(layer.class_name) for layer in layers]
    matcher = difflib.SequenceMatcher(a=[e.lower() for e in expected], b=[a.lower() for a in actual], autojunk=False)
    out = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "delete":
            missing = " → ".join(expected[i1:i2])
            place = f"after {_layer_ref(layers, j1 - 1)}" if j1 > 0 else "at the start"
            out.append(f"missing {missing} {place}")
        elif op == "insert":
            extra = ", ".join(_layer_ref(layers, j) for j in range(j1, j2))
            out.append(f"not expected: {extra}")
        else:
            got = ", ".join(_layer_ref(layers, j) for j in range(j1, j2))
            out.append(f"{got} where the task expects {' → '.join(expected[i1:i2])}")
    return out


def _validate_layers(p: dict[str, Any]) -> list[tuple[str | None, str]]:
    try:
        parse_pattern(p["pattern"])
    except PatternError as exc:
        return [("pattern", f"layer pattern: {exc}")]
    return []


@check("layers", summary="The sequence of layer classes (InputLayer ignored): exact, or a pattern with ? * + {n,m} ( | ) and '.'.",
       title=lambda p: f"layers {'contain' if p.get('match') == 'contains' else 'match'} "
                       f"{' '.join(map(str, p['pattern'])) if isinstance(p['pattern'], list) else p['pattern']}",
       params={"pattern": {"description": "a layer pattern, or a list of class names in order",
                           "anyOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1}]},
               "match": {"enum": ["full", "contains"], "description": "full: the whole model (default); contains: somewhere in it"}},
       required=("pattern",), shorthand={"anyOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1}]},
       expand=lambda v: {"pattern": v}, validate=_validate_layers,
       example='- layers: "(Conv2D BatchNormalization? Activation)+ MaxPooling2D Flatten Dense+"')
def layers_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    if (unknown := _unknown_architecture(ctx)) is not None:
        return unknown
    pattern = parse_pattern(p["pattern"])
    layers = _classes(ctx.target.architecture)
    contains = p.get("match") == "contains"
    result = pattern.match([layer.class_name for layer in layers], contains=contains)
    sequence = _sequence_text(layers)
    level = ctx.target.level
    if result.matched:
        return passed(f"{ctx.model_word}'s layers match: {sequence}.", figure=sequence, level=level)
    message = f"{ctx.model_word}'s layers are {sequence}"
    if contains:
        message += f"; this task asks for {pattern.source} somewhere in them, and it is not there."
    elif pattern.plain is not None:
        differences = _plain_differences(pattern.plain, layers)
        message += f"; this task asks for {' → '.join(pattern.plain)}. " + sentence("; ".join(differences[:3])) + "."
    elif result.position < len(layers) and not result.expected:
        message += (f"; this task asks for {pattern.source}, which ends before "
                    f"{_layer_ref(layers, result.position)}: the model has more layers than it allows.")
    elif result.position < len(layers):
        message += (f"; this task asks for {pattern.source}. {sentence(_layer_ref(layers, result.position))} is "
                    f"where they depart from it: expected {_either(result.expected)} there.")
    else:
        last = f"after {_layer_ref(layers, len(layers) - 1)}" if layers else "without any layer"
        message += f"; this task asks for {pattern.source}. The model ends {last}, but the pattern expects more: {_either(result.expected)}."
    return failed(message, figure=sequence, level=level)


# ---------------------------------------------------------------------------------------------
# Layer types present or absent


def _names(text: str) -> list[str]:
    return [canonical_class(part.strip()) for part in text.split("|") if part.strip()]


def _layer_matches(layer: LayerInfo, names: list[str], config: dict[str, Any] | None) -> bool:
    if canonical_class(layer.class_name).lower() not in {n.lower() for n in names}:
        return False
    for key, wanted in (config or {}).items():
        have = layer.activation if key == "activation" else (layer.config or {}).get(key)
        if isinstance(wanted, (int, float)) and isinstance(have, (int, float)) and not isinstance(wanted, bool):
            if abs(have - wanted) > 1e-9 * max(1.0, abs(wanted)):
                return False
        elif isinstance(wanted, list) and isinstance(have, (list, tuple)):
            if list(have) != wanted:
                return False
        elif have != wanted:
            return False
    return True


def _config_words(config: dict[str, Any] | None) -> str:
    if not config:
        return ""
    return " with " + ", ".join(f"{k} {fmt_number(v)}" for k, v in config.items())


def _contains_title(p: dict[str, Any]) -> str:
    layer = p["layer"].replace("|", " or ")
    counts: dict[str, Any] = {k: p[k] for k in ("equals", "at_least", "at_most") if k in p}
    if not counts or counts == {"at_least": 1}:
        return f"has a {layer} layer{_config_words(p.get('config'))}"
    return f"{range_symbol(counts)} {layer} layers{_config_words(p.get('config'))}"


@check("contains", summary="The model has layers of a class (alternatives with |), optionally counted and with given settings.",
       title=_contains_title,
       params={"layer": {**TEXT, "description": "a layer class, or alternatives: 'Dropout|SpatialDropout2D'"},
               "equals": {**COUNT, "description": "exactly this many such layers"},
               "at_least": {**COUNT, "description": "at least this many (default 1)"},
               "at_most": {**COUNT, "description": "at most this many"},
               "config": {"type": "object", "description": "settings the layer must have: {rate: 0.25}, {units: 64}, {activation: relu}",
                          "additionalProperties": {"type": ["number", "string", "boolean", "array"]}}},
       required=("layer",), shorthand=TEXT, expand=lambda v: {"layer": v}, validate=range_validate,
       example="- contains: {layer: Dropout, at_least: 2}")
def contains_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    if (unknown := _unknown_architecture(ctx)) is not None:
        return unknown
    names = _names(p["layer"])
    layers = _classes(ctx.target.architecture)
    found = [layer for layer in layers if _layer_matches(layer, names, p.get("config"))]
    counts: dict[str, Any] = {k: p[k] for k in ("equals", "at_least", "at_most") if k in p} or {"at_least": 1}
    ok = range_ok(len(found), counts)
    count = fmt_int(len(found)) if found else "no"
    what = f"{count} {' or '.join(names)} {'layer' if len(found) == 1 else 'layers'}{_config_words(p.get('config'))}"
    listed = f" ({', '.join(layer.name for layer in found[:6])})" if found else ""
    message = f"{ctx.model_word} has {what}{listed}"
    if ok:
        return passed(message + ".", figure=len(found), level=ctx.target.level)
    message += f"; this task asks for {range_words(counts)}."
    if p.get("config"):
        similar = [layer for layer in layers if _layer_matches(layer, names, None)]
        if similar:
            shown = "; ".join(f"{layer.name}: " + ", ".join(
                f"{k} {fmt_number(layer.activation if k == 'activation' else (layer.config or {}).get(k))}"
                for k in p["config"]) for layer in similar[:4])
            message += f" Its {' or '.join(names)} layers have other settings ({shown})."
    return failed(message, figure=len(found), level=ctx.target.level)


@check("lacks", summary="The model has no layer of a class (alternatives with |).",
       title=lambda p: f"no {p['layer'].replace('|', ' or ')} layer",
       params={"layer": {**TEXT, "description": "a layer class, or alternatives with |"}},
       required=("layer",), shorthand=TEXT, expand=lambda v: {"layer": v},
       example="- lacks: BatchNormalization")
def lacks_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    if (unknown := _unknown_architecture(ctx)) is not None:
        return unknown
    names = _names(p["layer"])
    found = [layer for layer in _classes(ctx.target.architecture) if _layer_matches(layer, names, None)]
    what = " or ".join(names)
    if not found:
        return passed(f"{ctx.model_word} has no {what} layer, as asked.", figure=0, level=ctx.target.level)
    return failed(f"{ctx.model_word} has {plural(len(found), what + ' layer')} "
                  f"({', '.join(layer.name for layer in found[:6])}); this task asks for none.",
                  figure=len(found), level=ctx.target.level)


# ---------------------------------------------------------------------------------------------
# Dropout placement

_WHICH_DENSE = {"largest_dense": "largest", "first_dense": "first", "last_dense": "last"}


@check("dropout_before", summary="A Dropout layer sits right before a Dense layer (only parameter-free layers such as Flatten between).",
       title=lambda p: f"Dropout right before the {_WHICH_DENSE[p.get('layer', 'largest_dense')]} Dense layer",
       params={"layer": {"enum": list(_WHICH_DENSE), "description": "which Dense layer: largest_dense (default), first_dense, last_dense"}},
       shorthand={"enum": list(_WHICH_DENSE)}, expand=lambda v: {"layer": v},
       example="- dropout_before: largest_dense")
def dropout_before_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    if (unknown := _unknown_architecture(ctx, params=True)) is not None:
        return unknown
    which = _WHICH_DENSE[p.get("layer", "largest_dense")]
    layers = _classes(ctx.target.architecture)
    dense = [i for i, layer in enumerate(layers) if canonical_class(layer.class_name) == "Dense"]
    level = ctx.target.level
    if not dense:
        return failed(f"{ctx.model_word} has no Dense layer.", level=level)
    if which == "largest":
        index = max(dense, key=lambda i: layers[i].params)
    else:
        index = dense[0] if which == "first" else dense[-1]
    target = layers[index]
    for j in range(index - 1, -1, -1):
        layer = layers[j]
        if "Dropout" in canonical_class(layer.class_name):
            rate = (layer.config or {}).get("rate")
            rate_text = f" (rate {fmt_number(rate)})" if rate is not None else ""
            return passed(f"{layer.name}{rate_text} sits right before {target.name}, the {which} Dense layer "
                          f"({fmt_int(target.params)} parameters).", figure=layer.name, level=level)
        if layer.params > 0 or layer.layers:
            break
    previous = _layer_ref(layers, index - 1) if index > 0 else "the input"
    shape_in = layers[index - 1].output_shape if index > 0 else ctx.target.architecture.input_shape
    formula = layer_formula(target, input_shape=shape_in)
    size = f"{formula.terms} = {fmt_int(formula.total)}" if formula else f"{fmt_int(target.params)} parameters"
    return failed(f"The {which} Dense layer, {target.name} ({size}), has no Dropout right before it; put one "
                  f"between {previous} and {target.name}: a layer with this many weights overfits easily.",
                  figure=None, level=level)


# ---------------------------------------------------------------------------------------------
# Output shapes


def _shape_text(shape: list[int | None] | None) -> str:
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _shape_matches(actual: list[int | None], expected: list[int | None]) -> bool:
    if len(expected) == len(actual) - 1:  # written without the batch dimension
        actual = actual[1:]
    if len(expected) != len(actual):
        return False
    return all(e is None or a == e for a, e in zip(actual, expected, strict=True))


def _pick_layer(layers: list[LayerInfo], p: dict[str, Any]) -> tuple[int | None, str]:
    if "position" in p:
        n = p["position"]
        words = f"layer {n}" if n > 0 else ("the last layer" if n == -1 else f"layer {-n} from the end")
        if n == 0 or abs(n) > len(layers):
            return None, words
        return (n - 1 if n > 0 else len(layers) + n), words
    names = _names(p["layer"])
    n = p.get("nth", 1)
    matching = [i for i, layer in enumerate(layers) if _layer_matches(layer, names, None)]
    words = f"the {ordinal(n)} {' or '.join(names)} layer" if n != 1 else f"the first {' or '.join(names)} layer"
    if n == 0 or abs(n) > len(matching):
        return None, words
    return matching[n - 1] if n > 0 else matching[n], words


def _output_shape_title(p: dict[str, Any]) -> str:
    which = f"layer {p['position']}" if "position" in p else f"{ordinal(p.get('nth', 1))} {p['layer']}"
    return f"output shape of {which} is {_shape_text(p['shape'])}"


@check("output_shape", summary="The output shape of one layer, picked by class (and nth) or by position.",
       title=_output_shape_title,
       params={"layer": {**TEXT, "description": "layer class (alternatives with |)"},
               "nth": {**INTEGER, "not": {"const": 0}, "description": "which one of that class, from 1; negative counts from the end"},
               "position": {**INTEGER, "not": {"const": 0}, "description": "position in the model from 1 (InputLayer not counted); -1 is the last layer"},
               "shape": {"type": "array", "items": {"type": ["integer", "null"]}, "minItems": 1,
                         "description": "the expected shape, with or without the batch dimension: [24, 24, 16] or [null, 24, 24, 16]"}},
       required=("shape",), one_of=("layer", "position"),
       example="- output_shape: {layer: Conv2D, shape: [26, 26, 16]}")
def output_shape_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    if (unknown := _unknown_architecture(ctx)) is not None:
        return unknown
    layers = _classes(ctx.target.architecture)
    index, words = _pick_layer(layers, p)
    level = ctx.target.level
    if index is None:
        return failed(f"{ctx.model_word} has no {words.removeprefix('the ')}: its layers are {_sequence_text(layers)}.", level=level)
    layer = layers[index]
    actual = layer.output_shape
    if actual is None:
        return not_assessed(f"The output shape of {layer.name} was not recorded.", level=level)
    expected = p["shape"]
    shown = _shape_text(actual)
    if _shape_matches(actual, expected):
        return passed(f"{sentence(words)}, {layer.name}, outputs {shown}.", figure=shown, level=level)
    message = f"{sentence(words)}, {layer.name}, outputs {shown}; this task expects {_shape_text(expected)}."
    previous = layers[index - 1].output_shape if index > 0 else ctx.target.architecture.input_shape
    how = explain_output_shape(layer, previous)
    if how:
        message += f" Its size comes from {how}."
    return failed(message, figure=shown, level=level)


# ---------------------------------------------------------------------------------------------
# The output layer and the loss

_CROSSENTROPY_ACTIVATION = {
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
    "binary_crossentropy": "sigmoid",
}


def normalize_loss(loss: str | None) -> str | None:
    """``'CategoricalCrossentropy'`` → ``'categorical_crossentropy'``; aliases resolved."""
    if not loss:
        return None
    text = loss.split(".")[-1].strip()
    if text[:1].isupper():
        text = re.sub(r"(?<!^)(?=[A-Z])", "_", text).lower()
    text = text.lower().replace("cross_entropy", "crossentropy")
    return {"mse": "mean_squared_error", "mae": "mean_absolute_error", "bce": "binary_crossentropy",
            "cce": "categorical_crossentropy"}.get(text, text)


def _output_activation(layers: list[LayerInfo]) -> tuple[LayerInfo | None, str | None]:
    """The last layer with weights and the activation applied after it (its own, or a following
    Activation / Softmax layer)."""
    last = None
    for i in range(len(layers) - 1, -1, -1):
        if layers[i].params > 0 or layers[i].layers or \
                (canonical_class(layers[i].class_name) == "Dense" and layers[i].config.get("units")):
            # A Dense layer rebuilt from code has 0 params when its fan-in was not literal.
            last = i
            break
    if last is None:
        return None, None
    activation = layers[last].activation
    for layer in layers[last + 1:]:
        name = canonical_class(layer.class_name)
        if name == "Activation" and layer.activation:
            activation = layer.activation
        elif name == "Softmax":
            activation = "softmax"
    if activation in (None, "linear"):
        activation = "linear"
    return layers[last], activation


def _activation_unknown(layers: list[LayerInfo], output: LayerInfo, level: Level) -> bool:
    """Read from saved outputs, a layer without an activation is one whose activation nobody
    printed: a Keras summary never shows it, and the code that built the model was not matched
    to the summary. (Recorded by the kernel, no activation is a linear output.)"""
    if level > Level.REPORTED or output.activation is not None:
        return False
    after = layers[layers.index(output) + 1:]
    return not any(canonical_class(layer.class_name) == "Softmax" or layer.activation for layer in after)


@check("output_layer", summary="The output layer fits the loss (softmax with categorical crossentropy, sigmoid with binary); optionally its units and activation.",
       title=lambda p: "output layer fits the loss" + (f", {p['units']} units" if "units" in p else "")
                       + (f", {p['activation']}" if "activation" in p else ""),
       params={"units": {**COUNT, "description": "output units (default: the dataset's class count for softmax outputs)"},
               "activation": {**TEXT, "description": "the activation the output must have: softmax, sigmoid, ..."}},
       shorthand={"type": "boolean", "const": True}, expand=lambda v: {},
       example="- output_layer: {units: 10}")
def output_layer_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    if (unknown := _unknown_architecture(ctx)) is not None:
        return unknown
    layers = _classes(ctx.target.architecture)
    level = ctx.target.level
    layer, activation = _output_activation(layers)
    if layer is None:
        return failed(f"{ctx.model_word} has no layer with weights.", level=level)
    units = (layer.output_shape or [None])[-1]
    loss = normalize_loss(ctx.target.compile.loss if ctx.target.compile else None)
    problems = []
    expected_units = p.get("units")
    unknown = _activation_unknown(layers, layer, level)
    softmax = activation == "softmax" or (unknown and _CROSSENTROPY_ACTIVATION.get(loss or "") == "softmax")
    if expected_units is None and softmax and ctx.rubric.dataset:
        from grader.data.registry import SPECS

        spec = SPECS.get(ctx.rubric.dataset)
        expected_units = spec.classes if spec else None
    if expected_units is not None and units is not None and units != expected_units:
        problems.append(f"it has {units} units where {expected_units} are needed (one per class)")
    if "activation" in p and activation != p["activation"].lower() and not unknown:
        problems.append(f"it uses {activation} where this task asks for {p['activation']}")
    wanted = _CROSSENTROPY_ACTIVATION.get(loss or "")
    if unknown and (wanted or "activation" in p):
        if problems:
            return failed(f"The output layer {layer.name} ({units} units): " + "; ".join(problems) + ".", level=level)
        return not_assessed(f"The activation of the output layer {layer.name} is not known: the model summary saved in "
                            "the notebook does not show activations, and the code that built this model could not be "
                            "matched to it.", level=level)
    if wanted and activation != wanted:
        if activation == "linear":
            # The recorder keeps the loss's name, not its from_logits: a linear output layer may be right.
            if not problems:
                return not_assessed(f"The output layer {layer.name} has no activation (it outputs logits); whether "
                                    f"the loss {loss} was given from_logits=True was not recorded.", level=level)
        else:
            problems.append(f"it uses {activation}, but the loss is {loss}: use {wanted}")
    if wanted == "softmax" and activation == "softmax" and units == 1:
        problems.append("a softmax over a single unit always outputs 1.0: use one unit per class, or sigmoid with binary_crossentropy")
    if loss is None and "activation" not in p and expected_units is None:
        return not_assessed(f"The loss of {ctx.target.where} was not recorded, so the output layer cannot be checked against it.", level=level)
    described = f"The output layer {layer.name} ({units} units, {activation})"
    if problems:
        with_loss = f" with the loss {loss}" if loss else ""
        return failed(f"{described}{with_loss}: " + "; ".join(problems) + ".", figure=activation, level=level)
    return passed(f"{described} fits the loss {loss}." if loss else f"{described} is as asked.", figure=activation, level=level)
