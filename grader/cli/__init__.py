"""The ``grade`` command line."""

from grader.cli.commands import main

__all__ = ["main"]
