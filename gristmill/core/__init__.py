"""The contracts every part keeps: batches, stages, filters, stats, registry and config."""
