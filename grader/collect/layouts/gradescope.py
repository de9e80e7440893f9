"""Gradescope: ``submission_metadata.yml`` beside ``submission_<id>/`` folders; the metadata
names the submitters (several for a group submission) and the submission time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.names import first_line, text_or_none
from grader.collect.scan import File, Scan

GRADESCOPE_METADATA = "submission_metadata.yml"


def _notice(path: Path, scan: Scan) -> bool:
    """Read the metadata file while scanning: the parser looks each folder up in it."""
    if path.name != GRADESCOPE_METADATA:
        return False
    import yaml  # only Gradescope exports need it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        scan.skipped.append((path, f"unreadable Gradescope metadata: {first_line(exc)}"))
        return True
    if not isinstance(data, dict):
        scan.skipped.append((path, "unreadable Gradescope metadata: not a mapping"))
        return True
    scan.side_files.append(path)
    folders = scan.metadata.setdefault("gradescope", {})
    for folder, entry in data.items():
        if isinstance(entry, dict):
            folders[path.parent / str(folder)] = entry
    return True


def _consumes(path: Path) -> bool:
    return path.name == GRADESCOPE_METADATA


@layout("gradescope", order=10, lms="gradescope", notice=_notice, consumes=_consumes,
        summary="``submission_metadata.yml`` beside ``submission_<id>/`` folders")
def parse_gradescope(file: File, context: Context) -> list[Identity] | None:
    """One identity per submitter of the folder the file sits in, as the metadata names them."""
    folders = context.scan.metadata.get("gradescope", {})
    for folder in file.path.parents:
        entry = folders.get(folder)
        if entry is not None:
            break
    else:
        return None
    submitters = [s for s in _field(entry, "submitters") or [] if isinstance(s, dict)]
    created = _field(entry, "created_at")
    when = created if isinstance(created, datetime) else _parse_iso(created)
    names = [str(_field(s, "name") or _field(s, "sid") or "?") for s in submitters]
    identities = []
    for index, submitter in enumerate(submitters or [{}]):
        name = text_or_none(_field(submitter, "name"))
        sid = text_or_none(_field(submitter, "sid"))
        email = text_or_none(_field(submitter, "email"))
        who = sid or email or name or folder.name
        others = [n for i, n in enumerate(names) if i != index]
        identities.append(Identity(
            group=f"gradescope:{who}",
            key="_".join(p for p in (name, sid) if p) or (email or folder.name).split("@")[0],
            student_id=sid, name=name, email=email, submitted_at=when, filename=file.rel[-1],
            note=f"group submission ({folder.name}) with {', '.join(others)}" if others else None,
        ))
    return identities


def _field(entry: Any, name: str) -> Any:
    # Gradescope writes Ruby symbols as keys (':submitters'); accept plain keys too.
    if not isinstance(entry, dict):
        return None
    return entry.get(f":{name}", entry.get(name))


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None
