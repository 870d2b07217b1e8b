"""The memory-mapped token files of an export, the layout nanoGPT-style loaders read.

```
OUT/tokens.bin      every sequence's token ids back to back, little-endian uint16 when the
                    vocabulary fits in 16 bits, else uint32 (meta.json says which)
OUT/loss_mask.bin   one uint8 per token: 0 = no loss (BOS, metadata prefix), 1 = loss
OUT/index.npy       int64 offsets, one more than sequences: sequence i is
                    tokens[index[i]:index[i+1]]; packed rows are all seq_len long but the
                    last, which is kept short rather than padded (meta last_row_length)
OUT/meta.json       dtype, vocabulary size, BOS/EOS ids, packing (seq_len, pack_mode),
                    token accounting (tokens_in = tokens_written + tokens_dropped), tokenizer
```

``np.memmap("tokens.bin", dtype=meta["dtype"], mode="r")`` reads the tokens without loading
them; ``index.npy`` gives document (or packed row) boundaries. Document boundaries inside
packed rows live in the Parquet file's ``indices`` / ``doc_ids`` / ``doc_starts`` columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

TOKENS_FILE = "tokens.bin"
MASK_FILE = "loss_mask.bin"
INDEX_FILE = "index.npy"
META_FILE = "meta.json"


def token_dtype(vocab_size: int) -> np.dtype[Any]:
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


class TokenFileWriter:
    """Appends sequences to ``tokens.bin`` and ``loss_mask.bin``; ``close`` writes the index."""

    def __init__(self, directory: Path, vocab_size: int) -> None:
        self.directory = directory
        self.dtype = token_dtype(vocab_size)
        directory.mkdir(parents=True, exist_ok=True)
        self._tokens = (directory / TOKENS_FILE).open("wb")
        self._mask = (directory / MASK_FILE).open("wb")
        self._offsets = [0]

    def write(self, ids: np.ndarray, mask: np.ndarray) -> None:
        self._tokens.write(ids.astype(self.dtype).tobytes())
        self._mask.write(mask.astype(np.uint8).tobytes())
        self._offsets.append(self._offsets[-1] + len(ids))

    @property
    def sequences(self) -> int:
        return len(self._offsets) - 1

    @property
    def tokens(self) -> int:
        return self._offsets[-1]

    def close(self, meta: dict[str, Any]) -> None:
        self._tokens.close()
        self._mask.close()
        np.save(self.directory / INDEX_FILE, np.asarray(self._offsets, dtype=np.int64))
        meta = {
            "dtype": self.dtype.name,
            "sequences": self.sequences,
            "tokens": self.tokens,
            **meta,
        }
        (self.directory / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    def __enter__(self) -> TokenFileWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._tokens.close()
            self._mask.close()


def read_token_files(directory: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(tokens, loss mask, offsets, meta) of an export, the first two memory-mapped."""
    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    tokens = np.memmap(directory / TOKENS_FILE, dtype=meta["dtype"], mode="r")
    mask = np.memmap(directory / MASK_FILE, dtype=np.uint8, mode="r")
    offsets = np.load(directory / INDEX_FILE)
    return tokens, mask, offsets, meta
