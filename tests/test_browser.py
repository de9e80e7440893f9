"""The sample reports in a real browser: headless Chromium, driven over the DevTools protocol.

Chromium speaks the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON messages ended
by a NUL byte, read on fd 3, written on fd 4), so no driver library and no network port are needed.
For each page the test records console messages, page errors, CSP violations and every request the
page makes; it then asks the page what is visible and takes a full-page screenshot at desktop and
phone width.

Screenshots go to the test's temporary folder, or to ``$NN_GRADER_SCREENSHOTS`` when set::

    NN_GRADER_SCREENSHOTS=docs/screenshots /work/venv/bin/pytest tests/test_browser.py -m browser

Needs the Debian packages ``chromium`` (and ``chromium-driver`` for other tools); skipped without.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests import report_samples as samples
from grader.report.overview import render_class_overview
from grader.report.student import render_student_report
from grader.report.write import write_reports

# Rendering a class of reports and starting Chromium takes 20–40 s on a shared 2-core machine.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium chromium-driver)")

DESKTOP, PHONE = 1200, 400

# What the page itself reports about its visible parts; runs through DevTools, not in the page,
# so the page's CSP (no scripts) does not apply to it.
PROBE = """(() => {
  const visible = (el) => { if (!el) return false; const r = el.getBoundingClientRect();
    const s = getComputedStyle(el); return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const imgs = [...document.images];
  return JSON.stringify({
    title: document.title,
    h1: document.querySelector('h1') && document.querySelector('h1').innerText,
    h1_visible: visible(document.querySelector('h1')),
    score_visible: visible(document.querySelector('.score-value')),
    first_table_visible: visible(document.querySelector('table')),
    statuses_visible: [...document.querySelectorAll('.status')].filter(visible).length,
    images: imgs.length,
    images_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    images_visible: imgs.filter(visible).length,
    scripts: document.querySelectorAll('script').length,
    text: document.body.innerText,
    page_width: document.documentElement.scrollWidth,
    viewport_width: window.innerWidth,
    height: document.documentElement.scrollHeight,
  });
})()"""


class Chromium:
    """A headless Chromium with one page, driven over ``--remote-debugging-pipe``."""

    def __init__(self, executable: str, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Lift both child ends above fd 4 first, so wiring them to fds 3 and 4 cannot clobber one.
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire_pipes():
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            preexec_fn=wire_pipes, close_fds=False)
        os.close(high_r)
        os.close(high_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _send(self, method: str, params: dict, session: bool) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_chrome], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, *, session: bool = False, timeout: float = 30, **params) -> dict:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for message in self.events:
            if message.get("method") == event:
                return message
        while True:
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    return message

    def open(self, url: str, *, width: int) -> dict:
        """Load ``url`` at a viewport ``width`` px wide; return what :data:`PROBE` saw."""
        self.events.clear()
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=900,
                  deviceScaleFactor=1, mobile=width < 600)
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")
        result = self.call("Runtime.evaluate", session=True, expression=PROBE, returnByValue=True)
        return json.loads(result["result"]["value"])

    def screenshot(self, path: Path, *, width: int, max_height: int = 12000, compact: bool = False) -> Path:
        metrics = self.call("Page.getLayoutMetrics", session=True)
        height = min(int(metrics["cssContentSize"]["height"]) + 1, max_height)
        shot = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        data = base64.b64decode(shot["data"])
        if not compact:
            path.write_bytes(data)
            return path
        # For the docs: a 256-colour palette keeps text and plots crisp at a third of the size.
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE).save(path, optimize=True)
        return path

    def problems(self, page_url: str) -> dict[str, list[str]]:
        """Console errors, page errors, CSP violations and requests other than the page itself."""
        found: dict[str, list[str]] = {"console": [], "exceptions": [], "log": [], "requests": [],
                                       "dialogs": []}
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found["console"].append(json.dumps(params.get("args"))[:300])
            elif method == "Runtime.exceptionThrown":
                found["exceptions"].append(json.dumps(params.get("exceptionDetails"))[:300])
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found["log"].append(params["entry"].get("text", "")[:300])
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if url != page_url and not url.startswith("data:"):
                    found["requests"].append(url)
            elif method == "Page.javascriptDialogOpening":
                found["dialogs"].append(params.get("message", ""))
        return {k: v for k, v in found.items() if v}

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self.stderr.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium chromium-driver)")
    chromium = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    """The sample class, written as it would be by ``grade``: one folder per student and index.html."""
    out = tmp_path_factory.mktemp("reports")
    write_reports(samples.class_results(n=8), out, references=samples.reference_architectures())
    (out / "fast").mkdir()
    (out / "fast" / "report.html").write_text(render_student_report(samples.fast_mode_student()),
                                              encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> tuple[Path, bool]:
    """Where screenshots go, and whether to compress them (only for the docs folder)."""
    folder = os.environ.get("NN_GRADER_SCREENSHOTS")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        return path, True
    return tmp_path_factory.mktemp("screenshots"), False


def _non_blank(png: Path) -> int:
    """How many distinct colours a screenshot has (a blank page has one or two)."""
    from PIL import Image

    with Image.open(io.BytesIO(png.read_bytes())) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    return len(colours) if colours is not None else 1 << 16


PAGES = [
    ("alice_lindqvist/report.html", "student-passing", "Alice Lindqvist"),
    ("bob/report.html", "student-failing", "Bob <script>alert(1)</script>"),
    ("carol/report.html", "student-invalid-notebook", "Carol Nyström"),
    ("fast/report.html", "student-fast-mode", "me"),
    ("index.html", "class-overview", "CIFAR-10 lab"),
]


@requires_chromium
@pytest.mark.parametrize("page, name, heading", PAGES, ids=[p[1] for p in PAGES])
@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_report_renders_cleanly_in_chromium(browser, reports, shots, page, name, heading, width):
    url = (reports / page).as_uri()
    seen = browser.open(url, width=width)
    assert browser.problems(url) == {}
    assert seen["h1"] == heading and seen["h1_visible"]
    assert seen["scripts"] == (1 if page == "index.html" else 0)  # the overview's table sorter
    assert seen["images"] == seen["images_loaded"] == seen["images_visible"]
    # Nothing wider than the screen: wide tables scroll inside their own box.
    assert seen["page_width"] <= seen["viewport_width"]
    folder, compact = shots
    png = browser.screenshot(folder / f"{name}-{width}px.png", width=width, compact=compact)
    assert _non_blank(png) > 50


@requires_chromium
def test_graded_page_shows_score_statuses_and_plots(browser, reports):
    seen = browser.open((reports / "alice_lindqvist" / "report.html").as_uri(), width=DESKTOP)
    assert seen["score_visible"] and seen["first_table_visible"]
    assert seen["statuses_visible"] > 10
    assert seen["images_loaded"] == 10  # accuracy and loss for each of the five task models
    assert "✔ passed" in seen["text"] and "✘ failed" in seen["text"] and "✎ marked" in seen["text"]


@requires_chromium
def test_notebook_html_shows_as_text_and_runs_nothing(browser, reports):
    url = (reports / "bob" / "report.html").as_uri()
    seen = browser.open(url, width=DESKTOP)
    assert samples.SCRIPT in seen["text"]
    assert samples.IMG in seen["text"]
    problems = browser.problems(url)
    assert "dialogs" not in problems and "requests" not in problems  # no alert(), no fetch of src=x


@requires_chromium
def test_class_overview_links_every_student(browser, reports, tmp_path):
    seen = browser.open((reports / "index.html").as_uri(), width=DESKTOP)
    assert seen["images_loaded"] == 1  # the histogram
    assert "Where the class struggled" in seen["text"]
    assert "Alice Lindqvist" in seen["text"] and "Carol Nyström" in seen["text"]


def _evaluate(browser, expression: str):
    answer = browser.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
    return answer["result"].get("value")


@requires_chromium
def test_class_overview_sorts_by_a_column_when_its_header_is_clicked(browser, reports):
    url = (reports / "index.html").as_uri()
    browser.open(url, width=DESKTOP)
    scores = ("[...document.querySelectorAll('table.students tbody tr')]"
              ".map(r => parseFloat(r.cells[2].getAttribute('data-sort')))")
    before = _evaluate(browser, scores)
    for _ in range(2):  # ascending, then descending
        _evaluate(browser, "[...document.querySelectorAll('table.students thead th')]"
                           ".find(th => th.textContent.startsWith('Score')).querySelector('button').click()")
    after = _evaluate(browser, scores)
    assert sorted(after, reverse=True) == after and sorted(before) == sorted(after) and before != after
    assert browser.problems(url) == {}


@requires_chromium
def test_csp_runs_only_the_sorter(browser, tmp_path):
    page = render_class_overview([samples.passing_student()], report_links={})
    page = page.replace('<main id="main">', '<main id="main"><script>document.title = "owned"</script>', 1)
    path = tmp_path / "injected.html"
    path.write_text(page, encoding="utf-8")
    browser.open(path.as_uri(), width=DESKTOP)
    assert _evaluate(browser, "document.title") != "owned"
    assert _evaluate(browser, "document.querySelectorAll('button.sort').length") > 0  # the sorter did run


@requires_chromium
def test_browser_catches_a_page_that_loads_something(browser, tmp_path):
    # The probe can fail: a page with an external image and a script is caught.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><h1>x</h1><img src="https://example.invalid/a.png" alt="">'
                   "<script>console.error('boom')</script></body></html>", encoding="utf-8")
    seen = browser.open(bad.as_uri(), width=DESKTOP)
    problems = browser.problems(bad.as_uri())
    assert seen["scripts"] == 1
    assert problems.get("requests") == ["https://example.invalid/a.png"]
    assert problems.get("console")


@requires_chromium
def test_csp_blocks_an_injected_image(browser, tmp_path):
    # Were escaping ever to fail, the page's own CSP still forbids loading anything.
    page = render_class_overview([samples.passing_student()], report_links={})
    page = page.replace("<main id=\"main\">", '<main id="main"><img src="https://example.invalid/x.png" alt="">', 1)
    path = tmp_path / "csp.html"
    path.write_text(page, encoding="utf-8")
    browser.open(path.as_uri(), width=DESKTOP)
    problems = browser.problems(path.as_uri())
    assert any("Content Security Policy" in line for line in problems.get("log", []) + problems.get("console", []))


@requires_chromium
def test_collapsed_tracebacks_open_when_printed(browser, reports):
    url = (reports / "bob" / "report.html").as_uri()
    visible = "JSON.stringify([...document.querySelectorAll('pre.traceback')].map(e => e.checkVisibility()))"
    shown = {}
    try:
        for media in ("screen", "print"):
            browser.call("Emulation.setEmulatedMedia", session=True, media=media)
            browser.open(url, width=DESKTOP)
            result = browser.call("Runtime.evaluate", session=True, expression=visible, returnByValue=True)
            shown[media] = json.loads(result["result"]["value"])
    finally:
        browser.call("Emulation.setEmulatedMedia", session=True, media="")
    assert shown == {"screen": [False, False], "print": [True, True]}
