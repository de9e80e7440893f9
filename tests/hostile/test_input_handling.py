"""Hostile input files (issue 14, "Input handling"): names, zips and skipped files.

Nothing here runs a kernel: the collect stage is tested directly, and whole batches run in
static mode (graded from the outputs saved in the notebook), which takes a second.

- a submission whose name is one the grader writes (``index.html.ipynb``) gets a report of its
  own beside the class overview;
- zip members are streamed under caps (one member, one archive, all the archives of a batch),
  and one bad member is refused on its own while the rest of the export is graded;
- every file the grader skips is a row of the class overview, with the reason;
- control characters in names reach neither the terminal nor ``grading.log``.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from rich.console import Console

from grader.batch.log import write_submission_log
from grader.cli import main
from grader.cli.check import _safe_key
from grader.errors import ArchiveError
from grader.store.layout import SCORES_FILE
from grader.printable import escape_log_records, printable
from grader.model.results import GradeResult, Student, SubmissionProblem
from grader.collect import RESERVED_NAMES, collect, extract_archive, student_key
from grader.report.terminal import print_check
from tests.nbfactory import code, md, notebook, write

RUBRIC = Path(__file__).parent / "rubric.yaml"
NB = notebook(md("# Q1"), code("answer = 42\nleaked = 'nothing'"))
ESC_NAME = "bob\x1b]0;owned\x07\x1b[2J"  # retitles the terminal, then clears it


def _nb_bytes() -> bytes:
    return nbformat.writes(NB).encode()


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def _run_static(tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> tuple[object, Path]:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", *map(str, inputs), "--rubric", str(RUBRIC), "--static",
                                       "--out", str(out), *extra])
    return result, out


def _overview(out: Path) -> str:
    return (out / "index.html").read_text(encoding="utf-8")


# --- names the grader writes itself -------------------------------------------------------------


def test_a_submission_named_index_html_gets_a_report_beside_the_class_overview(tmp_path):
    subs = tmp_path / "subs"
    for name in ("index.html.ipynb", "exports.ipynb", "alice.ipynb"):
        write(NB, subs / name)
    result, out = _run_static(tmp_path, subs, extra=("--export", "csv"))
    assert result.exit_code in (0, 1), result.output  # graded (passed or not), no crash
    assert (out / "index.html").is_file()
    assert (out / "student_index.html" / "report.html").is_file()
    assert (out / "student_exports" / "report.html").is_file()
    assert (out / "exports" / "grades.csv").is_file()  # the gradebook folder is not a student's
    overview = _overview(out)
    assert "student_index.html/report.html" in overview and "alice/report.html" in overview
    # Whatever else the grader writes beside the students' folders is a name no key can take.
    students = {"alice", "student_index.html", "student_exports"}
    written = {p.name for p in out.iterdir() if not p.name.startswith(".")} - students
    assert written and written <= RESERVED_NAMES
    assert SCORES_FILE in RESERVED_NAMES


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES) + ["CON", "nul.txt", "Index.HTML"])
def test_student_keys_are_never_a_name_the_grader_or_windows_reserves(name):
    key = student_key(name)
    assert key.casefold() not in RESERVED_NAMES and key.startswith("student_")


def test_grade_check_keys_a_notebook_named_index_html_like_a_batch_does():
    assert _safe_key("index.html") == "student_index.html"


# --- zips ---------------------------------------------------------------------------------------


def test_a_member_larger_than_the_notebook_cap_is_refused_alone_before_it_is_read(tmp_path):
    export = _zip(tmp_path / "export.zip", {"alice_1_2_hw1.ipynb": _nb_bytes(),
                                            "bob_3_4_hw1.ipynb": b" " * 3_000_000})
    result = collect([export], work_dir=tmp_path / "work", max_notebook_bytes=1_000_000)
    assert [s.student.key for s in result.submissions] == ["alice_1"]
    ((path, why),) = result.skipped
    assert path == export and "'bob_3_4_hw1.ipynb'" in why and "more than the 976.6 KB" in why
    assert not list((tmp_path / "work").rglob("bob_*"))  # never written


def _lie_about_size(archive: Path, member: str, claimed: int) -> None:
    """Rewrite the uncompressed size the zip records for ``member`` (local header and central
    directory), as a crafted archive would."""
    data = bytearray(archive.read_bytes())
    name = member.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[at + offset:at + offset + 4] = struct.pack("<I", claimed)
            start = at + 4
    archive.write_bytes(bytes(data))


def test_a_member_that_lies_about_its_size_is_streamed_and_stopped_never_held_whole(tmp_path):
    big = 40 * 2**20
    export = _zip(tmp_path / "export.zip", {"alice_1_2_hw1.ipynb": _nb_bytes(),
                                            "bob_3_4_hw1.ipynb": b"{" + b" " * big})
    _lie_about_size(export, "bob_3_4_hw1.ipynb", 1_000)
    assert zipfile.ZipFile(export).getinfo("bob_3_4_hw1.ipynb").file_size == 1_000
    tracemalloc.start()
    try:
        result = collect([export], work_dir=tmp_path / "work", max_notebook_bytes=4 * 2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # chunks of 1 MiB, not the 40 MiB member
    assert [s.student.key for s in result.submissions] == ["alice_1"]
    ((path, why),) = result.skipped
    # zipfile stops at the size recorded and then finds the checksum wrong; the grader's own
    # count stops any reader that would go on. Either way: the member alone, refused.
    assert why.startswith("the member 'bob_3_4_hw1.ipynb' ")
    assert "Bad CRC-32" in why or "holds more than the 4.0 MB" in why
    assert why.endswith("not extracted, the rest of the archive was")
    assert not list((tmp_path / "work").rglob("bob_*"))


def test_the_counting_copy_stops_a_reader_that_gives_more_than_the_zip_records(tmp_path, monkeypatch):
    export = _zip(tmp_path / "export.zip", {"alice_1_2_hw1.ipynb": _nb_bytes(), "bob_3_4_hw1.ipynb": b"{}"})
    real_open = zipfile.ZipFile.open

    def endless(self, member, *args, **kwargs):  # what a lying size does to a lax reader
        if getattr(member, "filename", member) == "bob_3_4_hw1.ipynb":
            return io.BytesIO(b" " * (3 * 2**20))
        return real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", endless)
    result = collect([export], work_dir=tmp_path / "work", max_notebook_bytes=2**20)
    assert [s.student.key for s in result.submissions] == ["alice_1"]
    ((_, why),) = result.skipped
    assert "holds more than the 1.0 MB the grader extracts of one file although it says 2 bytes" in why
    assert not list((tmp_path / "work").rglob("bob_*"))


@pytest.mark.parametrize("member", ["..\\..\\x.ipynb", "../../x.ipynb", "/etc/x.ipynb", "C:\\x.ipynb",
                                    "a/..\\..\\..\\x.ipynb"])
def test_a_traversing_member_is_refused_alone_and_the_export_is_graded(tmp_path, member):
    export = _zip(tmp_path / "deep" / "export.zip", {"alice_1_2_hw1.ipynb": _nb_bytes(), member: _nb_bytes()})
    result = collect([export], work_dir=tmp_path / "work")
    assert [s.student.key for s in result.submissions] == ["alice_1"]
    ((path, why),) = result.skipped
    assert path == export and repr(member) in why and "outside the archive" in why
    assert not (tmp_path / "x.ipynb").exists() and not (tmp_path / "deep" / "x.ipynb").exists()
    assert [p.name for p in (tmp_path / "work").rglob("*.ipynb")] == ["alice_1_2_hw1.ipynb"]


def test_backslashes_between_folders_are_folders_as_windows_tools_write_them(tmp_path):
    export = _zip(tmp_path / "export.zip", {"alice\\hw1.ipynb": _nb_bytes(), "bob\\hw1.ipynb": _nb_bytes()})
    result = collect([export], work_dir=tmp_path / "work")
    assert sorted(s.student.key for s in result.submissions) == ["alice", "bob"]
    assert result.skipped == []


def test_a_symlink_member_is_refused_alone_in_a_batch(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("alice_1_2_hw1.ipynb", _nb_bytes())
        link = zipfile.ZipInfo("bob_3_4_hw1.ipynb")
        link.external_attr = (0o120777) << 16
        archive.writestr(link, "/etc/passwd")
    result = collect([export], work_dir=tmp_path / "work")
    assert [s.student.key for s in result.submissions] == ["alice_1"]
    ((_, why),) = result.skipped
    assert "symbolic link" in why and not any(p.is_symlink() for p in (tmp_path / "work").rglob("*"))


def test_all_the_zips_of_a_batch_share_one_budget(tmp_path):
    first = _zip(tmp_path / "a.zip", {"alice_1_2_hw1.ipynb": b" " * 6_000})
    second = _zip(tmp_path / "b.zip", {"bob_3_4_hw1.ipynb": b" " * 6_000})
    result = collect([first, second], work_dir=tmp_path / "work", max_total_bytes=10_000)
    assert [s.student.key for s in result.submissions] == ["alice_1"]
    ((path, why),) = result.skipped
    assert path == second and "all the zips of one batch" in why
    # Each alone is within the budget: it is the sum that is refused.
    assert collect([second], work_dir=tmp_path / "w2", max_total_bytes=10_000).submissions


def test_a_refused_zip_beside_other_inputs_is_a_skip_row_not_the_end_of_the_batch(tmp_path):
    good = tmp_path / "subs"
    write(NB, good / "alice.ipynb")
    bad = tmp_path / "section2.zip"
    bad.write_bytes(b"this is no zip")
    result = collect([good, bad], work_dir=tmp_path / "work")
    assert [s.student.key for s in result.submissions] == ["alice"]
    assert result.skipped == [(bad, "section2.zip is not a readable zip archive (File is not a zip file).")]


def test_a_refused_zip_that_leaves_nothing_to_grade_says_why(tmp_path):
    bad = tmp_path / "export.zip"
    bad.write_bytes(b"this is no zip")
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        collect([bad], work_dir=tmp_path / "work")


def test_extract_archive_alone_still_refuses_an_oversized_member_whole(tmp_path):
    export = _zip(tmp_path / "export.zip", {"a.ipynb": b" " * 5_000})
    with pytest.raises(ArchiveError, match="more than"):
        extract_archive(export, tmp_path / "out", max_member_bytes=1_000)
    assert not (tmp_path / "out").exists()


# --- every skipped file is a row ----------------------------------------------------------------


def test_hidden_and_too_large_notebooks_and_hidden_folders_are_skipped_with_the_reason(tmp_path):
    subs = tmp_path / "subs"
    write(NB, subs / "alice.ipynb")
    write(NB, subs / ".bob.ipynb")
    write(NB, subs / ".carol" / "hw1.ipynb")
    (subs / ".config").mkdir()
    (subs / ".config" / "settings.json").write_text("{}")  # no notebook: not worth a row
    (subs / "dave.ipynb").write_bytes(b"{" + b" " * 3_000)
    result = collect([subs], work_dir=tmp_path / "work", max_notebook_bytes=2_000)
    assert [s.student.key for s in result.submissions] == ["alice"]
    reasons = {path.name: why for path, why in result.skipped}
    assert set(reasons) == {".bob.ipynb", ".carol", "dave.ipynb"}
    assert "hidden file" in reasons[".bob.ipynb"] and "hidden folder" in reasons[".carol"]
    assert reasons["dave.ipynb"].startswith("too large (2.9 KB, more than the 2.0 KB")


def test_a_folder_that_cannot_be_read_is_a_skip_row(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    write(NB, subs / "alice.ipynb")
    locked = subs / "bob"
    write(NB, locked / "hw1.ipynb")
    real_scandir = os.scandir

    def scandir(path="."):  # chmod 000 does not stop root, so the refusal is made here
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = collect([subs], work_dir=tmp_path / "work")
    assert [s.student.key for s in result.submissions] == ["alice"]
    assert result.skipped == [(locked, "cannot be read (Permission denied): not searched")]


def test_skipped_rows_have_keys_of_their_own_and_are_not_graded(tmp_path):
    subs = tmp_path / "subs"
    write(NB, subs / "skipped-notes.pdf.ipynb")  # a student whose key looks like a skip row's
    (subs / "notes.pdf").write_bytes(b"%PDF-1.4")
    collected = collect([subs], work_dir=tmp_path / "work")
    (row,) = collected.skipped_results()
    assert row.student.key not in {s.student.key for s in collected.submissions}
    assert row.problems_blocking and row.problems[0].kind == "skipped"
    assert "notes.pdf was not graded: not a notebook (.pdf)" == row.problems[0].message


def test_every_file_the_grader_skips_is_a_row_of_the_class_overview(tmp_path):
    subs = tmp_path / "subs"
    write(NB, subs / "alice.ipynb")
    write(NB, subs / ".hidden.ipynb")
    (subs / "notes.pdf").write_bytes(b"%PDF-1.4")
    _zip(subs / "carol.zip", {"..\\..\\escape.ipynb": _nb_bytes(), "hw1.ipynb": _nb_bytes()})
    (subs / "dave.zip").write_bytes(b"not a zip")
    result, out = _run_static(tmp_path, subs, extra=("--export", "csv"))
    assert result.exit_code in (0, 1), result.output
    overview = _overview(out)
    for name, reason in [(".hidden.ipynb", "hidden file"), ("notes.pdf", "not a notebook (.pdf)"),
                         ("carol.zip", "escape.ipynb"), ("dave.zip", "not a readable zip archive")]:
        assert f"skipped-{name}" in overview or f"skipped-{student_key(name)}" in overview, name
        assert reason in overview, reason
    assert "carol.zip/report.html" in overview  # the rest of carol's zip was graded
    # The rows are for the reports: a gradebook lists students, not stray files.
    assert "skipped-" not in (out / "exports" / "grades.csv").read_text(encoding="utf-8-sig")


# --- control characters in names ----------------------------------------------------------------


def test_printable_escapes_c0_c1_and_bidi_controls_like_repr():
    assert printable("a\x1b[2Jb\x9b31m\u202ec\x00\x7f") == "a\\x1b[2Jb\\x9b31m\\u202ec\\x00\\x7f"
    assert printable("one\ntwo\r\tthree") == "one\\ntwo\\r\\tthree"
    assert printable("one\ntwo", newlines=True) == "one\ntwo"
    assert printable("René ✔ 名前") == "René ✔ 名前"


def test_a_newline_in_a_file_name_cannot_forge_lines_of_grading_log(tmp_path):
    forged = "x.ipynb\n==== 2026-01-01T00:00:00+00:00 · graded ====\nscore: 26/26"
    result = GradeResult(
        student=Student(key="mallory", name="Mallory\x1b]0;owned\x07", note=f"graded {forged}"),
        path=f"/subs/{forged}", max_score=3,
        problems=[SubmissionProblem("invalid_notebook", f"{forged} is not valid JSON")],
    )
    log = write_submission_log(tmp_path / "grading.log", result).read_text(encoding="utf-8")
    assert "\x1b" not in log and "\\x1b]0;owned\\x07" in log
    assert [line for line in log.splitlines() if line.startswith("score:")] == ["score: 0/3"]
    assert sum(line.startswith("====") for line in log.splitlines()) == 1
    assert "submission: /subs/x.ipynb\\n==== 2026" in log


def test_grade_check_output_shows_escape_codes_of_a_name_never_runs_them():
    result = GradeResult(
        student=Student(key="bob"), path=f"/subs/{ESC_NAME}.ipynb", max_score=3,
        problems=[SubmissionProblem("invalid_notebook", f"{ESC_NAME}.ipynb [/] is not JSON\x9b2J")],
    )
    buffer = io.StringIO()
    print_check(result, out_dir=Path("/out"), seconds=1.0,
                console=Console(file=buffer, force_terminal=False, color_system=None, width=200))
    text = buffer.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "bob\\x1b]0;owned\\x07\\x1b[2J.ipynb" in text and "[/]" in text


def test_a_batch_prints_the_names_of_skipped_and_graded_files_escaped(tmp_path):
    subs = tmp_path / "subs"
    write(NB, subs / f"{ESC_NAME}.ipynb")
    (subs / f"notes{ESC_NAME}.pdf").write_bytes(b"%PDF-1.4")
    result, out = _run_static(tmp_path, subs)
    assert result.exit_code in (0, 1), result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "notesbob\\x1b]0;owned\\x07" in result.output
    logs = list(out.glob("*/grading.log"))
    assert logs and all("\x1b" not in log.read_text(encoding="utf-8") for log in logs)


def test_a_warning_that_quotes_a_path_a_kernel_chose_prints_its_escape_codes_escaped():
    escape_log_records()
    record = logging.LogRecord("grader.execute.sandbox", logging.WARNING, __file__, 1,
                               "%s is not a plain file of the kernel's own", (f"/work/{ESC_NAME}",), None)
    assert logging.lastResort is not None and logging.lastResort.filter(record)
    assert record.getMessage() == "/work/bob\\x1b]0;owned\\x07\\x1b[2J is not a plain file of the kernel's own"
