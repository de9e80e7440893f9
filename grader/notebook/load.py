"""Reading one submitted file as a notebook: the *load* stage.

Students submit all kinds of files under the name ``.ipynb``: empty files, a PDF export, a zip,
a ``.py`` script, JSON cut in half by a git merge conflict, notebooks from 2015 in nbformat 3,
files that were hand-edited until the schema no longer holds. :func:`load_notebook` turns every
one of them into either a clean nbformat-4 notebook in which every cell has an id (the recorder
maps cells by id), or a :class:`~grader.errors.NotebookError` whose message tells the student what
is wrong and what to do. It never lets a traceback through.

Upgrades that change the file (nbformat 3 → 4, cell ids added to a 4.0–4.4 notebook) are told as
notes, kept in the notebook's metadata so that they travel with it::

    >>> nb = load_notebook(Path("old.ipynb"))      # doctest: +SKIP
    >>> load_notes(nb)                              # doctest: +SKIP
    ['The notebook was written in nbformat 3 (IPython before 2015); the grader converted it
    to nbformat 4.']
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import nbformat

from grader.errors import NotebookError

try:  # optional: a faster JSON reader (see _fast_json)
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = ["load_notebook", "load_notes", "read_notebook_bytes", "DEFAULT_MAX_BYTES", "NOTES_KEY"]

DEFAULT_MAX_BYTES = 100 * 2**20

# Where load notes live in ``nb.metadata``: a key of our own, so no tool we know of collides.
NOTES_KEY = "nn_grader"

_HOW_TO_SAVE = (
    "In Jupyter use File > Save, then File > Download (or upload the .ipynb file from your "
    "project folder)."
)

# Leading bytes of the files that most often arrive renamed to .ipynb.
_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (or a Word/Excel/PowerPoint document, which are zips too)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5 weights?)"),
]

# git writes these at the start of a line; a JSON string cannot span lines, so a line that
# starts with one of them can never belong to valid JSON.
_CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7}|\|{7})(?:\s|$)", re.MULTILINE)

_PYTHON_START = re.compile(
    r"^\s*(?:#|\"\"\"|\'\'\'|%|import\s|from\s+\S+\s+import\s|def\s|class\s|print\s*\("
    r"|[A-Za-z_]\w*\s*=[^=])"
)


def load_notebook(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                  full_schema: bool = True, data: bytes | None = None) -> nbformat.NotebookNode:
    """Read ``path`` as a Jupyter notebook, or say precisely why it is not one.

    Returns an nbformat-4 ``NotebookNode`` in which every cell has a unique ``id``. Conversions
    the grader made (nbformat 3 → 4, cell ids added) are listed by :func:`load_notes`.

    ``full_schema=True`` (the default, and what executed mode uses: the notebook goes on to
    nbclient and is written back) validates against the whole nbformat schema.
    ``full_schema=False`` (static mode, which only reads) checks just the structure the grader
    reads — the cells list, ``cell_type``, ``source``, each code cell's ``outputs`` and their
    ``output_type`` and text fields — and refuses a file that breaks it with the same kind of
    error. Neither decodes embedded images.

    ``data``: the file's bytes as :func:`read_notebook_bytes` returned them, when the caller
    also hashes them (the file is then read once: what is hashed is what is graded).

    Raises :class:`~grader.errors.NotebookError` (``kind="invalid_notebook"``) for every file
    that cannot be graded; ``error.line`` is set when a line number is known (JSON syntax
    errors, merge-conflict markers).
    """
    path = Path(path)
    if data is None:
        data = read_notebook_bytes(path, max_bytes)
    raw = _fast_json(data)
    if raw is None:
        raw = _parse_json(_decode(data))
    notes: list[str] = []
    nb = _as_notebook(raw, notes)
    _give_cells_ids(nb, converted=raw.get("nbformat") != 4)
    if full_schema:
        _check_schema(nb)
    else:
        _check_structure(nb)
    _check_code_cells(nb)
    if notes:
        nb.metadata.setdefault(NOTES_KEY, {})["notes"] = notes
    return nb


def load_notes(nb: nbformat.NotebookNode) -> list[str]:
    """What :func:`load_notebook` changed while reading ``nb`` (empty when nothing)."""
    grader_meta = nb.get("metadata", {}).get(NOTES_KEY, {})
    notes = grader_meta.get("notes", []) if isinstance(grader_meta, dict) else []
    return [str(note) for note in notes] if isinstance(notes, list) else []


# ---------------------------------------------------------------------------------------------
# Bytes → text


def read_notebook_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of the notebook file at ``path``; raises :class:`~grader.errors.NotebookError`
    (what :func:`load_notebook` says) for a folder, a missing, unreadable, oversized or empty file."""
    path = Path(path)
    try:
        if path.is_dir():
            raise NotebookError(f"{path.name} is a folder, not a notebook file.")
        size = path.stat().st_size
        if size > max_bytes:
            raise NotebookError(
                f"The file is {_human_size(size)}; the grader reads notebooks up to "
                f"{_human_size(max_bytes)}. Clear the outputs (Kernel > Restart & Clear Output), "
                "remove embedded data or images, save, and submit again.",
                kind="invalid_notebook",
            )
        with path.open("rb") as handle:
            # Read one byte past the cap: the file may have grown since stat().
            data = handle.read(max_bytes + 1)
    except NotebookError:
        raise
    except FileNotFoundError:
        raise NotebookError(f"The file {path} does not exist.") from None
    except PermissionError:
        raise NotebookError(f"The file {path} cannot be read (permission denied).") from None
    except OSError as exc:
        raise NotebookError(f"The file {path} cannot be read: {exc.strerror or exc}.") from None
    if len(data) > max_bytes:
        raise NotebookError(
            f"The file is larger than {_human_size(max_bytes)}, the most the grader reads."
        )
    if not data or data.isspace():  # isspace: no copy of a file of megabytes
        what = "empty (0 bytes)" if not data else "blank (only whitespace)"
        raise NotebookError(
            f"The file is {what}: the notebook was probably not saved before it was uploaded. "
            + _HOW_TO_SAVE
        )
    return data


def _decode(data: bytes) -> str:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise NotebookError(
                f"This file is {what}, not a Jupyter notebook, although its name may end in "
                f".ipynb. Submit the notebook itself. {_HOW_TO_SAVE}"
            )
    # JSON may legally be UTF-16/32 (Windows editors write it with a byte-order mark).
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise NotebookError(
                    f"The file starts like {codec.upper()} text but byte {exc.start} cannot be "
                    "decoded. Save the notebook again from Jupyter."
                ) from None
    head = data[:8192]
    if b"\x00" in head or _control_ratio(head) > 0.1:
        raise NotebookError(
            "This is a binary file, not a Jupyter notebook (a notebook is a text file in JSON "
            f"format). Submit the .ipynb file. {_HOW_TO_SAVE}"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if sum(1 for byte in head if byte >= 0x80) > len(head) * 0.3:
            raise NotebookError(
                "This is a binary file, not a Jupyter notebook (a notebook is a text file in "
                f"JSON format). Submit the .ipynb file. {_HOW_TO_SAVE}"
            ) from None
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotebookError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); Jupyter "
            "always saves notebooks as UTF-8, so the file was changed by another program. "
            "Save it again from Jupyter.",
            line=line,
        ) from None


def _control_ratio(head: bytes) -> float:
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 12, 13))
    return controls / max(len(head), 1)


# ---------------------------------------------------------------------------------------------
# Text → JSON


def _fast_json(data: bytes) -> Any:
    """The file's JSON by orjson when it is installed and accepts the file, else ``None``.

    orjson reads UTF-8 bytes at about twice the speed of :mod:`json` on notebooks with
    megabytes of saved logs. It is stricter (no NaN, no lone surrogates, no BOM), so whatever
    it accepts :func:`_decode` and :func:`_parse_json` accept with the same result; whatever it
    refuses goes that way and gets their messages.
    """
    if _orjson is None:
        return None
    try:
        return _orjson.loads(data)
    except Exception:  # orjson.JSONDecodeError, or its recursion limit
        return None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        # Only a file that is not JSON is searched for merge-conflict markers: a line that
        # starts with one can never be part of valid JSON, and the search costs more than the
        # parse on a notebook of a few megabytes of saved training logs.
        pass
    marker = _CONFLICT_MARKER.search(text)
    if marker:
        line = text.count("\n", 0, marker.start()) + 1
        raise NotebookError(
            f"The file contains unresolved git merge-conflict markers (the first, "
            f"'{marker.group(1)}', is on line {line}), so it is not valid JSON and Jupyter cannot "
            "open it. Resolve the conflict: keep one version of each conflicting part and delete "
            "the lines starting with <<<<<<<, ======= and >>>>>>> (or run "
            "`git checkout --ours FILE` / `--theirs FILE`), check that the notebook opens in "
            "Jupyter, and submit again.",
            line=line,
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(_not_json_message(text, exc), line=exc.lineno) from None
    except RecursionError:
        raise NotebookError(
            "The file is JSON nested too deeply to be a notebook."
        ) from None


def _not_json_message(text: str, exc: json.JSONDecodeError) -> str:
    stripped = text.lstrip()
    first_line = stripped.splitlines()[0] if stripped else ""
    lower = stripped[:200].lower()
    if lower.startswith(("<!doctype html", "<html")):
        return (
            "This is an HTML page (perhaps the notebook exported as HTML), not the notebook "
            f"itself. Submit the .ipynb file. {_HOW_TO_SAVE}"
        )
    if lower.startswith("{\\rtf"):
        return "This is a rich-text (RTF) document, not a Jupyter notebook. Submit the .ipynb file."
    if not stripped.startswith(("{", "[")) and _PYTHON_START.match(first_line):
        return (
            "This file looks like Python source code (a .py script), not a Jupyter notebook. "
            "Submit the notebook (.ipynb) you worked in; if you only have the script, paste it "
            "into a new notebook's cells and save that."
        )
    if not stripped.startswith(("{", "[")):
        return (
            "This file is plain text, not a Jupyter notebook (a notebook is JSON and starts "
            f"with '{{'). The first line reads: {_clip(first_line, 60)!r}. {_HOW_TO_SAVE}"
        )
    lines = text.splitlines()
    context = ""
    if 0 < exc.lineno <= len(lines):
        context = f" The line reads: {_clip(lines[exc.lineno - 1].strip(), 80)!r}."
    # A notebook ends with '}'; one that does not was cut off (disk full, upload interrupted).
    truncated = stripped.startswith("{") and not text.rstrip().endswith("}")
    hint = (
        " The file ends too early: it was probably cut off while saving or uploading."
        if truncated
        else " The file was probably edited outside Jupyter."
    )
    return (
        f"The file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        f"{context}{hint} Open it in Jupyter (or restore an earlier version), save, and submit "
        "again."
    )


# ---------------------------------------------------------------------------------------------
# JSON → notebook


def _as_notebook(raw: Any, notes: list[str]) -> nbformat.NotebookNode:
    if not isinstance(raw, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number",
                bool: "true/false"}.get(type(raw), "null" if raw is None else type(raw).__name__)
        raise NotebookError(
            f"The file is valid JSON but holds {kind}, not a notebook (a notebook is a JSON object "
            f"with 'cells' and 'nbformat'). {_HOW_TO_SAVE}"
        )
    version = raw.get("nbformat")
    if version is None:
        if "cells" in raw or "worksheets" in raw:
            raise NotebookError(
                "The file has cells but no 'nbformat' key, so it is not a complete Jupyter "
                "notebook (it was probably written by another tool or edited by hand). Open it "
                "in Jupyter and save it again."
            )
        keys = ", ".join(repr(k) for k in list(raw)[:5]) or "none"
        raise NotebookError(
            "The file is valid JSON but not a Jupyter notebook: it has no 'cells' and no "
            f"'nbformat' (its top-level keys: {keys}). {_HOW_TO_SAVE}"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise NotebookError(
            f"The notebook's 'nbformat' is {version!r}; it must be a whole number such as 4. "
            "Open it in Jupyter and save it again."
        )
    if version > 4:
        raise NotebookError(
            f"The notebook is in nbformat {version}, newer than this grader reads (4). Save it "
            "with a current Jupyter release, or update the grader."
        )
    minor = raw.get("nbformat_minor", 0)
    if version == 4 and (isinstance(minor, bool) or not isinstance(minor, int) or minor < 0):
        raise NotebookError(
            "The notebook's 'nbformat_minor' is missing or not a whole number; the file was "
            "edited outside Jupyter. Open it in Jupyter and save it again."
        )
    if version == 4:
        _check_cells_shape(raw.get("cells"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if version == 4:
                # Joined on the plain JSON first: a saved training log is thousands of one-line
                # strings, and nbformat's NotebookNode conversion would visit each of them.
                _join_lines(raw)
            # nbformat's own reader step: joins multi-line sources, drops transient fields.
            nb = nbformat.versions[version].to_notebook_json(raw, minor=minor)
            if version < 4:
                nb = nbformat.convert(nb, 4)
    except Exception as exc:  # nbformat's readers and converters raise anything on odd input
        if version < 4:
            raise NotebookError(
                f"The notebook is in nbformat {version} (IPython before 2015) and could not be "
                f"converted to nbformat 4 ({_clip(str(exc), 120)}). Open it in a current Jupyter, "
                "which converts it, save, and submit again."
            ) from None
        raise NotebookError(
            f"The notebook's structure is damaged ({_clip(str(exc), 120)}). Open it in Jupyter "
            "and save it again."
        ) from None
    if version < 4:
        nb.metadata.pop("orig_nbformat", None)
        nb.metadata.pop("orig_nbformat_minor", None)
        notes.append(
            f"The notebook was written in nbformat {version} (IPython before 2015); the grader "
            "converted it to nbformat 4."
        )
        _check_cells_shape(nb.get("cells"))
    elif nb.nbformat_minor < 5:
        # Cell ids arrived in nbformat 4.5, and the recorder maps cells by id. Raising the minor
        # version is all nbformat's own 4.x upgrade does besides adding ids (which
        # _give_cells_ids does, deterministically). Done before validation, because tools that
        # write ids into a 4.4 file would otherwise fail the 4.4 schema for a field we want.
        # No note: course templates are saved in 4.4, so every student would get a notice about
        # something that changes nothing they wrote.
        nb.nbformat_minor = 5
    return nb


def _check_cells_shape(cells: Any) -> None:
    if not isinstance(cells, list):
        raise NotebookError(
            "The notebook has no 'cells' list, so there is nothing to run. Open it in Jupyter "
            "and save it again."
        )
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise NotebookError(
                f"Cell {index} of the notebook is not a cell object; the file was damaged. Open "
                "it in Jupyter and save it again."
            )


def _join_lines(raw: dict[str, Any]) -> None:
    """nbformat's ``rejoin_lines`` on plain JSON (in place), with the same results and the same
    failures (a source list holding a number raises ``TypeError``)."""
    for cell in raw.get("cells") or []:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        attachments = cell.get("attachments")
        if isinstance(attachments, dict):
            for bundle in attachments.values():
                if isinstance(bundle, dict):
                    _join_bundle(bundle)
        outputs = cell.get("outputs")
        if cell.get("cell_type") != "code" or not isinstance(outputs, list):
            continue
        for output in outputs:
            if not isinstance(output, dict):
                continue
            kind = output.get("output_type", "")
            if kind in ("execute_result", "display_data"):
                if isinstance(output.get("data"), dict):
                    _join_bundle(output["data"])
            elif kind and isinstance(output.get("text"), list):
                output["text"] = "".join(output["text"])


def _join_bundle(data: dict[str, Any]) -> None:
    for key, value in data.items():
        json_mime = key == "application/json" or (
            key.startswith("application/") and key.endswith("+json"))
        if not json_mime and isinstance(value, list) and all(isinstance(v, str) for v in value):
            data[key] = "".join(value)


_CELL_TYPES = ("code", "markdown", "raw")
_OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")


def _check_structure(nb: nbformat.NotebookNode) -> None:
    """The part of the nbformat schema the grader relies on when it only reads the notebook.

    A few checks per cell instead of the whole schema: what the static parsers, the
    placeholder finder and the selectors read must have the type they expect.
    """
    problem = _structure_problem(nb)
    if problem:
        raise NotebookError(
            f"The notebook does not follow the Jupyter notebook format: {problem}. "
            "It was probably edited outside Jupyter. Open it in Jupyter, save it again, and "
            "submit that file."
        )


def _structure_problem(nb: nbformat.NotebookNode) -> str | None:
    for index, cell in enumerate(nb.cells):
        where = f"cell {index}"
        cell_type = cell.get("cell_type")
        if cell_type not in _CELL_TYPES:
            return f"{where}, cell_type: {_clip(repr(cell_type), 40)} is not one of 'code', " \
                   "'markdown', 'raw'"
        if not isinstance(cell.get("source"), str):
            return f"{where}: 'source' is missing or not text"
        if not isinstance(cell.get("metadata", {}), dict):
            return f"{where}, metadata: is not an object"
        if cell_type != "code":
            continue
        outputs = cell.get("outputs")
        if not isinstance(outputs, list):
            return f"{where}: a code cell needs an 'outputs' list"
        for number, output in enumerate(outputs):
            at = f"{where}, outputs[{number}]"
            if not isinstance(output, dict):
                return f"{at}: is not an object"
            kind = output.get("output_type")
            if kind not in _OUTPUT_TYPES:
                return f"{at}.output_type: {_clip(repr(kind), 40)} is not one of " \
                       "'stream', 'display_data', 'execute_result', 'error'"
            if kind == "stream" and not (isinstance(output.get("text"), str)
                                         and isinstance(output.get("name"), str)):
                return f"{at}: a stream output needs a 'name' and a 'text'"
            if kind in ("display_data", "execute_result") and not isinstance(output.get("data"), dict):
                return f"{at}.data: is missing or not an object"
            if kind == "error" and not (isinstance(output.get("ename"), str)
                                        and isinstance(output.get("evalue"), str)
                                        and isinstance(output.get("traceback"), list)):
                return f"{at}: an error output needs 'ename', 'evalue' and a 'traceback' list"
    return None


def _check_schema(nb: nbformat.NotebookNode) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookError(
            f"The notebook does not follow the Jupyter notebook format: {_schema_problem(exc)}. "
            "It was probably edited outside Jupyter. Open it in Jupyter, save it again, and "
            "submit that file."
        ) from None
    except Exception as exc:  # a damaged structure can trip the validator itself
        raise NotebookError(
            f"The notebook's structure is damaged ({type(exc).__name__}: {_clip(str(exc), 100)}). "
            "Open it in Jupyter, save it again, and submit that file."
        ) from None


def _schema_problem(exc: Exception) -> str:
    path = list(getattr(exc, "absolute_path", []) or [])
    message = str(getattr(exc, "message", "") or exc).splitlines()[0]
    where = ""
    if len(path) >= 2 and path[0] == "cells" and isinstance(path[1], int):
        where = f"cell {path[1]}"
        rest = path[2:]
        if rest:
            field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest)
            where += ", " + field.lstrip(".")
    elif path:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"{where}: {_clip(message, 160)}" if where else _clip(message, 160)


_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # the nbformat 4.5 schema's rule


def _give_cells_ids(nb: nbformat.NotebookNode, *, converted: bool) -> None:
    """Every cell gets a unique, valid id; ids the file already has are kept.

    Missing, malformed and repeated ids are replaced by ``cell-<index>``: deterministic, so
    two reads of the same file agree (nbformat's own repair draws random ids), and readable in
    reports. A notebook converted from nbformat 3 had no ids: the converter's are replaced.
    """
    kept: set[str] = set()
    if not converted:
        for cell in nb.cells:
            cell_id = cell.get("id")
            if isinstance(cell_id, str) and _CELL_ID.match(cell_id) and cell_id not in kept:
                kept.add(cell_id)
            else:
                cell.pop("id", None)
    else:
        for cell in nb.cells:
            cell.pop("id", None)
    for index, cell in enumerate(nb.cells):
        if "id" in cell:
            continue
        candidate, extra = f"cell-{index}", 0
        while candidate in kept:
            extra += 1
            candidate = f"cell-{index}-{extra}"
        cell["id"] = candidate
        kept.add(candidate)


def _check_code_cells(nb: nbformat.NotebookNode) -> None:
    code = [cell for cell in nb.cells if cell.get("cell_type") == "code"]
    if not code:
        count = len(nb.cells)
        described = (
            f"its {count} cell{'s are' if count != 1 else ' is'} markdown or raw text"
            if count
            else "it has no cells at all"
        )
        raise NotebookError(
            f"The notebook has no code cells ({described}), so there is nothing to run. Submit "
            "the notebook with your code."
        )
    if all(not str(cell.get("source", "")).strip() for cell in code):
        which = "The only code cell" if len(code) == 1 else f"All {len(code)} code cells"
        raise NotebookError(
            f"{which} of the notebook {'is' if len(code) == 1 else 'are'} empty, so there is "
            "nothing to run. Was this the blank template? Submit the notebook with your code."
        )


# ---------------------------------------------------------------------------------------------


def _human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} bytes"  # pragma: no cover


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
