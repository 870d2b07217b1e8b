"""Packing to a fixed sequence length with MeCo's ``pack_complete`` rule (filters_meco.md §5.11).

Every row starts at a document start; documents are appended while they fit, and the document
that overflows the row fills it and loses its overflow (counted, never silently). Each row
keeps the ``[start, end)`` span of every document in it, for attention that does not cross
documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from gristmill.export.sequences import Sequence


@dataclass
class PackedRow:
    ids: np.ndarray
    mask: np.ndarray
    spans: list[tuple[int, int]]
    doc_ids: list[str]


@dataclass
class Packer:
    """Streams sequences into rows of ``seq_len`` tokens; ``discarded`` counts lost tokens."""

    seq_len: int
    discarded: int = 0
    _ids: list[np.ndarray] = field(default_factory=list)
    _masks: list[np.ndarray] = field(default_factory=list)
    _spans: list[tuple[int, int]] = field(default_factory=list)
    _docs: list[str] = field(default_factory=list)
    _length: int = 0

    def add(self, sequence: Sequence) -> Iterator[PackedRow]:
        room = self.seq_len - self._length
        take = min(room, len(sequence.ids))
        self.discarded += len(sequence.ids) - take
        self._ids.append(sequence.ids[:take])
        self._masks.append(sequence.mask[:take])
        self._spans.append((self._length, self._length + take))
        self._docs.append(sequence.doc_id)
        self._length += take
        if self._length >= self.seq_len:
            yield self._emit()

    def flush(self) -> Iterator[PackedRow]:
        if self._length:
            yield self._emit()

    def _emit(self) -> PackedRow:
        row = PackedRow(
            np.concatenate(self._ids), np.concatenate(self._masks), self._spans, self._docs
        )
        self._ids, self._masks, self._spans, self._docs, self._length = [], [], [], [], 0
        return row


def pack(sequences: Iterable[Sequence], seq_len: int) -> Iterator[PackedRow]:
    """Pack a stream of sequences (convenience for tests and small exports)."""
    packer = Packer(seq_len)
    for sequence in sequences:
        yield from packer.add(sequence)
    yield from packer.flush()
