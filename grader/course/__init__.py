"""Course-side work: reference models and threshold calibration."""
