"""The clean process: verification and retraining of recorded models outside the student's kernel."""
