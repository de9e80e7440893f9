"""Datasets: the registry of named datasets, synthetic stand-ins, preparing the grader's copies."""
