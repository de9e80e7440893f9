"""Extracting zip archives safely: streamed, counted as written, capped, member by member.

A zip can lie about its sizes, name members outside the target (``../x``, ``..\\x``, ``/etc/x``,
``C:x``), hold symbolic links or be damaged. :func:`extract_archive` refuses a whole archive that
is unreadable, encrypted, has too many members or too much content; with a ``refused`` list, a
member that alone cannot be extracted safely is left out and named there, and the rest is
extracted.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
import zlib
from datetime import datetime
from pathlib import Path
from typing import Callable

from grader.collect.names import first_line as _first_line
from grader.collect.names import human as _human
from grader.collect.names import nfc as _nfc
from grader.errors import ArchiveError

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "DEFAULT_MAX_ARCHIVE_MEMBERS",
    "DEFAULT_MAX_TOTAL_BYTES",
    "extract_archive",
    "extract_counted",
]

# An LMS export of 1,000 notebooks with outputs stays well below this; a zip bomb does not.
DEFAULT_MAX_ARCHIVE_BYTES = 8 * 2**30
DEFAULT_MAX_ARCHIVE_MEMBERS = 200_000
# Several zips (one per section, students' own zips inside) share one budget, so a batch cannot
# fill the disk by spreading a bomb over many archives each under the per-archive cap.
DEFAULT_MAX_TOTAL_BYTES = 8 * 2**30


def extract_archive(archive: Path, target: Path, *, max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
                    max_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
                    max_member_bytes: int | None = None,
                    refused: list[tuple[str, str]] | None = None) -> Path:
    """Extract the zip ``archive`` into the folder ``target`` (replaced if it exists).

    Refuses, with :class:`~grader.errors.ArchiveError` and nothing left behind, an archive that
    is not a readable zip, an encrypted one, one with more than ``max_members`` members, or
    more than ``max_bytes`` of content (counted while extracting too, since a zip can lie about
    its sizes). A member that points outside ``target`` (absolute path, ``..``, also written
    with backslashes), a symlink, a damaged member, or one larger than ``max_member_bytes``
    (when given; zips inside the archive are exempt, they have caps of their own) refuses the
    archive too — unless ``refused`` is a list: then such a member alone is left out, and its
    name and the reason are appended to ``refused``. Every member is streamed to disk, never
    read whole into memory. ``__MACOSX`` folders and ``.DS_Store`` files are left out. Member
    times are kept as file modification times.
    """
    extract_counted(archive, target, max_bytes=max_bytes, max_members=max_members,
                    max_member_bytes=max_member_bytes, refused=refused)
    return target


class _MemberRefused(Exception):
    """One member that cannot be extracted safely; the archive may still be."""


def extract_counted(archive: Path, target: Path, *, max_bytes: int, max_members: int,
                    max_member_bytes: int | None, refused: list[tuple[str, str]] | None,
                    budget: str | None = None) -> int:
    """:func:`extract_archive`, returning the bytes written. ``budget`` says, in the refusal,
    which limit ``max_bytes`` is when it is not the archive's own."""
    name = archive.name
    limit = budget or f"{_human(max_bytes)}, the grader's limit"

    def refuse_member(member: str, why: str) -> None:
        if refused is None:
            raise ArchiveError(f"{name}: the member {member!r} {why}; the archive was refused and "
                               "nothing was extracted.")
        refused.append((member, why))

    try:
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{name} is not a readable zip archive ({_first_line(exc)}).") from None
    with handle:
        members = handle.infolist()
        if len(members) > max_members:
            raise ArchiveError(
                f"{name} holds {len(members):,} entries, more than the {max_members:,} the grader "
                "extracts; the archive was refused."
            )
        plan: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]] = []
        declared = 0
        for info in members:
            raw = _member_name(info)
            try:
                parts = _member_parts(info, raw, name)
            except _MemberRefused as exc:
                refuse_member(raw, str(exc))
                continue
            if parts is None:
                continue
            cap = _member_cap(parts, max_member_bytes)
            if cap is not None and info.file_size > cap:
                refuse_member(raw, f"is {_human(info.file_size)}, more than the {_human(cap)} the "
                                   "grader extracts of one file")
                continue
            declared += info.file_size
            if declared > max_bytes:
                raise ArchiveError(
                    f"{name} would extract to more than {limit} (a damaged archive or a zip "
                    "bomb); the archive was refused."
                )
            plan.append((info, parts, raw))
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        try:
            return _extract_members(handle, plan, target, name, max_bytes, max_member_bytes,
                                    refuse_member, limit)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise


def _member_name(info: zipfile.ZipInfo) -> str:
    raw = info.filename
    if not info.flag_bits & 0x800:
        # Without the UTF-8 flag zipfile decodes names as cp437, but Windows and macOS tools
        # write UTF-8 anyway: 'Ren\u00e9' would come out as 'Ren\u251c\u00ae'.
        try:
            raw = raw.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return raw


def _member_parts(info: zipfile.ZipInfo, raw: str, archive: str) -> tuple[str, ...] | None:
    # Windows tools (PowerShell's Compress-Archive among them) write '\' between folders: it is
    # a separator here, so '..\..\x' is as much a traversal as '../../x'.
    name = _nfc(raw.replace("\\", "/"))
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if (name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts
            or any("\x00" in p for p in parts)):
        raise _MemberRefused("points outside the archive (path traversal)")
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"{archive} is password-protected ({raw!r} is encrypted); upload it without a password."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _MemberRefused("is a symbolic link, which the grader does not extract")
    if info.is_dir() or not parts:
        return None
    if "__MACOSX" in parts or parts[-1] == ".DS_Store":
        return None
    return parts


def _member_cap(parts: tuple[str, ...], max_member_bytes: int | None) -> int | None:
    # A zip inside the archive is extracted in its turn, under the caps of an archive.
    if max_member_bytes is None or parts[-1].lower().endswith(".zip"):
        return None
    return max_member_bytes


def _extract_members(handle: zipfile.ZipFile,
                     plan: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]],
                     target: Path, archive: str, max_bytes: int, max_member_bytes: int | None,
                     refuse_member: Callable[[str, str], None], limit: str) -> int:
    root = target.resolve()
    written = 0
    for info, parts, raw in plan:
        destination = target.joinpath(*parts)
        if not destination.resolve().is_relative_to(root):  # belt and braces after _member_parts
            refuse_member(raw, "points outside the archive")
            continue
        cap = _member_cap(parts, max_member_bytes)
        size = 0
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with handle.open(info) as source, destination.open("wb") as sink:
                # A counting copy: what the member really holds is known only as it is read.
                while chunk := source.read(1 << 20):
                    size += len(chunk)
                    if written + size > max_bytes:
                        raise ArchiveError(
                            f"{archive} extracts to more than {limit} although it says "
                            "otherwise (a zip bomb?); the archive was refused."
                        )
                    if cap is not None and size > cap:
                        raise _MemberRefused(
                            f"holds more than the {_human(cap)} the grader extracts of one file "
                            f"although it says {_human(info.file_size)}")
                    sink.write(chunk)
        except ArchiveError:
            raise
        except _MemberRefused as exc:
            destination.unlink(missing_ok=True)
            refuse_member(raw, str(exc))
            continue
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
                OSError) as exc:
            _remove_file(destination)
            refuse_member(raw, f"is damaged or uses an unsupported compression ({_first_line(exc)})")
            continue
        written += size
        try:
            stamp = datetime(*info.date_time).timestamp()
            os.utime(destination, (stamp, stamp))
        except (ValueError, OSError, OverflowError):
            pass
    return written


def _remove_file(path: Path) -> None:
    try:
        if path.is_file() and not path.is_symlink():
            path.unlink()
    except OSError:
        pass
