"""Training export: tokenised documents with a loss mask, as Parquet and memory-mapped tokens."""

from gristmill.export.run import (
    ExportIncompleteError,
    ExportOptions,
    ExportSummary,
    export_corpus,
)

__all__ = ["ExportIncompleteError", "ExportOptions", "ExportSummary", "export_corpus"]
