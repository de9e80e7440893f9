"""Reading what the recorder wrote inside the student's kernel, as untrusted input.

The bundle is ``events.jsonl`` (one JSON object per line) and ``models/m<N>.keras``. The student's
code ran in the same process that wrote it and could have written anything there, so:

* sizes are capped (the log, each line, each model file);
* every record is rebuilt through the typed evidence classes (:func:`grader.model.evidence.from_json`),
  and a record that does not fit is dropped and reported, never half-used;
* model files are accepted only as regular files named ``m<N>.keras`` directly in ``models/``:
  no symbolic links, nothing that resolves outside the bundle;
* nothing is unpickled: the log is JSON, the models are later opened with ``safe_mode=True`` in the
  clean verifier, not here.

Figures read from the bundle are at level ``executed``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grader.errors import BundleError
from grader.model.kinds import RecorderEvent
from grader.model.evidence import (
    Architecture,
    Cell,
    CellRef,
    CompileInfo,
    DataFingerprint,
    Evaluation,
    Evidence,
    FitArgs,
    Finding,
    Level,
    ModelSnapshot,
    TrainingRun,
    Variable,
    from_json,
)

MAX_LOG_BYTES = 64 * 2**20
MAX_LINE_BYTES = 4 * 2**20
MAX_MODEL_BYTES = 2 * 2**30
_MODEL_NAME = re.compile(r"^models/m\d{1,6}\.keras$")


def read_bundle(bundle_dir: Path, *, submission: str, cells: list[Cell], max_model_bytes: int = MAX_MODEL_BYTES) -> Evidence:
    """The :class:`Evidence` in ``bundle_dir``. Raises :class:`BundleError` only when the log as a
    whole is unusable (missing, too large); single bad records become findings."""
    log = bundle_dir / "events.jsonl"
    if log.is_symlink() or not log.is_file():
        raise BundleError("the recorder left no event log: the kernel may have failed before the first cell")
    size = log.stat().st_size
    if size > MAX_LOG_BYTES:
        raise BundleError(f"the recorder's event log is {size / 2**20:.0f} MiB, over the {MAX_LOG_BYTES // 2**20} MiB limit")
    reader = _Reader(bundle_dir, submission, cells, max_model_bytes)
    with log.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            reader.line(number, raw)
    return reader.finish()


class _Reader:
    def __init__(self, bundle_dir: Path, submission: str, cells: list[Cell], max_model_bytes: int):
        self.bundle_dir = bundle_dir
        self.max_model_bytes = max_model_bytes
        self.cells = {cell.index: cell for cell in cells}
        self.evidence = Evidence(submission=submission, mode="executed", cells=cells)
        self.started: dict[int, dict[str, Any]] = {}
        self.epochs: dict[int, dict[str, list[float]]] = {}
        self.finished: set[int] = set()
        self.missing_models: set[int] = set()  # fits whose named model file was not there
        self.repeated: set[int] = set()
        self.bad_lines: list[str] = []
        self.seen_findings: set[tuple[str, str]] = set()
        self.ended = False

    def cell(self, cell_id: Any) -> CellRef:
        try:
            index = int(cell_id)
        except (TypeError, ValueError):
            index = -1
        cell = self.cells.get(index)
        if cell is None:
            return CellRef(index=index)
        return CellRef(index=index, heading=cell.heading, tags=list(cell.tags), cell_id=cell.cell_id)

    def line(self, number: int, raw: bytes) -> None:
        if len(raw) > MAX_LINE_BYTES:
            self.bad_lines.append(f"line {number}: {len(raw):,} bytes, over the limit")
            return
        try:
            event = json.loads(raw)
            if not isinstance(event, dict) or not isinstance(event.get("event"), str):
                raise ValueError("not an event object")
            try:
                kind = RecorderEvent(event["event"])
            except ValueError:
                raise ValueError(f"unknown event {event['event'][:40]!r}") from None
            getattr(self, "on_" + kind.value)(event)
        except (ValueError, TypeError, KeyError) as exc:
            self.bad_lines.append(f"line {number}: {str(exc)[:200]}")
        except RecursionError:  # nested deeper than any record the recorder writes
            self.bad_lines.append(f"line {number}: nested too deeply to be a record of the grader's")

    # -- events
    def on_start(self, event: dict) -> None:
        self.evidence.fast_mode = bool(event.get("fast"))

    def on_keras(self, event: dict) -> None:
        pass

    def on_fit_start(self, event: dict) -> None:
        self.started[_int(event["index"])] = event

    def on_epoch(self, event: dict) -> None:
        logs = from_json(dict[str, float], event.get("logs", {}))
        series = self.epochs.setdefault(_int(event["index"]), {})
        for key, value in logs.items():
            series.setdefault(key, []).append(value)

    def on_fit(self, event: dict) -> None:
        index = _int(event["index"])
        arch = event.get("architecture") or {}
        run = TrainingRun(
            index=index,
            model_id=_str(event["model_id"]),
            cell=self.cell(event.get("cell_id")),
            architecture=from_json(Architecture, arch) if "error" not in arch else Architecture(),
            compile=from_json(CompileInfo, event.get("compile") or {}) if "error" not in (event.get("compile") or {}) else CompileInfo(),
            fit=from_json(FitArgs, event.get("fit") or {}),
            history=from_json(dict[str, list[float]], event.get("history") or {}),
            level=Level.EXECUTED,
            weights_file=self.model_file(event.get("weights_file")),
            duration_s=from_json(float | None, event.get("duration_s")),
            error=from_json(str | None, event.get("error")),
            fast_mode=bool(event.get("fast_mode")),
        )
        digest = event.get("weights_sha256")
        if run.weights_file and isinstance(digest, str) and len(digest) == 64:
            run.weights_sha256 = digest
        if run.weights_file is None and event.get("weights_file"):
            self.missing_models.add(index)
        if not run.history and index in self.epochs:
            run.history = self.epochs[index]
        if index in self.finished:
            self.repeated.add(index)
        self.finished.add(index)
        self.evidence.runs.append(run)

    def on_evaluate(self, event: dict) -> None:
        evaluation = Evaluation(
            index=_int(event["index"]),
            model_id=from_json(str | None, event.get("model_id")),
            cell=self.cell(event.get("cell_id")),
            samples=from_json(int | None, event.get("samples")),
            results=from_json(dict[str, float], event.get("results") or {}),
            level=Level.EXECUTED,
            x=from_json(DataFingerprint | None, event.get("x")),
        )
        self.evidence.evaluations.append(evaluation)
        for overlap in event.get("overlap") or []:
            rows, of, fit = _int(overlap["rows"]), _int(overlap["of"]), _int(overlap["fit"])
            self.add_finding(Finding(
                kind="trained_on_test", severity="warning", cell=evaluation.cell,
                message=f"{rows:,} of the {of:,} samples evaluated in cell {evaluation.cell.number} were also in the "
                        f"training data of fit #{fit + 1}: the test accuracy overstates how well the model generalises",
            ))

    def on_model(self, event: dict) -> None:
        arch = event.get("architecture") or {}
        if "error" in arch:
            return
        compile_info = event.get("compile")
        self.evidence.models.append(ModelSnapshot(
            model_id=_str(event["model_id"]),
            variable=from_json(str | None, event.get("variable")),
            architecture=from_json(Architecture, arch),
            compile=from_json(CompileInfo, compile_info) if isinstance(compile_info, dict) and "error" not in compile_info else None,
            built_by=from_json(str | None, event.get("built_by")),
        ))

    def on_function(self, event: dict) -> None:
        name, error = _str(event.get("name", "?")), event.get("error")
        if error:
            self.add_finding(Finding(kind="function", severity="warning",
                                     message=f"calling {name}() at the end of the run failed: {str(error)[:500]}"))

    def on_variable(self, event: dict) -> None:
        value = event.get("value")
        if not isinstance(value, (int, float, str, bool, type(None))):
            raise ValueError("variable value is not a plain value")
        self.evidence.variables.append(Variable(_str(event["name"]), value, _str(event.get("type_name", ""))))

    def on_finding(self, event: dict) -> None:
        message = _str(event.get("message", ""))[:2000]
        api = event.get("api")
        if isinstance(api, str) and api and api not in message:
            message = f"{api[:200]}: {message}"  # "SGD(lr=...): used the removed argument `lr`; ..."
        finding = Finding(
            kind=_str(event.get("kind", "note"))[:40],
            message=message,
            cell=self.cell(event.get("cell_id")) if event.get("cell_id") not in (None, "-1") else None,
            severity=event.get("severity") if event.get("severity") in ("info", "warning", "error") else "info",
            model_id=_str(event["model_id"])[:40] if isinstance(event.get("model_id"), str) else None,
        )
        self.add_finding(finding)

    def on_end(self, event: dict) -> None:
        self.ended = True

    # -- helpers
    def add_finding(self, finding: Finding) -> None:
        key = (finding.kind, finding.message)
        if key not in self.seen_findings:
            self.seen_findings.add(key)
            self.evidence.findings.append(finding)

    def _missing_model_files(self, evidence: Evidence, suspect: set[int]) -> None:
        """A finished fit without its saved model: the recorder saves one after every fit and
        says so when it cannot (``save_failed``), so a silent absence is the notebook's doing."""
        save_failed = any(f.kind == "save_failed" for f in evidence.findings)
        for run in evidence.runs:
            if run.weights_file or run.error or run.index in suspect or run.index not in self.finished:
                continue
            if run.index in self.missing_models:
                how = "is missing from the grader's files: something in the notebook removed or replaced it"
            elif not save_failed:
                how = "was never written, and the grader's recorder did not say why: its saving was switched off"
            else:
                continue  # the recorder said why it could not save (a model Keras cannot serialise)
            self.add_finding(Finding(
                "model_file", f"the model trained by fit #{run.index + 1} {how}. Its accuracy cannot be verified, so it "
                              "earns no accuracy points", run.cell, "error", model_id=run.model_id))

    def model_file(self, relative: Any) -> str | None:
        if not isinstance(relative, str) or not _MODEL_NAME.match(relative):
            return None
        path = self.bundle_dir / relative
        if path.is_symlink() or not path.is_file():
            return None
        try:
            path.resolve().relative_to(self.bundle_dir.resolve())
        except ValueError:
            return None
        if path.stat().st_size > self.max_model_bytes:
            self.add_finding(Finding(kind="bundle", severity="warning",
                                     message=f"{relative} is over the {self.max_model_bytes // 2**20:,} MiB limit and was not verified"))
            return None
        return relative

    def finish(self) -> Evidence:
        evidence = self.evidence
        # A fit that started but never finished: the kernel died or the run timed out mid-training.
        for index, event in sorted(self.started.items()):
            if index in self.finished:
                continue
            arch = event.get("architecture") or {}
            evidence.runs.append(TrainingRun(
                index=index,
                model_id=_str(event["model_id"]),
                cell=self.cell(event.get("cell_id")),
                architecture=from_json(Architecture, arch) if arch and "error" not in arch else Architecture(),
                fit=from_json(FitArgs, event.get("fit") or {}),
                history=self.epochs.get(index, {}),
                level=Level.EXECUTED,
                error="training did not finish (the kernel died or the run was stopped)",
                fast_mode=evidence.fast_mode,
            ))
        # A fit recorded twice, or one that never started, has records the recorder did not write.
        # Which record is the recorder's cannot be told (a forged one may come first): none is
        # verified. No verified figure is what a forger gets.
        suspect = self.repeated | (self.finished - set(self.started))
        for run in evidence.runs:
            if run.index in suspect:
                run.weights_file = run.weights_sha256 = None
        self._missing_model_files(evidence, suspect)
        if suspect:
            fits = ", ".join(f"#{i + 1}" for i in sorted(suspect))
            evidence.findings.append(Finding(
                "tampered", f"the grader's log holds records of fit {fits} that its recorder did not write (a fit "
                            "recorded twice, or one that never started): something in the notebook wrote to the "
                            "grader's files. Those fits are not verified, and the notebook's own figures are in doubt",
                severity="error"))
        evidence.runs.sort(key=lambda run: run.index)
        evidence.evaluations.sort(key=lambda ev: ev.index)
        by_model = {snap.model_id: snap.variable for snap in evidence.models if snap.variable}
        for run in evidence.runs:
            run.variable = by_model.get(run.model_id)
        if self.bad_lines:
            evidence.findings.append(Finding(
                kind="bundle", severity="error",
                message=f"{len(self.bad_lines)} record(s) in the recorder's log were malformed and ignored "
                        f"(first: {self.bad_lines[0]}); the notebook may have written to the grader's files",
            ))
        if not self.ended:
            evidence.findings.append(Finding(kind="bundle", severity="info",
                                             message="the run did not reach the grader's closing cell: models left in variables were not recorded"))
        return evidence


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r:.40}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value
