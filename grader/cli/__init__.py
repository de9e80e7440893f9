"""The ``grade`` command line: one module per verb, each parsing and printing over the stage packages.

    grade SUBMISSIONS... --rubric R [--out DIR]     grade a batch (the default command)   run.py
    grade check NOTEBOOK --rubric R                 a student's self-check, fast mode      check.py
    grade rubric validate FILE [--against T.ipynb]  check a rubric file (and its selectors on a template)
    grade rubric init TEMPLATE.ipynb -o R.yaml      draft a rubric from a course template
    grade rubric explain R NOTEBOOK                 what each task picks in a notebook, and why
    grade rubric schema                             the rubric JSON Schema's path (for editors)   rubric.py
    grade export OUT_DIR --export canvas            gradebook from stored results          export.py
    grade review OUT_DIR                            mark manual items in the browser       review.py
    grade manual export | template OUT_DIR          human scores as CSV; a CSV to fill in  manual.py
    grade reference list | show NAME | train NAME   the course's reference models          reference.py
    grade calibrate RUBRIC                          is the rubric's threshold reachable?   calibrate.py
    grade gradescope build --rubric R               a Gradescope autograder zip            gradescope.py

The group, the shared options and the exit codes are in root.py; what ``run`` and ``check`` share
in grading.py; the batch's progress display in progress.py.
"""

from grader.cli.root import main

# Importing a verb's module adds its command to `main`.
from grader.cli import calibrate, check, export, gradescope, manual, reference, review, rubric, run  # noqa: E402,F401

__all__ = ["main"]
