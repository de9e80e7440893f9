"""Screenshots of a folder of reports, in headless Chromium, at desktop and phone width.

    python bench/screenshot_reports.py grading-output docs/screenshots/example

takes ``index.html`` and every ``*/report.html`` under the first folder and writes
``<name>-<width>px.png`` into the second; it prints, per page, anything the browser complained
about (console errors, CSP violations, requests). It drives Chromium the same way as
``tests/test_browser.py`` (over ``--remote-debugging-pipe``, no driver library).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_browser import CHROMIUM, Chromium  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, help="a folder written by grade (index.html, <student>/report.html)")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--width", type=int, action="append", help="viewport width in px (default: 1200 and 400)")
    parser.add_argument("--max-pages", type=int, default=6, help="student reports to take (default: 6)")
    args = parser.parse_args(argv)
    if CHROMIUM is None:
        print("Chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    pages = [args.reports / "index.html"] + sorted(args.reports.glob("*/report.html"))[: args.max_pages]
    pages = [page for page in pages if page.is_file()]
    if not pages:
        print(f"{args.reports}: no index.html or */report.html", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    complaints = 0
    with tempfile.TemporaryDirectory() as profile:
        browser = Chromium(CHROMIUM, Path(profile))
        try:
            for page in pages:
                name = "class-overview" if page.name == "index.html" else page.parent.name
                for width in args.width or [1200, 400]:
                    url = page.resolve().as_uri()
                    browser.open(url, width=width)
                    problems = browser.problems(url)
                    complaints += bool(problems)
                    shot = browser.screenshot(args.out / f"{name}-{width}px.png", width=width, compact=True)
                    print(f"{shot}  {problems or 'clean'}")
        finally:
            browser.close()
    return 1 if complaints else 0


if __name__ == "__main__":
    sys.exit(main())
