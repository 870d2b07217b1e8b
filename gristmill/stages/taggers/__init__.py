"""Taggers: stages that add metadata columns and never drop a row."""
