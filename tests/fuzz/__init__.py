"""Fuzz inputs and invariant checks shared by tests/test_reliability_*.py and tests/fuzz/run.py."""
