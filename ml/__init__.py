"""Annotator's machine-learning library: geometry, metrics, models and dataset formats (no Django)."""
