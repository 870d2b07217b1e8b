"""Real (small) stages and helpers that tests use; importable by spawned worker processes."""
