"""`grade review` in headless Chromium: marking by keyboard, reload, stored; inert answers."""

from __future__ import annotations

import shutil
import threading

import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("flask")
webdriver = pytest.importorskip("selenium.webdriver")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("needs chromium and chromedriver", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from grader.store.manual import ScoreStore  # noqa: E402
from grader.review.app import create_app  # noqa: E402
from tests.test_review import XSS, make_result  # noqa: E402

TOKEN = "browser-token"


@pytest.fixture
def served(tmp_path):
    from werkzeug.serving import make_server

    from grader.store.result_store import ResultStore

    store = ResultStore(tmp_path)
    for key in ("alice", "bob", "carol"):
        store.save_result(make_result(key, answer=XSS if key == "bob" else f"{key}: colour and similar classes"))
    server = make_server("127.0.0.1", 0, create_app(tmp_path, token=TOKEN, grader="ta"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def test_mark_by_keyboard_reload_stored(served, browser):
    out, base = served
    browser.get(f"{base}/q/q3/manual?token=bad")
    assert "No access" in browser.page_source
    browser.get(f"{base}/?token={TOKEN}")
    browser.find_element(By.LINK_TEXT, "Question 3: why harder?").click()
    wait = WebDriverWait(browser, 10)
    for student, keys in (("alice", "2"), ("bob", "1"), ("carol", "0")):
        wait.until(lambda d, s=student: f"s={s}" in d.current_url or (s == "alice" and "/q/" in d.current_url))
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(keys)  # digits go to the score box wherever the focus is
        body.send_keys(Keys.ENTER)
        if student != "carol":
            wait.until(lambda d, s=student: f"s={s}" not in d.current_url and "s=" in d.current_url)
    wait.until(lambda d: d.current_url.rstrip("/") == base)
    assert "<td>3</td><td>0</td>" in browser.page_source.replace("\n", "")
    browser.refresh()
    browser.get(f"{base}/q/q3/manual?s=bob")
    assert browser.find_element(By.ID, "score").get_attribute("value") == "1"
    # the hostile answer did nothing: no alert, no image element, no request for it
    assert browser.find_elements(By.CSS_SELECTOR, "#answer img") == []
    assert browser.find_elements(By.CSS_SELECTOR, "#answer script") == []
    assert "[image: cat]" in browser.find_element(By.ID, "answer").text
    browser.find_element(By.TAG_NAME, "body").send_keys("k")  # previous: alice
    WebDriverWait(browser, 10).until(lambda d: "s=alice" in d.current_url)
    latest = ScoreStore(out).load()
    assert {k[0]: v.score for k, v in latest.items()} == {"alice": 2.0, "bob": 1.0, "carol": 0.0}
