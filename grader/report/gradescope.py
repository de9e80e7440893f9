"""Gradescope autograders: the zip ``grade gradescope build`` writes, and the run inside the container.

Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/; lms-formats.md 2.5)
unpacks the autograder zip into ``/autograder/source``, runs ``setup.sh`` there once when it builds
the image, and for every submission runs ``/autograder/run_autograder`` with the student's files in
``/autograder/submission``. What students see is ``/autograder/results/results.json``.

The zip holds, at its root::

    setup.sh            installs Python 3.11/3.12, a virtualenv, nn-grader from dist/ and its
                        dependencies at the versions in constraints.txt (the container has internet)
    run_autograder      bash: runs ``python -m grader.report.gradescope run`` and makes sure a
                        results.json exists whatever happens to Python
    nn-grader.json      what to grade: the rubric file, the notebook's name, mode, data, support files
    rubric/<name>.yaml  the rubric, its support files under rubric/support/, its data under rubric/data/
    support/            files given with ``--support`` (copied next to the notebook)
    data/               ``--data`` and ``--hidden-test`` files
    dist/               the nn-grader wheel
    constraints.txt     the dependencies' versions this wheel was built and tested with

results.json is written by :func:`grader.report.exports.gradescope.gradescope_results` (one writer for the
export and the autograder). ``run_autograder`` writes a placeholder first (so a run Gradescope
kills at its time limit still says why), and replaces it with an error result when Python dies
before writing its own. ``AUTOGRADER_ROOT`` moves the root away from ``/autograder`` (tests,
local trials); ``NN_GRADER_PYTHON`` names the interpreter (default: the virtualenv setup.sh made).

Example::

    build_autograder("rubrics/cifar10.yaml", Path("autograder.zip"), support=[Path("Custom.py")])
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import UsageError
from grader.store.atomic import write_atomic

CONFIG_NAME = "nn-grader.json"
MODES = ("fast", "full", "static")
MANUAL_ITEMS = ("pending", "leave-out")
# The container's Python must satisfy the package's requires-python (>=3.11,<3.13).
PYTHONS = ("python3.12", "python3.11")
# Directories a submission carries that are never the student's notebook.
_IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}
# Marks the placeholder run_autograder writes before grading: still there afterwards means the
# grader never got to write its own results.json.
UNFINISHED_MARK = "nn_grader_unfinished"


@dataclass
class AutograderZip:
    """What :func:`build_autograder` wrote."""

    path: Path
    members: list[str] = field(default_factory=list)
    wheel: str = ""
    max_points: float = 0.0


# ---------------------------------------------------------------------------------------------
# Building the zip


def build_autograder(rubric: str | Path, out: Path, *, data: Path | None = None, hidden_test: Path | None = None,
                     support: list[Path] | tuple[Path, ...] = (), notebook: str | None = None, mode: str = "fast",
                     wheel: Path | None = None, requirements: list[str] | tuple[str, ...] = (),
                     manual_items: str = "pending") -> AutograderZip:
    """Write the Gradescope autograder zip for ``rubric`` (a file or a built-in name) to ``out``.

    ``notebook``: the submission's file name to grade when students upload several notebooks.
    ``mode``: ``fast`` (capped training, like ``grade check``), ``full`` or ``static`` (saved outputs
    only). ``wheel``: an nn-grader wheel to ship; by default one is built from this source tree.
    ``requirements``: extra pip requirements setup.sh installs (what the notebooks import).
    ``manual_items``: ``pending`` (a 0-point test with its maximum until marked) or ``leave-out``
    (the course marks them as questions of its own in Gradescope).
    Raises :class:`UsageError` for anything the zip could not work with, before writing it.
    """
    from grader.rubric.load import _resolve_path, load_rubric

    if mode not in MODES:
        raise UsageError(f"unknown mode '{mode}': choose one of {', '.join(MODES)}")
    if manual_items not in MANUAL_ITEMS:
        raise UsageError(f"unknown manual_items '{manual_items}': choose one of {', '.join(MANUAL_ITEMS)}")
    rubric_path = _resolve_path(rubric)
    loaded = load_rubric(rubric_path)  # a broken rubric is refused here, not in every student's run
    for given, what in ((data, "--data"), (hidden_test, "--hidden-test"), *((p, "--support") for p in support)):
        if given is not None and not Path(given).is_file():
            raise UsageError(f"{what} {given}: no such file")
    if data is not None or hidden_test is not None:
        _check_data(loaded, data, hidden_test)
    with tempfile.TemporaryDirectory(prefix="nn-grader-gradescope-") as tmp:
        stage = Path(tmp) / "zip"
        stage.mkdir()
        rubric_member = _stage_rubric(rubric_path, loaded, stage)
        config = {
            "nn_grader": _version(), "rubric": rubric_member, "notebook": notebook, "mode": mode,
            "data": _stage_file(data, stage / "data") if data else None,
            "hidden_test": _stage_file(hidden_test, stage / "data") if hidden_test else None,
            "support": [_stage_file(Path(p), stage / "support") for p in support],
            "manual_items": manual_items, "max_points": loaded.max_points,
        }
        _check_unique_names(config["support"])
        dist = stage / "dist"
        dist.mkdir()
        wheel_path = _ship_wheel(wheel, dist, Path(tmp))
        (stage / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (stage / "constraints.txt").write_text(constraints_text(wheel_path), encoding="utf-8")
        # The container has no Keras cache: setup.sh downloads the dataset into the image once,
        # unless the notebooks get a file instead.
        prefetch = (loaded.dataset if loaded.dataset and data is None and mode != "static"
                    and loaded.data_source in ("auto", "keras-cache") else None)
        (stage / "setup.sh").write_text(setup_script(wheel_path.name, list(requirements), dataset=prefetch),
                                        encoding="utf-8")
        (stage / "run_autograder").write_text(RUN_AUTOGRADER, encoding="utf-8")
        # The staged rubric must load from where it now lies: its support files and data moved.
        load_rubric(stage / rubric_member)
        members = _write_zip(stage, Path(out))
    return AutograderZip(path=Path(out), members=members, wheel=wheel_path.name, max_points=loaded.max_points)


def _version() -> str:
    from grader import __version__

    return __version__


def _check_data(rubric, data: Path | None, hidden_test: Path | None) -> None:
    from grader.data.load import check_hidden_test, check_source

    name = rubric.dataset
    if data is not None:
        check_source(name, str(data))
    if hidden_test is not None:
        check_hidden_test(Path(hidden_test), name)


def _stage_file(path: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(path).name
    if target.exists() and target.read_bytes() != Path(path).read_bytes():
        raise UsageError(f"two different files are named {target.name}: rename one (they are copied "
                         f"into one folder of the autograder)")
    shutil.copyfile(path, target)
    return target.relative_to(folder.parent).as_posix()


def _check_unique_names(members: list[str]) -> None:
    names = [Path(m).name for m in members]
    if len(set(names)) != len(names):
        raise UsageError("two support files share a name; each is copied next to the notebook under its name")


def _stage_rubric(path: Path, rubric, stage: Path) -> str:
    """Copy the rubric into ``rubric/``. Its support files and data file (paths relative to the
    rubric) are copied beside it and the copy names them there; a rubric that names none is
    copied as written, comments included."""
    import yaml

    folder = stage / "rubric"
    folder.mkdir()
    member = f"rubric/{path.name}"
    text = path.read_text(encoding="utf-8")
    data_file = rubric.data_source not in ("auto", "keras-cache", "synthetic", None)
    if not rubric.support_files and not data_file:
        (stage / member).write_text(text, encoding="utf-8")
        return member
    raw = yaml.safe_load(text)
    if rubric.support_files:
        raw["support_files"] = [_stage_file(Path(p), folder / "support") for p in rubric.support_files]
        _check_unique_names(raw["support_files"])
    if data_file:
        raw["data_source"] = _stage_file(Path(rubric.data_source), folder / "data")
    header = (f"# Copied from {path.name} by `grade gradescope build`; support files and data now lie beside it.\n")
    (stage / member).write_text(header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return member


def _ship_wheel(wheel: Path | None, dist: Path, tmp: Path) -> Path:
    if wheel is not None:
        wheel = Path(wheel)
        if not wheel.is_file() or not re.fullmatch(r"nn_grader-[^-]+-.+\.whl", wheel.name):
            raise UsageError(f"--wheel {wheel}: not an nn-grader wheel (nn_grader-<version>-...whl)")
        return Path(shutil.copyfile(wheel, dist / wheel.name))
    source = project_root()
    if source is None:
        raise UsageError("nn-grader is installed from a package, not from its source tree, so no wheel can be "
                         "built here: pass --wheel nn_grader-<version>-py3-none-any.whl (pip download "
                         "nn-grader --no-deps, or pip wheel . --no-deps in a checkout)")
    return build_wheel(source, dist, work=tmp)


def project_root() -> Path | None:
    """The source tree this grader runs from (a checkout, an editable install), or ``None``."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "nn-grader"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


_SOURCE_ITEMS = ("pyproject.toml", "README.md", "LICENSE", "grader", "rubrics", "templates", "reference_models")


def build_wheel(source: Path, dist: Path, *, work: Path) -> Path:
    """Build the nn-grader wheel from ``source`` into ``dist`` (``pip wheel --no-deps``).

    The tree is copied first, so the build's ``build/`` and ``*.egg-info`` land in a temporary
    folder and not in the checkout. When pyproject's build requirements are installed here the
    build uses them (``--no-build-isolation``: offline); otherwise pip fetches them from the
    package index it is configured with."""
    copy = work / "source"
    copy.mkdir()
    for item in _SOURCE_ITEMS:
        if (source / item).is_dir():
            shutil.copytree(source / item, copy / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (source / item).is_file():
            shutil.copyfile(source / item, copy / item)
    # Offline, pip can only build in isolation from a package index it can reach; with the build
    # requirements installed here it needs none.
    local = ["--no-build-isolation"] if _build_requirements_installed(copy / "pyproject.toml") else []
    command = [sys.executable, "-m", "pip", "wheel", str(copy), "--no-deps", *local, "--quiet", "-w", str(dist)]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dist.glob("nn_grader-*.whl"))
    if done.returncode != 0 or not wheels:
        errors = [line.strip() for line in (done.stderr or done.stdout).splitlines() if "rror" in line]
        raise UsageError("could not build the nn-grader wheel with pip wheel . --no-deps (it needs the build "
                         "requirements of pyproject.toml installed, or a package index to fetch them from): "
                         + " | ".join(errors[-3:]) + "; or pass --wheel with a wheel built elsewhere")
    return wheels[-1]


def _build_requirements_installed(pyproject: Path) -> bool:
    """Whether every ``build-system.requires`` of ``pyproject`` is installed here, in a version it allows."""
    import tomllib
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:
        return False
    requires = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("build-system", {}).get("requires", [])
    for text in requires:
        requirement = Requirement(text)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(version, prereleases=True):
            return False
    return True


def constraints_text(wheel: Path) -> str:
    """``name==version`` for every dependency the ``wheel`` declares that is installed here: the
    container gets the versions this grader was tested with (dependencies not installed here,
    like the non-Linux ``tensorflow``, and extras but ``cpu`` are left to pip)."""
    from email.parser import Parser
    from importlib import metadata

    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise UsageError(f"{wheel.name} has no METADATA: not a wheel pip can install")
        requires = Parser().parsestr(archive.read(name).decode("utf-8")).get_all("Requires-Dist") or []
    lines = ["# Versions of nn-grader's dependencies where the autograder was built (pip -c)."]
    seen = set()
    for requirement in requires:
        if "extra ==" in requirement and not re.search(r"extra\s*==\s*['\"]cpu['\"]", requirement):
            continue  # but the `cpu` extra's TensorFlow, which setup.sh installs, is pinned too
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def _write_zip(stage: Path, out: Path) -> list[str]:
    """Zip the staged files at the archive's root; the two scripts keep their executable bit
    (Unix mode bits in the members' external attributes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    members = []
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            name = path.relative_to(stage).as_posix()
            info = zipfile.ZipInfo(name, date_time=time.localtime(path.stat().st_mtime)[:6])
            info.create_system = 3  # Unix: unzip applies the mode bits below
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
            members.append(name)
    os.replace(partial, out)
    return members


def setup_script(wheel: str, requirements: list[str], *, dataset: str | None = None) -> str:
    """setup.sh: Gradescope runs it once, in /autograder/source, when it builds the image.
    ``dataset``: a Keras dataset (one of the rubric's, so a plain name) to download into the image."""
    from grader.rubric.model import DATASETS

    extra = " ".join(_shell_quote(r) for r in requirements)
    fetch = ""
    if dataset is not None:
        if dataset not in DATASETS:
            raise UsageError(f"unknown dataset '{dataset}'")
        fetch = (f"# The rubric's dataset into the Keras cache of the image: no download in any student's run.\n"
                 f'"$VENV/bin/python" -c "import keras; keras.datasets.{dataset}.load_data()"\n')
    return (SETUP_SH.replace("@WHEEL@", wheel).replace("@EXTRA@", extra).replace("@PYTHONS@", " ".join(PYTHONS))
            .replace("@FETCH@\n", fetch))


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


SETUP_SH = r"""#!/usr/bin/env bash
# Written by `grade gradescope build`. Gradescope runs this once, when it builds the autograder
# image: it installs nn-grader and its dependencies (pinned in constraints.txt) in a virtualenv.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
VENV="$ROOT/nn-grader-venv"

fits() { "$1" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' 2>/dev/null; }
PY=""
for candidate in python3 @PYTHONS@; do
  if command -v "$candidate" >/dev/null && fits "$candidate" && "$candidate" -m venv --help >/dev/null 2>&1; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  # nn-grader needs Python 3.11 or 3.12; Ubuntu 22.04 images ship 3.10, 24.04 ships 3.12.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  for version in 3.12 3.11; do
    if apt-get install -y "python$version" "python$version-venv"; then PY="python$version"; break; fi
  done
fi
if [ -z "$PY" ]; then
  echo "setup.sh: no Python 3.11 or 3.12 could be installed; choose an Ubuntu 24.04 base image" >&2
  exit 1
fi
# A sandbox for the notebooks where the container allows one (nn-grader falls back without it).
apt-get install -y bubblewrap >/dev/null 2>&1 || true

"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
# [cpu]: TensorFlow comes from an extra (the CPU build; Gradescope has no GPUs).
"$VENV/bin/python" -m pip install -c constraints.txt "dist/@WHEEL@[cpu]" @EXTRA@
# Fail the image build now, not every student's run later.
"$VENV/bin/python" -c "import grader, keras, nbclient; print('nn-grader', grader.__version__, 'keras', keras.__version__)"
@FETCH@
"$VENV/bin/python" -m grader.report.gradescope check-config "$(pwd)"
"""


RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Written by `grade gradescope build`. Gradescope runs it for every submission, in /autograder.
# It always leaves a results.json: the grader's, or one that says why there is none.
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
RESULTS="$ROOT/results"
PY="${NN_GRADER_PYTHON:-$ROOT/nn-grader-venv/bin/python}"
LOG="$RESULTS/nn-grader.log"
mkdir -p "$RESULTS"
cd "$ROOT" || exit 0

# Replaced by the grader's own results; still here only if the run was stopped (time limit).
cat > "$RESULTS/results.json" <<'JSON'
{"score": 0.0, "output": "Grading did not finish: the autograder was stopped before it could write results, usually by the assignment's time limit. Check that the notebook does not train for longer than the assignment allows, then submit again or ask your instructor.", "tests": [], "extra_data": {"nn_grader_unfinished": true}}
JSON

"$PY" -m grader.report.gradescope run "$ROOT" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}

if grep -q '"nn_grader_unfinished"' "$RESULTS/results.json" 2>/dev/null; then
  # Python died before writing results (or could not start): say so, with the log's last lines.
  tail_text=$(tail -n 15 "$LOG" 2>/dev/null | tr '\t' ' ' | tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk '{printf "%s\\n", $0}')
  cat > "$RESULTS/results.json" <<JSON
{"score": 0.0, "output": "The grader crashed (exit status $status) before it could grade this submission. This is not your notebook's fault: please tell your instructor.\n\n$tail_text", "tests": [], "extra_data": {"nn_grader_exit_status": $status}}
JSON
fi
exit 0
"""


# ---------------------------------------------------------------------------------------------
# The run inside the container


def run_autograder(root: Path) -> dict:
    """Grade the submission in ``root/submission`` with the autograder in ``root/source`` and
    write ``root/results/results.json``. Never raises: a problem becomes the results' output."""
    root = Path(root)
    started = time.perf_counter()
    target = root / "results" / "results.json"
    try:
        results = _grade(root)
    except Exception as exc:  # the student still gets a results.json that says what happened
        traceback.print_exc()
        results = _error_results(f"The grader failed on this submission ({type(exc).__name__}: {exc}). "
                                 "This is not your notebook's fault: please tell your instructor.")
    if not results.get("execution_time"):
        results["execution_time"] = int(round(time.perf_counter() - started))
    _write_json(target, results)
    return results


def _grade(root: Path) -> dict:
    from grader.report.exports.gradescope import gradescope_results

    source = root / "source"
    config = load_config(source)
    notebook, why = find_notebook(root / "submission", config.get("notebook"))
    if notebook is None:
        return _error_results(why)
    result = grade_notebook(notebook, source, config, student=_student(root))
    return gradescope_results(result, pending_manual=config.get("manual_items", "pending") == "pending")


def load_config(source: Path) -> dict:
    """The autograder's ``nn-grader.json``; raises :class:`UsageError` when it is missing or bad."""
    path = Path(source) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable autograder configuration ({exc}); build the zip again "
                         "with grade gradescope build") from None
    if not isinstance(config, dict) or not isinstance(config.get("rubric"), str) or config.get("mode") not in MODES:
        raise UsageError(f"{path}: the configuration lacks a rubric or a mode; build the zip again")
    return config


def find_notebook(submission: Path, name: str | None) -> tuple[Path | None, str]:
    """The notebook to grade: the one called ``name`` (any folder, any letter case), or the only
    one; ``(None, why)`` when there is none or no way to choose."""
    found = sorted((p for p in Path(submission).rglob("*") if p.is_file() and p.suffix.lower() == ".ipynb"
                    and not (_IGNORED_PARTS & set(p.relative_to(submission).parts))
                    and not p.name.startswith(".")), key=lambda p: (len(p.parts), str(p))) if Path(submission).is_dir() else []
    if name:
        named = [p for p in found if p.name.lower() == name.lower()]
        if named:
            return named[0], ""
        others = f" (found {_listing(found, submission)})" if found else ""
        return None, f"No notebook named {name} was submitted{others}. Submit your notebook as {name}."
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, "No Jupyter notebook (.ipynb) was found in your submission. Upload your .ipynb file."
    return None, (f"Your submission holds {len(found)} notebooks ({_listing(found, submission)}) and the grader "
                  "cannot tell which to grade: submit only the notebook of this assignment.")


def _listing(paths: list[Path], base: Path) -> str:
    names = [p.relative_to(base).as_posix() for p in paths[:5]]
    return ", ".join(names) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _student(root: Path):
    """Who submitted, from Gradescope's submission_metadata.json (when present)."""
    from grader.model.results import Student

    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = meta.get("users") or []
        first = users[0] if users else {}
        return Student(key="submission", name=", ".join(u.get("name", "") for u in users) or None,
                       email=first.get("email"), student_id=str(first["id"]) if first.get("id") else None,
                       submitted_at=meta.get("created_at"), lms="gradescope")
    except (OSError, ValueError, AttributeError, TypeError, KeyError, IndexError):
        return Student(key="submission", lms="gradescope")


def grade_notebook(notebook: Path, source: Path, config: dict, *, student=None):
    """Grade one notebook as the autograder is configured; returns the :class:`GradeResult`."""
    from grader.batch.local import grade_batch
    from grader.findings.blame import helpers_next_to
    from grader.config import GradingOptions
    from grader.model.results import Student
    from grader.rubric.load import load_rubric
    from grader.collect import Submission

    rubric = load_rubric(source / config["rubric"])
    mode = config["mode"]
    support = [(source / p).resolve() for p in config.get("support") or []]
    given = {p.name for p in support} | {Path(p).name for p in rubric.support_files}
    # The student's own helper modules next to the notebook, as `grade check` does; the course's
    # copies (given above) win.
    support += [p for p in helpers_next_to(notebook) if p.name not in given]
    options = GradingOptions(
        fast=mode == "fast", static=mode == "static", force=True, preflight=False,
        data=str((source / config["data"]).resolve()) if config.get("data") else None,
        hidden_test=(source / config["hidden_test"]).resolve() if config.get("hidden_test") else None,
        support=support,
    )
    submission = Submission(path=notebook, student=student or Student(key="submission"))
    with tempfile.TemporaryDirectory(prefix="nn-grader-gradescope-", ignore_cleanup_errors=True) as out:
        (result,) = grade_batch([submission], rubric, Path(out), options=options, workers=1)
    return result


def _error_results(message: str) -> dict:
    return {"score": 0.0, "output": message, "output_format": "text", "visibility": "visible",
            "stdout_visibility": "hidden", "tests": []}


def _write_json(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))  # never half of one


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.report.gradescope run ROOT`` (run_autograder) or ``check-config SOURCE`` (setup.sh)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "run":
        results = run_autograder(Path(argv[1]))
        print(f"nn-grader: score {results.get('score')}, {len(results.get('tests', []))} test(s)")
        return 0
    if len(argv) == 2 and argv[0] == "check-config":
        from grader.rubric.load import load_rubric

        config = load_config(Path(argv[1]))
        rubric = load_rubric(Path(argv[1]) / config["rubric"])
        print(f"nn-grader autograder: {rubric.title} ({rubric.max_points:g} points), mode {config['mode']}")
        return 0
    print("usage: python -m grader.report.gradescope run ROOT | check-config SOURCE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
