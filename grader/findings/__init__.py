"""Findings drawn from evidence: integrity, copies across students, blame for cell errors."""
