"""Untrusted text made safe to print to a terminal or to write as one line of a log.

File names, LMS names and messages that quote them come from students. A name may hold an
escape sequence (``\\x1b]0;...`` retitles the instructor's terminal, ``\\x1b[2J`` clears it), a
carriage return that overwrites what was printed, or a newline that forges a line of
``grading.log``. :func:`printable` writes every such character the way Python's ``repr`` does,
so the instructor still sees that it was there::

    >>> printable("alice\\x1b[2J.ipynb")
    'alice\\\\x1b[2J.ipynb'
    >>> printable("a\\nb")
    'a\\\\nb'
"""

from __future__ import annotations

import logging
import re

__all__ = ["printable", "escape_log_records"]

# C0 controls, DEL and C1 controls (a terminal takes \x9b as the start of an escape sequence),
# and the bidirectional overrides that make a name read differently from what it is.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """``str(text)`` with control characters written as ``\\x1b``, ``\\n``, ``\\u202e``.

    With ``newlines=True`` line breaks are kept (a multi-line message for a terminal); never
    for a line of a log file, where a newline would start a forged line.
    """
    pattern = _CONTROL_BUT_NEWLINE if newlines else _CONTROL
    text = "" if text is None else str(text)
    return pattern.sub(_escape, text)


class _EscapeControls(logging.Filter):
    """Escapes control characters in a record's message: log lines quote paths a kernel chose."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = printable(message, newlines=True)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


_FILTER = _EscapeControls()


def escape_log_records() -> None:
    """Escape control characters in every log message the grader's handlers print.

    Installed on the root logger's handlers and on :data:`logging.lastResort` (what prints
    warnings when no handler is configured); calling it again adds nothing.
    """
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
