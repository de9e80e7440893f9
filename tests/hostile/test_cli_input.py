"""Hostile command-line input: each bad file or folder named on the command line is refused with
one line that names the problem, exit code 2, before any kernel starts, and nothing of the run is
left in the output folder.

Covers a damaged or ill-shaped ``--data`` npz, a malformed ``--hidden-test``, an output folder that
cannot be written, YAML alias bombs and oversized rubrics, and a folder with no notebooks.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import grader.rubric.parse as rubric_module
from grader.cli import main
from grader.errors import RubricError
from grader.rubric.load import load_rubric, load_rubric_text
from grader.rubric.parse import MAX_RUBRIC_BYTES, MAX_TASKS, MAX_YAML_NODES
from tests.nbfactory import code, md, notebook, write

U8 = np.uint8


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if grading starts: every refusal here comes before the first kernel."""
    import grader.batch.local

    def refuse(*args, **kwargs):
        raise AssertionError("grading started although the command line should have been refused")

    monkeypatch.setattr(grader.batch.local, "grade_batch", refuse)


@pytest.fixture
def subs(tmp_path):
    folder = tmp_path / "subs"
    write(notebook(md("# Lab"), code("answer = 42")), folder / "alice.ipynb")
    return folder


def _grade(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _refused(result, *words, out=None):
    """Exit 2, one line naming the problem (``grade: ...``, or Click's ``Error: ...`` for an option
    it checks itself), no traceback, no output folder."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("grade:", "Error:"))]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], lines[0]
    if out is not None:
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    return lines[0]


def _cifar(n_train=20, n_test=10, **override):
    arrays = {"x_train": np.zeros((n_train, 32, 32, 3), U8), "y_train": (np.arange(n_train) % 10).astype(U8).reshape(-1, 1),
              "x_test": np.zeros((n_test, 32, 32, 3), U8), "y_test": (np.arange(n_test) % 10).astype(U8).reshape(-1, 1)}
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


def _good_npz(tmp_path):
    path = tmp_path / "good.npz"
    np.savez(path, **_cifar())
    return path


# -- --data: damaged files ---------------------------------------------------------------------

def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _truncated_zip(path):
    np.savez(path, **_cifar(200, 50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _missing_keys(path):
    np.savez(path, x_train=np.zeros((4, 32, 32, 3), U8), y_train=np.zeros(4, U8))


def _single_npy(path):
    with path.open("wb") as handle:
        np.save(handle, np.zeros(3))


def _object_array(path):
    np.savez(path, **_cifar(y_train=np.array([{"a": 1}] * 20, dtype=object)))


def _damaged_member(path):
    np.savez(path, **_cifar())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x_train.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start:start + 64] = b"\xff" * 64  # the CRC no longer matches
    path.write_bytes(bytes(data))


def _empty_file(path):
    path.write_bytes(b"")


DAMAGED = {
    "random bytes": (_random_bytes, "not a readable .npz"),
    "truncated zip": (_truncated_zip, "not a readable .npz"),
    "missing keys": (_missing_keys, "lacks the arrays x_test, y_test"),
    "a single .npy": (_single_npy, "single .npy array"),
    "object array": (_object_array, "y_train cannot be read"),
    "damaged member": (_damaged_member, "x_train cannot be read"),
    "empty file": (_empty_file, "not a readable .npz"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_data_npz_is_refused_with_one_line(tmp_path, subs, no_kernel, case):
    make, words = DAMAGED[case]
    data = tmp_path / "data.npz"
    make(data)
    out = tmp_path / "out"
    line = _refused(_grade(subs, "--rubric", "cifar10", "--data", data, "--out", out), words, out=out)
    assert str(data) in line


# -- --data: wrong shapes, dtypes and labels ---------------------------------------------------

WRONG = {
    "x_train 2-D": (_cifar(x_train=np.zeros((20, 3072), U8)), "x_train has shape (20, 3072)"),
    "labels count mismatch": (_cifar(y_train=np.zeros((19, 1), U8)), "19 labels for the 20 images"),
    "labels out of range": (_cifar(y_test=np.full((10, 1), 10, U8)), "classes are 0 to 9"),
    "one-hot labels": (_cifar(y_train=np.eye(10, dtype=U8)[np.arange(20) % 10]), "one-hot"),
    "string images": (_cifar(x_test=np.full((10, 32, 32, 3), "a")), "not numbers"),
    "fractional labels": (_cifar(y_test=np.full(10, 0.5)), "fractions"),
    "no images": (_cifar(0, 10), "x_train holds no images"),
    "mnist shape for cifar": (_cifar(x_train=np.zeros((20, 28, 28), U8)), "cifar10 images are (32, 32, 3)"),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_data_with_wrong_shapes_or_labels_is_refused(tmp_path, subs, no_kernel, case):
    arrays, words = WRONG[case]
    data = tmp_path / "data.npz"
    np.savez(data, **arrays)
    out = tmp_path / "out"
    _refused(_grade(subs, "--rubric", "cifar10", "--data", data, "--out", out), words, out=out)


def test_a_well_formed_data_npz_passes_the_check():
    from grader.data.npz import check_arrays

    check_arrays(_cifar(), "cifar10", where="x")
    check_arrays(_cifar(y_train=np.arange(20) % 10), "cifar10", where="x")  # flat labels, as mnist has


@pytest.mark.parametrize(("name", "words"), [("missing.npz", "does not exist"), ("folder", "is a folder")])
def test_data_that_is_not_a_file_is_refused(tmp_path, subs, no_kernel, name, words):
    (tmp_path / "folder").mkdir()
    out = tmp_path / "out"
    _refused(_grade(subs, "--rubric", "cifar10", "--data", tmp_path / name, "--out", out), words, out=out)


def test_data_is_checked_in_grade_check_too(tmp_path, subs, no_kernel):
    data = tmp_path / "data.npz"
    _random_bytes(data)
    _refused(_grade("check", subs / "alice.ipynb", "--rubric", "cifar10", "--data", data), "not a readable .npz")


# -- --hidden-test -----------------------------------------------------------------------------

HIDDEN = {
    "random bytes": (None, "not a readable .npz"),
    "no y_test": ({"x_test": np.zeros((5, 32, 32, 3), U8)}, "lacks the arrays y_test"),
    "wrong image shape": ({"x_test": np.zeros((5, 3072), U8), "y_test": np.zeros(5, U8)}, "x_test has shape (5, 3072)"),
    "labels count mismatch": ({"x_test": np.zeros((5, 32, 32, 3), U8), "y_test": np.zeros(4, U8)}, "4 labels for the 5 images"),
    "labels out of range": ({"x_test": np.zeros((5, 32, 32, 3), U8), "y_test": np.full(5, 99)}, "classes are 0 to 9"),
}


@pytest.mark.parametrize("case", list(HIDDEN))
def test_malformed_hidden_test_is_refused(tmp_path, subs, no_kernel, case):
    arrays, words = HIDDEN[case]
    hidden = tmp_path / "hidden.npz"
    if arrays is None:
        _random_bytes(hidden)
    else:
        np.savez(hidden, **arrays)
    out = tmp_path / "out"
    line = _refused(_grade(subs, "--rubric", "cifar10", "--data", "synthetic", "--hidden-test", hidden, "--out", out),
                    words, out=out)
    assert str(hidden) in line


def test_hidden_test_may_have_one_hot_labels():
    from grader.data.npz import check_arrays

    check_arrays({"x_test": np.zeros((5, 32, 32, 3), U8), "y_test": np.eye(10)[:5]}, "cifar10", where="h", one_hot=True)


# -- --out -------------------------------------------------------------------------------------

def _writes_blocked(folder) -> bool:
    """Whether this process is really kept out of ``folder`` (root is not kept out by mode bits)."""
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return True
    probe.unlink()
    return False


def test_read_only_out_is_refused_before_any_kernel(tmp_path, subs, no_kernel):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        if not _writes_blocked(out):
            pytest.skip("this process can write in a 0o555 folder (running as root): see the not-a-folder case")
        line = _refused(_grade(subs, "--rubric", "cifar10", "--data", "synthetic", "--out", out), "cannot write")
        assert str(out) in line
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_out_that_cannot_be_created_is_refused_before_any_kernel(tmp_path, subs, no_kernel):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"  # no one, root included, can create a folder inside a file
    line = _refused(_grade(subs, "--rubric", "cifar10", "--data", "synthetic", "--out", out), "cannot write", out=out)
    assert str(out) in line


def test_out_that_is_a_file_is_refused(tmp_path, subs, no_kernel):
    out = tmp_path / "out.txt"
    out.write_text("keep me")
    _refused(_grade(subs, "--rubric", "cifar10", "--data", "synthetic", "--out", out), "is a file")
    assert out.read_text() == "keep me"


def test_check_out_that_cannot_be_created_is_refused(tmp_path, subs, no_kernel):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _refused(_grade("check", subs / "alice.ipynb", "--rubric", "cifar10", "--data", "synthetic", "--out", blocker / "r"),
             "cannot write")


# -- rubrics -----------------------------------------------------------------------------------

def _billion_laughs(levels: int = 9) -> str:
    text = "name: laughs\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in range(1, levels):
        text += f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]\n"
    return text + f"tasks: *l{levels - 1}\n"


def _counting(monkeypatch, cls, name):
    calls = {"n": 0}
    original = getattr(cls, name)

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path, monkeypatch, subs, no_kernel):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_billion_laughs())  # 9^9 = 387,420,489 strings once expanded
    walked = _counting(monkeypatch, rubric_module._Marks, "walk")
    out = tmp_path / "out"
    _refused(_grade(subs, "--rubric", bomb, "--out", out), "aliases", "expand", out=out)
    assert walked["n"] == 0  # refused before anything walked the tree with its aliases expanded


def test_yaml_alias_bomb_in_rubric_validate(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_billion_laughs())
    result = _grade("rubric", "validate", bomb)
    assert result.exit_code == 2 and "aliases (*name) expand" in result.output, result.output


def test_alias_that_contains_itself_is_refused():
    with pytest.raises(RubricError, match="contains it"):
        load_rubric_text("name: loop\ntasks: &t [*t]\n")


def test_small_aliases_still_work():
    loaded = load_rubric_text(
        "name: t\ntasks:\n  - id: a\n    model: {fit: 1}\n    checks: &same [{total_params: {at_most: 100}}]\n"
        "  - id: b\n    model: {fit: 2}\n    checks: *same\n")
    assert [len(task.checks) for task in loaded.tasks] == [1, 1]


def test_a_120000_task_rubric_is_refused_unread(tmp_path, monkeypatch, subs, no_kernel):
    huge = tmp_path / "huge.yaml"
    with huge.open("w") as handle:
        handle.write("name: huge\ntasks:\n")
        for i in range(120_000):
            handle.write(f"  - {{id: t{i}, model: {{fit: 1}}, checks: [{{total_params: {{at_most: 5}}}}]}}\n")
    assert huge.stat().st_size > MAX_RUBRIC_BYTES
    composed = _counting(monkeypatch, rubric_module._BoundedLoader, "compose_node")
    out = tmp_path / "out"
    _refused(_grade(subs, "--rubric", huge, "--out", out), "too large", "KiB", out=out)
    assert composed["n"] == 0  # refused by its size, before the YAML parser saw it


def test_a_rubric_of_many_small_nodes_stops_at_the_node_bound(monkeypatch):
    text = "name: many\ntasks:\n" + "".join(f"  - {{id: t{i}}}\n" for i in range(6000))
    assert len(text) < MAX_RUBRIC_BYTES
    composed = _counting(monkeypatch, rubric_module._BoundedLoader, "compose_node")
    with pytest.raises(RubricError, match="too large"):
        load_rubric_text(text)
    assert composed["n"] <= MAX_YAML_NODES + 1  # the parser stopped at the bound, not at the end


def test_too_many_tasks_through_aliases_is_refused():
    text = ("name: many\nx-task: &t {id: same, model: {fit: 1}, checks: [{total_params: {at_most: 5}}]}\ntasks: ["
            + ", ".join(["*t"] * (MAX_TASKS + 1)) + "]\n")
    with pytest.raises(RubricError, match=f"{MAX_TASKS + 1} tasks"):
        load_rubric_text(text)


def test_deeply_nested_rubric_is_refused():
    with pytest.raises(RubricError, match="levels deep"):
        load_rubric_text("name: deep\ntasks: " + "[" * 10_000 + "\n")


def test_bundled_rubrics_are_far_inside_the_bounds():
    from grader.resources import rubrics_dir

    paths = sorted(rubrics_dir().glob("*.yaml"))
    assert paths, f"no bundled rubric in {rubrics_dir()}"
    for path in paths:
        load_rubric(path)
        assert path.stat().st_size < MAX_RUBRIC_BYTES // 10


# -- an empty folder ---------------------------------------------------------------------------

def test_empty_folder_is_a_usage_error(tmp_path, no_kernel):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    _refused(_grade(empty, "--rubric", "cifar10", "--data", "synthetic", "--out", out), "no notebooks found", out=out)


def test_folder_without_notebooks_says_what_was_skipped(tmp_path, no_kernel):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a notebook")
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "out"
    _refused(_grade(folder, "--rubric", "cifar10", "--data", "synthetic", "--out", out), "no notebooks found", out=out)


def test_existing_out_keeps_its_contents_when_a_run_is_refused(tmp_path, no_kernel):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    (out / "alice").mkdir(parents=True)
    (out / "alice" / "result.json").write_text("{}")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    _refused(_grade(empty, "--rubric", "cifar10", "--data", "synthetic", "--out", out), "no notebooks found")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert os.listdir(out) == ["alice"]
