"""Readers, writers, task planning and the datatrove adapters."""

from gristmill.io.base import Reader, ShardTask
from gristmill.io.jsonl import JsonlReader
from gristmill.io.parquet import ParquetReader, ParquetWriter

__all__ = ["JsonlReader", "ParquetReader", "ParquetWriter", "Reader", "ShardTask"]
