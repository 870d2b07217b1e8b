"""Heuristic quality filters (Gopher, C4, FineWeb) that decide as datatrove's do, batch-wise."""
