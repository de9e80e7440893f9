"""GitHub Classroom: ``prefix-login/`` clones (the prefix is the one the folder names share)."""

from __future__ import annotations

import os

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File


def _looks_like_classroom(files: list[File], context: Context) -> bool:
    """Clones (a ``.git`` folder in each) or at least two folders sharing a ``prefix-``."""
    if context.scan.git_dirs and any(
        f.root.joinpath(*f.rel[: f.wrapper + 1]) in context.scan.git_dirs for f in files
    ):
        return True
    folders = {(f.root, f.rel[f.wrapper]) for f in files if len(f.rel) > f.wrapper + 1}
    return len(folders) >= 2 and any(_classroom_prefix(f, context) for f in files)


# Student.lms names it, so the gradebook exports never take a GitHub login for an LMS username.
@layout("github-classroom", order=60, lms="github-classroom", looks_like=_looks_like_classroom,
        summary="``prefix-login/`` clones (the prefix is the one the folder names share)")
def parse_github_classroom(file: File, context: Context) -> list[Identity] | None:
    """The login: the clone folder's name after the shared assignment prefix."""
    parts = file.rel[file.wrapper:]
    if len(parts) < 2:
        return None
    prefix = _classroom_prefix(file, context)
    if not prefix or not parts[0].startswith(prefix + "-") or len(parts[0]) <= len(prefix) + 1:
        return None
    login = parts[0][len(prefix) + 1:]
    return [Identity(group=f"github:{login.casefold()}", key=login, login=login,
                     filename=file.rel[-1])]


def _classroom_prefix(file: File, context: Context) -> str | None:
    """The assignment prefix the clone folders share (``hw1`` of ``hw1-alice``, ``hw1-bob``)."""
    prefixes = context.cache.setdefault("github-classroom", {})
    if file.root in prefixes:
        return prefixes[file.root]
    folders = sorted({f.rel[f.wrapper] for f in context.scan.files
                      if f.root == file.root and len(f.rel) > f.wrapper + 1})
    prefix: str | None = None
    if len(folders) >= 2:
        common = os.path.commonprefix(folders)
        if "-" in common:
            prefix = common[: common.rindex("-")]
    elif len(folders) == 1 and "-" in folders[0]:
        prefix = folders[0].split("-", 1)[0]  # one clone: logins may hold '-', assignments rarely
    prefixes[file.root] = prefix or None
    return prefix or None
