"""Validation cases: one module per case, each defining CASE."""
