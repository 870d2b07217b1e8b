"""Packing token sequences into rows of ``seq_len`` tokens, in one of three modes.

``split`` (default, lossless): documents are laid end to end and cut every ``seq_len`` tokens,
so a document that does not fit the space left in a row continues at the start of the next
row, and a document longer than ``seq_len`` spans several rows. No token is lost: a trainer
that pays for every curated token should see every one of them.

``truncate`` (MeCo's ``pack_complete`` rule): every row starts at a document start; documents
are appended while they fit, and the document that overflows the row fills it and loses its
overflow (counted in ``dropped``, never silently). For those who want no document to cross
rows, at the price of the overflow.

``repeat_prefix`` (for MeCo's conditioning phase): as ``split``, but a document with a
metadata prefix that continues into a new row starts that row with its BOS and prefix again
(mask 0), then goes on where it was cut. In ``split`` mode the tail of a long document is
trained without its ``URL: ...`` in context, which the conditioning phase never intends; here
no row starts inside a document without its prefix, no document token is lost, and the
repeated tokens are counted (``repeated``). Documents without a prefix (cooldown, or no
metadata) are packed as in ``split``.

In every mode each row records, per piece of document it holds, the ``[start, end)`` span in
the row, the document id, ``doc_start``, the offset in the document of the piece's first
token, and ``head_len``, how many repeated BOS + prefix tokens open the piece (0 but for
``repeat_prefix`` continuations, whose document tokens start ``head_len`` into the span, at
offset ``doc_start``). That is what a trainer needs for attention masks and position ids that
reset at document boundaries (``doc_start > 0`` marks a continuation from the previous row),
and what lets a reader put every document back together.

The loss mask travels with its tokens, so prefix tokens stay masked wherever a cut puts them.
The first token of a continuation row loses its cross-row context, but it is never a target
(labels are shifted by one in every row), so nothing needs masking there.

The last row keeps what is left and may be shorter than ``seq_len`` (an export flushes the
packer at the end of each phase, so each phase's last row may be): it is not padded, so no
pad id is invented and no token is dropped; a loader that needs fixed shapes pads or skips it
(``meta.json`` gives its length).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gristmill.export.sequences import Sequence

PackMode = Literal["split", "truncate", "repeat_prefix"]
PACK_MODES: tuple[PackMode, ...] = ("split", "truncate", "repeat_prefix")


@dataclass
class PackedRow:
    """One packed row: tokens, mask, and per document piece its span, id and start offset."""

    ids: np.ndarray
    mask: np.ndarray
    spans: list[tuple[int, int]]
    doc_ids: list[str]
    doc_starts: list[int]
    head_lens: list[int] = field(default_factory=list)


@dataclass
class Packer:
    """Streams sequences into rows of ``seq_len`` tokens.

    ``tokens_in`` counts the tokens received, ``dropped`` those lost to truncation (always 0
    but in ``truncate`` mode) and ``repeated`` the BOS + prefix tokens written again at the
    head of ``repeat_prefix`` continuations, so an export can prove its accounting
    (written = in - dropped + repeated) rather than assert it.
    """

    seq_len: int
    mode: PackMode = "split"
    tokens_in: int = 0
    dropped: int = 0
    repeated: int = 0
    _ids: list[np.ndarray] = field(default_factory=list)
    _masks: list[np.ndarray] = field(default_factory=list)
    _spans: list[tuple[int, int]] = field(default_factory=list)
    _docs: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _heads: list[int] = field(default_factory=list)
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
        head = self._head(sequence)
        position = 0
        while position < total:
            repeat = head if position and not self._length else 0
            if repeat and position < head:
                # The cut fell inside BOS + prefix: the repeat writes the rest of it.
                self.repeated += position
                position = head
            else:
                self.repeated += repeat
            take = min(self.seq_len - self._length - repeat, total - position)
            self._append(sequence, position, position + take, repeat)
            position += take
            if self._length >= self.seq_len:
                yield self._emit()

    def _head(self, sequence: Sequence) -> int:
        """BOS + prefix tokens a continuation row repeats (0: nothing to repeat)."""
        if self.mode != "repeat_prefix" or sequence.prefix_len <= 0:
            return 0
        head = 1 + sequence.prefix_len
        if head >= self.seq_len:
            raise ValueError(
                f"document {sequence.doc_id!r}: its BOS and metadata prefix take {head} tokens, "
                f"which leaves no room for its text in a row of {self.seq_len} "
                "(pack_mode repeat_prefix); use a larger seq_len or a shorter prefix"
            )
        return head

    def flush(self) -> Iterator[PackedRow]:
        """The last, possibly short, row (nothing if the stream ended on a row boundary)."""
        if self._length:
            yield self._emit()

    def _append(self, sequence: Sequence, start: int, end: int, head: int = 0) -> None:
        """The document's tokens ``[start, end)``, after its first ``head`` tokens again."""
        if head:
            self._ids.append(sequence.ids[:head])
            self._masks.append(np.zeros(head, dtype=sequence.mask.dtype))
        self._ids.append(sequence.ids[start:end])
        self._masks.append(sequence.mask[start:end])
        size = head + end - start
        self._spans.append((self._length, self._length + size))
        self._docs.append(sequence.doc_id)
        self._starts.append(start)
        self._heads.append(head)
        self._length += size

    def _emit(self) -> PackedRow:
        row = PackedRow(
            np.concatenate(self._ids),
            np.concatenate(self._masks),
            self._spans,
            self._docs,
            self._starts,
            self._heads,
        )
        self._ids, self._masks, self._spans, self._docs, self._starts = [], [], [], [], []
        self._heads = []
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
