"""Rubrics: the YAML model, loading and validation, drafting a rubric from a course template."""
