"""Rubrics: the assignment in YAML, as the grader reads it.

:mod:`~grader.rubric.model` (the plain classes the checks read), :mod:`~grader.rubric.load`
(``load_rubric``, ``validate_rubric_file``), with :mod:`~grader.rubric.parse` (bounded YAML with
lines), :mod:`~grader.rubric.schema` (the JSON Schema from the check registry),
:mod:`~grader.rubric.problems` (its errors in words) and :mod:`~grader.rubric.build` (meaning and
the built rubric); :mod:`~grader.rubric.authoring` drafts a rubric from a course template and
:mod:`~grader.rubric.explain` shows what a rubric picks in a notebook.
"""
