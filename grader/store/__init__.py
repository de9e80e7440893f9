"""The output folder's store: results, human scores, and the seal of an unsandboxed batch."""
