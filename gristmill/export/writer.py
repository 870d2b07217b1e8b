"""The files of an export, the layout nanoGPT-style loaders read.

```
OUT/sequences.parquet  one row per document, or per packed row with the document spans
OUT/tokens.bin         every sequence's token ids back to back, little-endian uint16 when the
                       vocabulary fits in 16 bits, else uint32 (meta.json says which)
OUT/loss_mask.bin      one uint8 per token: 0 = no loss (BOS, metadata prefix), 1 = loss
OUT/index.npy          int64 offsets, one more than sequences: sequence i is
                       tokens[index[i]:index[i+1]]; packed rows are all seq_len long but the
                       last of each phase, kept short rather than padded (meta
                       last_row_length, phase_rows)
OUT/meta.json          dtype, vocabulary size, BOS/EOS ids, packing (seq_len, pack_mode),
                       token accounting (tokens_in = tokens_written + tokens_dropped), tokenizer
```

``np.memmap("tokens.bin", dtype=meta["dtype"], mode="r")`` reads the tokens without loading
them; ``index.npy`` gives document (or packed row) boundaries. Document boundaries inside
packed rows live in the Parquet file's ``indices`` / ``doc_ids`` / ``doc_starts`` columns.

Every file is written under a temporary name and renamed into place when the export is whole,
``meta.json`` last: an export whose ``meta.json`` is there is complete, and one killed at any
point never looks complete (a ``meta.json`` left by an earlier export is removed first).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.export.pack import PackedRow
from gristmill.export.sequences import Sequence
from gristmill.io.filesystem import (
    AtomicFile,
    filesystem,
    join,
    write_bytes_atomically,
)
from gristmill.stages.taggers.meco import PHASE

PARQUET_FILE = "sequences.parquet"
TOKENS_FILE = "tokens.bin"
MASK_FILE = "loss_mask.bin"
INDEX_FILE = "index.npy"
META_FILE = "meta.json"
#: Every file of an export, ``meta.json`` (the one that says it is complete) last.
EXPORT_FILES = (PARQUET_FILE, TOKENS_FILE, MASK_FILE, INDEX_FILE, META_FILE)

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string()),
        pa.field(PHASE, pa.string()),
        pa.field("input_ids", pa.list_(pa.uint32())),
        pa.field("loss_mask", pa.list_(pa.uint8())),
        pa.field("prefix_len", pa.int32()),
        pa.field("length", pa.int32()),
    ]
)
PACKED_SCHEMA = pa.schema(
    [
        pa.field("input_ids", pa.list_(pa.uint32())),
        pa.field("loss_mask", pa.list_(pa.uint8())),
        pa.field("indices", pa.list_(pa.list_(pa.int32(), 2))),
        pa.field("doc_ids", pa.list_(pa.string())),
        # Offset in its document of each span's first token: > 0 continues a document cut at
        # the end of the previous row (split mode), for position ids and reassembly.
        pa.field("doc_starts", pa.list_(pa.int32())),
        # Repeated BOS + prefix tokens opening each span (pack_mode repeat_prefix), else 0.
        pa.field("head_lens", pa.list_(pa.int32())),
        # The training phase of every document in the row (rows never mix phases).
        pa.field(PHASE, pa.string()),
        pa.field("length", pa.int32()),
    ]
)


def token_dtype(vocab_size: int) -> np.dtype[Any]:
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def document_rows(sequences: list[Sequence], phases: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "doc_id": [s.doc_id for s in sequences],
            PHASE: phases,
            "input_ids": [s.ids for s in sequences],
            "loss_mask": [s.mask for s in sequences],
            "prefix_len": [s.prefix_len for s in sequences],
            "length": [len(s.ids) for s in sequences],
        },
        schema=DOCUMENT_SCHEMA,
    )


def packed_rows(rows: list[PackedRow], phase: str | None = None) -> pa.Table:
    return pa.table(
        {
            "input_ids": [r.ids for r in rows],
            "loss_mask": [r.mask for r in rows],
            "indices": [[list(span) for span in r.spans] for r in rows],
            "doc_ids": [r.doc_ids for r in rows],
            "doc_starts": [r.doc_starts for r in rows],
            "head_lens": [r.head_lens or [0] * len(r.spans) for r in rows],
            PHASE: [phase] * len(rows),
            "length": [len(r.ids) for r in rows],
        },
        schema=PACKED_SCHEMA,
    )


class ExportFiles:
    """Writes an export's files in step: ``write_documents`` or ``write_rows`` per batch,
    then ``commit`` (or ``abort``, which leaves nothing of this export behind)."""

    def __init__(self, directory: str | Path, vocab_size: int, *, packed: bool) -> None:
        self.directory = str(directory).rstrip("/")
        self.dtype = token_dtype(vocab_size)
        self._fs, root = filesystem(self.directory)
        self._fs.makedirs(root, exist_ok=True)
        meta = filesystem(self.url(META_FILE))[1]
        if self._fs.exists(meta):
            self._fs.rm(meta)  # an earlier export's: these files are about to be replaced
        self._files = {
            name: AtomicFile(self.url(name))
            for name in (PARQUET_FILE, TOKENS_FILE, MASK_FILE, INDEX_FILE)
        }
        self._tokens = self._files[TOKENS_FILE].handle
        self._mask = self._files[MASK_FILE].handle
        schema = PACKED_SCHEMA if packed else DOCUMENT_SCHEMA
        self._parquet = pq.ParquetWriter(
            self._files[PARQUET_FILE].handle, schema, compression="zstd"
        )
        self._offsets = [0]

    def url(self, name: str) -> str:
        return join(self.directory, name)

    # -- writing ---------------------------------------------------------------------------
    def write(self, ids: np.ndarray, mask: np.ndarray) -> None:
        """One sequence's tokens and mask, to the token files."""
        self._tokens.write(ids.astype(self.dtype).tobytes())
        self._mask.write(mask.astype(np.uint8).tobytes())
        self._offsets.append(self._offsets[-1] + len(ids))

    def write_documents(self, sequences: list[Sequence], phases: list[str | None]) -> int:
        """One batch of documents, one sequence each; the last one's length."""
        for sequence in sequences:
            self.write(sequence.ids, sequence.mask)
        self._parquet.write_table(document_rows(sequences, phases))
        return len(sequences[-1].ids) if sequences else 0

    def write_rows(self, rows: list[PackedRow], phase: str | None = None) -> int:
        """Packed rows of one phase, to both outputs in the same order; the last row's length
        (0: none)."""
        for row in rows:
            self.write(row.ids, row.mask)
        if rows:
            self._parquet.write_table(packed_rows(rows, phase))
        return len(rows[-1].ids) if rows else 0

    @property
    def sequences(self) -> int:
        return len(self._offsets) - 1

    @property
    def tokens(self) -> int:
        return self._offsets[-1]

    # -- finishing -------------------------------------------------------------------------
    def commit(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Put every file in place, ``meta.json`` last; the meta written."""
        self._parquet.close()
        np.save(self._files[INDEX_FILE].handle, np.asarray(self._offsets, dtype=np.int64))
        for file in self._files.values():
            file.commit()
        meta = {
            "dtype": self.dtype.name,
            "sequences": self.sequences,
            "tokens": self.tokens,
            **meta,
        }
        write_bytes_atomically(self.url(META_FILE), json.dumps(meta, indent=1).encode("utf-8"))
        return meta

    def abort(self) -> None:
        """Close and remove the temporary files; nothing of this export is left."""
        try:
            self._parquet.close()
        finally:
            for file in self._files.values():
                file.abort()

    def __enter__(self) -> ExportFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            self.abort()


def export_complete(directory: str | Path) -> bool:
    """True when every file of an export is in place."""
    fs, root = filesystem(str(directory))
    return all(fs.exists(join(root, name)) for name in EXPORT_FILES)


def read_token_files(directory: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(tokens, loss mask, offsets, meta) of an export, the first two memory-mapped."""
    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    tokens = np.memmap(directory / TOKENS_FILE, dtype=meta["dtype"], mode="r")
    mask = np.memmap(directory / MASK_FILE, dtype=np.uint8, mode="r")
    offsets = np.load(directory / INDEX_FILE)
    return tokens, mask, offsets, meta
