"""Offline evaluation shared by every benchmark: data splits, scorers, reports."""
