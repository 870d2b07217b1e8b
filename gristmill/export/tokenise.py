"""An export's first step, on the workers: one input task → one file of tokenised documents.

Tokenising is the expensive part of an export, and documents are independent, so each input
task is tokenised on its own worker into ``OUT/_run/tokenised/TASK.parquet``: one row per
document (``doc_id``, ``phase``, ``input_ids``, ``loss_mask``, ``prefix_len``) and one row
group per batch read, so that the second step replays the batches exactly as a sequential
export reads them. The file is written under a temporary name and renamed into place, so it
is there whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.core import columns
from gristmill.export.sequences import Sequence, build_sequences
from gristmill.export.writer import DOCUMENT_SCHEMA, document_rows
from gristmill.io.base import Reader, ShardTask
from gristmill.io.filesystem import atomic_output, filesystem, join
from gristmill.stages.taggers.meco import MECO_PREFIX, PHASE
from gristmill.stages.taggers.tokens import load_tokenizer

#: The input columns an export reads (``id`` is made from the row number where it is absent).
READ_COLUMNS = (columns.ID, columns.TEXT, MECO_PREFIX, PHASE)


def string_column(table: pa.Table, name: str) -> list[str | None]:
    """A column as Python strings, or nulls when the table does not have it."""
    if name not in table.column_names:
        return [None] * table.num_rows
    return table.column(name).cast(pa.string()).to_pylist()


@dataclass
class Tokeniser:
    """What every worker needs to tokenise a task; sent once per worker and kept there.

    The tokenizer itself is not sent: each worker process loads it from ``tokenizer_file``
    on its first task (``load_tokenizer`` keeps one copy per process).
    """

    reader: Reader
    directory: str
    tokenizer_file: str
    bos_id: int
    eos_id: int
    phase: str = "all"

    def output_url(self, task: ShardTask) -> str:
        return join(self.directory, task.output_name())


@dataclass(frozen=True)
class TokeniseTask:
    """One unit of the tokenise step: an input task, and the version of its file (its URL,
    row groups, size and modification time) that the unit's marker records."""

    task: ShardTask
    version: tuple[Any, ...]


def tokenise_task(shared: Tokeniser, unit: TokeniseTask) -> dict[str, Any]:
    """Tokenise one task's documents (those of the chosen phase) into its file."""
    task = unit.task
    tokenizer = load_tokenizer(shared.tokenizer_file)
    docs_read = documents = tokens = batches = 0
    with (
        atomic_output(shared.output_url(task), "wb") as handle,
        pq.ParquetWriter(handle, DOCUMENT_SCHEMA, compression="zstd") as writer,
    ):
        for table in shared.reader.read(task, columns=READ_COLUMNS):
            docs_read += table.num_rows
            if shared.phase != "all" and PHASE in table.column_names:
                table = table.filter(pc.equal(table.column(PHASE), shared.phase))
            if table.num_rows == 0:
                continue
            sequences = build_sequences(
                tokenizer,
                string_column(table, columns.ID),  # type: ignore[arg-type]
                string_column(table, columns.TEXT),
                string_column(table, MECO_PREFIX),
                bos_id=shared.bos_id,
                eos_id=shared.eos_id,
            )
            # One row group per batch: the batches are what the packer and writer replay.
            rows = document_rows(sequences, string_column(table, PHASE))
            writer.write_table(rows, row_group_size=rows.num_rows)
            documents += len(sequences)
            tokens += sum(len(s.ids) for s in sequences)
            batches += 1
    return {
        "docs_read": docs_read,
        "documents": documents,
        "tokens": tokens,
        "batches": batches,
        "input": list(unit.version),
    }


def _lists(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column's flat values and its offsets (starting at 0)."""
    array = column.combine_chunks()
    offsets = array.offsets.to_numpy()
    return array.flatten().to_numpy(zero_copy_only=False), offsets - offsets[0]


def tokenised_batches(url: str) -> Iterator[tuple[list[Sequence], list[str | None]]]:
    """The sequences (and phases) of a task's file, batch by batch as they were read."""
    fs, path = filesystem(url)
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group)
            ids, offsets = _lists(table.column("input_ids"))
            masks, mask_offsets = _lists(table.column("loss_mask"))
            if not np.array_equal(offsets, mask_offsets):
                raise ValueError(f"{url}: tokens and loss mask of different lengths")
            doc_ids = table.column("doc_id").to_pylist()
            prefix_lens = table.column("prefix_len").to_pylist()
            sequences = [
                Sequence(
                    doc_id,
                    ids[offsets[i] : offsets[i + 1]],
                    masks[offsets[i] : offsets[i + 1]],
                    prefix_len,
                )
                for i, (doc_id, prefix_len) in enumerate(zip(doc_ids, prefix_lens, strict=True))
            ]
            yield sequences, table.column(PHASE).to_pylist()
