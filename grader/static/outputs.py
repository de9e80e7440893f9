"""Static mode: evidence from the outputs saved in a submitted notebook, without running it.

``grade --static`` grades what a notebook already shows: its ``model.summary()`` tables, its
epoch logs and its printed test scores (:mod:`grader.static.summary`, :mod:`grader.static.logs`).
That works for notebooks written for Keras versions that no longer run
(``Convolution2D(32, 3, 3, border_mode='same')``, ``nb_epoch=``), and takes milliseconds. Every
figure found here is at :attr:`~grader.model.evidence.Level.REPORTED`: the student could have edited
the file.

How outputs become training runs:

* each summary table is a model (a :class:`~grader.model.evidence.ModelSnapshot`); the same table
  printed again for the same variable, with the same layer names, is the same model;
* each epoch log is one :class:`~grader.model.evidence.TrainingRun`, attached to the model whose
  summary was printed last for the variable the cell fits (``model.fit``), or, when the code
  does not say, to the summary printed last; a variable rebuilt since its summary
  (``model = Sequential()``) has no architecture until a new summary is printed;
* printed test figures (``Test accuracy: 0.63``, an ``evaluate`` bar in a cell that evaluates
  test data) become :class:`~grader.model.evidence.Evaluation` of the model trained last.

What static mode cannot settle becomes a :class:`~grader.model.evidence.Finding` of kind ``static``.
Nothing here imports TensorFlow, and nothing raises on odd notebooks.

Example::

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Question 4")])
    >>> static_evidence(nb, "alice.ipynb").cells[0].heading
    'Question 4'
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from typing import Any

from grader.model.evidence import (
    Architecture,
    Cell,
    CellError,
    CellRef,
    CompileInfo,
    Evaluation,
    Evidence,
    Finding,
    FitArgs,
    Level,
    ModelSnapshot,
    TrainingRun,
    copy_evidence,
)
from grader.notebook.cells import cell_ref, cells_from_notebook, multiline_text, raw_cells, strip_tags
from grader.static.calls import (
    BUILDS_IN_BODY,
    METHOD,
    OPTIMIZER_ASSIGN,
    Call,
    CellCode,
    call_arguments,
    compile_info,
    function_bodies,
    keyword_number,
    read_code,
    strip_comments,
)
from grader.static.logs import (
    ParsedLog,
    ParsedScore,
    parse_logs_and_scores,
    render_terminal,
    strip_ansi,
)
from grader.static.code import CodeModel, code_models, fill_activations, model_in_code
from grader.static.summary import ParsedSummary, parse_summary

FINDING_KIND = "static"

# ---------------------------------------------------------------------------------------------
# Outputs


def _html_to_text(markup: str) -> str:
    markup = re.sub(r"<br\s*/?>|</(?:p|div|tr|h[1-6]|li)>", "\n", markup, flags=re.IGNORECASE)
    return html.unescape(strip_tags(markup))


def output_text(cell: Any) -> str:
    """A code cell's saved outputs as one text, in order, as the parsers read them.

    Standard output joins as written (a progress bar may be split over many stream outputs),
    standard error on lines of its own; rich
    outputs contribute ``text/plain`` (``text/html`` only when there is no plain text), each
    on lines of its own: Keras 3 prints one summary as several display outputs. Error
    outputs are left out (see :func:`cell_errors`).
    """
    parts: list[str] = []
    for output in cell.get("outputs") or []:
        if not hasattr(output, "get"):
            continue
        kind = output.get("output_type")
        if kind == "stream" and output.get("name") == "stderr":
            # TensorFlow's warnings arrive on stderr in the middle of a progress bar's redraws:
            # on lines of their own they cannot end up inside a figure.
            if parts and not parts[-1].endswith("\n"):
                parts.append("\n")
            text = multiline_text(output.get("text"))
            parts.append(text if text.endswith("\n") else text + "\n")
            continue
        if kind == "stream":
            parts.append(multiline_text(output.get("text")))
            continue
        if kind not in ("execute_result", "display_data"):
            continue
        data = output.get("data") or {}
        if not hasattr(data, "get"):
            continue
        if data.get("text/plain") is not None:
            text = multiline_text(data.get("text/plain"))
        elif data.get("text/html") is not None:
            text = _html_to_text(multiline_text(data.get("text/html")))
        else:
            continue
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
        parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


def cell_errors(cell: Any, ref: CellRef, source: str) -> list[CellError]:
    """The error outputs saved in a code cell (the student's run raised)."""
    errors = []
    for output in cell.get("outputs") or []:
        if hasattr(output, "get") and output.get("output_type") == "error":
            traceback = strip_ansi("\n".join(multiline_text(line) for line in output.get("traceback") or []))
            errors.append(CellError(
                cell=ref,
                ename=str(output.get("ename") or ""),
                evalue=strip_ansi(str(output.get("evalue") or "")),
                traceback=traceback[-4000:],
                source=source,
            ))
    return errors


# ---------------------------------------------------------------------------------------------
# Fit arguments: the log's figures, and what the fit call's code says


def _fit_args(call: Call | None, log: ParsedLog) -> FitArgs:
    fit = FitArgs(
        epochs=log.epochs,
        epochs_run=log.epochs_shown,
        initial_epoch=max(0, log.first_epoch - 1),
        train_samples=log.train_samples,
        validation_samples=log.validation_samples,
    )
    if log.steps is not None and not log.counts_samples:
        fit.steps_per_epoch = log.steps
    if call is not None:
        batch = keyword_number(call.arguments, "batch_size")
        fit.batch_size = int(batch) if batch is not None else None
        fit.validation_split = keyword_number(call.arguments, "validation_split")
        if fit.epochs is None:
            epochs = keyword_number(call.arguments, "epochs", "nb_epoch")
            fit.epochs = int(epochs) if epochs is not None else None
    return fit


# ---------------------------------------------------------------------------------------------
# Models seen through their summaries


@dataclass
class _Model:
    model_id: str
    architecture: Architecture
    cell: int
    variable: str | None
    stale: bool = False  # the variable was rebuilt after this summary was printed


def _signature(architecture: Architecture) -> tuple:
    return tuple((layer.name, layer.class_name, tuple(layer.output_shape or ()), layer.params)
                 for layer in architecture.layers)


@dataclass
class _Event:
    line: int
    order: int
    summary: ParsedSummary | None = None
    log: ParsedLog | None = None
    score: ParsedScore | None = None


_TESTISH = re.compile(r"test", re.IGNORECASE)
_BARE_LIST = re.compile(r"^\s*\[\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*,\s*"
                        r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*\]\s*$")


class _StaticReader:
    """Walks the cells once, keeping track of the models the summaries show."""

    def __init__(self, nb: Any, submission: str):
        self.evidence = Evidence(submission=submission, mode="static")
        self.raw_cells = raw_cells(nb)
        self.evidence.cells = cells_from_notebook(nb)
        self.models: list[_Model] = []
        self.by_variable: dict[str, _Model] = {}
        self.latest: _Model | None = None
        self.unsummarised: dict[str, str] = {}  # variable -> id of a model with no summary
        self.unknown_models = 0
        self.compiles: list[tuple[int, Call]] = []
        self.inner_compiles: list[tuple[int, Call]] = []
        self.optimizers: dict[str, tuple[str, str]] = {}
        self.builders = self._builder_functions()
        self.code_models: list[CodeModel] = code_models(
            [(cell.index, cell.source) for cell in self.evidence.cells if cell.cell_type == "code"])

    def _from_code(self, receiver: str | None, cell: Cell,
                   like: Architecture | None = None) -> CodeModel | None:
        """The model the code bound to ``receiver`` by this cell; without a receiver, the
        latest one built by then with the same layer classes as ``like``."""
        found = model_in_code(self.code_models, receiver, cell.index)
        if found is None and like is not None:
            for model in reversed(self.code_models):
                if model.cell <= cell.index and \
                        fill_activations(copy_evidence(like), model.architecture):
                    return model
        return found

    def _builder_functions(self) -> set[str]:
        names = set()
        for cell in self.evidence.cells:
            if cell.cell_type != "code":
                continue
            for name, body in function_bodies(strip_comments(cell.source)).items():
                if BUILDS_IN_BODY.search(body):
                    names.add(name)
        return names

    def finding(self, message: str, cell: Cell | None = None, severity: str = "warning") -> None:
        self.evidence.findings.append(Finding(
            kind=FINDING_KIND, message=message, cell=cell_ref(cell) if cell else None,
            severity=severity,
        ))

    # -- the walk --------------------------------------------------------------------------------

    def read(self) -> Evidence:
        any_outputs = False
        for cell, raw in zip(self.evidence.cells, self.raw_cells):
            if cell.cell_type != "code":
                continue
            any_outputs = any_outputs or cell.has_outputs
            try:
                self._read_cell(cell, raw)
            except Exception as exc:  # noqa: BLE001 - one odd cell must not lose the others
                self.finding(f"cell {cell.index}: its outputs could not be read "
                             f"({type(exc).__name__}: {exc})", cell)
        if not any_outputs:
            self.finding("the notebook has no saved outputs: static grading has nothing to read "
                         "(run it and save it with outputs, or grade it by executing)",
                         severity="error")
        elif not self.evidence.runs and not self.models:
            self.finding("no model summary and no training log found in the saved outputs",
                         severity="info")
        return self.evidence

    def _read_cell(self, cell: Cell, raw: Any) -> None:
        ref = cell_ref(cell)
        self.evidence.cell_errors.extend(cell_errors(raw, ref, cell.source))
        code = read_code(cell.source, self.builders)
        clean = strip_comments(cell.source)
        for match in OPTIMIZER_ASSIGN.finditer(clean):
            self.optimizers[match.group(1)] = (match.group(2),
                                               call_arguments(clean, match.end() - 1))
        for call in code.calls_of("compile"):
            self.compiles.append((cell.index, call))
        # compile() inside a model-building function applies when that function is called.
        for body in function_bodies(clean).values():
            for match in METHOD.finditer(body):
                if match.group(2) == "compile":
                    self.inner_compiles.append((cell.index, Call(
                        receiver=match.group(1), method="compile",
                        arguments=call_arguments(body, match.end() - 1), position=-1)))
        if not cell.has_outputs:
            self._rebuilt(code, cell)
            return
        text = render_terminal(output_text(raw))
        events = self._events(text)
        # Models the cell prints: created up front so that a fit printed before the summary of
        # a model built in the same cell still finds it.
        summaries = [event for event in events if event.summary is not None]
        summary_receivers = code.receivers("summary")
        planned = [self._model_for(event.summary, cell,
                                   _nth(summary_receivers, k), code)
                   for k, event in enumerate(summaries)]
        self._rebuilt(code, cell, keep=[model for model in planned if model is not None])
        fit_calls = code.calls_of("fit", "fit_generator")
        log_number = 0
        cell_scores: list[ParsedScore] = []
        for event in events:
            if event.summary is not None:
                model = planned.pop(0)
                if model is not None:
                    self._register(model)
                continue
            if event.log is not None:
                call = _nth(fit_calls, log_number)
                log_number += 1
                self._training_run(cell, event.log, call, planned, code)
                continue
            if event.score is not None:
                cell_scores.append(event.score)
        self._evaluations(cell, code, cell_scores, text)

    def _events(self, text: str) -> list[_Event]:
        events: list[_Event] = []
        order = 0
        for summary in parse_summary(text):
            events.append(_Event(line=summary.line, order=order, summary=summary))
            order += 1
        logs, scores = parse_logs_and_scores(text)
        for log in logs:
            events.append(_Event(line=log.line, order=order, log=log))
            order += 1
        for score in scores:
            events.append(_Event(line=score.line, order=order, score=score))
            order += 1
        events.sort(key=lambda event: (event.line, event.order))
        return events

    # -- models ----------------------------------------------------------------------------------

    def _rebuilt(self, code: CellCode, cell: Cell, keep: list[_Model] | None = None) -> None:
        """Variables the cell (re)builds no longer match the summaries printed before."""
        fresh = {id(model) for model in keep or []}
        for variable in code.built:
            model = self.by_variable.get(variable)
            if model is not None and id(model) not in fresh and model.cell != cell.index:
                model.stale = True
            self.unsummarised.pop(variable, None)

    def _model_for(self, summary: ParsedSummary | None, cell: Cell, receiver: str | None,
                   code: CellCode) -> _Model | None:
        assert summary is not None
        for problem in summary.problems:
            name = summary.architecture.name or "a model"
            self.finding(f"cell {cell.index}: the summary of {name} - {problem}", cell)
        if not summary.architecture.layers:
            return None
        previous = self.by_variable.get(receiver) if receiver else self.latest
        rebuilt_here = receiver is not None and receiver in code.built
        if previous is not None and not previous.stale and not rebuilt_here and \
                _signature(previous.architecture) == _signature(summary.architecture):
            # The same model printed again (before and after training, say): one model.
            previous.architecture.trainable_params = summary.architecture.trainable_params
            previous.architecture.non_trainable_params = summary.architecture.non_trainable_params
            return previous
        rebuilt = self._from_code(receiver, cell, like=summary.architecture)
        if rebuilt is not None:
            # Keras summaries never print activations; the code that built the model does.
            fill_activations(summary.architecture, rebuilt.architecture)
        model_id = f"cell{cell.index}-summary{sum(1 for m in self.models if m.cell == cell.index)}"
        model = _Model(model_id=model_id, architecture=summary.architecture, cell=cell.index,
                       variable=receiver)
        self.models.append(model)
        self.evidence.models.append(ModelSnapshot(
            model_id=model_id, variable=receiver, architecture=summary.architecture,
        ))
        return model

    def _register(self, model: _Model) -> None:
        model.stale = False
        if model.variable:
            self.by_variable[model.variable] = model
        self.latest = model

    def _model_of_fit(self, receiver: str | None, planned: list[_Model | None]) -> _Model | None:
        later = [model for model in planned if model is not None and
                 (receiver is None or model.variable in (None, receiver))]
        if receiver is not None and receiver in self.by_variable:
            model = self.by_variable[receiver]
        elif receiver is not None and self.latest is not None and self.latest.variable \
                and self.latest.variable != receiver:
            model = None  # the last summary shows another variable's model
        else:
            model = self.latest
        if model is None or model.stale:
            return later[0] if later else None
        return model

    def _training_run(self, cell: Cell, log: ParsedLog, call: Call | None,
                      planned: list[_Model | None], code: CellCode) -> None:
        receiver = call.receiver if call is not None else None
        model = self._model_of_fit(receiver, planned)
        if model is not None:
            model_id, architecture = model.model_id, copy_evidence(model.architecture)
        else:
            key = receiver or f"cell{cell.index}"
            if key not in self.unsummarised:
                self.unknown_models += 1
                self.unsummarised[key] = f"cell{cell.index}-unsummarised{self.unknown_models}"
            model_id = self.unsummarised[key]
            what = f"the model in `{receiver}`" if receiver else "the model"
            rebuilt = self._from_code(receiver, cell)
            if rebuilt is not None:
                architecture = copy_evidence(rebuilt.architecture)
                counts = "" if architecture.params_known else \
                    "; its parameter counts are unknown (the input shape is not in the code)"
                self.finding(
                    f"cell {cell.index}: {what} was trained ({log.epochs_shown} epochs shown) "
                    "but no summary of it was printed; its layers were read from the code"
                    f"{' of ' + rebuilt.function + '()' if rebuilt.function else ''}{counts}",
                    cell, severity="info",
                )
            else:
                architecture = Architecture(known=False, params_known=False)
                self.finding(
                    f"cell {cell.index}: {what} was trained ({log.epochs_shown} epochs shown) "
                    "but no summary of it was printed before; its architecture is unknown in "
                    "static mode",
                    cell,
                )
        run = TrainingRun(
            index=len(self.evidence.runs),
            model_id=model_id,
            cell=cell_ref(cell),
            architecture=architecture,
            compile=self._compile_for(cell, receiver, call),
            fit=_fit_args(call, log),
            history=log.history,
            level=Level.REPORTED,
            variable=receiver,
        )
        self.evidence.runs.append(run)
        if log.interrupted:
            self.finding(
                f"cell {cell.index}: the training log stops inside epoch "
                f"{log.first_epoch + log.epochs_shown} of {log.epochs}: the run was interrupted",
                cell, severity="info",
            )
        elif log.epochs is not None and log.first_epoch - 1 + log.epochs_shown < log.epochs:
            self.finding(
                f"cell {cell.index}: the log shows {log.epochs_shown} of {log.epochs} epochs "
                "(early stopping, or the output was cut)",
                cell, severity="info",
            )

    def _compile_for(self, cell: Cell, receiver: str | None, call: Call | None) -> CompileInfo:
        candidates = [
            (index, compile_call) for index, compile_call in self.compiles
            if index < cell.index or call is None or compile_call.position < call.position
        ]
        if receiver is not None:
            # Another variable's compile() says nothing about this model.
            candidates = [pair for pair in candidates if pair[1].receiver == receiver]
        if not candidates:
            candidates = [pair for pair in self.inner_compiles if pair[0] <= cell.index]
        if not candidates:
            return CompileInfo()
        return compile_info(candidates[-1][1].arguments, self.optimizers)

    # -- evaluations ----------------------------------------------------------------------------

    def _evaluations(self, cell: Cell, code: CellCode, scores: list[ParsedScore],
                     text: str) -> None:
        evaluates = code.calls_of("evaluate", "evaluate_generator")
        on_test = any(_TESTISH.search(call.arguments) for call in evaluates)
        accepted = [score for score in scores if score.kind == "printed" or on_test]
        if on_test:
            # `model.evaluate(x_test, y_test)` as the cell's last line shows [loss, accuracy].
            for number, line in enumerate(text.split("\n")):
                match = _BARE_LIST.match(line)
                if match:
                    loss, accuracy = float(match.group(1)), float(match.group(2))
                    if 0.0 <= accuracy <= 1.0:
                        accepted.append(ParsedScore(results={"loss": loss, "accuracy": accuracy},
                                                    line=number, text=line.strip()))
        accepted.sort(key=lambda score: score.line)
        merged: list[dict[str, float]] = []
        for score in accepted:
            if merged and _agrees(merged[-1], score.results):
                for key, value in score.results.items():
                    if key not in merged[-1] or len(repr(value)) > len(repr(merged[-1][key])):
                        merged[-1][key] = value
            else:
                merged.append(dict(score.results))
        model_id = self._model_of_evaluation(cell, evaluates)
        for results in merged:
            self.evidence.evaluations.append(Evaluation(
                index=len(self.evidence.evaluations),
                model_id=model_id,
                cell=cell_ref(cell),
                results=results,
                level=Level.REPORTED,
            ))

    def _model_of_evaluation(self, cell: Cell, evaluates: list[Call]) -> str | None:
        receiver = evaluates[0].receiver if evaluates else None
        if receiver is not None:
            for run in reversed(self.evidence.runs):
                if run.variable == receiver:
                    return run.model_id
            if receiver in self.by_variable:
                return self.by_variable[receiver].model_id
        if self.evidence.runs:
            return self.evidence.runs[-1].model_id
        return self.latest.model_id if self.latest else None


def _nth(items: list[Any], n: int) -> Any:
    """The n-th item, or the last one when the code shows fewer calls than the outputs (a call
    in a loop or a helper function)."""
    if not items:
        return None
    return items[n] if n < len(items) else items[-1]


def _agrees(known: dict[str, float], new: dict[str, float]) -> bool:
    """Two printed test figures belong to one evaluation unless they disagree on a metric."""
    for key, value in new.items():
        if key in known:
            tolerance = max(5e-4, 5e-4 * abs(known[key]))
            if abs(known[key] - value) > tolerance:
                return False
    return True


def static_evidence(nb: Any, submission: str) -> Evidence:
    """Evidence for one submission from the outputs saved in its notebook; nothing is executed.

    ``nb`` is an nbformat v4 notebook (a :class:`nbformat.NotebookNode` or a plain dict).
    Every training run and evaluation is at level ``reported``; what could not be settled
    (a log without a summary, an unreadable table, an interrupted run) is a finding of kind
    ``static``. Never raises on odd content.
    """
    started = time.perf_counter()
    try:
        evidence = _StaticReader(nb, submission).read()
    except Exception as exc:  # noqa: BLE001 - static grading must report, not crash
        evidence = Evidence(submission=submission, mode="static")
        evidence.findings.append(Finding(
            kind=FINDING_KIND, severity="error",
            message=f"the notebook's outputs could not be read ({type(exc).__name__}: {exc})",
        ))
    evidence.duration_s = time.perf_counter() - started
    return evidence


__all__ = [
    "FINDING_KIND",
    "cell_errors",
    "output_text",
    "static_evidence",
]
