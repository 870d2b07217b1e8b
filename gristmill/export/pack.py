"""Packing token sequences into rows of ``seq_len`` tokens, in one of two modes.

``split`` (default, lossless): documents are laid end to end and cut every ``seq_len`` tokens,
so a document that does not fit the space left in a row continues at the start of the next
row, and a document longer than ``seq_len`` spans several rows. No token is lost: a trainer
that pays for every curated token should see every one of them.

``truncate`` (MeCo's ``pack_complete`` rule): every row starts at a document start; documents
are appended while they fit, and the document that overflows the row fills it and loses its
overflow (counted in ``dropped``, never silently). For those who want no document to cross
rows, at the price of the overflow.

In both modes each row records, per piece of document it holds, the ``[start, end)`` span in
the row, the document id and ``doc_start``, the offset in the document of the piece's first
token. That is what a trainer needs for attention masks and position ids that reset at
document boundaries (``doc_start > 0`` marks a continuation from the previous row), and what
lets a reader put every document back together.

The loss mask travels with its tokens, so prefix tokens stay masked wherever a cut puts them.
The first token of a continuation row loses its cross-row context, but it is never a target
(labels are shifted by one in every row), so nothing needs masking there.

The last row keeps what is left and may be shorter than ``seq_len``: it is not padded, so no
pad id is invented and no token is dropped; a loader that needs fixed shapes pads or skips it
(``meta.json`` gives its length).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gristmill.export.sequences import Sequence

PackMode = Literal["split", "truncate"]
PACK_MODES: tuple[PackMode, ...] = ("split", "truncate")


@dataclass
class PackedRow:
    """One packed row: tokens, mask, and per document piece its span, id and start offset."""

    ids: np.ndarray
    mask: np.ndarray
    spans: list[tuple[int, int]]
    doc_ids: list[str]
    doc_starts: list[int]


@dataclass
class Packer:
    """Streams sequences into rows of ``seq_len`` tokens.

    ``tokens_in`` counts the tokens received and ``dropped`` those lost to truncation (always 0
    in ``split`` mode), so an export can prove its accounting rather than assert it.
    """

    seq_len: int
    mode: PackMode = "split"
    tokens_in: int = 0
    dropped: int = 0
    _ids: list[np.ndarray] = field(default_factory=list)
    _masks: list[np.ndarray] = field(default_factory=list)
    _spans: list[tuple[int, int]] = field(default_factory=list)
    _docs: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _length: int = 0

    def __post_init__(self) -> None:
        if self.seq_len < 1:
            raise ValueError(f"seq_len must be positive, not {self.seq_len}")
        if self.mode not in PACK_MODES:
            raise ValueError(f"pack mode must be one of {', '.join(PACK_MODES)}, not {self.mode!r}")

    def add(self, sequence: Sequence) -> Iterator[PackedRow]:
        """Append a sequence; yields every row it completes."""
        total = len(sequence.ids)
        self.tokens_in += total
        if self.mode == "truncate":
            take = min(self.seq_len - self._length, total)
            self.dropped += total - take
            self._append(sequence, 0, take)
            if self._length >= self.seq_len:
                yield self._emit()
            return
        position = 0
        while position < total:
            take = min(self.seq_len - self._length, total - position)
            self._append(sequence, position, position + take)
            position += take
            if self._length >= self.seq_len:
                yield self._emit()

    def flush(self) -> Iterator[PackedRow]:
        """The last, possibly short, row (nothing if the stream ended on a row boundary)."""
        if self._length:
            yield self._emit()

    def _append(self, sequence: Sequence, start: int, end: int) -> None:
        self._ids.append(sequence.ids[start:end])
        self._masks.append(sequence.mask[start:end])
        self._spans.append((self._length, self._length + end - start))
        self._docs.append(sequence.doc_id)
        self._starts.append(start)
        self._length += end - start

    def _emit(self) -> PackedRow:
        row = PackedRow(
            np.concatenate(self._ids),
            np.concatenate(self._masks),
            self._spans,
            self._docs,
            self._starts,
        )
        self._ids, self._masks, self._spans, self._docs, self._starts = [], [], [], [], []
        self._length = 0
        return row


def pack(
    sequences: Iterable[Sequence], seq_len: int, mode: PackMode = "split"
) -> Iterator[PackedRow]:
    """Pack a stream of sequences (convenience for tests and small exports)."""
    packer = Packer(seq_len, mode)
    for sequence in sequences:
        yield from packer.add(sequence)
    yield from packer.flush()
