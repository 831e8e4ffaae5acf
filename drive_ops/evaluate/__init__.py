"""Measuring an edit: metrics, the edit report, its plots, and the compare strip."""
