"""Static grading: evidence read from a notebook's saved outputs and code, without running it."""
