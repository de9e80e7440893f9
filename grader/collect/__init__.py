"""Collecting submissions: scanning a folder, reading archives, the LMS export layouts."""
