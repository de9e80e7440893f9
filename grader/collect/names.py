"""Names the collect stage makes and shows: students' keys (folder names), composed Unicode,
sizes and first lines of errors."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["RESERVED_NAMES", "student_key"]

# What the grader writes beside the students' folders in the output folder: a student's key
# (which names their folder) must never be one of these, or the two overwrite each other.
RESERVED_NAMES = frozenset({"index.html", "exports", "manual_scores.jsonl"})
# Names Windows keeps for devices, with any extension: no folder can be called "CON.ipynb".
_WINDOWS_DEVICES = re.compile(r"^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\..*)?$", re.IGNORECASE)


def student_key(text: str) -> str:
    """A student's name or id made safe as a folder name on every system.

    Letters (any script), digits, ``-``, ``_`` and inner dots survive; everything else becomes
    ``_``; never empty, never dots only, never hidden, never a name the grader writes beside the
    students' folders (:data:`RESERVED_NAMES`: ``index.html``, ``exports``) or one Windows keeps
    for a device (``CON``, ``nul.txt``): those get a ``student_`` prefix.
    ``student_key("Doe, Jane / 42") == "Doe_Jane_42"``, ``student_key("index.html") ==
    "student_index.html"``.
    """
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[^\w.\-]+", "_", text)
    text = re.sub(r"_{2,}", "_", text).strip("._- ")
    key = text[:80].rstrip("._-") or "student"
    if key.casefold() in RESERVED_NAMES or _WINDOWS_DEVICES.match(key):
        key = f"student_{key}"
    return key


def nfc(text: str) -> str:
    """``text`` composed: macOS writes names decomposed (NFD); compare and show them composed."""
    return unicodedata.normalize("NFC", text)


def text_or_none(value: Any) -> str | None:
    """``value`` as stripped text, ``None`` when it is missing or blank."""
    return str(value).strip() or None if value is not None else None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def human(size: int) -> str:
    """A byte count as people read it: ``512 bytes``, ``1.5 MB``."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} bytes"  # pragma: no cover
