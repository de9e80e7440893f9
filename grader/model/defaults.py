"""Defaults that more than one stage must agree on, in one place.

The rubric's ``cell_timeout`` / ``notebook_timeout`` default to these, and so does a direct
caller of the executor (:class:`grader.execute.settings.ExecutionSettings`): the grader never
has two answers to "how long may a cell run".
"""

DEFAULT_CELL_TIMEOUT = 1800.0  # one cell may train a CNN for many epochs on a CPU
DEFAULT_NOTEBOOK_TIMEOUT = 4 * 3600.0
