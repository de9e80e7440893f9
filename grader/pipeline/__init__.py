"""One submission's grading, from notebook to result, as an explicit list of stages."""
