"""What `pip install` gets: one TensorFlow build per environment, never two, and a wheel that carries
the files the grader reads at run time (the rubric schema, the report templates, the rubrics)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# The distributions that install the `tensorflow` import package: two of them in one environment
# overwrite each other's files.
TENSORFLOW_BUILDS = {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"}
PLATFORMS = {
    "linux-x86_64": {"platform_system": "Linux", "platform_machine": "x86_64", "sys_platform": "linux"},
    "linux-aarch64": {"platform_system": "Linux", "platform_machine": "aarch64", "sys_platform": "linux"},
    "macos-arm64": {"platform_system": "Darwin", "platform_machine": "arm64", "sys_platform": "darwin"},
}


def _tensorflow(extras: tuple[str, ...], platform: dict[str, str]) -> list[Requirement]:
    """The TensorFlow requirements ``pip install nn-grader[extras]`` asks for on ``platform``."""
    wanted = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return [r for r in wanted if r.name.lower() in TENSORFLOW_BUILDS
            and (r.marker is None or r.marker.evaluate({**platform, "extra": ""}))]


@pytest.mark.parametrize("platform", PLATFORMS, ids=str)
def test_each_extra_asks_for_exactly_one_tensorflow_build(platform):
    env = PLATFORMS[platform]
    assert _tensorflow((), env) == []  # the build is the cpu or gpu extra's choice, so they cannot clash
    for extras in [("cpu",), ("gpu",), ("cpu", "test"), ("gpu", "test"), ("gpu", "dask")]:
        builds = {r.name for r in _tensorflow(extras, env)}
        assert len(builds) == 1, (extras, builds)
    gpu = _tensorflow(("gpu",), env)
    assert {r.name for r in gpu} == {"tensorflow"}
    if env["platform_system"] == "Linux":
        assert gpu[0].extras == {"and-cuda"}  # CUDA from pip, on the full build, not on tensorflow-cpu


def test_the_cpu_extra_is_the_small_build_where_there_is_one():
    assert {r.name for r in _tensorflow(("cpu",), PLATFORMS["linux-x86_64"])} == {"tensorflow-cpu"}
    assert {r.name for r in _tensorflow(("cpu",), PLATFORMS["macos-arm64"])} == {"tensorflow"}


def test_metadata_has_license_classifiers_and_no_invented_urls():
    assert PROJECT["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    classifiers = PROJECT["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    assert PROJECT["requires-python"] == ">=3.11,<3.13"  # the Python classifiers say the same
    assert "Programming Language :: Python :: 3.12" in classifiers
    # No repository or documentation site exists yet: no URL is better than an invented one.
    assert "urls" not in PROJECT


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the tree (build/ and *.egg-info stay out of the checkout)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(ROOT / name, source / name)
    for name in ("grader", "rubrics", "templates", "reference_models"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet", "-w",
                           str(tmp_path / "dist")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return next((tmp_path / "dist").glob("nn_grader-*.whl"))


def _data_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


@pytest.mark.slow  # 5–15 s: pip builds in isolation, with setuptools from the package index
def test_the_wheel_carries_the_schema_templates_and_rubrics_and_the_installed_grader_finds_them(tmp_path):
    started = time.perf_counter()
    wheel = _build_wheel(tmp_path)
    print(f"wheel built in {time.perf_counter() - started:.1f} s")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        schema = json.loads(archive.read("grader/schemas/rubric.schema.json"))
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert schema == json.loads((ROOT / "grader/schemas/rubric.schema.json").read_text(encoding="utf-8"))
    shipped = {
        "grader/_templates": ROOT / "templates",  # every template, stylesheet and script the reports inline
        "grader/_rubrics": ROOT / "rubrics",
        "reference_models/architectures": ROOT / "reference_models/architectures",
    }
    for inside, folder in shipped.items():
        expected = _data_files(folder)
        assert expected and {f"{inside}/{name}" for name in expected} <= names, sorted(expected)
    assert "grader/_templates/overview_sort.js" in names
    assert "License-Expression: MIT" in metadata and "Classifier: Typing :: Typed" in metadata
    assert not [line for line in metadata.splitlines()
                if line.startswith("Requires-Dist: tensorflow") and "extra ==" not in line]

    # Installed (unpacked on the path, ahead of this checkout), the grader reads its own copies.
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = ("import grader, grader.resources as r; from grader.rubric.schema import SCHEMA_PATH; "
             "print(grader.__file__); print(SCHEMA_PATH); print(r.templates_dir()); print(r.rubrics_dir())")
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert Path(line).is_relative_to(site) and Path(line).exists(), done.stdout
    schema_cmd = subprocess.run([sys.executable, "-m", "grader.cli", "rubric", "schema"], capture_output=True,
                                text=True, env=env, cwd=tmp_path)
    assert schema_cmd.returncode == 0, schema_cmd.stderr
    assert Path(schema_cmd.stdout.strip()) == site / "grader/schemas/rubric.schema.json"
