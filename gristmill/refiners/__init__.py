"""Refiners rewrite documents instead of only keeping or dropping them.

They live apart from ``stages`` because their core (prompt building, program execution) is
model-independent and reused by several stages and by tools that audit refinement offline.
"""
