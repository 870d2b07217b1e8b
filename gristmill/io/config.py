"""The ``input:`` and ``output:`` sections of a pipeline file: validated, then built into the
reader and writer of a run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from gristmill.core import columns as cols
from gristmill.io.base import Reader, Writer
from gristmill.io.formats import open_reader, open_writer


class InputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(description="files, directories, globs or fsspec URLs")
    format: Literal["auto", "parquet", "jsonl"] = Field(
        "auto", description="auto reads every Parquet and JSON Lines file it finds"
    )
    columns: list[str] | None = Field(None, description="read only these (id and text always)")
    batch_size: PositiveInt = Field(2048, description="documents per batch handed to the stages")
    task_size_mb: PositiveFloat = Field(512, description="split larger Parquet files by row group")
    id_column: str = cols.ID
    text_column: str = cols.TEXT

    def build(self) -> Reader:
        return open_reader(
            self.paths,
            format=self.format,
            columns=self.columns,
            batch_size=self.batch_size,
            task_size_mb=self.task_size_mb,
            id_column=self.id_column,
            text_column=self.text_column,
        )


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    format: Literal["parquet", "jsonl"] = Field("parquet", description="parquet or jsonl")
    rejects: bool = Field(True, description="keep dropped rows, with their reason, in _rejects/")
    compression: Literal["zstd", "snappy", "gzip", "lz4", "none"] = Field(
        "zstd", description="Parquet codec; for jsonl: none, gzip or zstd"
    )
    row_group_rows: PositiveInt = 20_000

    def build(self) -> Writer:
        return open_writer(
            self.path,
            format=self.format,
            compression=self.compression,
            row_group_rows=self.row_group_rows,
        )
