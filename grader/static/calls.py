"""What a notebook cell's code says, read from its source text: which variables it builds, which
model methods it calls (``summary``, ``fit``, ``evaluate``, ``compile``) with which arguments, and
what ``compile`` was given.

Static mode (:mod:`grader.static.outputs`) ties each saved output to the call that printed it with
these. Nothing here runs the code.

Example::

    >>> code = read_code("model = Sequential()\\nmodel.fit(x, y, epochs=3)", builders=set())
    >>> code.built, code.receivers("fit")
    (['model'], ['model'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from grader.model.evidence import CompileInfo

__all__ = ["BUILDS_IN_BODY", "METHOD", "OPTIMIZER_ASSIGN", "Call", "CellCode", "call_arguments", "compile_info",
           "function_bodies", "keyword_number", "read_code", "strip_comments"]


_NAME = r"[A-Za-z_]\w*+(?:\.[A-Za-z_]\w*+)*"  # dotted; no backtracking inside a part
_BUILDERS = (
    r"(?:Sequential|Model|Functional|load_model|clone_model|model_from_json|model_from_yaml|"
    r"VGG16|VGG19|ResNet\w*|MobileNet\w*|InceptionV3|InceptionResNetV2|Xception|DenseNet\w*|"
    r"EfficientNet\w*|NASNet\w*|ConvNeXt\w*)"
)
_BUILD_ASSIGN = re.compile(rf"^[ \t]*+({_NAME})[ \t]*=[ \t]*(?:[\w.]+\.)?{_BUILDERS}\s*\(",
                           re.MULTILINE)
_CALL_ASSIGN = re.compile(rf"^[ \t]*+({_NAME})[ \t]*=[ \t]*([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_ADD = re.compile(rf"\b({_NAME})\s*\.\s*(?:add|pop)\s*\(")
BUILDS_IN_BODY = re.compile(rf"(?:\b{_BUILDERS}\s*\(|\.\s*add\s*\()")
METHOD = re.compile(rf"\b({_NAME})\s*\.\s*(summary|fit|fit_generator|evaluate|evaluate_generator|"
                    r"compile)\s*\(")
_DEF = re.compile(r"^(\s*)def\s+([A-Za-z_]\w*)\s*\(")
_OPTIMIZERS = r"(?:SGD|Adam|AdamW|RMSprop|Adagrad|Adadelta|Adamax|Nadam|Ftrl|Lion)"
OPTIMIZER_ASSIGN = re.compile(rf"^[ \t]*+([A-Za-z_]\w*+)[ \t]*=\s*(?:[\w.]+\.)?({_OPTIMIZERS})\s*\(",
                              re.MULTILINE)


def strip_comments(source: str) -> str:
    """Source without ``#`` comments (quotes on the same line respected), magics kept."""
    lines = []
    for line in source.split("\n"):
        if "#" in line:
            quote = None
            for at, char in enumerate(line):
                if quote:
                    if char == quote:
                        quote = None
                elif char in "'\"":
                    quote = char
                elif char == "#":
                    line = line[:at]
                    break
        lines.append(line)
    return "\n".join(lines)


def _top_level(source: str) -> str:
    """The lines that run when the cell runs: function bodies left out."""
    kept = []
    inside: int | None = None
    for line in source.split("\n"):
        indent = len(line) - len(line.lstrip())
        if inside is not None:
            if not line.strip() or indent > inside:
                continue
            inside = None
        definition = _DEF.match(line) or re.match(r"^(\s*)class\s", line)
        if definition:
            inside = indent
            continue
        kept.append(line)
    return "\n".join(kept)


def function_bodies(source: str) -> dict[str, str]:
    bodies: dict[str, str] = {}
    lines = source.split("\n")
    for number, line in enumerate(lines):
        definition = _DEF.match(line)
        if not definition:
            continue
        indent = len(definition.group(1))
        body = []
        for following in lines[number + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        bodies[definition.group(2)] = "\n".join(body)
    return bodies


def call_arguments(source: str, open_at: int) -> str:
    """The text between the parenthesis at ``open_at`` and its partner."""
    depth = 0
    for at in range(open_at, len(source)):
        char = source[at]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return source[open_at + 1:at]
    return source[open_at + 1:]


@dataclass
class Call:
    receiver: str
    method: str
    arguments: str
    position: int


@dataclass
class CellCode:
    built: list[str] = field(default_factory=list)  # variables (re)built by the cell's own code
    calls: list[Call] = field(default_factory=list)

    def receivers(self, *methods: str) -> list[str]:
        return [call.receiver for call in self.calls if call.method in methods]

    def calls_of(self, *methods: str) -> list[Call]:
        return [call for call in self.calls if call.method in methods]


def read_code(source: str, builders: set[str]) -> CellCode:
    code = CellCode()
    clean = strip_comments(source)
    top = _top_level(clean)
    for match in _BUILD_ASSIGN.finditer(top):
        code.built.append(match.group(1))
    for match in _CALL_ASSIGN.finditer(top):
        if match.group(2) in builders:
            code.built.append(match.group(1))
    for match in _ADD.finditer(top):
        code.built.append(match.group(1))
    for match in METHOD.finditer(top):
        open_at = match.end() - 1
        code.calls.append(Call(receiver=match.group(1), method=match.group(2),
                                arguments=call_arguments(top, open_at), position=match.start()))
    return code


# -- compile and fit arguments, read from the code ----------------------------------------------

_KEYWORD_NUMBER = r"\b{}\s*=\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"


def keyword_number(arguments: str, *names: str) -> float | None:
    for name in names:
        match = re.search(_KEYWORD_NUMBER.format(name), arguments)
        if match:
            try:
                return float(match.group(1))
            except ValueError:
                return None
    return None


def _split_arguments(arguments: str) -> tuple[list[str], dict[str, str]]:
    """Positional and keyword argument texts of a call, split at top-level commas."""
    pieces, depth, quote, begin = [], 0, None, 0
    for at, char in enumerate(arguments):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(arguments[begin:at])
            begin = at + 1
    pieces.append(arguments[begin:])
    positional, keywords = [], {}
    for piece in (piece.strip() for piece in pieces):
        if not piece:
            continue
        keyword = re.match(r"^([A-Za-z_]\w*)\s*=(?!=)\s*(.*)$", piece, re.DOTALL)
        if keyword:
            keywords[keyword.group(1)] = keyword.group(2).strip()
        else:
            positional.append(piece)
    return positional, keywords


def _string(text: str | None) -> str | None:
    match = re.fullmatch(r"\s*['\"]([\w-]+)['\"]\s*", text or "")
    return match.group(1) if match else None


def compile_info(arguments: str, optimizers: dict[str, tuple[str, str]]) -> CompileInfo:
    """What ``model.compile(...)`` was given, as far as the source text says."""
    info = CompileInfo()
    positional, keywords = _split_arguments(arguments)

    def argument(name: str, position: int) -> str | None:
        if name in keywords:
            return keywords[name]
        return positional[position] if position < len(positional) else None

    loss = argument("loss", 1)
    info.loss = _string(loss)
    loss_class = re.match(r"(?:[\w.]+\.)?([A-Z]\w*)\s*\(", loss or "")
    if info.loss is None and loss_class:  # keras.losses.CategoricalCrossentropy()
        info.loss = re.sub(r"(?<!^)(?=[A-Z])", "_", loss_class.group(1)).lower()
    metrics = argument("metrics", 2)
    if metrics:
        info.metrics = re.findall(r"['\"]([\w-]+)['\"]", metrics)
    optimizer = argument("optimizer", 0)
    if not optimizer:
        return info
    called = re.match(rf"(?:[\w.]+\.)?({_OPTIMIZERS}|[A-Za-z_]\w*)\s*\(", optimizer)
    if _string(optimizer):
        info.optimizer = _string(optimizer)
    elif called:
        info.optimizer = called.group(1)
        options = call_arguments(optimizer, called.end() - 1)
        info.learning_rate = keyword_number(options, "learning_rate", "lr")
        info.optimizer_config = _optimizer_config(options)
    elif optimizer in optimizers:
        name, options = optimizers[optimizer]
        info.optimizer = name
        info.learning_rate = keyword_number(options, "learning_rate", "lr")
        info.optimizer_config = _optimizer_config(options)
    return info


def _optimizer_config(options: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key in ("momentum", "decay", "rho", "beta_1", "beta_2", "epsilon", "weight_decay"):
        value = keyword_number(options, key)
        if value is not None:
            config[key] = value
    nesterov = re.search(r"\bnesterov\s*=\s*(True|False)", options)
    if nesterov:
        config["nesterov"] = nesterov.group(1) == "True"
    return config
