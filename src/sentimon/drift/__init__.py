"""Drift detection and label-free accuracy: reference profiles, statistics, counters."""
