"""Whose mistake a failed import is: the assignment's environment, or the student's."""

from grader.findings.blame import import_problem
from grader.model.evidence import CellError, CellRef, Evidence
from grader.execute.preflight import mark_environment_problem, shared_environment_errors
from grader.model.results import GradeResult, Student


def test_a_typo_is_the_students_with_the_module_it_meant():
    problem = import_problem("No module named 'nump'", 2, declared=["sklearn"])
    assert problem.kind == "import"
    assert "`numpy`" in problem.message and "not counted" not in problem.message


def test_a_missing_helper_file_is_the_students_with_the_support_hint():
    problem = import_problem("No module named 'Custom'", 4, declared=[])
    assert problem.kind == "import"
    assert "Custom.py was not found next to the notebook" in problem.message and "--support" in problem.message


def test_a_declared_but_missing_package_is_the_environments_with_the_install_command():
    problem = import_problem("No module named 'sklearn.metrics'", 1, declared=["sklearn"])
    assert problem.kind == "environment"
    assert "not counted as your mistake" in problem.message and "pip install scikit-learn" in problem.message


def test_an_undeclared_known_package_is_not_advertised_as_the_environments():
    problem = import_problem("No module named 'seaborn'", 1, declared=["sklearn"])
    assert problem.kind == "import" and "packages:" in problem.message
    assert "pip install google" not in import_problem("No module named 'google.colab'", 1, []).message


def _result(key, *errors):
    evidence = Evidence(submission=key, cells=[object()], cell_errors=[CellError(CellRef(1), e, v) for e, v in errors])
    result = GradeResult(student=Student(key=key), path=key, evidence=evidence)
    for e, v in errors:
        result.problems.append(import_problem(v, 2, []))
    return result


def test_an_import_that_fails_for_most_of_a_batch_becomes_the_environments():
    missing = ("ModuleNotFoundError", "No module named 'seaborn'")
    results = [_result("a", missing), _result("b", missing), _result("c")]
    shared = shared_environment_errors(results)
    assert shared == "ModuleNotFoundError: No module named 'seaborn'"
    mark_environment_problem(results, shared)
    assert [p.kind for p in results[0].problems] == ["environment"]
    assert results[2].problems == []  # untouched: it did not fail that way


def test_import_num_suggests_numpy():
    assert "`numpy`" in import_problem("No module named 'num'", 3, []).message


def test_grade_check_uses_the_students_helper_and_support_files(tmp_path, monkeypatch):
    import nbformat
    from click.testing import CliRunner

    from grader.batch import local as batch

    import grader.cli as cli
    from grader.findings.blame import helpers_next_to

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from Custom import PlotModelEval\nimport numpy")])
    path = tmp_path / "lab.ipynb"
    nbformat.write(nb, str(path))
    (tmp_path / "Custom.py").write_text("def PlotModelEval(): pass\n")
    extra = tmp_path / "mnist_4000.pkl.gz"
    extra.write_bytes(b"x")
    assert helpers_next_to(path) == [(tmp_path / "Custom.py").resolve()]
    seen = {}

    def fake_grade_batch(submissions, rubric, out, options, **kw):
        seen["support"] = options.support
        raise SystemExit(0)

    monkeypatch.setattr(batch, "grade_batch", fake_grade_batch)
    CliRunner().invoke(cli.main, ["check", str(path), "--rubric", "cifar10", "--data", "synthetic", "--support", str(extra)])
    assert sorted(p.name for p in seen["support"]) == ["Custom.py", "mnist_4000.pkl.gz"]


def test_support_option_is_merged_with_the_rubrics_support_files(tmp_path):
    from grader.config import GradingOptions
    from grader.pipeline.session import GradingSession
    from grader.rubric.load import load_rubric

    rubric = load_rubric("cifar10")
    mine = tmp_path / "Custom.py"
    mine.write_text("")
    data = tmp_path / "faces.hdf5"
    data.write_bytes(b"")
    session = GradingSession(rubric, tmp_path / "out", GradingOptions(support=[mine, data]))
    try:
        names = [p.name for p in session.settings().support_files]
    finally:
        session.close()
    assert names.count("Custom.py") == 1 and "faces.hdf5" in names
    assert mine in session.settings().support_files  # --support wins over the rubric's copy


def test_a_missing_course_data_file_is_named_with_how_to_supply_it():
    from grader.findings.blame import missing_file_problem

    problem = missing_file_problem("FileNotFoundError", "[Errno 2] No such file or directory: 'mnist_4000.pkl.gz'", 2)
    assert "`mnist_4000.pkl.gz`" in problem.message and "--support mnist_4000.pkl.gz" in problem.message
    h5 = missing_file_problem("FileNotFoundError", "[Errno 2] Unable to synchronously open file (unable to open file: "
                              "name = 'data/faces.hdf5', errno = 2)", 5)
    assert "--support faces.hdf5" in h5.message
    assert missing_file_problem("ValueError", "No such file or directory: 'x'", 1) is None


def test_colab_only_code_is_neutralised_and_reported():
    import importlib

    from grader.kernel import compat

    found = []
    compat._colab_report = None
    compat.install_colab(found.append)
    drive = importlib.import_module("google.colab").drive
    assert drive.mount("/content/drive") is None
    assert importlib.import_module("google.colab.files").upload() == {}
    lines = compat._skip_colab_lines(["!pip install tensorflow==1.15\n", "%tensorflow_version 2.x\n", "x = 1\n"])
    assert lines[2] == "x = 1\n" and all("_colab_skipped" in line for line in lines[:2])
    exec(lines[1])
    apis = [f["api"] for f in found]
    assert "colab: drive.mount" in apis and "colab: files.upload" in apis and "colab: %tensorflow_version 2.x" in apis
    assert all(f["kind"] == "compat" for f in found)


LIBRARY_TRACEBACK = """ModuleNotFoundError                       Traceback (most recent call last)
Cell In[4], line 3
      1 datagen = ImageDataGenerator(rotation_range=15, zca_whitening=True)
----> 3 datagen.fit(x_train)

File /usr/local/lib/python3.11/site-packages/keras/src/legacy/preprocessing/image.py:1446, in ImageDataGenerator.fit(self, x)
-> 1446     from scipy import linalg

ModuleNotFoundError: No module named 'scipy'"""


def test_a_module_a_library_needs_is_the_environments():
    from grader.findings.blame import import_problem

    problem = import_problem("No module named 'scipy'", 4, [], traceback=LIBRARY_TRACEBACK)
    assert problem.kind == "environment" and "not counted as your mistake" in problem.message


def test_the_same_module_imported_by_the_notebook_is_the_students():
    from grader.findings.blame import import_problem

    own = "ModuleNotFoundError    Traceback (most recent call last)\nCell In[4], line 1\n----> 1 import scipy\n"
    assert import_problem("No module named 'scipy'", 4, [], traceback=own).kind == "import"
    helper = own + "\nFile /tmp/work/Custom.py:3\n----> 3 import scipy\n"  # a helper file of the notebook's own
    assert import_problem("No module named 'scipy'", 4, [], traceback=helper).kind == "import"
