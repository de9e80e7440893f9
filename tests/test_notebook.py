"""The load stage: every bad file becomes a NotebookError a student can act on, never a traceback."""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat import v3, v4

from grader.errors import NotebookError
from grader.notebook.load import load_notebook, load_notes


def _notebook_text(*cells) -> str:
    cells = cells or (v4.new_markdown_cell("# Lab 1"), v4.new_code_cell("x = 1"))
    return nbformat.writes(v4.new_notebook(cells=list(cells)))


def _write(tmp_path: Path, content: str | bytes, name: str = "hw1.ipynb") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _error(path: Path, **kwargs) -> NotebookError:
    with pytest.raises(NotebookError) as info:
        load_notebook(path, **kwargs)
    assert info.value.kind == "invalid_notebook"
    return info.value


def test_valid_notebook_loads_with_every_cell_having_a_unique_id(tmp_path):
    nb = load_notebook(_write(tmp_path, _notebook_text()))
    assert nb.nbformat == 4 and nb.nbformat_minor >= 5
    ids = [cell.id for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids)
    assert load_notes(nb) == []


def test_multiline_sources_are_joined_into_text(tmp_path):
    raw = json.loads(_notebook_text(v4.new_code_cell("a = 1\nb = 2\n")))
    raw["cells"][0]["source"] = ["a = 1\n", "b = 2\n"]
    nb = load_notebook(_write(tmp_path, json.dumps(raw)))
    assert nb.cells[0].source == "a = 1\nb = 2\n"


def test_empty_file_is_refused_as_empty(tmp_path):
    assert "empty (0 bytes)" in str(_error(_write(tmp_path, "")))


def test_whitespace_only_file_is_refused_as_blank(tmp_path):
    assert "blank" in str(_error(_write(tmp_path, "  \n\n")))


def test_merge_conflict_markers_are_named_with_the_line_of_the_first_marker(tmp_path):
    lines = _notebook_text().splitlines(keepends=True)
    broken = lines[:6] + ["<<<<<<< HEAD\n"] + lines[6:9] + ["=======\n"] + lines[6:9]
    broken += [">>>>>>> feature\n"] + lines[9:]
    error = _error(_write(tmp_path, "".join(broken)))
    assert error.line == 7
    assert "merge-conflict" in str(error) and "line 7" in str(error)
    assert "Resolve the conflict" in str(error)


def test_truncated_json_is_reported_as_cut_off_with_line_and_column(tmp_path):
    text = _notebook_text()
    error = _error(_write(tmp_path, text[: len(text) // 2]))
    assert "not valid JSON" in str(error)
    assert "cut off" in str(error)
    assert error.line is not None and f"line {error.line}, column" in str(error)


def test_missing_comma_is_reported_with_line_column_and_the_line_text(tmp_path):
    text = _notebook_text().replace('"cell_type": "code",', '"cell_type": "code"', 1)
    error = _error(_write(tmp_path, text))
    assert "Expecting ',' delimiter" in str(error)
    assert f"line {error.line}, column" in str(error)
    assert "execution_count" in str(error)  # the line it stopped at is quoted
    assert "cut off" not in str(error)


def test_json_list_is_not_a_notebook(tmp_path):
    assert "holds a list" in str(_error(_write(tmp_path, "[1, 2, 3]")))


def test_json_object_without_cells_names_its_keys(tmp_path):
    error = _error(_write(tmp_path, json.dumps({"loss": 0.3, "accuracy": 0.9})))
    assert "not a Jupyter notebook" in str(error) and "'loss'" in str(error)


def test_cells_without_nbformat_key_are_refused(tmp_path):
    raw = json.loads(_notebook_text())
    del raw["nbformat"]
    assert "no 'nbformat' key" in str(_error(_write(tmp_path, json.dumps(raw))))


def test_nbformat_3_is_converted_and_the_conversion_is_noted(tmp_path):
    old = v3.new_notebook(
        worksheets=[v3.new_worksheet(cells=[v3.new_text_cell("markdown", source="# Lab"),
                                            v3.new_code_cell(input="x = 1")])]
    )
    nb = load_notebook(_write(tmp_path, v3.nbjson.writes(old)))
    assert nb.nbformat == 4
    assert [cell.cell_type for cell in nb.cells] == ["markdown", "code"]
    assert nb.cells[1].source == "x = 1"
    assert all(cell.get("id") for cell in nb.cells)
    assert any("nbformat 3" in note for note in load_notes(nb))


def test_nbformat_3_that_cannot_be_converted_is_a_precise_error(tmp_path):
    broken = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": "not a list"}
    error = _error(_write(tmp_path, json.dumps(broken)))
    assert "nbformat 3" in str(error) and "converted" in str(error)


def test_newer_nbformat_than_4_is_refused(tmp_path):
    raw = json.loads(_notebook_text())
    raw["nbformat"] = 5
    assert "nbformat 5" in str(_error(_write(tmp_path, json.dumps(raw))))


def test_nbformat_4_4_notebook_gets_cell_ids_without_a_notice_to_the_student(tmp_path):
    raw = json.loads(_notebook_text())
    raw["nbformat_minor"] = 4
    for cell in raw["cells"]:
        del cell["id"]
    nb = load_notebook(_write(tmp_path, json.dumps(raw)))
    assert nb.nbformat_minor == 5
    assert all(cell.get("id") for cell in nb.cells)
    assert load_notes(nb) == []  # the course templates are 4.4: nothing the student did


def test_missing_cell_ids_in_4_5_are_added_without_error(tmp_path):
    raw = json.loads(_notebook_text())
    for cell in raw["cells"]:
        del cell["id"]
    nb = load_notebook(_write(tmp_path, json.dumps(raw)))
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids) and len(set(ids)) == 2


def test_duplicate_cell_ids_are_made_unique_keeping_the_first(tmp_path):
    raw = json.loads(_notebook_text())
    raw["cells"][1]["id"] = raw["cells"][0]["id"]
    nb = load_notebook(_write(tmp_path, json.dumps(raw)))
    assert nb.cells[0].id == raw["cells"][0]["id"]
    assert nb.cells[1].id == "cell-1"


def test_malformed_cell_id_is_replaced_not_an_error(tmp_path):
    raw = json.loads(_notebook_text())
    raw["cells"][0]["id"] = "has spaces and is far too long " * 3
    nb = load_notebook(_write(tmp_path, json.dumps(raw)))
    assert nb.cells[0].id == "cell-0"


def test_added_cell_ids_are_the_same_on_every_read(tmp_path):
    raw = json.loads(_notebook_text())
    for cell in raw["cells"]:
        del cell["id"]
    path = _write(tmp_path, json.dumps(raw))
    first, second = load_notebook(path), load_notebook(path)
    assert [c.id for c in first.cells] == [c.id for c in second.cells] == ["cell-0", "cell-1"]


def test_existing_cell_ids_are_kept(tmp_path):
    raw = json.loads(_notebook_text())
    nb = load_notebook(_write(tmp_path, json.dumps(raw)))
    assert [c.id for c in nb.cells] == [c["id"] for c in raw["cells"]]


def test_notebook_without_code_cells_is_refused(tmp_path):
    text = _notebook_text(v4.new_markdown_cell("# Answers"), v4.new_markdown_cell("42"))
    assert "no code cells" in str(_error(_write(tmp_path, text)))


def test_notebook_with_no_cells_at_all_is_refused(tmp_path):
    text = nbformat.writes(v4.new_notebook(cells=[]))
    assert "no cells at all" in str(_error(_write(tmp_path, text)))


def test_notebook_whose_code_cells_are_all_empty_is_refused(tmp_path):
    text = _notebook_text(v4.new_code_cell(""), v4.new_code_cell("   \n"))
    assert "All 2 code cells" in str(_error(_write(tmp_path, text)))


def test_python_script_renamed_to_ipynb_is_recognised(tmp_path):
    error = _error(_write(tmp_path, "import numpy as np\n\nmodel = build()\n"))
    assert "Python source code" in str(error)


def test_plain_text_file_quotes_its_first_line(tmp_path):
    error = _error(_write(tmp_path, "My answers are below.\n1. yes\n"))
    assert "plain text" in str(error) and "My answers are below." in str(error)


def test_pdf_renamed_to_ipynb_is_recognised(tmp_path):
    assert "PDF document" in str(_error(_write(tmp_path, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")))


def test_zip_renamed_to_ipynb_is_recognised(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hw1.ipynb", _notebook_text())
    assert "zip archive" in str(_error(_write(tmp_path, buffer.getvalue())))


def test_unknown_binary_file_is_recognised_as_binary(tmp_path):
    rng = random.Random(0)
    data = bytes(rng.randrange(256) for _ in range(4096))
    assert "binary file" in str(_error(_write(tmp_path, data)))


def test_html_export_is_recognised(tmp_path):
    error = _error(_write(tmp_path, "<!DOCTYPE html>\n<html><body>notebook</body></html>"))
    assert "HTML" in str(error)


def test_non_utf8_text_names_the_byte_and_line(tmp_path):
    error = _error(_write(tmp_path, '{\n"a": "caf\xe9"}'.encode("latin-1")))
    assert "not UTF-8" in str(error) and "0xe9" in str(error) and error.line == 2


def test_utf16_notebook_with_byte_order_mark_is_read(tmp_path):
    nb = load_notebook(_write(tmp_path, _notebook_text().encode("utf-16")))
    assert nb.cells[1].source == "x = 1"


def test_file_over_the_size_cap_is_refused_with_its_size(tmp_path):
    path = _write(tmp_path, _notebook_text())
    error = _error(path, max_bytes=100)
    size = path.stat().st_size
    assert f"{size} bytes" in str(error) and "up to 100 bytes" in str(error)


def test_schema_violation_names_the_cell_and_field(tmp_path):
    raw = json.loads(_notebook_text())
    raw["cells"][1]["execution_count"] = "seven"
    error = _error(_write(tmp_path, json.dumps(raw)))
    assert "does not follow the Jupyter notebook format" in str(error)
    assert "cell 1, execution_count" in str(error)


def test_cell_that_is_not_an_object_is_refused(tmp_path):
    raw = json.loads(_notebook_text())
    raw["cells"].append("print('hi')")
    assert "Cell 2" in str(_error(_write(tmp_path, json.dumps(raw))))


def test_missing_file_is_a_notebook_error(tmp_path):
    assert "does not exist" in str(_error(tmp_path / "absent.ipynb"))


def test_folder_is_a_notebook_error(tmp_path):
    (tmp_path / "hw1.ipynb").mkdir()
    assert "folder" in str(_error(tmp_path / "hw1.ipynb"))


def test_deeply_nested_json_is_refused_without_recursion_error(tmp_path):
    assert "nested too deeply" in str(_error(_write(tmp_path, "[" * 200_000)))


@pytest.mark.parametrize("seed", range(40))
def test_damaged_notebook_never_escapes_as_another_exception(tmp_path, seed):
    """Cut or flip bytes of a real notebook: the loader either reads it or says why."""
    rng = random.Random(seed)
    data = bytearray(_notebook_text().encode())
    if seed % 2:
        data = data[: rng.randrange(1, len(data))]
    else:
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    path = _write(tmp_path, bytes(data))
    try:
        nb = load_notebook(path)
    except NotebookError as error:
        assert str(error)
    else:
        assert all(cell.get("id") for cell in nb.cells)


# ---------------------------------------------------------------------------------------------
# Static mode's loader: the structural check instead of the whole schema (full_schema=False)


def _rich_notebook_text() -> str:
    code = v4.new_code_cell("model.fit(x, y)\nplot()")
    code.outputs = [
        v4.new_output("stream", name="stdout", text="Epoch 1/2\n\b\b\r1/1 - loss: 0.5\n"),
        v4.new_output("display_data", data={"image/png": "iVBORw0KGgo" * 1000,
                                            "text/plain": ["<Figure ", "size 640x480>"]}),
        v4.new_output("error", ename="ValueError", evalue="bad", traceback=["line 1", "line 2"]),
    ]
    return nbformat.writes(v4.new_notebook(cells=[v4.new_markdown_cell("# Lab"), code]))


def test_static_loader_reads_the_same_notebook_as_the_full_schema_loader(tmp_path):
    path = _write(tmp_path, _rich_notebook_text())
    assert load_notebook(path, full_schema=False) == load_notebook(path)


def test_static_loader_keeps_images_as_their_base64_text(tmp_path):
    nb = load_notebook(_write(tmp_path, _rich_notebook_text()), full_schema=False)
    data = nb.cells[1].outputs[1].data
    assert data["image/png"] == "iVBORw0KGgo" * 1000
    assert data["text/plain"] == "<Figure size 640x480>"


@pytest.mark.parametrize("damage, where", [
    (lambda raw: raw["cells"][1].update(cell_type="python"), "cell 1, cell_type: 'python'"),
    (lambda raw: raw["cells"][1].update(source=7), "cell 1: 'source'"),
    (lambda raw: raw["cells"][1].pop("outputs"), "cell 1: a code cell needs an 'outputs' list"),
    (lambda raw: raw["cells"][1]["outputs"][0].update(output_type="log"), "cell 1, outputs[0].output_type: 'log'"),
    (lambda raw: raw["cells"][1]["outputs"][0].pop("text"), "cell 1, outputs[0]: a stream output"),
    (lambda raw: raw["cells"][1]["outputs"][2].update(traceback="boom"), "cell 1, outputs[2]: an error output"),
])
def test_static_loader_refuses_what_the_grader_reads_when_it_is_malformed(tmp_path, damage, where):
    raw = json.loads(_rich_notebook_text())
    damage(raw)
    path = _write(tmp_path, json.dumps(raw))
    error = _error(path, full_schema=False)
    assert "does not follow the Jupyter notebook format" in str(error)
    assert where in str(error)
    _error(path)  # the full schema refuses it as well


@pytest.mark.parametrize("damage", [
    lambda raw: raw["cells"][1]["outputs"].__setitem__(1, "img"),
    lambda raw: raw["cells"][1]["outputs"][1].update(data="png"),
    lambda raw: raw["cells"][1].update(outputs={"text": "x"}),
])
def test_structure_nbformat_cannot_read_is_the_same_error_in_both_loaders(tmp_path, damage):
    raw = json.loads(_rich_notebook_text())
    damage(raw)
    path = _write(tmp_path, json.dumps(raw))
    assert "structure is damaged" in str(_error(path, full_schema=False))
    assert str(_error(path, full_schema=False)) == str(_error(path))


def test_static_loader_lets_through_schema_details_the_grader_never_reads(tmp_path):
    """A decision, not an oversight: static mode only reads; executed mode still refuses."""
    raw = json.loads(_notebook_text())
    raw["cells"][1]["execution_count"] = "seven"
    path = _write(tmp_path, json.dumps(raw))
    assert load_notebook(path, full_schema=False).cells[1].source == "x = 1"
    assert "cell 1, execution_count" in str(_error(path))


@pytest.mark.parametrize("content, expected", [
    ("", "empty (0 bytes)"),
    ("[" * 200_000, "nested too deeply"),
    ('{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"x": NaN}}', "no code cells"),
])
def test_errors_are_the_same_whichever_json_reader_is_used(tmp_path, monkeypatch, content, expected):
    import grader.notebook.load as notebook

    class Refusing:  # a fast reader that refuses everything: the stdlib path decides
        @staticmethod
        def loads(data):
            raise ValueError("refused")

    path = _write(tmp_path, content)
    for reader in (None, Refusing, notebook._orjson):
        monkeypatch.setattr(notebook, "_orjson", reader)
        assert expected in str(_error(path, full_schema=False))


def test_merge_conflict_is_named_whichever_json_reader_is_used(tmp_path, monkeypatch):
    import grader.notebook.load as notebook

    lines = _notebook_text().splitlines(keepends=True)
    path = _write(tmp_path, "".join(lines[:6] + ["<<<<<<< HEAD\n"] + lines[6:]))
    for reader in (None, notebook._orjson):
        monkeypatch.setattr(notebook, "_orjson", reader)
        error = _error(path, full_schema=False)
        assert error.line == 7 and "merge-conflict" in str(error)


@pytest.mark.parametrize("seed", range(20))
def test_damaged_notebook_never_escapes_the_static_loader(tmp_path, seed):
    rng = random.Random(seed)
    data = bytearray(_rich_notebook_text().encode())
    if seed % 2:
        data = data[: rng.randrange(1, len(data))]
    else:
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    try:
        nb = load_notebook(_write(tmp_path, bytes(data)), full_schema=False)
    except NotebookError as error:
        assert str(error)
    else:
        assert all(cell.get("id") for cell in nb.cells)
