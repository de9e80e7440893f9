"""The ``grade`` group: the default command, the options ``run`` and ``check`` share, and the exit codes.

Exit codes (docs/ci.md): 0 success; 1 ``grade check``: a check failed (``grade run --strict``:
some student failed one); 2 usage error, refused before any kernel starts; 3 internal error (a bug);
4 some submission could not be graded by the grader (not the student's fault; run again).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from grader import __version__
from grader.errors import GraderError
from grader.model.kinds import SandboxMode
from grader.printable import printable

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_NOT_GRADED = 0, 1, 2, 3, 4
# Problems that mean the grader, not the student, left a submission without a grade.
NOT_GRADED_KINDS = frozenset({"internal", "environment"})


class _DefaultGroup(click.Group):
    """``grade PATH...`` runs the ``run`` command; ``grade check ...`` and the rest are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            first = args[0]
            # A mistyped subcommand ("chek") or group option ("--versoin") gets click's own
            # "No such command / option ... Did you mean" instead of being read as a path or
            # as an option of `run`.
            if first.startswith("--"):
                typo = bool(difflib.get_close_matches(first[2:], ["version", "help"], n=1, cutoff=0.7))
            else:
                typo = bool(difflib.get_close_matches(first, list(self.commands), n=1, cutoff=0.75)) and not Path(first).exists()
            if not typo:
                args = ["run", *args]
        return super().parse_args(ctx, args)


def _example(*lines: str) -> str:
    """The epilog every command's ``--help`` ends with (tests/test_cli_help.py checks each has one).
    ``\\b`` keeps Click from rewrapping the command lines."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


class _RenamedOptions(click.Command):
    """A command some of whose options were renamed (one name for one thing across commands): the
    old spelling still works for one release, with a one-line notice on stderr, and is left out of
    ``--help``. ``renamed`` maps each old spelling to the new one."""

    def __init__(self, *args, renamed: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.renamed = dict(renamed or {})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Options that take a value: the token after one is a value, even if it reads "--to".
        valued = {name for p in self.params if isinstance(p, click.Option) and not p.is_flag and not p.count
                  for name in (*p.opts, *p.secondary_opts)}
        rewritten: list[str] = []
        warned: set[str] = set()
        value_next = False
        for index, arg in enumerate(args):
            if value_next:
                rewritten.append(arg)
                value_next = False
                continue
            if arg == "--":
                rewritten += args[index:]
                break
            name, eq, value = arg.partition("=")
            new = self.renamed.get(name)
            if new is not None:
                if name not in warned:
                    click.echo(f"grade: {name} is deprecated and goes away in the next release; use {new}", err=True)
                    warned.add(name)
                name, arg = new, new + eq + value
            value_next = name in valued and not eq
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_example("grade submissions.zip --rubric cifar10 --export canvas --gradebook canvas_gradebook.csv",
                             "grade COMMAND --help   (every command's help ends with an example)"))
@click.version_option(__version__, prog_name="nn-grader")
def main() -> None:
    """Grade Keras course notebooks against a rubric.

    \b
    grade submissions/ --rubric cifar10            grade a folder, a zip or an LMS export
    grade check my.ipynb --rubric cifar10          check your own notebook before you submit
    """
    from grader.printable import escape_log_records

    escape_log_records()  # warnings quote paths a notebook chose: no escape codes on the terminal
    hide_secret_arguments()


# Options whose value no other process may read: where the hidden test set lies.
SECRET_OPTIONS = ("--hidden-test",)


def hide_secret_arguments(argv: list[str] | None = None) -> bool:
    """Take the values of :data:`SECRET_OPTIONS` out of this process's visible command line.

    ``/proc/PID/cmdline`` is readable by every process of the machine, a kernel running without
    a sandbox (as any user) included: the grader rewrites its own (``setproctitle``) with each
    such value replaced by ``[hidden]``. The command lines of the processes that started the
    grader (a shell script, ``sudo``) are theirs: set ``NN_GRADER_HIDDEN_TEST`` instead of
    passing ``--hidden-test`` to keep the path off them too. True when the title was rewritten."""
    import sys

    args = list(sys.argv if argv is None else argv)
    shown, changed, secret_next = [], False, False
    for arg in args:
        if secret_next:
            arg, changed, secret_next = "[hidden]", True, False
        elif arg in SECRET_OPTIONS:
            secret_next = True
        elif arg.partition("=")[0] in SECRET_OPTIONS and "=" in arg:
            arg, changed = arg.partition("=")[0] + "=[hidden]", True
        shown.append(arg)
    if not changed:
        return False
    try:
        import setproctitle
    except ImportError:  # a dependency: only an incomplete installation lacks it
        return False
    setproctitle.setproctitle(" ".join(shown))
    return True


def _common_options(func):
    options = [
        click.option("--rubric", "-r", required=True, help="Rubric file, or the name of a built-in rubric (cifar10, mnist_cnn, ...)."),
        click.option("--data", default=None, help="Dataset source: auto (local Keras cache), synthetic, or an .npz file."),
        click.option("--static", is_flag=True, help="Grade from the outputs saved in the notebook; execute nothing."),
        click.option("--no-compat", is_flag=True, help="Do not map removed Keras 1/2 APIs (lr=, nb_epoch=, fit_generator)."),
        click.option("--no-verify", is_flag=True, help="Skip the clean re-evaluation of saved models."),
        click.option("--retrain", is_flag=True, help="Train every recorded architecture again in the grader's own process (seed 0; on a GPU when there is one) and grade that accuracy."),
        click.option("--hidden-test", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="NN_GRADER_HIDDEN_TEST", help="An .npz with x_test, y_test to verify accuracy on (or set NN_GRADER_HIDDEN_TEST: then its path is on no command line)."),
        click.option("--cell-timeout", type=float, help="Seconds a cell may run (default: the rubric's)."),
        click.option("--timeout", "notebook_timeout", type=float, help="Seconds a whole notebook may run (default: the rubric's)."),
        click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML (one test case per check)."),
        click.option("--summary", type=click.Path(dir_okay=False, path_type=Path), help="Write a markdown summary (for a CI job summary)."),
        click.option("--quiet", "-q", is_flag=True, help="Print only the final line."),
        click.option("--sandbox", type=click.Choice([mode.value for mode in SandboxMode]), default="auto", show_default=True,
                     help="Run kernels in a bubblewrap sandbox (no network, read-only system); auto uses it where it works."),
        click.option("--memory", default=None, help="Memory a kernel may use, e.g. 8GiB (0: no limit)."),
        click.option("--processes", default=None, help="Processes and threads a kernel may start (fork bombs)."),
        click.option("--cpu-time", default=None, help="CPU time a kernel may use, e.g. 8h."),
        click.option("--file-size", default=None, help="Largest file a kernel may write, e.g. 2GiB."),
        click.option("--disk", default=None, help="Disk a submission's working folder may fill, e.g. 10GiB."),
        click.option("--max-output", default=None, help="Output kept per cell, e.g. 2MiB."),
        click.option("--support", multiple=True, type=click.Path(exists=True, path_type=Path),
                     help="A file copied next to each notebook (course helper module, data file), besides the rubric's support_files (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _guarded(work) -> int:
    try:
        return work()
    except GraderError as exc:
        click.echo(f"grade: {printable(exc, newlines=True)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("grade: stopped (Ctrl-C); finished results are kept, run the same command to resume", err=True)
        return 130
    except click.ClickException:
        raise
    except Exception:
        import traceback

        click.echo("grade: internal error — please report it with this traceback:", err=True)
        traceback.print_exc()
        return EXIT_INTERNAL
