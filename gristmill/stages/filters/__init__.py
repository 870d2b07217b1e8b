"""Filters: stages that drop rows (or, in annotate mode, mark them) from existing columns."""
