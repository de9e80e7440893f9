"""``grade review``: a local web app to mark manual rubric items question by question."""

from grader.review.app import ReviewIndex, create_app, serve

__all__ = ["ReviewIndex", "create_app", "serve"]
