"""The names of what an output folder holds, read by the store, the seal and the score store.

::

    out/
      manual_scores.jsonl             human scores (grader.store.manual)
      <student key>/result.json       one GradeResult per student
      .store/batch.lock               one batch at a time
      .store/<key>/evidence.json      the evidence of one execution, plus its bundle
      .store/<key>/execution.json     when that execution ran and how long it took
"""

from __future__ import annotations

__all__ = ["EVIDENCE_FILE", "EXECUTION_FILE", "LOCK_FILE", "RESULT_FILE", "SCORES_FILE", "STORE_DIR"]

STORE_DIR = ".store"
EVIDENCE_FILE = "evidence.json"
EXECUTION_FILE = "execution.json"
RESULT_FILE = "result.json"
LOCK_FILE = "batch.lock"
SCORES_FILE = "manual_scores.jsonl"
