"""Readers, writers, task planning, and the file system helpers everything writes through."""

from gristmill.io.base import Reader, ShardTask, Writer
from gristmill.io.formats import open_reader, open_writer
from gristmill.io.jsonl import JsonlReader, JsonlWriter
from gristmill.io.parquet import ParquetReader, ParquetWriter

__all__ = [
    "JsonlReader",
    "JsonlWriter",
    "ParquetReader",
    "ParquetWriter",
    "Reader",
    "ShardTask",
    "Writer",
    "open_reader",
    "open_writer",
]
