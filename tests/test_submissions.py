"""The collect stage: every LMS export layout, the several-files rule, and safe extraction.

Sample trees follow the naming schemes in shared/research/lms-formats.md §1.
"""

from __future__ import annotations

import os
import stat
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from grader.errors import ArchiveError, UsageError
from grader.collect import collect, extract_archive, student_key

NOTEBOOK = nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("x = 1")]))


def _tree(root: Path, files: dict[str, str | bytes], mtimes: dict[str, float] | None = None) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for name, stamp in (mtimes or {}).items():
        os.utime(root / name, (stamp, stamp))
    return root


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def _by_key(result):
    return {s.student.key: s for s in result.submissions}


# --- Canvas ----------------------------------------------------------------------------------


def test_canvas_file_names_give_user_id_name_and_late_flag(tmp_path):
    src = _tree(tmp_path / "in", {
        "doejohn_LATE_123456_7890123_hw1.ipynb": NOTEBOOK,
        "smithbob_340934_208490284_hw1.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "canvas"
    john = _by_key(result)["doejohn_123456"].student
    assert (john.student_id, john.name, john.late) == ("123456", "doejohn", True)
    bob = _by_key(result)["smithbob_340934"].student
    assert bob.late is False and bob.student_id == "340934"


def test_canvas_anonymous_grading_names_have_only_the_user_id(tmp_path):
    src = _tree(tmp_path / "in", {"123456_789_hw1.ipynb": NOTEBOOK, "late_222_790_hw1.ipynb": NOTEBOOK})
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "canvas"
    assert _by_key(result)["222"].student.late is True
    assert _by_key(result)["123456"].student.name is None


def test_canvas_resubmissions_grade_the_highest_reupload_and_say_so(tmp_path):
    src = _tree(tmp_path / "in", {
        "doejohn_123456_100_hw1.ipynb": NOTEBOOK,
        "doejohn_123456_200_hw1-1.ipynb": NOTEBOOK,
        "doejohn_123456_300_hw1-2.ipynb": NOTEBOOK,
    })
    (submission,) = collect([src], work_dir=tmp_path / "work").submissions
    assert submission.path.name == "doejohn_123456_300_hw1-2.ipynb"
    assert sorted(p.name for p in submission.alternatives) == [
        "doejohn_123456_100_hw1.ipynb", "doejohn_123456_200_hw1-1.ipynb"]
    assert submission.student.note.startswith("3 files uploaded; graded hw1-2.ipynb, the newest")


def test_canvas_later_upload_wins_when_names_differ(tmp_path):
    src = _tree(tmp_path / "in", {
        "doejohn_123456_500_final.ipynb": NOTEBOOK,
        "doejohn_123456_400_draft.ipynb": NOTEBOOK,
    })
    (submission,) = collect([src], work_dir=tmp_path / "work").submissions
    assert submission.path.name.endswith("final.ipynb")
    assert "the newest upload" in submission.student.note


def test_canvas_zip_export_is_extracted_and_remembers_its_archive(tmp_path):
    export = _zip(tmp_path / "course-hw1 submissions.zip", {
        "doejohn_123456_7890123_hw1.ipynb": NOTEBOOK,
        "roejane_late_654321_7890124_hw1.ipynb": NOTEBOOK,
    })
    result = collect([export], work_dir=tmp_path / "work")
    assert result.layout == "canvas"
    assert set(_by_key(result)) == {"doejohn_123456", "roejane_654321"}
    for submission in result.submissions:
        assert submission.extracted_from == export
        assert (tmp_path / "work") in submission.path.parents


def test_a_zip_a_student_uploaded_is_extracted_and_attributed_to_them(tmp_path):
    inner = _zip(tmp_path / "inner.zip", {"BobsWork/hw1.ipynb": NOTEBOOK, "BobsWork/notes.pdf": b"%PDF"})
    export = _zip(tmp_path / "export.zip", {
        "smithbob_340934_208490284_BobsWork.zip": inner.read_bytes(),
        "doejohn_123456_7890123_hw1.ipynb": NOTEBOOK,
    })
    result = collect([export], work_dir=tmp_path / "work")
    bob = _by_key(result)["smithbob_340934"]
    assert bob.path.name == "hw1.ipynb"
    assert bob.extracted_from.name == "smithbob_340934_208490284_BobsWork.zip"
    assert any(path.name == "notes.pdf" for path, _ in result.skipped)


# --- Moodle ----------------------------------------------------------------------------------


def test_moodle_folders_give_full_name_and_participant_id(tmp_path):
    src = _tree(tmp_path / "in", {
        "Jane Doe_1234567_assignsubmission_file_/hw1.ipynb": NOTEBOOK,
        "René Müller_7654321_assignsubmission_file_/sub/hw1.ipynb": NOTEBOOK,
        "René Müller_7654321_assignsubmission_onlinetext_/onlinetext.html": "<p>hi</p>",
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "moodle"
    jane = _by_key(result)["Jane_Doe_1234567"].student
    assert (jane.name, jane.student_id) == ("Jane Doe", "1234567")
    assert _by_key(result)["René_Müller_7654321"].student.name == "René Müller"
    assert [p.name for p, reason in result.skipped] == ["onlinetext.html"]
    assert "not a notebook (.html)" in result.skipped[0][1]


def test_moodle_flat_form_is_recognised(tmp_path):
    src = _tree(tmp_path / "in", {
        "Jane Doe_1234567_assignsubmission_file_hw1.ipynb": NOTEBOOK,
        "John Roe_7654321_assignsubmission_file_hw1.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "moodle"
    assert {s.student.student_id for s in result.submissions} == {"1234567", "7654321"}


# --- Blackboard ------------------------------------------------------------------------------

RECEIPT = """Name: Alyssa P Hacker (hacker)
Assignment: Problem Set 1
Date Submitted: Saturday, January 30, 2016 3:30:10 PM EST
Current Grade: Needs Grading

Submission Field:
There is no student submission text data for this assignment.

Comments:
There are no student comments for this assignment.

Files:
\tOriginal filename: problem1.ipynb
\tFilename: ps1_hacker_attempt_2016-01-30-15-30-10_problem1.ipynb
"""


def test_blackboard_reads_name_and_date_from_the_receipt(tmp_path):
    src = _tree(tmp_path / "in", {
        "ps1_hacker_attempt_2016-01-30-15-30-10_problem1.ipynb": NOTEBOOK,
        "ps1_hacker_attempt_2016-01-30-15-30-10.txt": RECEIPT,
        "ps1_bitdiddle_attempt_2016-01-30-16-00-00_problem1.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "blackboard"
    hacker = _by_key(result)["hacker"].student
    assert (hacker.name, hacker.login) == ("Alyssa P Hacker", "hacker")
    assert hacker.submitted_at == "2016-01-30T15:30:10"
    # Without a receipt the time comes from the file name.
    assert _by_key(result)["bitdiddle"].student.submitted_at == "2016-01-30T16:00:00"
    assert result.skipped == []  # the receipt was read, not skipped


def test_blackboard_several_attempts_grade_the_newest(tmp_path):
    src = _tree(tmp_path / "in", {
        "ps1_hacker_attempt_2016-01-30-15-30-10_problem1.ipynb": NOTEBOOK,
        "ps1_hacker_attempt_2016-02-01-09-00-00_problem1.ipynb": NOTEBOOK,
    }, mtimes={"ps1_hacker_attempt_2016-01-30-15-30-10_problem1.ipynb": time.time()})
    (submission,) = collect([src], work_dir=tmp_path / "work").submissions
    assert "2016-02-01" in submission.path.name
    assert submission.student.note == (
        "2 files uploaded; graded problem1.ipynb, the newest submission (2016-02-01 09:00)")


# --- Brightspace -----------------------------------------------------------------------------


def test_brightspace_folders_give_name_and_submission_date(tmp_path):
    src = _tree(tmp_path / "in", {
        "HW1/148200-368791 - Jane Doe - Jan 5, 2024 1015 AM/hw1.ipynb": NOTEBOOK,
        "HW1/148201-368791 - John Roe - Jan 6, 2024 915 PM/hw1.ipynb": NOTEBOOK,
        "HW1/index.html": "<html></html>",
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "brightspace"
    assert _by_key(result)["Jane_Doe"].student.submitted_at == "2024-01-05T10:15:00"
    assert _by_key(result)["John_Roe"].student.submitted_at == "2024-01-06T21:15:00"
    assert [p.name for p, _ in result.skipped] == ["index.html"]


def test_brightspace_flat_form_and_two_submissions_keep_the_newest(tmp_path):
    src = _tree(tmp_path / "in", {
        "148200-368791 - Jane Doe - Jan 5, 2024 1015 AM - hw1.ipynb": NOTEBOOK,
        "148300-368791 - Jane Doe - Jan 7, 2024 0800 AM - hw1.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    (submission,) = result.submissions
    assert "Jan 7" in submission.path.name
    assert submission.student.submitted_at == "2024-01-07T08:00:00"


# --- Gradescope ------------------------------------------------------------------------------

GRADESCOPE_YAML = """\
submission_101:
  :submitters:
  - :name: Jane Doe
    :sid: '1001'
    :email: jane@example.edu
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
  :score: 0.0
submission_102:
  :submitters:
  - :name: John Roe
    :sid: '1002'
    :email: john@example.edu
  - :name: Ann Lee
    :sid: '1003'
    :email: ann@example.edu
  :created_at: 2024-03-02 11:30:00.000000000 -08:00
"""


def test_gradescope_metadata_names_every_submitter(tmp_path):
    src = _tree(tmp_path / "in", {
        "assignment_77_export/submission_metadata.yml": GRADESCOPE_YAML,
        "assignment_77_export/submission_101/hw1.ipynb": NOTEBOOK,
        "assignment_77_export/submission_102/hw1.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "gradescope"
    students = _by_key(result)
    jane = students["Jane_Doe_1001"].student
    assert (jane.email, jane.student_id) == ("jane@example.edu", "1001")
    assert jane.submitted_at.startswith("2024-03-01T10:00:00")
    # A group submission is graded for each member, from the same file.
    assert students["John_Roe_1002"].path == students["Ann_Lee_1003"].path
    assert "with Ann Lee" in students["John_Roe_1002"].student.note
    assert result.skipped == []


def test_unreadable_gradescope_metadata_is_reported_and_notebooks_still_collected(tmp_path):
    src = _tree(tmp_path / "in", {
        "export/submission_metadata.yml": "submission_101: [unclosed",
        "export/submission_101/hw1.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert len(result.submissions) == 1
    ((path, why),) = result.skipped
    assert path.name == "submission_metadata.yml" and "unreadable Gradescope metadata" in why


# --- GitHub Classroom, folders, files ---------------------------------------------------------


def test_github_classroom_clones_give_logins_after_the_shared_prefix(tmp_path):
    src = _tree(tmp_path / "in", {
        "hw1-alice/hw1.ipynb": NOTEBOOK,
        "hw1-alice/.git/HEAD": "ref",
        "hw1-bob-smith/hw1.ipynb": NOTEBOOK,
        "hw1-bob-smith/.git/HEAD": "ref",
        "hw1-bob-smith/.ipynb_checkpoints/hw1-checkpoint.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "github-classroom"
    assert {s.student.login for s in result.submissions} == {"alice", "bob-smith"}
    assert result.skipped == []


def test_single_github_classroom_clone_keeps_dashes_in_the_login(tmp_path):
    src = _tree(tmp_path / "in", {"hw1-bob-smith/hw1.ipynb": NOTEBOOK})
    result = collect([src], layout="github-classroom", work_dir=tmp_path / "work")
    assert [s.student.login for s in result.submissions] == ["bob-smith"]


def test_browser_style_duplicates_count_as_reuploads(tmp_path):
    src = _tree(tmp_path / "in", {
        "alice/hw1.ipynb": NOTEBOOK, "alice/hw1 (1).ipynb": NOTEBOOK, "alice/hw1 (2).ipynb": NOTEBOOK,
        "bob/hw1.ipynb": NOTEBOOK,
    })
    alice = _by_key(collect([src], work_dir=tmp_path / "work"))["alice"]
    assert alice.path.name == "hw1 (2).ipynb" and len(alice.alternatives) == 2


def test_numbered_names_are_not_reuploads_without_a_shared_base(tmp_path):
    now = time.time()
    src = _tree(tmp_path / "in", {"alice/lab-3.ipynb": NOTEBOOK, "alice/notes.ipynb": NOTEBOOK,
                                  "bob/lab-3.ipynb": NOTEBOOK},
                mtimes={"alice/lab-3.ipynb": now - 600, "alice/notes.ipynb": now})
    alice = _by_key(collect([src], work_dir=tmp_path / "work"))["alice"]
    assert alice.path.name == "notes.ipynb"  # newer; "3" in lab-3 is no re-upload number


def test_one_folder_per_student_inside_a_wrapper_folder(tmp_path):
    src = _tree(tmp_path / "in", {
        "lab2 submissions/alice/lab2.ipynb": NOTEBOOK,
        "lab2 submissions/bob/lab2.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "folders"
    assert set(_by_key(result)) == {"alice", "bob"}


def test_several_notebooks_in_a_student_folder_grade_the_newest(tmp_path):
    now = time.time()
    src = _tree(tmp_path / "in", {
        "alice/lab2.ipynb": NOTEBOOK, "alice/lab2_final.ipynb": NOTEBOOK, "bob/lab2.ipynb": NOTEBOOK,
    }, mtimes={"alice/lab2.ipynb": now - 3600, "alice/lab2_final.ipynb": now})
    alice = _by_key(collect([src], work_dir=tmp_path / "work"))["alice"]
    assert alice.path.name == "lab2_final.ipynb"
    assert alice.student.note == "2 files uploaded; graded lab2_final.ipynb, the most recently modified"


def test_assignment_name_breaks_a_tie_between_notebooks(tmp_path):
    now = time.time()
    src = _tree(tmp_path / "in", {
        "alice/scratch.ipynb": NOTEBOOK, "alice/Lab_2.ipynb": NOTEBOOK, "bob/lab2.ipynb": NOTEBOOK,
    }, mtimes={"alice/scratch.ipynb": now, "alice/Lab_2.ipynb": now})
    alice = _by_key(collect([src], work_dir=tmp_path / "work", assignment="lab2.ipynb"))["alice"]
    assert alice.path.name == "Lab_2.ipynb"
    assert "named like the assignment notebook" in alice.student.note


def test_plain_files_are_keyed_by_their_stem(tmp_path):
    src = _tree(tmp_path / "in", {"alice.ipynb": NOTEBOOK, "bob.ipynb": NOTEBOOK})
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "files"
    assert set(_by_key(result)) == {"alice", "bob"}


def test_single_notebook_path_is_one_submission(tmp_path):
    path = _tree(tmp_path, {"my lab.ipynb": NOTEBOOK}) / "my lab.ipynb"
    result = collect([path], work_dir=tmp_path / "work")
    assert [(s.path, s.student.key) for s in result.submissions] == [(path, "my_lab")]


def test_a_file_named_explicitly_is_a_submission_whatever_its_extension(tmp_path):
    path = _tree(tmp_path, {"alice.py": "print(1)"}) / "alice.py"
    (submission,) = collect([path], work_dir=tmp_path / "work").submissions
    assert submission.path == path  # the load stage tells the student it is a script


def test_several_paths_are_collected_together(tmp_path):
    a = _tree(tmp_path / "a", {"alice.ipynb": NOTEBOOK})
    b = _tree(tmp_path / "b", {"bob.ipynb": NOTEBOOK}) / "bob.ipynb"
    result = collect([a, b, a / "alice.ipynb"], work_dir=tmp_path / "work")
    assert sorted(s.student.key for s in result.submissions) == ["alice", "bob"]


def test_notebook_that_does_not_follow_the_layout_is_still_graded_with_a_note(tmp_path):
    src = _tree(tmp_path / "in", {
        "doejohn_123456_100_hw1.ipynb": NOTEBOOK,
        "roejane_654321_101_hw1.ipynb": NOTEBOOK,
        "solution.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert result.layout == "canvas"
    odd = _by_key(result)["solution"].student
    assert "does not follow the canvas layout" in odd.note


# --- pattern and forced layouts -----------------------------------------------------------------


def test_user_pattern_with_named_groups_places_students(tmp_path):
    src = _tree(tmp_path / "in", {
        "HW1-s1234-Jane-LATE.ipynb": NOTEBOOK, "HW1-s5678-John.ipynb": NOTEBOOK,
    })
    result = collect([src], pattern=r"HW1-(?P<id>s\d+)-(?P<name>[A-Za-z]+)(?P<late>-LATE)?\.ipynb$",
                     work_dir=tmp_path / "work")
    assert result.layout == "pattern"
    jane = _by_key(result)["Jane_s1234"].student
    assert (jane.student_id, jane.name, jane.late) == ("s1234", "Jane", True)
    assert _by_key(result)["John_s5678"].student.late is False


def test_pattern_that_is_not_a_regular_expression_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a valid regular expression"):
        collect([tmp_path], pattern="(?P<id>", work_dir=tmp_path / "work")


def test_pattern_without_a_student_group_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="names no student"):
        collect([tmp_path], pattern=r"(\d+)\.ipynb", work_dir=tmp_path / "work")


def test_unknown_layout_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="Unknown layout 'sakai'"):
        collect([tmp_path], layout="sakai", work_dir=tmp_path / "work")


def test_forced_layout_overrides_detection(tmp_path):
    src = _tree(tmp_path / "in", {"doejohn_123456_100_hw1.ipynb": NOTEBOOK})
    result = collect([src], layout="files", work_dir=tmp_path / "work")
    assert result.layout == "files"
    assert result.submissions[0].student.key == "doejohn_123456_100_hw1"


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        collect([tmp_path / "nowhere"], work_dir=tmp_path / "work")


# --- what is ignored, keys ------------------------------------------------------------------------


def test_checkpoints_macos_folders_and_dotfiles_are_ignored(tmp_path):
    src = _tree(tmp_path / "in", {
        "alice.ipynb": NOTEBOOK,
        ".ipynb_checkpoints/alice-checkpoint.ipynb": NOTEBOOK,
        "__MACOSX/._alice.ipynb": b"\x00\x05\x16\x07",
        ".hidden.ipynb": NOTEBOOK,
        "~$lice.ipynb": NOTEBOOK,
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert [s.path.name for s in result.submissions] == ["alice.ipynb"]
    # What tools write is left out silently; a hidden notebook a person saved is not graded,
    # but said (issue 14).
    ((path, why),) = result.skipped
    assert path.name == ".hidden.ipynb" and "hidden file" in why


def test_files_that_are_not_notebooks_are_listed_with_the_reason(tmp_path):
    src = _tree(tmp_path / "in", {"alice.ipynb": NOTEBOOK, "alice.pdf": b"%PDF", "Custom.py": "x=1"})
    result = collect([src], work_dir=tmp_path / "work")
    assert sorted((p.name, why) for p, why in result.skipped) == [
        ("Custom.py", "not a notebook (.py)"), ("alice.pdf", "not a notebook (.pdf)")]


def test_student_keys_are_unique_and_safe_as_folder_names(tmp_path):
    src = _tree(tmp_path / "in", {"a/b.ipynb": NOTEBOOK, "a_b.ipynb": NOTEBOOK, "a b.ipynb": NOTEBOOK,
                                  "__.ipynb": NOTEBOOK})
    result = collect([src], layout="files", work_dir=tmp_path / "work")
    keys = [s.student.key for s in result.submissions]
    assert len(set(keys)) == len(keys) == 4
    for key in keys:
        assert "/" not in key and "\\" not in key and key.strip(".") and not key.startswith(".")


def test_student_keys_are_the_same_on_every_run(tmp_path):
    src = _tree(tmp_path / "in", {"x/hw.ipynb": NOTEBOOK, "x_/hw.ipynb": NOTEBOOK, "x__/hw.ipynb": NOTEBOOK})
    first = {s.path: s.student.key for s in collect([src], work_dir=tmp_path / "w").submissions}
    second = {s.path: s.student.key for s in collect([src], work_dir=tmp_path / "w").submissions}
    assert first == second and len(set(first.values())) == 3


@pytest.mark.parametrize("text, key", [
    ("Doe, Jane / 42", "Doe_Jane_42"), ("..", "student"), ("René Müller", "René_Müller"),
    ("../../etc", "etc"), ("a\\b", "a_b"),
])
def test_student_key_cleans_names(text, key):
    assert student_key(text) == key


# --- safe extraction --------------------------------------------------------------------------


def test_zip_member_with_path_traversal_is_refused_and_the_rest_collected(tmp_path):
    export = _zip(tmp_path / "export.zip", {"ok_1_2_hw1.ipynb": NOTEBOOK, "../../evil.ipynb": NOTEBOOK})
    result = collect([export], work_dir=tmp_path / "work")
    assert [s.student.key for s in result.submissions] == ["ok_1"]
    ((path, why),) = result.skipped
    assert path == export and "'../../evil.ipynb'" in why and "path traversal" in why
    assert not (tmp_path / "evil.ipynb").exists()
    assert [p.name for p in (tmp_path / "work").rglob("*.ipynb")] == ["ok_1_2_hw1.ipynb"]


def test_extract_archive_alone_refuses_a_traversing_archive_whole(tmp_path):
    export = _zip(tmp_path / "export.zip", {"ok_1_2_hw1.ipynb": NOTEBOOK, "../../evil.ipynb": NOTEBOOK})
    with pytest.raises(ArchiveError, match="path traversal"):
        extract_archive(export, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.ipynb").exists()


def test_zip_with_absolute_member_path_is_refused(tmp_path):
    export = _zip(tmp_path / "export.zip", {"/tmp/evil.ipynb": NOTEBOOK})
    with pytest.raises(ArchiveError, match="outside the archive"):
        extract_archive(export, tmp_path / "out")


def test_zip_with_a_symlink_is_refused(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        link = zipfile.ZipInfo("alice/hw1.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_archive(export, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_larger_than_the_cap_is_refused_as_a_possible_bomb(tmp_path):
    export = _zip(tmp_path / "export.zip", {"a_1_2_hw1.ipynb": "0" * 50_000})
    assert export.stat().st_size < 1_000  # compresses to almost nothing
    with pytest.raises(ArchiveError, match="zip bomb"):
        collect([export], work_dir=tmp_path / "work", max_archive_bytes=10_000)
    assert not list((tmp_path / "work").rglob("*.ipynb"))


def test_zip_with_too_many_members_is_refused(tmp_path):
    export = _zip(tmp_path / "export.zip", {f"f{i}.txt": "x" for i in range(20)})
    with pytest.raises(ArchiveError, match="20 entries"):
        extract_archive(export, tmp_path / "out", max_members=10)


def test_file_named_zip_that_is_not_a_zip_is_a_clear_error(tmp_path):
    fake = _tree(tmp_path, {"export.zip": "not a zip"}) / "export.zip"
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        collect([fake], work_dir=tmp_path / "work")


def test_a_refused_student_zip_is_skipped_and_the_others_are_collected(tmp_path):
    evil = _zip(tmp_path / "evil.zip", {"../escape.ipynb": NOTEBOOK})
    src = _tree(tmp_path / "in", {
        "doejohn_123456_100_hw1.ipynb": NOTEBOOK,
        "roejane_654321_101_work.zip": evil.read_bytes(),
    })
    result = collect([src], work_dir=tmp_path / "work")
    assert [s.student.key for s in result.submissions] == ["doejohn_123456"]
    (path, why), = result.skipped
    assert path.name == "roejane_654321_101_work.zip" and "path traversal" in why


def test_extraction_keeps_member_times_and_leaves_out_macos_metadata(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr(zipfile.ZipInfo("alice/hw1.ipynb", date_time=(2024, 1, 2, 3, 4, 6)), NOTEBOOK)
        archive.writestr("__MACOSX/alice/._hw1.ipynb", b"\x00")
    out = extract_archive(export, tmp_path / "out")
    assert [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()] == ["alice/hw1.ipynb"]
    assert time.localtime((out / "alice/hw1.ipynb").stat().st_mtime)[:6] == (2024, 1, 2, 3, 4, 6)


def test_utf8_member_names_written_without_the_utf8_flag_are_decoded(tmp_path):
    export = _zip(tmp_path / "export.zip", {"placeholder.ipynb": NOTEBOOK})
    # Rewrite the name bytes as a Windows tool would: UTF-8 bytes, no UTF-8 flag (cp437 assumed).
    utf8 = "Ren\u00e9_1_2_x".encode("utf-8")
    assert len(utf8) == len(b"placeholder")
    export.write_bytes(export.read_bytes().replace(b"placeholder", utf8))
    out = extract_archive(export, tmp_path / "out")
    assert [p.name for p in out.iterdir()] == ["René_1_2_x.ipynb"]
