"""The review app: one Flask application over the results of an output folder.

Results are read and indexed once at start-up (:class:`ReviewIndex`); a page then only looks up
dictionaries, so the next answer opens in milliseconds for a class of hundreds. Scores are
appended to the folder's human-score store (:mod:`grader.store.manual`) the moment they are
saved; the store is re-read when its file grows, so scores from a second teaching assistant's
session appear too. Every request needs the session's token (Jupyter-style: in the URL once,
then an HttpOnly, SameSite=Strict cookie). Student answers are untrusted markdown: rendered
with raw HTML off and images dropped, under a Content-Security-Policy that allows only this
page's own nonce-tagged script and style.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from grader.store.manual import ManualItem, ScoreStore, items_to_mark, merge_human_scores, stale_reason
from grader.model.results import GradeResult
from grader.store.result_store import ResultStore

__all__ = ["ReviewIndex", "create_app", "render_answer", "rewrite_reports", "serve"]

COOKIE = "nn_grader_review"


@dataclass
class Question:
    """One manual item of the rubric (a task's manual check), across the class."""

    key: str  # "task/check"
    task_id: str
    check_id: str
    title: str
    guidance: str
    max_points: float
    students: list[str] = field(default_factory=list)  # in student-key order


class ReviewIndex:
    """Everything the pages show, built once from the stored results."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.scores = ScoreStore(self.out_dir)
        self.results: dict[str, GradeResult] = {r.student.key: r for r in ResultStore(self.out_dir).load_results()}
        self.items: dict[tuple[str, str], ManualItem] = {}  # (student, question key) -> item
        self.questions: dict[str, Question] = {}
        for student, result in self.results.items():
            for task in result.tasks:
                for item in items_to_mark(task):
                    key = f"{task.task_id}/{item.check_id}"
                    question = self.questions.get(key)
                    if question is None:  # a review's guidance is the student's own finding: shown with the answer
                        question = self.questions[key] = Question(key, task.task_id, item.check_id, item.title,
                                                                  "" if item.is_review else item.guidance,
                                                                  item.check.max_points)
                    question.students.append(student)
                    self.items[(student, key)] = item
        self._lock = threading.Lock()
        self._seen_size = -1
        self._latest: dict = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read the score store if it changed (another session may have written to it)."""
        try:
            size = self.scores.path.stat().st_size
        except FileNotFoundError:
            size = 0
        with self._lock:
            if size == self._seen_size:
                return
            self._latest = self.scores.load()
            self._seen_size = size

    def entry(self, student: str, question: Question):
        return self._latest.get((student, question.task_id, question.check_id))

    def state(self, student: str, question: Question) -> dict:
        """What a page shows of one student's score: score, comment, stale (why), marked."""
        entry = self.entry(student, question)
        item = self.items[(student, question.key)]
        if entry is None:
            human = item.check.details.get("human_score")  # an older result with a merged CSV score
            return {"score": human, "comment": "", "stale": None, "marked": human is not None}
        stale = stale_reason(entry, item)
        return {"score": entry.score, "comment": entry.comment, "stale": stale, "marked": stale is None,
                "grader": entry.grader}

    def left(self, question: Question) -> int:
        return sum(1 for s in question.students if not self.state(s, question)["marked"])

    def save(self, student: str, question: Question, score: float | None, comment: str, grader: str) -> dict:
        item = self.items[(student, question.key)]
        self.scores.record(item, student, score, comment=comment, grader=grader)
        self._seen_size = -1
        self.refresh()
        return self.state(student, question)

    def merged_result(self, student: str) -> GradeResult:
        result = self.results[student]
        merge_human_scores([result], self._latest)
        return result


def render_answer(text: str | None) -> str:
    """Student markdown as HTML that can do nothing: raw HTML is escaped, images are shown as
    their alt text only (no remote request), links cannot use javascript: and open nothing
    with the page's rights."""
    if not text:
        return ""
    return _markdown().render(text)


_MD = None


def _markdown():
    global _MD
    if _MD is None:
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

        def image(self, tokens, idx, options, env):
            from html import escape

            alt = "".join(t.content for t in (tokens[idx].children or []))
            return f'<span class="image-removed">[image: {escape(alt)}]</span>'

        def link_open(self, tokens, idx, options, env):
            tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
            tokens[idx].attrSet("target", "_blank")
            return self.renderToken(tokens, idx, options, env)

        md.add_render_rule("image", image)
        md.add_render_rule("link_open", link_open)
        _MD = md
    return _MD


def _css() -> str:
    from grader.resources import templates_dir

    return (templates_dir() / "report.css").read_text(encoding="utf-8")


def create_app(out_dir: Path, *, token: str | None = None, grader: str = ""):
    """The Flask app for ``out_dir``; ``token`` (random by default) is what every request needs."""
    from flask import Flask, abort, g, jsonify, redirect, render_template, request, url_for
    from jinja2 import FileSystemLoader

    from grader.resources import templates_dir

    index = ReviewIndex(out_dir)
    token = token or secrets.token_urlsafe(24)
    app = Flask(__name__, static_folder=None)
    app.jinja_loader = FileSystemLoader(str(templates_dir()))
    app.select_jinja_autoescape = lambda filename: True  # .j2 names are not escaped by default
    app.config.update(REVIEW_TOKEN=token, REVIEW_INDEX=index, JSON_SORT_KEYS=False)
    css = _css()
    grader_name = grader or os.environ.get("USER", "")

    @app.before_request
    def check_token():
        given = request.args.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            # Once in the URL (as printed), then only in the cookie: the token does not stay
            # in the address bar, the history or a Referer.
            args = {k: v for k, v in request.args.items() if k != "token"}
            response = redirect(request.path + (("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in args.items())) if args else ""))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        cookie = request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(cookie.encode(), token.encode()):
            abort(403)
        g.nonce = secrets.token_urlsafe(16)
        index.refresh()

    @app.after_request
    def headers(response):
        nonce = getattr(g, "nonce", "none")
        if request.endpoint == "report":
            policy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        else:
            policy = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src data:; "
                      "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(403)
    def forbidden(_):
        return ("No access: open the URL with the token that `grade review` printed.\n", 403,
                {"Content-Type": "text/plain; charset=utf-8"})

    def page(template: str, **context):
        return render_template(template, css=css, nonce=g.nonce, out_dir=str(index.out_dir), **context)

    def question_or_404(key: str) -> Question:
        question = index.questions.get(key)
        if question is None:
            abort(404)
        return question

    @app.get("/")
    def home():
        rows = [(q, len(q.students) - index.left(q), index.left(q)) for q in index.questions.values()]
        return page("review_list.j2", rows=rows, students=sorted(index.results))

    @app.get("/q/<path:key>")
    def question(key: str):
        q = question_or_404(key)
        if not q.students:
            abort(404)
        student = request.args.get("s")
        if student not in q.students:
            student = next((s for s in q.students if not index.state(s, q)["marked"]), q.students[0])
        position = q.students.index(student)
        item = index.items[(student, q.key)]
        result = index.results[student]
        return page("review_item.j2", q=q, student=student, result=result, item=item,
                    answer_html=render_answer(item.answer), state=index.state(student, q),
                    position=position, total=len(q.students), left=index.left(q),
                    prev=q.students[position - 1] if position > 0 else None,
                    next=q.students[position + 1] if position + 1 < len(q.students) else None,
                    report=url_for("report", student=student) + "#task-" + _slug(q.task_id))

    @app.get("/s/<student>")
    def student(student: str):
        if student not in index.results:
            abort(404)
        items = [(q, index.items[(student, q.key)], index.state(student, q)) for q in index.questions.values()
                 if (student, q.key) in index.items]
        return page("review_student.j2", student=student, result=index.merged_result(student),
                    items=[(q, it, st, render_answer(it.answer)) for q, it, st in items])

    @app.get("/report/<student>")
    def report(student: str):
        if student not in index.results:
            abort(404)
        from grader.report.student import render_student_report

        return render_student_report(index.merged_result(student))

    @app.post("/api/score")
    def save_score():
        # Cross-site requests are refused twice over: the cookie is SameSite=Strict, and the
        # body must carry the token (which another site cannot read).
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            abort(403)
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            abort(403)
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not hmac.compare_digest(str(data.get("token", "")).encode(), token.encode()):
            abort(403)
        q = question_or_404(str(data.get("question", "")))
        student = str(data.get("student", ""))
        if student not in q.students:
            return jsonify(error=f"{student!r} has no answer to {q.key}"), 404
        raw = data.get("score")
        try:
            score = None if raw in (None, "") else float(raw)
            state = index.save(student, q, score, str(data.get("comment") or "")[:5000], grader_name)
        except (TypeError, ValueError) as exc:
            return jsonify(error=f"not saved: {exc}"), 400
        return jsonify(saved=True, left=index.left(q), **state)

    app.jinja_env.globals["token"] = token
    return app


def _slug(text: str) -> str:
    import re
    import unicodedata

    return re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", text).lower()).strip("-")[:40] or "x"


def serve(out_dir: Path, *, host: str = "127.0.0.1", port: int = 0, open_browser: bool = True,
          echo=print) -> None:
    """Serve the review app until Ctrl-C; prints the URL with its token."""
    from werkzeug.serving import make_server

    import logging
    import signal

    token = secrets.token_urlsafe(24)
    app = create_app(out_dir, token=token)
    server = make_server(host, port, app, threaded=True)
    # The request log would print the token of the first request; errors are still shown.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def stop(signum, frame):  # a terminal closed, or `kill`: stop as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{server.server_port}/?token={token}"
    index: ReviewIndex = app.config["REVIEW_INDEX"]
    left = sum(index.left(q) for q in index.questions.values())
    echo(f"reviewing {len(index.results)} result(s) in {out_dir}: {len(index.questions)} manual item(s), {left} answer(s) to mark")
    echo(f"open {url}")
    echo("Ctrl-C stops the server; every score is already saved.")
    if open_browser:
        import webbrowser

        threading.Timer(0.3, lambda: webbrowser.open(url)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        echo(f"reports with the human scores: {rewrite_reports(out_dir)}")


def rewrite_reports(out_dir: Path) -> Path:
    """Write the students' reports and the class overview again from the stored results, human
    scores merged in (``grade review`` does this when it stops). Returns the overview's path."""
    from grader.report.write import write_reports

    results = ResultStore(Path(out_dir)).load_results()
    return write_reports(results, Path(out_dir), references=_references(results))


def _references(results: list[GradeResult]) -> dict | None:
    # The reference architectures the batch's reports showed, found through the rubric the
    # results name; a report without them only loses the side-by-side layer table.
    try:
        from grader.rubric.load import load_rubric
        from reference_models import architecture

        rubric = load_rubric(next(r.rubric for r in results if r.rubric))
        return {task.id: architecture(task.reference) for task in rubric.tasks if task.reference} or None
    except Exception:
        return None
