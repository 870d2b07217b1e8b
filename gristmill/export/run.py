"""``export_corpus``: a curated output directory → training sequences with a loss mask.

Streams batch by batch (a corpus never has to fit in memory), writing Parquet with one row per
document (or per packed row, see ``pack`` for the split and truncate modes) and the
memory-mapped token files beside it (see ``writer``). ``meta.json`` accounts for every token:
``tokens_in == tokens_written + tokens_dropped``, with nothing dropped unless truncation was
asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.core import columns
from gristmill.errors import ConfigError
from gristmill.export.pack import PACK_MODES, PackedRow, Packer, PackMode
from gristmill.export.sequences import (
    BOS_CANDIDATES,
    EOS_CANDIDATES,
    Sequence,
    build_sequences,
    special_token_id,
)
from gristmill.export.writer import TokenFileWriter
from gristmill.io.filesystem import expand_inputs
from gristmill.io.parquet import ParquetReader
from gristmill.stages.taggers.meco import MECO_PREFIX, PHASE
from gristmill.stages.taggers.tokens import default_tokenizer_path, load_tokenizer

PARQUET_FILE = "sequences.parquet"

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
        pa.field("length", pa.int32()),
    ]
)


@dataclass(frozen=True)
class ExportOptions:
    tokenizer: str | None = None
    bos_token: str | None = None
    eos_token: str | None = None
    seq_len: int | None = None
    pack_mode: PackMode = "split"
    phase: Literal["all", "conditioning", "cooldown"] = "all"
    batch_size: int = 1024


@dataclass
class ExportSummary:
    """Counts of an export; ``tokens`` were written, ``tokens_dropped`` lost to truncation."""

    documents: int
    sequences: int
    tokens: int
    tokens_dropped: int
    output: Path
    tokens_in: int


def curated_files(paths: list[str]) -> list[str]:
    """The data files of curated outputs: bookkeeping folders (``_run``, ``_rejects``) left out."""
    files = expand_inputs(paths, (".parquet",))
    kept = [
        f.url for f in files if not any(p.startswith(("_", ".")) for p in f.relative.split("/"))
    ]
    if not kept:
        raise ConfigError(f"no Parquet data files in {', '.join(paths)}")
    return kept


def _column(table: pa.Table, name: str) -> list[str | None]:
    if name not in table.column_names:
        return [None] * table.num_rows
    return table.column(name).cast(pa.string()).to_pylist()


def _document_rows(sequences: list[Sequence], phases: list[str | None]) -> pa.Table:
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


def _packed_rows(rows: list[PackedRow]) -> pa.Table:
    return pa.table(
        {
            "input_ids": [r.ids for r in rows],
            "loss_mask": [r.mask for r in rows],
            "indices": [[list(span) for span in r.spans] for r in rows],
            "doc_ids": [r.doc_ids for r in rows],
            "doc_starts": [r.doc_starts for r in rows],
            "length": [len(r.ids) for r in rows],
        },
        schema=PACKED_SCHEMA,
    )


def _write_rows(rows: list[PackedRow], tokens: TokenFileWriter, parquet: pq.ParquetWriter) -> int:
    """Write packed rows to both outputs, in the same order; the last row's length (0: none)."""
    for row in rows:
        tokens.write(row.ids, row.mask)
    if rows:
        parquet.write_table(_packed_rows(rows))
    return len(rows[-1].ids) if rows else 0


def export_corpus(inputs: list[str], output: str | Path, options: ExportOptions) -> ExportSummary:
    """Tokenise every document of ``inputs`` into ``output`` (Parquet + token files)."""
    if options.seq_len is not None and options.seq_len < 2:
        raise ConfigError("seq_len must be at least 2 (BOS and EOS)")
    if options.pack_mode not in PACK_MODES:
        raise ConfigError(
            f"pack_mode must be one of {', '.join(PACK_MODES)}, not {options.pack_mode!r}"
        )
    tokenizer_file = Path(options.tokenizer) if options.tokenizer else default_tokenizer_path()
    if tokenizer_file.is_dir():
        tokenizer_file = tokenizer_file / "tokenizer.json"
    tokenizer = load_tokenizer(str(tokenizer_file))
    bos_id = special_token_id(
        tokenizer,
        options.bos_token,
        kind="bos",
        tokenizer_file=tokenizer_file,
        candidates=BOS_CANDIDATES,
    )
    eos_id = special_token_id(
        tokenizer,
        options.eos_token,
        kind="eos",
        tokenizer_file=tokenizer_file,
        candidates=EOS_CANDIDATES,
    )
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    reader = ParquetReader(curated_files(inputs), batch_size=options.batch_size)
    packer = Packer(options.seq_len, options.pack_mode) if options.seq_len else None
    schema = PACKED_SCHEMA if packer else DOCUMENT_SCHEMA
    documents = tokens_in = last_length = 0
    with (
        TokenFileWriter(out, tokenizer.get_vocab_size(with_added_tokens=True)) as tokens,
        pq.ParquetWriter(out / PARQUET_FILE, schema, compression="zstd") as parquet,
    ):
        for task in reader.plan():
            for table in reader.read(task):
                if options.phase != "all" and PHASE in table.column_names:
                    table = table.filter(pc.equal(table.column(PHASE), options.phase))
                if table.num_rows == 0:
                    continue
                sequences = build_sequences(
                    tokenizer,
                    _column(table, columns.ID),  # type: ignore[arg-type]
                    _column(table, columns.TEXT),
                    _column(table, MECO_PREFIX),
                    bos_id=bos_id,
                    eos_id=eos_id,
                )
                documents += len(sequences)
                tokens_in += sum(len(s.ids) for s in sequences)
                if packer is None:
                    for sequence in sequences:
                        tokens.write(sequence.ids, sequence.mask)
                        last_length = len(sequence.ids)
                    parquet.write_table(_document_rows(sequences, _column(table, PHASE)))
                    continue
                rows = [row for s in sequences for row in packer.add(s)]
                last_length = _write_rows(rows, tokens, parquet) or last_length
        if packer is not None:
            last_length = _write_rows(list(packer.flush()), tokens, parquet) or last_length
        dropped = packer.dropped if packer else 0
        if tokens_in != tokens.tokens + dropped:  # the accounting meta.json promises
            raise RuntimeError(
                f"export lost tokens: {tokens_in} in, {tokens.tokens} written, {dropped} dropped"
            )
        tokens.close(
            {
                "format": "gristmill-tokens-v1",
                "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
                "bos_id": bos_id,
                "eos_id": eos_id,
                "documents": documents,
                "packed": packer is not None,
                "seq_len": options.seq_len,
                "pack_mode": options.pack_mode if packer else None,
                # The last packed row is kept short rather than padded: no pad id, no loss.
                "padded": False,
                "last_row_length": last_length if packer else None,
                "phase": options.phase,
                "tokens_in": tokens_in,
                "tokens_written": tokens.tokens,
                "tokens_dropped": dropped,
                "tokenizer": str(tokenizer_file),
                "sequence": "[BOS] + tok(meco_prefix) + tok(text) + [EOS]",
                "loss_mask": "0 on BOS and prefix tokens, 1 on text tokens and EOS",
            }
        )
    return ExportSummary(documents, tokens.sequences, tokens.tokens, dropped, out, tokens_in)
