"""Blackboard: ``Assignment_user_attempt_YYYY-MM-DD-HH-MM-SS_hw1.ipynb`` with its ``.txt``
receipt, from which the name and submission date are read (shared/research/lms-formats.md §1)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.names import nfc
from grader.collect.scan import File, Scan

BLACKBOARD = re.compile(
    r"^(?P<assignment>.+)_(?P<username>[^_]+)_attempt_(?P<ts>\d{4}(?:-\d{2}){5})(?:_(?P<filename>.+)|\.txt)$"
)


def _notice(path: Path, scan: Scan) -> bool:
    """A receipt (``..._attempt_<ts>.txt``) is kept for its attempt; any Blackboard-named ``.txt``
    is LMS metadata."""
    match = BLACKBOARD.match(nfc(path.name)) if path.suffix.lower() == ".txt" else None
    if not match:
        return False
    if match["filename"] is None:
        scan.metadata.setdefault("blackboard", {})[(path.parent, nfc(path.name)[: -len(".txt")])] = path
    scan.side_files.append(path)
    return True


def _consumes(path: Path) -> bool:
    return bool(BLACKBOARD.match(nfc(path.name)))


@layout("blackboard", order=30, lms="blackboard", notice=_notice, consumes=_consumes,
        summary="``Assignment_user_attempt_YYYY-MM-DD-HH-MM-SS_hw1.ipynb`` with its ``.txt`` "
                "receipt (name and submission date are read from the receipt)")
def parse_blackboard(file: File, context: Context) -> list[Identity] | None:
    """The username and attempt time from the file name; name and time from the receipt."""
    match = BLACKBOARD.match(file.rel[-1])
    if not match or match["filename"] is None:
        return None
    username = match["username"]
    submitted = datetime.strptime(match["ts"], "%Y-%m-%d-%H-%M-%S")
    identity = Identity(group=f"blackboard:{username}", key=username, student_id=username,
                        login=username, submitted_at=submitted, filename=match["filename"])
    stem = f"{match['assignment']}_{username}_attempt_{match['ts']}"
    receipt = context.scan.metadata.get("blackboard", {}).get((file.path.parent, stem))
    if receipt is not None:
        name, login, when = _read_blackboard_receipt(receipt)
        identity.name = name
        if when is not None:
            identity.submitted_at = when
        if login and login != username:
            identity.note = f"the receipt names the user {login!r}, the file name {username!r}"
    return [identity]


def _read_blackboard_receipt(path: Path) -> tuple[str | None, str | None, datetime | None]:
    """Name, username and submission time from the ``.txt`` Blackboard writes beside each
    attempt: ``Name: Alyssa Hacker (hacker)``, ``Date Submitted: Saturday, January 30, 2016
    3:30:10 PM EST``."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return None, None, None
    name = login = None
    when = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key.strip() == "Name" and value:
            found = re.match(r"^(?P<name>.*?)\s*\((?P<login>[^()]+)\)\s*$", value)
            name, login = (found["name"] or None, found["login"]) if found else (value, None)
        elif key.strip() == "Date Submitted" and value:
            when = _parse_blackboard_date(value)
    return name, login, when


def _parse_blackboard_date(text: str) -> datetime | None:
    text = re.sub(r"^[A-Za-z]+,\s*", "", text.strip())  # weekday
    text = text.replace(" o'clock", "")
    text = re.sub(r"\s+[A-Z]{2,5}$", "", text)  # time-zone abbreviation: not parseable reliably
    for form in ("%B %d, %Y %I:%M:%S %p", "%d %B %Y %H:%M:%S", "%B %d, %Y %H:%M:%S",
                 "%Y-%m-%d %H:%M:%S", "%d %B %Y %I:%M:%S %p"):
        try:
            return datetime.strptime(text, form)
        except ValueError:
            continue
    return None

