"""A small pattern language over layer class names, for layer-sequence checks.

A pattern reads like the layer column of ``model.summary()``, with a few regular-expression
operators::

    Conv2D BatchNormalization? Activation      # BatchNormalization optional
    (Conv2D BatchNormalization? Activation)+ MaxPooling2D   # one or more blocks, then pooling
    Conv2D{2} MaxPooling2D Flatten Dense* Dense # exactly two Conv2D, any number of hidden Dense
    Conv2D . Flatten                            # "." is any one layer
    (MaxPooling2D|AveragePooling2D)             # either

Operators: ``?`` (optional), ``*`` (zero or more), ``+`` (one or more), ``{n}`` / ``{n,m}`` /
``{n,}`` (repeats), ``( … )`` groups, ``|`` alternatives inside a group or at the top, ``.``
any layer. Names match case-insensitively, and old Keras spellings (``Convolution2D``,
``MaxPool2D``) count as their current names. ``InputLayer`` is never part of the sequence.

The pattern compiles to a small NFA instead of a Python regex so that a failed match can say
*where* the model departs from the pattern and which layers were expected there: that is the
feedback a student can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.model.layer_names import canonical_class

__all__ = [
    "KNOWN_LAYERS",
    "LayerPattern",
    "PatternError",
    "PatternMatch",
    "canonical_class",
    "parse_pattern",
]

# Layer classes a course notebook is likely to use; rubric validation suggests these for typos.
KNOWN_LAYERS = (
    "Activation", "ActivityRegularization", "Add", "AlphaDropout", "Average", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "BatchNormalization", "Bidirectional", "Concatenate",
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
    "Cropping1D", "Cropping2D", "Dense", "DepthwiseConv2D", "Dot", "Dropout", "ELU", "Embedding",
    "Flatten", "Functional", "GRU", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "InputLayer", "LSTM", "Lambda", "LayerNormalization", "LeakyReLU",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Maximum", "Multiply", "Normalization",
    "PReLU", "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation", "RandomTranslation",
    "RandomZoom", "ReLU", "RepeatVector", "Rescaling", "Reshape", "Resizing", "SeparableConv1D",
    "SeparableConv2D", "Sequential", "SimpleRNN", "Softmax", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "Subtract", "TimeDistributed", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
)


def _key(name: str) -> str:
    return canonical_class(name).lower()


class PatternError(ValueError):
    """A layer pattern that does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(f"{message} (column {column})" if column else message)
        self.column = column


# ---------------------------------------------------------------------------------------------
# Syntax tree


@dataclass
class _Name:
    name: str  # as written, canonicalised


@dataclass
class _AnyLayer:
    pass


@dataclass
class _Seq:
    items: list = field(default_factory=list)


@dataclass
class _Alt:
    options: list = field(default_factory=list)


@dataclass
class _Repeat:
    node: object
    low: int
    high: int | None  # None: unbounded


_TOKEN = re.compile(
    r"(?P<space>[\s,]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<repeat>\{\s*\d+\s*(?:,\s*\d*\s*)?\})"
    r"|(?P<op>[.()|?*+])"
)
_MAX_REPEAT = 100


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise PatternError(f"unexpected character {text[pos]!r} in layer pattern", pos + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group(), pos + 1))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> object:
        if not self.tokens:
            raise PatternError("the layer pattern is empty")
        node = self.alternatives()
        token = self.peek()
        if token is not None:
            raise PatternError(f"unexpected {token[1]!r} in layer pattern", token[2])
        return node

    def alternatives(self) -> object:
        options = [self.sequence()]
        while (token := self.peek()) is not None and token[1] == "|":
            self.pos += 1
            options.append(self.sequence())
        if len(options) > 1 and any(not option.items for option in options):
            raise PatternError("an alternative ('|') has nothing on one side")
        return options[0] if len(options) == 1 else _Alt(options)

    def sequence(self) -> _Seq:
        items = []
        while (token := self.peek()) is not None and token[1] not in (")", "|"):
            items.append(self.item())
        return _Seq(items)

    def item(self) -> object:
        kind, text, column = self.tokens[self.pos]
        self.pos += 1
        if kind == "name":
            node: object = _Name(canonical_class(text))
        elif text == ".":
            node = _AnyLayer()
        elif text == "(":
            node = self.alternatives()
            closing = self.peek()
            if closing is None or closing[1] != ")":
                raise PatternError("a group '(' is not closed", column)
            self.pos += 1
            if isinstance(node, _Seq) and not node.items:
                raise PatternError("empty group '()'", column)
        else:
            raise PatternError(f"{text!r} must follow a layer name or a group", column)
        token = self.peek()
        if token is not None and (token[0] == "repeat" or token[1] in "?*+"):
            self.pos += 1
            node = _quantified(node, token)
            after = self.peek()
            if after is not None and (after[0] == "repeat" or after[1] in "?*+"):
                raise PatternError(f"two repeat operators in a row ({token[1]}{after[1]})", after[2])
        return node


def _quantified(node: object, token: tuple[str, str, int]) -> _Repeat:
    text, column = token[1], token[2]
    if text == "?":
        return _Repeat(node, 0, 1)
    if text == "*":
        return _Repeat(node, 0, None)
    if text == "+":
        return _Repeat(node, 1, None)
    inner = text.strip("{} \t")
    if "," in inner:
        low_text, high_text = (part.strip() for part in inner.split(",", 1))
        low, high = int(low_text), (int(high_text) if high_text else None)
    else:
        low = high = int(inner)
    if high is not None and high < low:
        raise PatternError(f"repeat {text}: the maximum is below the minimum", column)
    if low > _MAX_REPEAT or (high or 0) > _MAX_REPEAT:
        raise PatternError(f"repeat {text}: at most {_MAX_REPEAT} repetitions", column)
    if high == 0:
        raise PatternError(f"repeat {text} matches nothing", column)
    return _Repeat(node, low, high)


# ---------------------------------------------------------------------------------------------
# NFA (Thompson construction) and matching

_ANY = "\0any"


class _NFA:
    def __init__(self) -> None:
        self.edges: list[list[tuple[str | None, int]]] = []

    def state(self) -> int:
        self.edges.append([])
        return len(self.edges) - 1

    def edge(self, source: int, label: str | None, target: int) -> None:
        self.edges[source].append((label, target))

    def build(self, node: object) -> tuple[int, int]:
        start, end = self.state(), self.state()
        if isinstance(node, _Name):
            self.edge(start, node.name, end)
        elif isinstance(node, _AnyLayer):
            self.edge(start, _ANY, end)
        elif isinstance(node, _Seq):
            current = start
            for item in node.items:
                s, e = self.build(item)
                self.edge(current, None, s)
                current = e
            self.edge(current, None, end)
        elif isinstance(node, _Alt):
            for option in node.options:
                s, e = self.build(option)
                self.edge(start, None, s)
                self.edge(e, None, end)
        elif isinstance(node, _Repeat):
            current = start
            for _ in range(node.low):
                s, e = self.build(node.node)
                self.edge(current, None, s)
                current = e
            if node.high is None:
                s, e = self.build(node.node)
                self.edge(current, None, s)
                self.edge(e, None, s)
                self.edge(e, None, end)
            else:
                for _ in range(node.high - node.low):
                    s, e = self.build(node.node)
                    self.edge(current, None, s)
                    self.edge(current, None, end)
                    current = e
            self.edge(current, None, end)
        return start, end

    def closure(self, states: set[int]) -> set[int]:
        stack, seen = list(states), set(states)
        while stack:
            for label, target in self.edges[stack.pop()]:
                if label is None and target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen

    def labels(self, states: set[int]) -> list[str]:
        found: list[str] = []
        for state in sorted(states):
            for label, _ in self.edges[state]:
                if label is not None and label not in found:
                    found.append(label)
        return found


@dataclass
class PatternMatch:
    """The outcome of matching layer classes against a pattern.

    On failure, ``position`` is the 0-based index of the first layer that cannot continue the
    pattern (``len(classes)`` when the model ends too early) and ``expected`` lists what the
    pattern would have accepted there ("any layer" for ``.``).
    """

    matched: bool
    position: int = 0
    expected: list[str] = field(default_factory=list)


@dataclass
class LayerPattern:
    """A parsed layer pattern. ``plain`` is the list of names when it has no operators."""

    source: str
    tree: object
    plain: list[str] | None

    def match(self, classes: list[str], *, contains: bool = False) -> PatternMatch:
        """Match the whole sequence (or, with ``contains``, any stretch of it)."""
        tree = self.tree
        if contains:
            anything = _Repeat(_AnyLayer(), 0, None)
            tree = _Seq([anything, tree, anything])
        nfa = _NFA()
        start, accept = nfa.build(tree)
        current = nfa.closure({start})
        for index, name in enumerate(classes):
            key = _key(name)
            following = {t for s in current for label, t in nfa.edges[s]
                         if label == _ANY or (label is not None and label.lower() == key)}
            if not following:
                return PatternMatch(False, index, _readable(nfa.labels(current)))
            current = nfa.closure(following)
        if accept in current:
            return PatternMatch(True, len(classes))
        return PatternMatch(False, len(classes), _readable(nfa.labels(current)))


def _readable(labels: list[str]) -> list[str]:
    return ["any layer" if label == _ANY else label for label in labels]


def parse_pattern(text: str | list[str]) -> LayerPattern:
    """Parse a layer pattern; a YAML list is a pattern whose items follow each other.

    Raises :class:`PatternError` with the column of the problem.
    """
    source = " ".join(str(item) for item in text) if isinstance(text, list) else str(text)
    tree = _Parser(source).parse()
    plain = None
    if isinstance(tree, _Seq) and all(isinstance(item, _Name) for item in tree.items):
        plain = [item.name for item in tree.items]
    return LayerPattern(source, tree, plain)


def pattern_names(pattern: LayerPattern) -> list[str]:
    """Every class name the pattern mentions (for typo checks when a rubric is validated)."""
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, _Name):
            names.append(node.name)
        elif isinstance(node, _Seq):
            for item in node.items:
                walk(item)
        elif isinstance(node, _Alt):
            for option in node.options:
                walk(option)
        elif isinstance(node, _Repeat):
            walk(node.node)

    walk(pattern.tree)
    return names
