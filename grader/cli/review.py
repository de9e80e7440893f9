"""``grade review OUT_DIR``: mark the manual items in the browser."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.root import EXIT_PASSED, _example, _guarded, main


@main.command("review", epilog=_example("grade review grading-output --port 8000"))
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for a shared TA machine; the token is still required).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Only print the URL.")
def review_command(out_dir: Path, host: str, port: int, no_browser: bool) -> None:
    """Mark the manual items of the results in OUT_DIR in the browser, question by question."""

    def work() -> int:
        from grader.review import serve

        serve(out_dir, host=host, port=port, open_browser=not no_browser, echo=click.echo)
        return EXIT_PASSED

    sys.exit(_guarded(work))
