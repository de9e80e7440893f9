"""Evidence and results: what a submission is found to be, and its grade (plain data, JSON)."""
