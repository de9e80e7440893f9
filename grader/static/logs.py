"""Training logs and test scores as a notebook's saved outputs show them.

Static mode (:mod:`grader.static.outputs`) reads what ``model.fit`` and ``model.evaluate`` printed when
the student ran the notebook, in every Keras generation:

* Keras 1 and 2::

      Train on 4000 samples, validate on 1000 samples
      Epoch 3/30
      100/100 [====================] - 8s - loss: 0.6143 - acc: 0.6690 - val_loss: 0.6116

* Keras 3 (``━`` bars, ANSI colours)::

      Epoch 1/3
      6/6 ━━━━━━━━━━━━━━━━━━━━ 2s 81ms/step - accuracy: 0.2917 - loss: 2.1894 - val_loss: 1.17

* ``verbose=2`` lines without a bar (``2s - loss: 0.5 - acc: 0.8``), and printed test scores
  (``Test accuracy: 0.6307``, ``test loss, test acc: [1.1, 0.63]``).

Progress bars redraw themselves with carriage returns and backspaces; a saved notebook may keep
every redraw. :func:`render_terminal` turns such text into the lines a student saw in Jupyter,
so every parser here works on what was displayed, not on what was written.

Nothing here raises on odd text: what cannot be read is skipped.

Example::

    >>> logs = parse_training_log("Epoch 1/2\\n10/10 [==] - 1s - loss: 0.9 - acc: 0.5\\n"
    ...                           "Epoch 2/2\\n10/10 [==] - 1s - loss: 0.7 - acc: 0.6\\n")
    >>> logs[0].history, logs[0].epochs
    ({'loss': [0.9, 0.7], 'acc': [0.5, 0.6]}, 2)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# CSI sequences (colours, cursor moves), OSC sequences (hyperlinks) and two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (Keras 3 and rich colour everything)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def _backspaced(segment: str) -> str:
    if "\b" not in segment:
        return segment
    kept: list[str] = []
    for char in segment:
        if char == "\b":
            if kept:
                kept.pop()
        else:
            kept.append(char)
    return "".join(kept)


def render_terminal(text: str) -> str:
    """The text as Jupyter displays it: ANSI codes removed, ``\\r`` and ``\\b`` applied.

    Jupyter front ends treat a carriage return as "clear this line" and a backspace as "delete
    the previous character". Keras redraws a progress bar with ``"\\b" * width + "\\r"``, so
    only the last drawing of each bar survives, exactly what the student saw.
    """
    if "\r" not in text and "\b" not in text:
        return strip_ansi(text)
    text = text.replace("\r\n", "\n")
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            line = line.rstrip("\r")
            line = line[line.rfind("\r") + 1:]
        # Colour codes never hold a \r: stripping only the drawing that survives is the same
        # as stripping every redraw, and a saved epoch log keeps hundreds of them.
        lines.append(_backspaced(strip_ansi(line)))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Training logs

_EPOCH = re.compile(r"^\s*+Epoch\s++(\d++)\s*+/\s*+(\d++)\s*+$")
_TRAIN_ON = re.compile(r"\bTrain on (\d+) samples(?:, validate on (\d+) samples)?")
_PROGRESS = re.compile(r"^\s*(\d+)/(\d+|Unknown)(?=\s|\[|$)")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
# " - loss: 0.6143": metrics always follow a " - " in every Keras generation. "ETA: 10s" and
# "ETA: 1:02" never match because a unit or colon follows the number.
_METRIC = re.compile(r"(?:^|\s)-\s++([A-Za-z_][\w./]*+)\s*+:\s++(" + _NUMBER + r")(?=\s|$)")


def _metrics(line: str) -> dict[str, float]:
    values: dict[str, float] = {}
    if ":" not in line:  # every metric has one: most lines of a log are skipped without a search
        return values
    for key, value in _METRIC.findall(line):
        if key == "ETA":
            continue
        try:
            values[key] = float(value)
        except ValueError:
            continue
    return values


@dataclass
class ParsedLog:
    """One ``fit`` call's epoch log.

    ``history`` holds one value per finished epoch and key, the last value shown in that epoch,
    keyed as printed (``acc`` in Keras 1/2, ``accuracy`` in Keras 3).
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int | None = None  # asked for: the 30 of "Epoch 3/30"
    first_epoch: int = 1  # the 3 of a log that starts at "Epoch 3/30" (initial_epoch=2)
    epochs_shown: int = 0  # epochs whose end the log shows
    steps: int | None = None  # the progress bar's target: steps per epoch (Keras 1: samples)
    train_samples: int | None = None  # "Train on 4000 samples, validate on 1000 samples"
    validation_samples: int | None = None
    interrupted: bool = False  # the last epoch started but never finished
    line: int = 0  # first line (0-based) of the log in the rendered text
    end_line: int = 0  # last line of the log

    @property
    def counts_samples(self) -> bool:
        """Keras 1/2 counted samples in the bar when they also printed "Train on N samples"."""
        return self.train_samples is not None


@dataclass
class ParsedScore:
    """A figure the notebook printed about the test set, or an ``evaluate`` progress line.

    ``results`` uses the keys of :class:`grader.model.evidence.Evaluation`: ``loss``, ``accuracy``,
    other metrics as printed.
    """

    results: dict[str, float]
    line: int  # 0-based line in the rendered text
    text: str  # the line as displayed
    kind: str = "printed"  # "printed" ("Test accuracy: 0.63") | "progress" (evaluate's bar)


@dataclass
class _Epoch:
    number: int
    values: dict[str, float] = field(default_factory=dict)
    finished: bool = False
    target: str | None = None
    current: int = 0


@dataclass
class _LogBuilder:
    asked: int
    first: int
    line: int
    train_samples: int | None
    validation_samples: int | None
    epochs: list[_Epoch] = field(default_factory=list)
    end_line: int = 0
    steps: int | None = None

    def build(self) -> ParsedLog:
        history: dict[str, list[float]] = {}
        finished = [epoch for epoch in self.epochs if epoch.finished]
        for epoch in finished:
            for key, value in epoch.values.items():
                history.setdefault(key, []).append(value)
        interrupted = bool(self.epochs) and not self.epochs[-1].finished
        return ParsedLog(
            history=history,
            epochs=self.asked,
            first_epoch=self.first,
            epochs_shown=len(finished),
            steps=self.steps,
            train_samples=self.train_samples,
            validation_samples=self.validation_samples,
            interrupted=interrupted,
            line=self.line,
            end_line=self.end_line,
        )


def _scan(lines: list[str]) -> tuple[list[ParsedLog], list[ParsedScore]]:
    """Walk the displayed lines once: epoch logs, and finished progress bars outside them."""
    logs: list[ParsedLog] = []
    bars: list[ParsedScore] = []
    current: _LogBuilder | None = None
    samples: tuple[int | None, int | None] = (None, None)

    def close() -> None:
        nonlocal current
        if current is not None:
            logs.append(current.build())
            current = None

    for number, line in enumerate(lines):
        epoch_match = _EPOCH.match(line)
        if epoch_match:
            k, asked = int(epoch_match.group(1)), int(epoch_match.group(2))
            # Same N and a later epoch: the same fit (a gap means lines were cut from the
            # output). A restart at a lower epoch or another N is the next fit.
            continues = (
                current is not None
                and current.asked == asked
                and current.epochs
                and k > current.epochs[-1].number
            )
            if continues:
                assert current is not None
                previous = current.epochs[-1]
                # A bar of unknown length ("57/Unknown") ends when the next epoch starts.
                if not previous.finished and previous.target == "Unknown" and previous.values:
                    previous.finished = True
            else:
                close()
                current = _LogBuilder(asked=asked, first=k, line=number,
                                      train_samples=samples[0], validation_samples=samples[1])
                samples = (None, None)
            assert current is not None
            current.epochs.append(_Epoch(number=k))
            current.end_line = number
            continue

        train_on = _TRAIN_ON.search(line) if "Train on" in line else None
        if train_on:
            close()
            samples = (int(train_on.group(1)),
                       int(train_on.group(2)) if train_on.group(2) else None)
            continue

        values = _metrics(line)
        progress = _PROGRESS.match(line)
        if not values and not progress:
            continue  # the student's own prints, warnings: a log tolerates them

        epoch = current.epochs[-1] if current is not None and current.epochs else None
        if epoch is not None and not epoch.finished:
            if progress:
                target = progress.group(2)
                if epoch.target is not None and target != epoch.target:
                    epoch = None  # another bar inside an unfinished epoch: not this one
                else:
                    epoch.target = target
                    epoch.current = int(progress.group(1))
            if epoch is not None:
                epoch.values.update(values)
                assert current is not None
                current.end_line = number
                if progress is None:
                    epoch.finished = bool(values)  # verbose=2 prints one line per epoch
                elif progress.group(2) != "Unknown":
                    target_n = int(progress.group(2))
                    current.steps = target_n
                    # The last redraw of an epoch: target reached, no "ETA" left, or validation
                    # figures (only the end of an epoch has them).
                    epoch.finished = (
                        (epoch.current >= target_n and "ETA" not in line)
                        or any(key.startswith("val_") for key in values)
                    )
                else:
                    epoch.finished = any(key.startswith("val_") for key in values)
                continue

        if epoch is not None and epoch.finished and progress and \
                progress.group(2) == epoch.target and \
                any(key.startswith("val_") for key in values) and \
                not any(key.startswith("val_") for key in epoch.values):
            # Printed without redraws (no terminal), the end of an epoch can take two lines:
            # the last batch, then the same bar with the validation figures.
            epoch.values.update(values)
            continue

        # A bar or metrics line that is not part of an open epoch: evaluate() or predict().
        # The log stays open: a callback's print between two epochs must not split it, and the
        # next "Epoch" line decides whether training goes on.
        if progress and values and progress.group(2) != "Unknown":
            if int(progress.group(1)) >= int(progress.group(2)) and "ETA" not in line:
                bars.append(ParsedScore(results=_normalise_keys(values), line=number,
                                        text=line.strip(), kind="progress"))
    # An "Unknown"-length last epoch is finished once its log ends with values shown.
    if current is not None and current.epochs:
        last = current.epochs[-1]
        if not last.finished and last.target == "Unknown" and last.values:
            last.finished = True
    close()
    return logs, bars


def parse_training_log(text: str) -> list[ParsedLog]:
    """Every epoch log in ``text`` (one per ``fit`` call), in order.

    A new log starts at an ``Epoch k/N`` line that does not continue the previous one (``k``
    is not later than the previous epoch, or ``N`` differs). An epoch counts once its last
    redraw is shown; an epoch that started but never finished (the kernel was interrupted)
    sets ``interrupted``.

    >>> parse_training_log("Epoch 1/30\\n100/100 [=====] - 8s - loss: 0.61 - acc: 0.67")[0].epochs
    30
    """
    try:
        logs, _ = _scan(render_terminal(text).split("\n"))
    except Exception:  # noqa: BLE001 - a parser of student output must never take grading down
        return []
    return [log for log in logs if log.epochs_shown or log.interrupted]


# ---------------------------------------------------------------------------------------------
# Test scores

_KEY_NAMES = {"acc": "accuracy", "score": "loss", "error": "error", "err": "error"}


def _normalise_key(key: str) -> str:
    key = key.strip().lower().replace(" ", "_")
    return _KEY_NAMES.get(key, key)


def _normalise_keys(values: dict[str, float]) -> dict[str, float]:
    return {_normalise_key(key): value for key, value in values.items()}


_TEST_FIGURE = re.compile(
    r"\btest(?:ing)?[ _-]*(?:set[ _-]*|data[ _-]*)?(acc(?:uracy)?|loss|score)\b"
    r"[^:=\d\n\[]{0,30}[:=]?[ \t]*+(" + _NUMBER + r")[ \t]*+(%)?",
    re.IGNORECASE,
)
_FIGURE_ON_TEST = re.compile(
    r"\b(acc(?:uracy)?|loss)\s++(?:on|of)\s++(?:the\s++)?test(?:\s++(?:set|data))?\s*+[:=]?+[ \t]*+("
    + _NUMBER + r")[ \t]*(%)?",
    re.IGNORECASE,
)
# print("test loss, test acc:", results) -> "test loss, test acc: [1.1, 0.63]"
# Labels up to the first ":" or "=", possessive; the "test" in them is checked apart, so that a
# long line of words cannot make the pattern backtrack.
_TEST_LIST = re.compile(r"^(?P<labels>[^:=\[\n]*+)[:=]\s*+\[(?P<values>[^\]\n]++)\]")
_TEST_WORD = re.compile(r"\btest\b", re.IGNORECASE)
# Longer lines are not figures anyone printed; cutting them bounds every pattern's work.
_MAX_LINE = 2000


def _as_fraction(key: str, value: float, percent: bool) -> float:
    if key == "accuracy" and (percent or 1.0 < value <= 100.0):
        return value / 100.0
    return value


def _list_labels(labels: str, count: int) -> list[str] | None:
    names = []
    for part in labels.split(","):
        words = [w for w in re.findall(r"[A-Za-z_]+", part.lower()) if w not in {"test", "set"}]
        if words:
            names.append(_normalise_key("_".join(words)))
    if len(names) == count:
        return names
    if count == 2 and len(names) <= 1:  # print('Test score:', score) with score = [loss, acc]
        return ["loss", "accuracy"]
    return None


def _printed_scores(number: int, line: str) -> list[ParsedScore]:
    line = line[:_MAX_LINE]
    if "test" not in line.casefold():  # every pattern needs the word (casefold: as IGNORECASE matches)
        return []
    listed = _TEST_LIST.match(line.strip())
    if listed and not _TEST_WORD.search(listed.group("labels")):
        listed = None
    if listed:
        try:
            values = [float(v) for v in listed.group("values").split(",")]
        except ValueError:
            values = []
        names = _list_labels(listed.group("labels"), len(values)) if values else None
        if names:
            results = {name: _as_fraction(name, value, False) for name, value in zip(names, values)}
            return [ParsedScore(results=results, line=number, text=line.strip())]
        return []
    results: dict[str, float] = {}
    for pattern in (_TEST_FIGURE, _FIGURE_ON_TEST):
        for match in pattern.finditer(line):
            key = _normalise_key(match.group(1))
            try:
                value = float(match.group(2))
            except ValueError:
                continue
            if math.isnan(value):
                continue
            results.setdefault(key, _as_fraction(key, value, bool(match.group(3))))
    if not results:
        return []
    return [ParsedScore(results=results, line=number, text=line.strip())]


def parse_test_scores(text: str) -> list[ParsedScore]:
    """Test figures a notebook printed, in order of appearance.

    Recognised: ``Test accuracy: 0.6307`` (also ``Test loss``, ``Test score`` = loss,
    ``test acc``, percentages), ``Accuracy on test set: 63%``, list prints such as
    ``test loss, test acc: [1.1, 0.63]``, and the final line of an ``evaluate`` progress bar
    (``313/313 [====] - 1s - loss: 1.1 - accuracy: 0.63``) when it is not part of a training
    log (``kind="progress"``: whether it measured the test set is for the caller to decide).

    >>> [s.results for s in parse_test_scores("Test loss: 1.1\\nTest accuracy: 63.07%")]
    [{'loss': 1.1}, {'accuracy': 0.6307}]
    """
    return parse_logs_and_scores(text)[1]


def parse_logs_and_scores(text: str) -> tuple[list[ParsedLog], list[ParsedScore]]:
    """:func:`parse_training_log` and :func:`parse_test_scores` of ``text`` from one walk of its
    lines (a cell's output is read for both)."""
    try:
        lines = render_terminal(text).split("\n")
        logs, bars = _scan(lines)
        # Every printed-score pattern needs the word (casefold: as IGNORECASE matches).
        printed = [score for number, line in enumerate(lines)
                   for score in _printed_scores(number, line)] if "test" in text.casefold() else []
    except Exception:  # noqa: BLE001 - never let a student's output break grading
        return [], []
    return ([log for log in logs if log.epochs_shown or log.interrupted],
            sorted(printed + bars, key=lambda score: score.line))
