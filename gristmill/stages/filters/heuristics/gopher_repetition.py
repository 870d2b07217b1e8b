"""Gopher's repetition rules (Rae et al. 2021, table A1), deciding as datatrove's filter does.

Paragraph and line duplicates are exact string statistics. The n-gram rules run on word
hashes over the whole batch: the most frequent n-gram per document from a group-by, and the
duplicated n-gram share from an upper bound (the characters of every word inside any
repeated n-gram) that clears almost every document at once; only documents above that bound
run datatrove's greedy left-to-right count, per document, on their words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from gristmill.core.filter import FilterParams
from gristmill.core.registry import register_stage
from gristmill.stages.filters.heuristics.base import (
    HeuristicFilter,
    HeuristicParams,
    first_reason,
    ratio,
)
from gristmill.stages.filters.heuristics.text import PY_WHITESPACE, batch_words, exact_words


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


def greedy_duplicate_chars(tokens: Sequence[str], n: int, stop: float = float("inf")) -> int:
    """Characters of repeated n-grams, counted left to right, skipping past each repeat.

    Counting stops once it passes ``stop``: the rule only asks whether it does.
    """
    seen: set[str] = set()
    repeated = index = 0
    last = len(tokens) - n + 1
    while index < last:
        gram = "".join(tokens[index : index + n])
        if gram in seen:
            repeated += len(gram)
            if repeated > stop:
                break
            index += n
        else:
            seen.add(gram)
            index += 1
    return repeated


def top_gram_chars(tokens: Sequence[str], n: int) -> int:
    """Characters the most frequent n-gram covers (first seen wins a tie)."""
    grams = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if not grams:
        return 0
    gram, count = max(grams.items(), key=lambda item: item[1])
    return len(gram) * count


_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
#: Hash buckets of the n-gram count bound (1M): a bucket shared by a few n-grams only
#: loosens the bound by their few characters.
_BUCKET_BITS = 20


class Tokens:
    """The words of a batch as flat arrays, for n-gram statistics without per-word Python.

    Every n-gram gets a 64-bit key (a polynomial of its words' hashes, salted with its
    document), so counting and finding repeats are hash operations over one array.
    """

    def __init__(self, lists: pl.Series) -> None:
        self.lists = lists
        self.sizes = lists.list.len().to_numpy().astype(np.int64)
        flat = lists.explode().drop_nulls()
        self.hashes = flat.hash(seed=7).to_numpy()
        self.chars = flat.str.len_chars().to_numpy().astype(np.int64)
        self.doc = np.repeat(np.arange(len(self.sizes)), self.sizes)
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes)))
        # Words from each one to its document's end (itself included): an n-gram starts
        # where at least n are left.
        self.left = self.offsets[1:][self.doc] - np.arange(len(self.doc))
        with np.errstate(over="ignore"):
            self.salt = self.doc.astype(np.uint64) * _MULTIPLIER
        self.cumchars = np.concatenate(([0], np.cumsum(self.chars)))
        self._rolling: dict[int, np.ndarray] = {1: self.hashes}

    def keys(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(key, valid) of the n-gram starting at every word that has n - 1 after it.

        Keys are salted with the start's document, so documents are kept apart. An n-gram
        running past its document's end is not ``valid``; the arrays keep it (masking is
        cheaper than compacting every array that follows), and callers leave it out.
        """
        # The polynomial of n words extends the one of n - 1 words by one more word.
        have = max(m for m in self._rolling if m <= n)
        rolling = self._rolling[have]
        with np.errstate(over="ignore"):
            for m in range(have + 1, n + 1):
                rolling = rolling[:-1] * _MULTIPLIER + self.hashes[m - 1 :]
                self._rolling[m] = rolling
            key = rolling + self.salt[: len(rolling)]
        return key, self.left[: len(rolling)] >= n

    def span(self, starts: np.ndarray, n: int) -> np.ndarray:
        """Characters of the n-grams at ``starts`` joined by single spaces."""
        return self.cumchars[starts + n] - self.cumchars[starts] + (n - 1)

    def top_gram_chars(self, n: int, share: float, length: np.ndarray) -> np.ndarray:
        """Per document: count times length of its most frequent n-gram (first seen wins).

        Exact only where it could exceed ``share`` of ``length``: a hashed count of every
        n-gram's characters (several n-grams may share a bucket, which only adds) bounds it,
        and the exact count runs on the documents above the bound.
        """
        key, valid = self.keys(n)
        out = np.zeros(len(self.sizes))
        if not valid.any():
            return out
        # Characters of every n-gram (joined by spaces); 0 for those past a document's end.
        span = (self.cumchars[n:] - self.cumchars[:-n] + (n - 1)) * valid
        # The top bits, as the signed integers bincount takes (a view: they fit).
        bucket = (key >> np.uint64(64 - _BUCKET_BITS)).view(np.int64)
        covered = np.bincount(bucket, weights=span, minlength=1 << _BUCKET_BITS)[bucket]
        covered[~valid] = 0
        # Each document's n-grams run from its first word up to the next such document's
        # (the words between hold no valid n-gram, so add nothing to the maximum).
        has_grams = self.sizes >= n
        first = self.offsets[:-1][has_grams]
        most = np.zeros(len(self.sizes))
        most[has_grams] = np.maximum.reduceat(covered, first)
        # Documents with no repeated n-gram: the first one is the most frequent.
        out[has_grams] = self.span(first, n)
        suspect = np.flatnonzero(most > share * length)
        if not len(suspect):
            return out
        is_suspect = np.zeros(len(self.sizes), dtype=bool)
        is_suspect[suspect] = True
        starts = np.flatnonzero(valid & is_suspect[self.doc[: len(valid)]])
        frame = pl.DataFrame({"key": key[starts], "start": starts, "doc": self.doc[starts]})
        grams = frame.group_by("key").agg(
            pl.len().alias("count"), pl.col("start").min(), pl.col("doc").first()
        )
        best = (
            grams.with_columns(top=pl.col("count").max().over("doc"))
            .filter(pl.col("count") == pl.col("top"))
            .group_by("doc")
            .agg(pl.col("start").min(), pl.col("count").first())
        )
        best_start = best["start"].to_numpy()
        out[best["doc"].to_numpy()] = best["count"].to_numpy() * self.span(best_start, n)
        return out

    def repeat_bound(self, n: int) -> np.ndarray:
        """Per document: characters of the words inside any n-gram seen earlier in it.

        The greedy count only ever counts such n-grams, never overlapping, so this bounds it.
        """
        key, valid = self.keys(n)
        if not valid.any():
            return np.zeros(len(self.sizes))
        # One hash pass over the keys: a table of buckets to pre-filter them costs more
        # (it does not fit in cache) than it saves. An n-gram past a document's end comes
        # after all of that document's valid ones and has another salt than the next
        # document's, so it never makes a valid one a repeat.
        repeat = np.zeros(len(self.doc), dtype=np.int64)
        repeat[: len(key)] = valid & ~pl.Series(key).is_first_distinct().to_numpy()
        # A word is covered when one of the n n-grams holding it (starting at most n - 1
        # words before) is a repeat.
        running = np.cumsum(repeat)
        before = np.concatenate((np.zeros(n, dtype=np.int64), running))[: len(running)]
        covered = running - before > 0
        return np.bincount(self.doc, weights=covered * self.chars, minlength=len(self.sizes))

    def document(self, local: int) -> list[str]:
        return self.lists[int(local)].to_list()  # type: ignore[no-any-return]


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


def _repeated_pieces(pieces: pl.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document: (pieces, pieces equal to an earlier one, characters of those)."""
    doc = pieces["doc"].to_numpy().astype(np.int64)
    flat = pieces["text"]
    with np.errstate(over="ignore"):
        key = flat.hash(seed=3).to_numpy() + doc.astype(np.uint64) * _MULTIPLIER
    repeat = ~pl.Series(key).is_first_distinct().to_numpy()
    chars = flat.str.len_chars().to_numpy()
    return (
        np.bincount(doc, minlength=size).astype(np.float64),
        np.bincount(doc, weights=repeat, minlength=size),
        np.bincount(doc, weights=repeat * chars, minlength=size),
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

    def _gram_stats(
        self, texts: pl.DataFrame, rows: np.ndarray, length: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Top and duplicated n-gram characters of the given rows (0 elsewhere)."""
        p = self.params
        out = {f"top_{n}": np.zeros(texts.height) for n, _ in p.top_n_grams}
        out.update({f"dup_{n}": np.zeros(texts.height) for n, _ in p.dup_n_grams})
        if not len(rows):
            return out
        subset = texts[rows.tolist()]["text"]
        tokens = Tokens(batch_words(subset))
        lengths = length[rows]
        alive = np.ones(len(rows), dtype=bool)
        for n, share in p.top_n_grams:
            value = tokens.top_gram_chars(n, share, lengths)
            out[f"top_{n}"][rows] = value
            alive &= ratio(value, lengths) <= share
        if not p.dup_n_grams or not alive.any():
            return out
        # A repeated n-gram holds repeated shorter grams, so the bound of the shortest n
        # bounds every longer one; below the smallest share a document passes them all.
        shortest = min(n for n, _ in p.dup_n_grams)
        smallest = min(share for _, share in p.dup_n_grams)
        suspect = alive & (ratio(tokens.repeat_bound(shortest), lengths) > smallest)
        if not suspect.any():
            return out
        local = np.flatnonzero(suspect)
        few = Tokens(tokens.lists.gather(local))
        over = np.stack(
            [ratio(few.repeat_bound(n), lengths[local]) > share for n, share in p.dup_n_grams]
        )
        for position in np.flatnonzero(over.any(axis=0)).tolist():
            document = few.document(position)
            limit = lengths[local[position]]
            for rule, (n, share) in enumerate(p.dup_n_grams):
                if not over[rule, position]:
                    continue
                repeated = greedy_duplicate_chars(document, n, stop=share * limit)
                out[f"dup_{n}"][rows[local[position]]] = repeated
                if repeated > share * limit:
                    break  # the first failing n names the reason; the rest cannot matter
        return out

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
        grams = self._gram_stats(texts, rows, stats["length"])
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
        for row in rows[near]:
            tokens = exact_words(column[int(row)])
            for n, _ in self.params.top_n_grams:
                grams[f"top_{n}"][row] = top_gram_chars(tokens, n)
            for n, _ in self.params.dup_n_grams:
                grams[f"dup_{n}"][row] = greedy_duplicate_chars(tokens, n)
        self.stats.count("exact_rechecks", int(near.sum()))
