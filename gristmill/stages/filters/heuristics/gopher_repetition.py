"""Gopher's repetition rules (Rae et al. 2021, table A1), deciding as datatrove's filter does.

Paragraph and line duplicates are exact string statistics over the whole batch. The n-gram
rules take each document's words and compute datatrove's two statistics exactly (string
equality, not hash equality): the most frequent n-gram's characters, and the greedy count
of repeated n-gram characters. A C kernel (``gristmill.native.ngrams``) computes both for
every document of a batch at once, straight from the words' Arrow buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from gristmill.core.filter import FilterParams
from gristmill.core.registry import register_stage
from gristmill.native.ngrams import gram_stats
from gristmill.stages.filters.heuristics.base import (
    HeuristicFilter,
    HeuristicParams,
    first_reason,
    ratio,
)
from gristmill.stages.filters.heuristics.text import (
    PY_WHITESPACE,
    batch_words,
    exact_words,
    word_list_array,
)


class GopherRepetitionParams(HeuristicParams):
    dup_line_frac: float | None = Field(0.3, description="larger share of duplicate lines: drop")
    dup_para_frac: float | None = Field(
        0.3, description="larger share of duplicate paragraphs: drop"
    )
    dup_line_char_frac: float | None = Field(
        0.2, description="larger share of characters in duplicate lines: drop"
    )
    dup_para_char_frac: float | None = Field(
        0.2, description="larger share of characters in duplicate paragraphs: drop"
    )
    top_n_grams: list[tuple[int, float]] = Field(
        default_factory=lambda: [(2, 0.2), (3, 0.18), (4, 0.16)],
        description="(n, share): drop when the most frequent n-gram covers more of the text",
    )
    dup_n_grams: list[tuple[int, float]] = Field(
        default_factory=lambda: [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.1)],
        description="(n, share): drop when repeated n-grams cover more of the text",
    )


def gram_chars(
    lists: pl.Series, top_ns: Sequence[int], dup_ns: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Gopher's n-gram statistics of every word list, exactly as datatrove computes them.

    Returns ``(top, dup)``, int64 arrays of one row per n and one column per list.
    ``top[k, d]``, with n = ``top_ns[k]``: the characters of list d's most frequent n-gram
    ``" ".join(words[i:i+n])`` (the first seen wins a tie) times its count, 0 without any.
    ``dup[k, d]``, with n = ``dup_ns[k]``: datatrove's greedy left-to-right count of the
    characters of repeated n-grams ``"".join(words[i:i+n])``, jumping n words past each
    repeat. A null list counts as no words.
    """
    array = word_list_array(lists, pa.large_string())  # the kernel reads int64 offsets
    words = array.values  # all of the child array; the list offsets index into it
    _, offsets, data = words.buffers()
    word_offsets = (
        np.frombuffer(offsets, dtype=np.int64)[words.offset : words.offset + len(words) + 1]
        if offsets is not None
        else np.zeros(1, dtype=np.int64)
    )
    top = np.zeros((len(top_ns), len(array)), dtype=np.int64)
    dup = np.zeros((len(dup_ns), len(array)), dtype=np.int64)
    gram_stats(
        array.offsets.to_numpy(),
        word_offsets,
        b"" if data is None else data,
        list(top_ns),
        list(dup_ns),
        top,
        dup,
    )
    return top, dup


def _pieces(texts: pl.DataFrame, separator: str, strip: str = "") -> pl.DataFrame:
    """(doc, piece): the non-empty pieces of every text between ``separator``s, in order.

    A literal split is several times faster than a regex extract of the same pieces. With
    ``strip`` ("\\n"), splitting on "\\n\\n" gives the paragraphs: an odd run of breaks
    leaves one break at a piece's edge, which the strip removes.
    """
    text = pl.col("text")
    piece = text.str.strip_chars(strip) if strip else text
    return (
        texts.select(text.str.split(separator))
        .with_row_index("doc")
        .explode("text")
        .select(pl.col("doc"), piece)
        .filter(text != "")
    )


_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def _repeated_pieces(pieces: pl.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document: (pieces, pieces equal to an earlier one, characters of those), float64.

    The cast is needed: ``np.bincount`` of no pieces at all (a batch without one non-empty
    line) gives int64 even with weights, and the callers add float64 statistics in place.
    """
    doc = pieces["doc"].to_numpy().astype(np.int64)
    flat = pieces["text"]
    with np.errstate(over="ignore"):
        key = flat.hash(seed=3).to_numpy() + doc.astype(np.uint64) * _MULTIPLIER
    repeat = ~pl.Series(key).is_first_distinct().to_numpy()
    chars = flat.str.len_chars().to_numpy()
    return (
        np.bincount(doc, minlength=size).astype(np.float64),
        np.bincount(doc, weights=repeat, minlength=size).astype(np.float64),
        np.bincount(doc, weights=repeat * chars, minlength=size).astype(np.float64),
    )


@register_stage
class GopherRepetition(HeuristicFilter):
    """Drops documents with too many repeated lines, paragraphs or n-grams."""

    name = "gopher_repetition"
    Params: ClassVar[type[FilterParams]] = GopherRepetitionParams
    params: GopherRepetitionParams

    def _text_stats(self, texts: pl.DataFrame) -> dict[str, np.ndarray]:
        text = pl.col("text")
        leading = text.str.starts_with("\n").cast(pl.Int64)
        trailing = text.str.ends_with("\n").cast(pl.Int64)
        stats = texts.select(
            length=text.str.len_chars(),
            # re.split("\n+") also yields "" before a leading and after a trailing break.
            edges=leading + trailing,
            both_edges=leading * trailing,
        )
        out = {name: stats[name].to_numpy().astype(np.float64) for name in stats.columns}
        size = texts.height
        # Paragraphs: what re.split("\n{2,}") of the stripped text gives, less empty ones;
        # lines: what re.split("\n+") gives (the edges are counted above).
        paragraphs = _pieces(texts.select(text.str.strip_chars(PY_WHITESPACE)), "\n\n", "\n")
        for name, pieces in (("para", paragraphs), ("line", _pieces(texts, "\n"))):
            count, repeats, chars = _repeated_pieces(pieces, size)
            out[f"n_{name}s"] = count
            out[f"{name}_dups"] = repeats
            out[f"{name}_chars"] = chars
        out["n_paras"] = np.maximum(out["n_paras"], 1)
        out["n_lines"] += out["edges"]
        out["line_dups"] += out["both_edges"]
        return out

    def _gram_stats(self, texts: pl.DataFrame, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Top and duplicated n-gram characters of the given rows (0 elsewhere)."""
        p = self.params
        out = {f"top_{n}": np.zeros(texts.height) for n, _ in p.top_n_grams}
        out.update({f"dup_{n}": np.zeros(texts.height) for n, _ in p.dup_n_grams})
        if len(rows):
            self._store_grams(out, rows, batch_words(texts[rows.tolist()]["text"]))
        return out

    def _store_grams(self, out: dict[str, np.ndarray], rows: np.ndarray, lists: pl.Series) -> None:
        """Puts the n-gram statistics of ``lists``, the words of ``rows``, into ``out``."""
        p = self.params
        top, dup = gram_chars(lists, [n for n, _ in p.top_n_grams], [n for n, _ in p.dup_n_grams])
        for k, (n, _) in enumerate(p.top_n_grams):
            out[f"top_{n}"][rows] = top[k]
        for k, (n, _) in enumerate(p.dup_n_grams):
            out[f"dup_{n}"][rows] = dup[k]

    def _rules(
        self, s: dict[str, np.ndarray], g: dict[str, np.ndarray]
    ) -> list[tuple[np.ndarray, str]]:
        p = self.params
        length = s["length"]
        rules = [(length == 0, "empty")]
        if p.dup_para_frac:
            rules.append((ratio(s["para_dups"], s["n_paras"]) > p.dup_para_frac, "dup_para_frac"))
        if p.dup_para_char_frac:
            rules.append(
                (ratio(s["para_chars"], length) > p.dup_para_char_frac, "dup_para_char_frac")
            )
        if p.dup_line_frac:
            rules.append((ratio(s["line_dups"], s["n_lines"]) > p.dup_line_frac, "dup_line_frac"))
        if p.dup_line_char_frac:
            rules.append(
                (ratio(s["line_chars"], length) > p.dup_line_char_frac, "dup_line_char_frac")
            )
        for n, share in p.top_n_grams:
            rules.append((ratio(g[f"top_{n}"], length) > share, f"top_{n}_gram"))
        for n, share in p.dup_n_grams:
            rules.append((ratio(g[f"dup_{n}"], length) > share, f"duplicated_{n}_n_grams"))
        return rules

    def decide(self, texts: pl.DataFrame) -> Sequence[str | None]:
        stats = self._text_stats(texts)
        no_grams = {
            **{f"top_{n}": np.zeros(texts.height) for n, _ in self.params.top_n_grams},
            **{f"dup_{n}": np.zeros(texts.height) for n, _ in self.params.dup_n_grams},
        }
        # Rows the line and paragraph rules already drop need no n-grams.
        decided = np.zeros(texts.height, dtype=bool)
        for failed, _ in self._rules(stats, no_grams):
            decided |= failed
        rows = np.flatnonzero(~decided)
        grams = self._gram_stats(texts, rows)
        self._recheck(texts, stats, grams, rows)
        return first_reason(self._rules(stats, grams), texts.height)

    def _recheck(
        self,
        texts: pl.DataFrame,
        stats: dict[str, np.ndarray],
        grams: dict[str, np.ndarray],
        rows: np.ndarray,
    ) -> None:
        """Exact words for the rows whose n-gram shares sit near a threshold."""
        if self.params.exact_margin <= 0 or not len(rows):
            return
        length = stats["length"][rows]
        near = np.zeros(len(rows), dtype=bool)
        for n, share in self.params.top_n_grams:
            near |= self.near(ratio(grams[f"top_{n}"][rows], length), share)
        for n, share in self.params.dup_n_grams:
            near |= self.near(ratio(grams[f"dup_{n}"][rows], length), share)
        column = texts["text"]
        recheck = rows[near]
        if len(recheck):
            exact = [exact_words(column[int(row)]) for row in recheck]
            self._store_grams(grams, recheck, pl.Series(exact, dtype=pl.List(pl.String)))
        self.stats.count("exact_rechecks", len(recheck))
