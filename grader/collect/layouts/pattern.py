"""Pattern: a regular expression (``--pattern``) with named groups ``name``, ``id``, ``login``,
``email``, ``late``, searched in the path relative to the folder or zip."""

from __future__ import annotations

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File


@layout("pattern", order=90, detect=False,
        summary="a regular expression with named groups ``name``, ``id``, ``login``, ``email``, "
                "``late``, searched in the path relative to the folder or zip")
def parse_pattern(file: File, context: Context) -> list[Identity] | None:
    """The student from the pattern's named groups; ``None`` when it does not match or names no one."""
    assert context.pattern is not None
    match = context.pattern.search("/".join(file.rel))
    if not match:
        return None
    found = {k: v for k, v in match.groupdict().items() if v}
    who = found.get("id") or found.get("login") or found.get("email") or found.get("name")
    if not who:
        return None
    key = "_".join(found[k] for k in ("name", "id") if k in found) or found.get("login") or who
    return [Identity(
        group=f"pattern:{who.casefold()}", key=key, student_id=found.get("id"),
        name=found.get("name"), login=found.get("login"), email=found.get("email"),
        late="late" in found, filename=file.rel[-1],
    )]
