"""Training export: tokenised documents with a loss mask, as Parquet and memory-mapped tokens."""

from gristmill.export.run import ExportOptions, ExportSummary, export_corpus

__all__ = ["ExportOptions", "ExportSummary", "export_corpus"]
