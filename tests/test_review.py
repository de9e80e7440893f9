"""The review app (`grade review`) and the human-score store behind it."""

from __future__ import annotations

import csv
import json
import multiprocessing
import re
from pathlib import Path

import pytest

flask = pytest.importorskip("flask")

from grader.store.manual import ScoreStore  # noqa: E402
from grader.store.score_export import export_scores_csv  # noqa: E402
from grader.model.results import CheckResult, GradeResult, Status, Student, TaskResult  # noqa: E402
from grader.review.app import create_app, render_answer  # noqa: E402
from grader.store.result_store import ResultStore  # noqa: E402

TOKEN = "test-token-123"
XSS = ("Colour matters.\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
       "![cat](https://evil.example/cat.png)\n\n[link](javascript:alert(3))")


def make_result(key: str, *, answer: str = "Because of colour.", points: float = 2.0,
                guidance: str = "names colour") -> GradeResult:
    manual = CheckResult("manual", "graded by hand", Status.MANUAL, 0.0, points, "Graded by hand.",
                         details={"guidance": guidance, "answer": answer})
    auto = CheckResult("total_params", "params", Status.PASSED, 1.0, 1.0)
    return GradeResult(
        student=Student(key=key, name=key.title()), path=f"{key}.ipynb", score=1.0, max_score=1.0 + points,
        tasks=[TaskResult("fc", "Question 2: FC model", 1.0, 1.0, [auto]),
               TaskResult("q3", "Question 3: why harder?", 0.0, points, [manual], manual=True, answer=answer)])


def write_batch(out: Path, keys=("alice", "bob", "carol"), **kw) -> ResultStore:
    store = ResultStore(out)
    for key in keys:
        store.save_result(make_result(key, **kw))
    return store


@pytest.fixture
def client(tmp_path):
    write_batch(tmp_path)
    app = create_app(tmp_path, token=TOKEN, grader="ta1")
    c = app.test_client()
    assert c.get(f"/?token={TOKEN}").status_code == 302  # sets the cookie
    return c


def post(c, **data):
    return c.post("/api/score", json={"token": TOKEN, "question": "q3/manual", **data})


def test_without_token_refused(tmp_path):
    write_batch(tmp_path)
    c = create_app(tmp_path, token=TOKEN).test_client()
    assert c.get("/").status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    assert c.get("/q/q3/manual").status_code == 403
    assert c.post("/api/score", json={"token": TOKEN, "question": "q3/manual", "student": "bob", "score": 1}).status_code == 403


def test_token_once_then_cookie(tmp_path):
    write_batch(tmp_path)
    c = create_app(tmp_path, token=TOKEN).test_client()
    first = c.get(f"/?token={TOKEN}")
    assert first.status_code == 302 and "token" not in first.headers["Location"]
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = c.get("/")
    assert page.status_code == 200 and b"Question 3" in page.data and b"3</td>" in page.data


def test_score_stored_and_visible_after_reload(client, tmp_path):
    response = post(client, student="bob", score=1.5, comment="misses class similarity")
    assert response.status_code == 200 and response.json["left"] == 2
    line = json.loads((tmp_path / "manual_scores.jsonl").read_text().splitlines()[-1])
    assert line["student"] == "bob" and line["score"] == 1.5 and line["grader"] == "ta1" and line["item_fingerprint"]
    # a fresh app (a restart) sees it, and so do the stored results every report reads
    c2 = create_app(tmp_path, token=TOKEN).test_client()
    c2.get(f"/?token={TOKEN}")
    assert b'value="1.5"' in c2.get("/q/q3/manual?s=bob").data
    bob = {r.student.key: r for r in ResultStore(tmp_path).load_results()}["bob"]
    assert bob.score == 2.5 and bob.tasks[1].human_score == 1.5 and "class similarity" in bob.tasks[1].checks[0].message


def test_score_outside_range_refused(client):
    assert post(client, student="bob", score=3).status_code == 400
    assert post(client, student="nobody", score=1).status_code == 404


def test_cross_origin_post_refused(client):
    response = client.post("/api/score", json={"token": TOKEN, "question": "q3/manual", "student": "bob", "score": 1},
                           headers={"Origin": "http://evil.example"})
    assert response.status_code == 403


def _writer(out: str, student: str, n: int) -> None:
    from grader.review.app import create_app

    c = create_app(Path(out), token=TOKEN, grader=student).test_client()
    c.get(f"/?token={TOKEN}")
    for i in range(n):
        assert c.post("/api/score", json={"token": TOKEN, "question": "q3/manual", "student": student,
                                          "score": (i % 3) * 0.5, "comment": f"{student} {i}"}).status_code == 200


def test_two_concurrent_writers_both_survive(tmp_path):
    write_batch(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 40)) for s in ("alice", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ScoreStore(tmp_path)
    latest = store.load()
    assert store.bad_lines == []
    assert len((tmp_path / "manual_scores.jsonl").read_text().splitlines()) == 80
    assert latest[("alice", "q3", "manual")].comment == "alice 39" and latest[("bob", "q3", "manual")].comment == "bob 39"


def test_changed_points_flagged_not_clamped(client, tmp_path):
    post(client, student="alice", score=2)
    write_batch(tmp_path, points=3.0)  # the rubric now gives 3 points: a re-run
    alice = {r.student.key: r for r in ResultStore(tmp_path).load_results()}["alice"]
    check = alice.tasks[1].checks[0]
    assert check.details["human_score_stale"] == "points changed from 2 to 3: re-mark"
    assert check.points == 0 and alice.tasks[1].human_score is None
    c = create_app(tmp_path, token=TOKEN).test_client()
    c.get(f"/?token={TOKEN}")
    assert b"points changed from 2 to 3: re-mark" in c.get("/q/q3/manual?s=alice").data


def test_untrusted_answer_rendered_inert(tmp_path):
    write_batch(tmp_path, answer=XSS)
    c = create_app(tmp_path, token=TOKEN).test_client()
    c.get(f"/?token={TOKEN}")
    for url in ("/q/q3/manual?s=alice", "/s/alice"):
        response = c.get(url)
        html = response.data.decode()
        assert "<script>alert" not in html and "<img" not in html and "evil.example/cat.png" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "[image: cat]" in html
        assert 'href="javascript:' not in html
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "img-src data:" in csp and "connect-src 'self'" in csp
        nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
        # every script on the page is ours: it carries this response's nonce
        assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<script[^>]*>", html))


def test_render_answer_keeps_markdown():
    html = render_answer("**Colour** and `code`\n\n- one\n- two")
    assert "<strong>Colour</strong>" in html and "<code>code</code>" in html and "<li>one</li>" in html


def test_manual_export_csv(client, tmp_path):
    post(client, student="alice", score=2, comment='good, "quoted"')
    post(client, student="bob", score=1)
    post(client, student="bob", score=0.5)  # the latest wins
    rows = export_scores_csv(tmp_path, tmp_path / "scores.csv")
    table = list(csv.DictReader((tmp_path / "scores.csv").open(encoding="utf-8")))
    assert rows == 2 and [(r["student"], r["score"], r["stale"]) for r in table] == [("alice", "2", ""), ("bob", "0.5", "")]
    assert table[0]["comment"] == 'good, "quoted"'


def test_cli_manual_csv_writes_store_and_warns(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main
    from grader.cli.run import _merge_manual

    store = write_batch(tmp_path)
    scores = tmp_path / "scores.csv"
    scores.write_text("student,task,score,comment\nalice,q3,1,ok\nbob,q3,9,\ncarol,nope,1,\n", encoding="utf-8")
    runner = CliRunner()

    @main.command("_merge_for_test")
    def _merge() -> None:
        _merge_manual(store.load_results(), scores, tmp_path)

    try:
        result = runner.invoke(main, ["_merge_for_test"])
    finally:
        main.commands.pop("_merge_for_test")
    assert "line 3" in result.output and "above the 2 points" in result.output and "no task 'nope'" in result.output
    assert {k: v.score for k, v in ScoreStore(tmp_path).load().items()} == {("alice", "q3", "manual"): 1.0}
    out = runner.invoke(main, ["manual", "export", str(tmp_path), "-o", str(tmp_path / "x.csv")])
    assert out.exit_code == 0 and "1 human score" in out.output
    out = runner.invoke(main, ["manual", "template", str(tmp_path)])
    assert out.exit_code == 0 and "3 manual item" in out.output


def test_rewritten_reports_carry_human_scores(client, tmp_path):
    from grader.review.app import rewrite_reports

    post(client, student="carol", score=2, comment="names all four")
    index = rewrite_reports(tmp_path)
    report = (tmp_path / "carol" / "report.html").read_text(encoding="utf-8")
    assert index.is_file() and "names all four" in report


def test_grade_export_carries_review_scores(client, tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    post(client, student="alice", score=1.5)
    out = CliRunner().invoke(main, ["export", str(tmp_path), "--to", "csv"])
    assert out.exit_code == 0, out.output
    (path,) = (tmp_path / "exports").glob("*.csv")
    rows = {r["student"]: r for r in csv.DictReader(path.open(encoding="utf-8-sig"))}
    assert (rows["alice"]["score"], rows["alice"]["q3 (/2)"]) == ("2.5", "1.5")
    assert rows["bob"]["q3 (/2)"] == "0"
