"""Write ``architectures/<name>.json`` for every reference model: ``python -m reference_models.regenerate``.

Rubric checks read these files (:func:`reference_models.architecture`) so that grading never has
to import Keras to know what a reference looks like. ``tests/test_reference_models.py`` fails
when a file no longer equals a fresh build; run this module after changing a builder.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import reference_models
from reference_models import ARCHITECTURES_DIR


def describe(name: str) -> dict[str, Any]:
    """The :class:`~grader.model.evidence.Architecture` JSON of a fresh build of reference ``name``."""
    from grader.model.evidence import Architecture, from_json, to_json
    from grader.kernel.recorder import describe_model

    model = reference_models.get(name).build()
    # Through the dataclass and back: what is stored is exactly what from_json accepts.
    return to_json(from_json(Architecture, describe_model(model)))


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Regenerate the files of the given references (all when none is named)."""
    wanted = (argv if argv is not None else sys.argv[1:]) or reference_models.names()
    ARCHITECTURES_DIR.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        path = ARCHITECTURES_DIR / f"{name}.json"
        path.write_text(render(describe(name)), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
