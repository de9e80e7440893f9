"""docs/rubrics.md: every example is valid, and every check kind and selector is documented."""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from grader.checks import KINDS
from grader.rubric.load import validate_rubric_file

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rubrics.md"
TEXT = DOCS.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```yaml\n(.*?)```", TEXT, re.DOTALL)
SELECTOR_KEYS = ("fit", "section", "before", "after", "function", "tag", "variable")


def wrap(block: str) -> str:
    """A YAML example from the docs as a complete rubric."""
    if re.search(r"^name:", block, re.MULTILINE):
        return block
    text = "name: docs\ntasks:\n  - id: fc\n    model: {fit: 1}\n    checks: [{total_params: 1}]\n"
    if block.lstrip().startswith("model:"):  # one selector per line: one task each
        for i, line in enumerate(line for line in block.splitlines() if line.strip()):
            text += f"  - id: t{i}\n    {line}\n    checks: [{{total_params: 1}}]\n"
        return text
    text += "  - id: t\n"
    if block.lstrip().startswith("- "):  # checks
        return text + "    model: {fit: 1}\n    question: 'Question 3'\n    reference: cifar10_cnn\n    checks:\n" + \
            textwrap.indent(block, "      ")
    return text + textwrap.indent(block, "    ") + "    checks: [{manual: x}]\n"  # task keys


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0][:40] for b in BLOCKS])
def test_every_yaml_example_validates(block, tmp_path):
    (tmp_path / "Custom.py").write_text("")
    path = tmp_path / "example.yaml"
    path.write_text(wrap(block))
    assert validate_rubric_file(path) == [], path.read_text()


def test_every_check_kind_has_a_section():
    for name in KINDS:
        assert f"#### `{name}`" in TEXT, name


def test_every_selector_is_documented():
    for key in SELECTOR_KEYS:
        assert re.search(rf"model: \{{{key}:", TEXT), key


def test_the_complete_example_comes_first():
    assert yaml.safe_load(BLOCKS[0])["tasks"]
