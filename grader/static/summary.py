"""``model.summary()`` tables, read back into :class:`grader.model.evidence.Architecture`.

Three generations of Keras printed three kinds of table, and all of them occur in course
notebooks that are still being graded:

* Keras 1 (100 columns, always with "Connected to"; class names cut at 32 characters)::

      convolution2d_1 (Convolution2D)  (None, 28, 28, 32)    320         convolution2d_input_1[0][0]
      batchnormalization_1 (BatchNorma (None, 28, 28, 32)    128         convolution2d_1[0][0]

* Keras 2 / tf.keras (65 or 98 columns, ``____`` and ``====`` rules; up to TF 2.8 a long
  ``name (Class)`` is cut, from TF 2.9 on it wraps onto the next line)::

      conv2d (Conv2D)              (None, 28, 28, 32)        2432
      max_pooling2d_1 (MaxPooling2 (None, 3, 3, 64)          0

* Keras 3 (rich box tables; in Jupyter as several outputs with ANSI colours; long cells wrap)::

      │ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │

Cut class names are completed from the Keras layer names (``BatchNorma`` → ``BatchNormalization``);
:func:`canonical_class` maps Keras 1 names onto today's (``Convolution2D`` → ``Conv2D``) so one
rubric grades every generation. A nested model (``vgg16 (Functional)``, Keras 2's
``vgg16 (Model)``) is one layer; rows of an ``expand_nested`` summary go into its ``layers``.

Nothing here raises on odd text: a row that cannot be read is reported in
:attr:`ParsedSummary.problems` and skipped.

Example::

    >>> table = '''Layer (type)                 Output Shape              Param #
    ... =================================================================
    ... dense_1 (Dense)              (None, 8)                 55304
    ... =================================================================
    ... Total params: 55,304
    ... Trainable params: 55,304
    ... Non-trainable params: 0'''
    >>> summary, = parse_summary(table)
    >>> summary.architecture.layers[0].class_name, summary.architecture.total_params
    ('Dense', 55304)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.model.evidence import Architecture, LayerInfo
from grader.model.layer_names import canonical_class
from grader.static.logs import render_terminal

# ---------------------------------------------------------------------------------------------
# Layer class names

_DIMENSIONAL = (
    "Conv{}", "Conv{}Transpose", "SeparableConv{}", "DepthwiseConv{}", "ConvLSTM{}",
    "MaxPooling{}", "AveragePooling{}", "GlobalMaxPooling{}", "GlobalAveragePooling{}",
    "UpSampling{}", "ZeroPadding{}", "Cropping{}", "SpatialDropout{}", "LocallyConnected{}",
    "MaxPool{}", "AvgPool{}", "GlobalMaxPool{}", "GlobalAvgPool{}",
    # Keras 1 spellings
    "Convolution{}", "AtrousConvolution{}", "SeparableConvolution{}", "Deconvolution{}",
)
_PLAIN = (
    "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector", "Lambda",
    "ActivityRegularization", "Masking", "Embedding", "InputLayer", "BatchNormalization",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization",
    "Rescaling", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "RandomCrop", "RandomBrightness", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "LeakyReLU", "PReLU", "ELU", "ReLU", "Softmax",
    "ThresholdedReLU", "SimpleRNN", "GRU", "LSTM", "Bidirectional", "TimeDistributed",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
    "Attention", "AdditiveAttention", "MultiHeadAttention", "Identity", "Sequential",
    "Functional", "Model", "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer",
    "CuDNNLSTM", "CuDNNGRU", "KerasLayer",
    # Keras 1 only
    "MaxoutDense", "Highway", "TimeDistributedDense", "Merge", "SReLU", "Container",
)
KNOWN_CLASSES: tuple[str, ...] = _PLAIN + tuple(
    pattern.format(f"{n}D") for pattern in _DIMENSIONAL for n in (1, 2, 3)
)

def complete_class(printed: str, rank: int | None = None, layer: str | None = None) -> str | None:
    """The full class name for a class name that a summary cut short, or None if unsure.

    Keras named layers after their class (``batchnormalization_1`` in Keras 1,
    ``global_average_pooling2d_1`` in Keras 2), so the layer name ``layer`` settles most
    ambiguities; ``rank`` (the length of the output shape, batch included) picks between the
    1D, 2D and 3D variants of spatial layers.

    >>> complete_class("BatchNorma"), complete_class("MaxPooling2"), complete_class("ZeroPadd", 4)
    ('BatchNormalization', 'MaxPooling2D', 'ZeroPadding2D')
    >>> complete_class("Global", layer="globalaveragepooling2d_1")
    'GlobalAveragePooling2D'
    """
    prefix = printed.replace(" ", "")
    if not prefix:
        return None
    candidates = [name for name in KNOWN_CLASSES if name.startswith(prefix)]
    if len(candidates) > 1:
        # "Conv2D" also prefixes "Conv2DTranspose": an exact hit is not a cut name.
        exact = [name for name in candidates if name == prefix]
        if exact:
            return exact[0]
    if len(candidates) > 1 and layer:
        base = re.sub(r"_\d+$", "", layer).replace("_", "").lower()
        named = [name for name in candidates if name.lower() == base]
        if len(named) == 1:
            return named[0]
    if len(candidates) > 1 and rank is not None and 3 <= rank <= 5:
        wanted = f"{rank - 2}D"
        by_rank = [name for name in candidates if name.endswith(wanted)]
        # Prefer the Keras 3 spelling when a Keras 1 one also fits.
        modern = [name for name in by_rank if canonical_class(name) == name]
        candidates = modern or by_rank
        if len(candidates) > 1:
            shortest = min(candidates, key=len)
            if all(name.startswith(shortest) for name in candidates):
                return shortest
    if len(candidates) == 1:
        return candidates[0]
    return None


# ---------------------------------------------------------------------------------------------
# Parsed result


@dataclass
class ParsedSummary:
    """One summary table found in a text."""

    architecture: Architecture
    generation: str  # "keras1" | "keras2" | "keras3"
    line: int  # 0-based line of the "Layer (type)" header in the rendered text
    end_line: int  # last line that belonged to the table
    problems: list[str] = field(default_factory=list)  # rows or totals that could not be read
    has_totals: bool = False  # a "Total params" line was read
    optimizer_params: int | None = None  # Keras 3 counts the optimizer after fit()


# ---------------------------------------------------------------------------------------------
# Cells of a row

_HEADER_LABELS = {
    "layer": "Layer (type)",
    "shape": "Output Shape",
    "params": "Param #",
    "connected": "Connected to",
    "trainable": "Trainable",
}
_BOX_CHARS = "┏┓┗┛┡┩╇┳┻├┤┼└┘┬┴│┃━─═╞╡╪╤╧╔╗╚╝║"
_RULE_CHARS = set(_BOX_CHARS + "_=-+|¯ \t")
_TOTALS = re.compile(
    r"(?<![\w-])(Total|Trainable|Non-trainable|Optimizer) params:\s*([\d,]+(?:\.\d+)?)"
)
_MODEL_NAME = re.compile(r"^\s*Model:\s*\"([^\"]*)\"")
_PARAMS_CELL = re.compile(r"^(\d[\d,]*)(?:\.0+)?(?:\s*\((?:unbuilt|unused)\))?$")
_NAME_CELL = re.compile(r"^(?P<name>[^\s(]++)\s*+(?:\((?P<cls>[^)]*+)(?P<close>\))?+)?+\s*+$")
_TUPLE = re.compile(r"\(([^()]*)\)")
# A row whose columns lost their alignment (copied text, tabs collapsed): name (Class) shape
# params [connected to]. The class may be cut and lack its ")".
_LOOSE_ROW = re.compile(
    r"^\s*+(?P<name>[^\s(|]++)(?:\s*+\((?P<cls>[^()\s]*+)\)?+)?+\s++"
    r"(?P<shape>\[?\([^()]*\)?(?:,\s*\([^()]*\))*\]?|multiple|\?)\s+"
    r"(?P<params>\d[\d,]*+(?:\.0+)?+)(?:\s*+\((?:unbuilt|unused)\))?+(?:\s++(?P<connected>\S(?:.*\S)?+))?+\s*+$"
)


_MAX_ROW = 2000


def _is_rule(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    if stripped[0] not in _RULE_CHARS and stripped[0] not in "<`":  # most lines: a row, or text
        return False
    if stripped.lower() in {"<hr/>", "<hr>", "```"}:
        return True
    return set(stripped) <= _RULE_CHARS


def _parse_int(text: str) -> int | None:
    match = _PARAMS_CELL.match(text.strip())
    if not match:
        return None
    return int(match.group(1).replace(",", ""))


def _parse_count(text: str) -> int:
    return int(round(float(text.replace(",", ""))))


def parse_shape(text: str) -> tuple[list[int | None] | None, bool]:
    """``(shape, complete)`` for an Output Shape cell: ``(None, 28, 28, 32)`` → ``[None, 28, 28, 32]``.

    ``[(None, 32, 32, 3)]`` (tf.keras input layers) unwraps to one shape. Several outputs,
    ``multiple`` and ``?`` (unbuilt) give ``None``; ``complete`` is False for a shape the table
    cut short, which is then ``None`` too.
    """
    text = text.strip()
    if not text or text in {"multiple", "?"}:
        return None, True
    tuples = _TUPLE.findall(text)
    if len(tuples) > 1:
        return None, True
    if not tuples:
        return None, False  # "(None, 28, 28, 3" - cut by a narrow column
    dims: list[int | None] = []
    for part in tuples[0].split(","):
        part = part.strip()
        if not part:
            continue
        if part == "None":
            dims.append(None)
        elif part.isdigit():
            dims.append(int(part))
        else:
            return None, False
    return dims, True


@dataclass
class _Row:
    name_text: str
    shape_text: str
    params: int
    connected: str = ""
    trainable: str = ""
    nested: int = 0
    joiner: str = " "  # how wrapped pieces of the name cell join ("" when cut mid-word)

    def extend(self, pieces: list[str]) -> None:
        name, shape, _params, connected, trainable = (pieces + [""] * 5)[:5]
        if name.strip():
            self.name_text = (self.name_text.rstrip() + self.joiner + name.strip()).strip()
        if shape.strip():
            self.shape_text = self.shape_text.rstrip() + " " + shape.strip()
        if connected.strip():
            self.connected = (self.connected + " " + connected.strip()).strip()
        if trainable.strip():
            self.trainable = (self.trainable + trainable.strip()).strip()


def _nesting(name_cell: str) -> tuple[str, int]:
    """Keras 3 ``expand_nested`` rows read ``   └ conv2d (Conv2D)``; tf.keras ones ``| conv2d``."""
    stripped = name_cell.strip()
    if stripped.startswith("└"):
        indent = len(name_cell) - len(name_cell.lstrip())
        return stripped[1:].strip(), max(1, (indent + 1) // 3)
    if stripped.startswith("|"):
        level = len(stripped) - len(stripped.lstrip("|"))
        return stripped.lstrip("|").strip(), level
    return stripped, 0


# ---------------------------------------------------------------------------------------------
# Table reader


class _Table:
    """Reads one table from its header line on; ``feed`` says whether a line belonged to it."""

    def __init__(self, header: str, line: int, name: str):
        self.line = line
        self.end_line = line
        self.name = name
        self.box = "┃" in header or "│" in header
        self.rows: list[_Row] = []
        self.problems: list[str] = []
        self.totals: dict[str, int] = {}
        self.order: list[str] = []  # column kinds in order
        self.starts: list[int] = []  # column start offsets (plain tables)
        self.keras1_width = False
        self.unread = 0
        self.done = False
        if self.box:
            for cell in header.strip().strip("┃│").split("┃" if "┃" in header else "│"):
                self.order.append(self._kind(cell.strip()))
        elif "\t" not in header:
            found = []
            for kind, label in _HEADER_LABELS.items():
                at = header.find(label)
                if at >= 0:
                    found.append((at, kind))
            found.sort()
            self.order = [kind for _, kind in found]
            self.starts = [0] + [at for at, _ in found[1:]]
        else:
            self.order = [self._kind(cell.strip()) for cell in header.split("\t") if cell.strip()]
        # tf.keras >= 2.9 wraps long cells instead of cutting them; its lines start with a space.
        self.wraps = self.box or header.startswith(" Layer (type)")

    @staticmethod
    def _kind(label: str) -> str:
        lowered = label.lower()
        for kind, prefix in (("layer", "layer"), ("shape", "output"), ("params", "param"),
                             ("connected", "connected"), ("trainable", "trai")):
            if lowered.startswith(prefix):
                return kind
        return "other"

    # -- one line ------------------------------------------------------------------------------

    def feed(self, number: int, line: str) -> bool:
        if "Layer (type)" in line or _MODEL_NAME.match(line):
            return False  # the next table starts
        totals = _TOTALS.findall(line) if "params:" in line else None  # a search only where one can match
        if totals:
            for kind, value in totals:
                try:
                    self.totals[kind] = _parse_count(value)
                except ValueError:
                    self.problems.append(f"unreadable total: {line.strip()!r}")
            self.end_line = number
            if "Non-trainable" in self.totals or "Optimizer" in self.totals:
                self.done = "Optimizer" in self.totals or not self.box
            return True
        if self.totals:
            # Between and after the totals lines: blank lines (text copied from a web page has
            # them), then Keras 3's "Optimizer params" line or the closing rule.
            if not line.strip():
                return True
            if _is_rule(line) and line.strip() and not self.box:
                self.end_line = number
                self.done = True
                return True
            self.done = True
            return False
        if _is_rule(line):
            if line.strip():
                self.end_line = number
                if len(line.strip()) == 100 and set(line.strip()) <= {"_", "="}:
                    self.keras1_width = True
            return True
        cells = self._cells(line)
        if cells is None:
            self.unread += 1
            if self.unread >= 3:
                self.done = True
            return False if self.done else True
        self.unread = 0
        self.end_line = number
        return True

    def _cells(self, line: str) -> list[str] | None:
        """Split a line into cells by column, start or continue a row; None if not a row."""
        if self.box:
            if "│" not in line and "┃" not in line:
                return None
            pieces = [cell for cell in re.split("[│┃]", line.rstrip())[1:-1]]
            return self._take(self._ordered(pieces), line)
        if "\t" in line:
            pieces = [cell.strip() for cell in line.split("\t")]
            pieces = [cell for cell in pieces if cell] if len(pieces) > len(self.order) else pieces
            return self._take(self._ordered(pieces), line)
        if self.starts and len(self.starts) >= 3 and self._aligned(line):
            pieces = [line[start:end] for start, end in
                      zip(self.starts, self.starts[1:] + [max(len(line), self.starts[-1])])]
            taken = self._take(self._ordered(pieces), line, strict=True)
            if taken is not None:
                return taken
        return self._loose(line)

    def _aligned(self, line: str) -> bool:
        """Every column of a printed table starts after a space; text that lost its spacing
        (copied from a PDF or web page) does not, and is read by :meth:`_loose` instead."""
        return all(start >= len(line) or line[start - 1] == " " for start in self.starts[1:])

    def _ordered(self, pieces: list[str]) -> list[str]:
        by_kind = dict.fromkeys(("layer", "shape", "params", "connected", "trainable"), "")
        for kind, piece in zip(self.order, pieces):
            if kind in by_kind:
                by_kind[kind] = piece
        return [by_kind["layer"], by_kind["shape"], by_kind["params"], by_kind["connected"],
                by_kind["trainable"]]

    def _take(self, cells: list[str], line: str, strict: bool = False) -> list[str] | None:
        name, shape, params_text, connected, trainable = cells
        name_cell = name.rstrip()
        if not params_text.strip() and self.box and "params" not in self.order and name_cell.strip() \
                and _NAME_CELL.match(_nesting(name_cell)[0]):
            # Keras 3 drops the columns that do not fit the line length it was given
            # (summary(line_length=100) loses "Param #"): a row of its own, counts unknown.
            text, level = _nesting(name_cell)
            self.rows.append(_Row(name_text=text, shape_text=shape.strip(), params=0,
                                  connected=connected.strip(), trainable=trainable.strip(),
                                  nested=level, joiner=" "))
            return cells
        if params_text.strip():
            params = _parse_int(params_text)
            if params is None or not name_cell.strip():
                return None
            if strict and not _NAME_CELL.match(_nesting(name_cell)[0]):
                return None
            text, level = _nesting(name_cell)
            self.rows.append(_Row(name_text=text, shape_text=shape.strip(), params=params,
                                  connected=connected.strip(), trainable=trainable.strip(),
                                  nested=level, joiner=" " if self.box else ""))
            return cells
        if not any(cell.strip() for cell in cells):
            return None
        if not self.rows:
            return None
        if not self.box and not self.wraps:
            # Keras 1/2 print extra inbound nodes on lines of their own; nothing else continues.
            if name.strip() or shape.strip():
                return None
        trailing = trainable.rstrip("|").strip() if not self.box else trainable
        self.rows[-1].extend([_nesting(name)[0] if name.strip() else "", shape, "",
                              connected.rstrip("|"), trailing])
        return cells

    def _loose(self, line: str) -> list[str] | None:
        if len(line) > _MAX_ROW:
            return None  # no summary prints such a row; matching it would only cost time
        match = _LOOSE_ROW.match(line)
        if not match:
            return None
        params = _parse_int(match.group("params"))
        if params is None:
            return None
        name = match.group("name")
        cls = match.group("cls")
        text = f"{name} ({cls})" if cls is not None else name
        if cls is not None and not re.search(rf"\({re.escape(cls)}\)", line):
            text = f"{name} ({cls}"  # printed without ")": cut short
        self.rows.append(_Row(name_text=text, shape_text=match.group("shape"), params=params,
                              connected=(match.group("connected") or "").strip()))
        return [text, match.group("shape"), match.group("params"), "", ""]

    # -- result --------------------------------------------------------------------------------

    def result(self) -> ParsedSummary:
        layers: list[LayerInfo] = []
        input_shape: list[int | None] | None = None
        connections: dict[str, str] = {}
        inputs: dict[str, list[int | None] | None] = {}
        shapes: dict[str, list[int | None] | None] = {}
        previous: list[int | None] | None = None
        for row in self.rows:
            inbound = re.match(r"^\W*([^\s\[\]'\"]+)\[", row.connected)
            in_shape = shapes.get(inbound.group(1)) if inbound else previous
            layer, problem = self._layer(row, in_shape)
            if problem:
                self.problems.append(problem)
            if layer is None:
                continue
            if not row.nested:
                shapes[layer.name] = layer.output_shape
                previous = layer.output_shape
            if row.nested and layers:
                self._nest(layers[-1], layer, row.nested)
                continue
            if layer.class_name == "InputLayer":
                if input_shape is None:
                    input_shape = layer.output_shape
                inputs[layer.name] = layer.output_shape
                continue
            connections[layer.name] = row.connected
            layers.append(layer)

        trainable = self.totals.get("Trainable")
        non_trainable = self.totals.get("Non-trainable")
        total = self.totals.get("Total")
        optimizer = self.totals.get("Optimizer")
        if optimizer is not None and trainable is not None and non_trainable is not None:
            total = trainable + non_trainable  # Keras 3 adds the optimizer's variables
        architecture = Architecture(
            name=self.name,
            layers=layers,
            total_params=total if total is not None else sum(l.params for l in layers),
            trainable_params=trainable if trainable is not None else 0,
            non_trainable_params=non_trainable if non_trainable is not None else 0,
            input_shape=input_shape,
            output_shape=layers[-1].output_shape if layers else None,
        )
        architecture.class_name = self._model_class(architecture)
        _derive_config(architecture, connections, inputs)
        if "params" not in self.order and layers:
            self.problems.append("the table's Param # column is cut off (the summary was printed narrower than the "
                                 "table): the layers' parameter counts are unknown")
            architecture.params_known = total is not None
            architecture.layer_params_known = False
        elif total is None and not layers:
            architecture.known = architecture.params_known = False  # nothing read: not a 0-parameter model
        if total is None:
            self.problems.append("the table has no 'Total params' line")
        elif "params" in self.order:
            counted = sum(layer.params for layer in layers)
            if layers and counted != total:
                self.problems.append(
                    f"the layers' parameters add up to {counted:,}, the table says {total:,}"
                )
        if not layers:
            self.problems.append("no layer rows could be read")
        return ParsedSummary(
            architecture=architecture,
            generation=self._generation(layers),
            line=self.line,
            end_line=self.end_line,
            problems=self.problems,
            has_totals=total is not None,
            optimizer_params=optimizer,
        )

    def _layer(self, row: _Row, in_shape: list[int | None] | None = None,
               ) -> tuple[LayerInfo | None, str | None]:
        match = _NAME_CELL.match(row.name_text.replace("\n", " "))
        shape, complete = parse_shape(row.shape_text)
        problem = None
        if not complete:
            layer_name = row.name_text.split(" ")[0]
            problem = f"output shape of {layer_name} is cut short: {row.shape_text!r}"
        if match is None:
            # Class names printed with spaces by copy-and-paste ("(Batch Normalization)").
            loose = re.match(r"^(\S+)\s*\((.*?)(\))?\s*$", row.name_text)
            if loose is None:
                return None, f"unreadable layer cell {row.name_text!r}"
            name, cls, closed = loose.group(1), loose.group(2), bool(loose.group(3))
        else:
            name, cls, closed = match.group("name"), match.group("cls"), bool(match.group("close"))
        class_name = ""
        if cls is not None:
            cls = cls.replace(" ", "")  # class names have no spaces; copied text may add some
            cut = not closed or cls.endswith("…")
            cls = cls.rstrip("…")
            if cut:
                full = complete_class(cls, len(shape) if shape else None, name)
                if full is None and in_shape:
                    # Global pooling and Flatten change the rank: the input's rank tells 1D/2D/3D.
                    full = complete_class(cls, len(in_shape), name)
                if full is None:
                    class_name = cls
                    problem = problem or f"class name of {name} is cut short: {cls!r}"
                else:
                    class_name = full
            else:
                class_name = cls
        else:
            problem = problem or f"layer name {name!r} is cut short; its class is unknown"
        layer = LayerInfo(name=name, class_name=class_name, output_shape=shape,
                          params=row.params)
        trainable = row.trainable.strip()
        if trainable in {"Y", "N", "✓", "✗", "True", "False"}:
            layer.trainable = trainable in {"Y", "✓", "True"}
            if layer.trainable:
                layer.trainable_params = row.params
            else:
                layer.non_trainable_params = row.params
        return layer, problem

    @staticmethod
    def _nest(parent: LayerInfo, layer: LayerInfo, level: int) -> None:
        for _ in range(level - 1):
            if not parent.layers:
                break
            parent = parent.layers[-1]
        if layer.class_name == "InputLayer":
            return
        parent.layers.append(layer)

    def _model_class(self, architecture: Architecture) -> str:
        name = architecture.name.lower()
        if name.startswith("sequential"):
            return "Sequential"
        if name.startswith(("model", "functional")):
            return "Functional"
        if architecture.input_shape is not None or "connected" in self.order and not \
                self._keras1(architecture.layers):
            return "Functional"
        first = self.rows[0] if self.rows else None
        if first is not None and re.match(r"^\w+_input_\d+\[", first.connected):
            return "Sequential"  # Keras 1 named a Sequential's own input "<first layer>_input_1"
        if "connected" not in self.order and architecture.layers and \
                all(layer.output_shape is not None for layer in architecture.layers):
            # Keras 2 and 3 list a functional model's input layer, and a subclassed model's
            # layers have no shapes: a built table without either is a Sequential.
            return "Sequential"
        return ""

    def _keras1(self, layers: list[LayerInfo]) -> bool:
        if self.keras1_width:
            return True
        keras1_only = {"Convolution1D", "Convolution2D", "Convolution3D", "Merge",
                       "AtrousConvolution2D", "Deconvolution2D", "TimeDistributedDense"}
        if any(layer.class_name in keras1_only for layer in layers):
            return True
        # Keras 1 layer names had no underscore inside the class part: batchnormalization_1.
        return any(re.match(r"^(batchnormalization|maxpooling2d|convolution2d)_\d+$", layer.name)
                   for layer in layers)

    def _generation(self, layers: list[LayerInfo]) -> str:
        if self.box:
            return "keras3"
        return "keras1" if self._keras1(layers) else "keras2"


_CONVOLUTIONS = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3, "SeparableConv1D": 0,
                 "SeparableConv2D": 0, "Conv2DTranspose": 2}


def _derive_config(
    architecture: Architecture,
    connections: dict[str, str],
    inputs: dict[str, list[int | None] | None],
) -> None:
    """Fill what the printed figures fix exactly: units, filters, and where the arithmetic of
    the parameter count leaves no doubt, a convolution's kernel size and a Dense fan-in."""
    previous_shape = architecture.input_shape
    shapes = dict(inputs)
    shapes.update({layer.name: layer.output_shape for layer in architecture.layers})
    for layer in architecture.layers:
        canonical = canonical_class(layer.class_name)
        shape = layer.output_shape
        inbound = connections.get(layer.name, "")
        source = re.match(r"^([^\s\[]+)\[", inbound)
        if source and source.group(1) in shapes:
            in_shape = shapes[source.group(1)]
        else:
            in_shape = previous_shape
        if shape:
            if canonical == "Dense" and shape[-1]:
                units = shape[-1]
                layer.config["units"] = units
                if layer.params and layer.params % units == 0:
                    layer.config["input_dim"] = layer.params // units - 1
            elif canonical in _CONVOLUTIONS and shape[-1]:
                filters = shape[-1]
                layer.config["filters"] = filters
                rank = _CONVOLUTIONS[canonical]
                channels = in_shape[-1] if in_shape else None
                if rank and channels and layer.params and layer.params % filters == 0:
                    per_filter = layer.params // filters - 1  # with a bias
                    if per_filter > 0 and per_filter % channels == 0:
                        side = round((per_filter // channels) ** (1 / rank))
                        if side ** rank == per_filter // channels:
                            layer.config["kernel_size"] = [side] * rank
        previous_shape = shape if shape is not None else previous_shape


# ---------------------------------------------------------------------------------------------


def _model_name(lines: list[str], header_at: int) -> str:
    for back in range(header_at - 1, max(-1, header_at - 6), -1):
        match = _MODEL_NAME.match(lines[back])
        if match:
            return match.group(1)
        if not _is_rule(lines[back]):
            break
    return ""


def parse_summary(text: str) -> list[ParsedSummary]:
    """Every ``model.summary()`` table in ``text``, in order.

    ``text`` may be raw notebook output: ANSI colours, carriage returns and backspaces are
    handled. Each table becomes an :class:`~grader.model.evidence.Architecture` whose ``layers``
    exclude input layers (their shape is ``input_shape``) and whose totals are the printed
    ones. A table with a header but no readable rows still comes back, with ``problems``.
    """
    try:
        lines = render_terminal(text).split("\n")
    except Exception:  # noqa: BLE001
        return []
    summaries: list[ParsedSummary] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        if "Layer (type)" not in line or not ("Output Shape" in line or "Param #" in line
                                              or "┃" in line or "│" in line):
            number += 1
            continue
        try:
            table = _Table(line, number, _model_name(lines, number))
            number += 1
            while number < len(lines) and not table.done:
                if not table.feed(number, lines[number]):
                    break
                number += 1
            summaries.append(table.result())
        except Exception as exc:  # noqa: BLE001 - a broken table must not lose the others
            summaries.append(ParsedSummary(
                architecture=Architecture(), generation="unknown", line=number,
                end_line=number, problems=[f"the table could not be read ({type(exc).__name__})"],
            ))
            number += 1
    return summaries


__all__ = [
    "KNOWN_CLASSES",
    "ParsedSummary",
    "canonical_class",
    "complete_class",
    "parse_shape",
    "parse_summary",
]
