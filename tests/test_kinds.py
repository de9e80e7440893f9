"""The closed vocabularies (grader.model.kinds): every member has the words a report shows, every
kind the code makes is a member, and result.json keeps the plain text it always held."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import grader
from grader.execute.bundle import read_bundle
from grader.model.evidence import LEVEL_HELP, Finding, Level, to_json
from grader.model.kinds import (
    FINDING_TITLES,
    PROBLEM_TITLES,
    RECORDER_EVENT_TITLES,
    SEVERITY_ICONS,
    SEVERITY_TITLES,
    FindingKind,
    ProblemKind,
    RecorderEvent,
    Severity,
)
from grader.model.results import SubmissionProblem

PACKAGE = Path(grader.__file__).resolve().parent
KERNEL = PACKAGE / "kernel"


def _titled(enum_type, titles):
    assert set(titles) == set(enum_type), f"{enum_type.__name__} members without a title: {set(enum_type) - set(titles)}"
    for member in enum_type:
        assert isinstance(member.title, str) and member.title.strip(), member


def test_every_finding_kind_has_a_title():
    _titled(FindingKind, FINDING_TITLES)


def test_every_problem_kind_has_a_title():
    _titled(ProblemKind, PROBLEM_TITLES)


def test_every_recorder_event_has_a_title():
    _titled(RecorderEvent, RECORDER_EVENT_TITLES)


def test_every_severity_has_a_title_and_an_icon():
    _titled(Severity, SEVERITY_TITLES)
    assert set(SEVERITY_ICONS) == set(Severity) and all(s.icon for s in Severity)


def test_every_evidence_level_says_what_it_means():
    assert set(LEVEL_HELP) == set(Level) and all(level.help.strip() for level in Level)


def _kernel_sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(KERNEL.glob("*.py")))


def test_every_event_the_recorder_writes_is_a_recorder_event():
    emitted = set(re.findall(r"""\bemit\(\s*["']([a-z_]+)["']""", _kernel_sources()))
    assert {"start", "fit", "end"} <= emitted  # the pattern still finds the recorder's calls
    assert emitted <= {event.value for event in RecorderEvent}, emitted - set(RecorderEvent)


def test_every_finding_kind_the_recorder_writes_is_a_finding_kind():
    source = _kernel_sources()
    emitted = set(re.findall(r"""\bemit\(\s*["']finding["']\s*,\s*kind=["']([a-z_]+)["']""", source))
    emitted |= set(re.findall(r"""["']kind["']\s*:\s*["']([a-z_]+)["']""", source))
    assert {"compat", "save_failed", "load_model"} <= emitted
    assert emitted <= {kind.value for kind in FindingKind}, emitted - set(FindingKind)


def test_the_bundle_reader_reads_every_recorder_event():
    from grader.execute.bundle import _Reader

    assert all(callable(getattr(_Reader, f"on_{event.value}", None)) for event in RecorderEvent)


def _literal_kinds(call_name: str) -> set[str]:
    """The literal kinds of every ``call_name(...)`` in the grader's source: first argument or kind=."""
    kinds: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == call_name):
                continue
            candidates = node.args[:1] + [k.value for k in node.keywords if k.arg == "kind"]
            kinds |= {c.value for c in candidates if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return kinds


def test_every_finding_the_grader_makes_has_a_known_kind():
    kinds = _literal_kinds("Finding")
    assert {"bundle", "tampered"} <= kinds
    assert kinds <= {kind.value for kind in FindingKind}, kinds - set(FindingKind)


def test_every_problem_the_grader_makes_has_a_known_kind():
    kinds = _literal_kinds("SubmissionProblem")
    assert {"internal", "incomplete"} <= kinds
    assert kinds <= {kind.value for kind in ProblemKind}, kinds - set(ProblemKind)


def test_a_kind_nobody_has_a_title_for_is_refused_where_it_is_made():
    with pytest.raises(ValueError):
        Finding("no_such_kind", "message")
    with pytest.raises(ValueError):
        Finding("compat", "message", severity="fatal")
    with pytest.raises(ValueError):
        SubmissionProblem("no_such_kind", "message")


def test_result_json_keeps_the_plain_text_of_each_kind():
    finding = Finding("trained_on_test", "overlap", severity="warning")
    assert finding.kind is FindingKind.TRAINED_ON_TEST and finding.severity is Severity.WARNING
    assert json.dumps(to_json(finding)) == ('{"kind": "trained_on_test", "message": "overlap", "cell": null, '
                                            '"severity": "warning"}')
    assert json.dumps(to_json(SubmissionProblem("timeout", "ran too long"))) == (
        '{"kind": "timeout", "message": "ran too long", "detail": ""}')
    assert f"{ProblemKind.TIMEOUT}" == "timeout"  # messages that name a kind read as before


def test_a_forged_finding_of_an_unknown_kind_is_reported_not_kept(tmp_path):
    records = [{"event": "start", "fast": False},
               {"event": "finding", "kind": "all_is_well", "severity": "info", "message": "nothing to see"},
               {"event": "end"}]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    evidence = read_bundle(tmp_path, submission="alice.ipynb", cells=[])
    assert [f.kind for f in evidence.findings] == [FindingKind.BUNDLE]
    assert "malformed" in evidence.findings[0].message and evidence.findings[0].severity is Severity.ERROR
