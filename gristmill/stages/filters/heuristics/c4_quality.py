"""C4's line and page rules (Raffel et al. 2020), deciding as datatrove's C4QualityFilter does.

Lines are judged all at once over the exploded batch. C4's line rules were written for web
pages, where a line is a paragraph: on verse and hard-wrapped books (a line is a fragment of a
sentence) they shred the text. ``line_rules_sources`` limits them to the sources named (the
web ones); the other documents keep every line, byte for byte, and face the page rules only.

Sentences are only counted where the count can matter: a document with at least
``min_num_sentences`` kept lines has enough whatever the count (every kept line holds a
sentence), so spaCy's sentence splitter only runs on the kept lines of documents with fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core import columns
from gristmill.core.filter import FilterParams, Verdict
from gristmill.core.registry import register_stage
from gristmill.stages.filters.heuristics.base import HeuristicFilter, HeuristicParams
from gristmill.stages.filters.heuristics.text import (
    PY_WHITESPACE,
    WS,
    exact_sentence_count,
    sentence_counts,
    splitlines,
)

CITATION = r"\[\d*]|\[edit]|\[citation needed]"
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


class C4QualityParams(HeuristicParams):
    exact_margin: float = Field(
        0.0,
        ge=0.0,
        description="count sentences with spaCy itself where our count is within this "
        "relative distance of min_num_sentences (0: never; 0.2 re-counts totals of 4 to 6)",
    )
    split_paragraph: Literal[True] = Field(
        True, description="judge lines, as C4 does (datatrove's sentence mode is not offered)"
    )
    remove_citations: bool = Field(True, description="drop wiki citations like [1] from lines")
    filter_no_terminal_punct: bool = Field(
        True, description="drop lines not ending in . ? ! \" ' (or ending in ...)"
    )
    min_num_sentences: int = Field(5, description="fewer sentences in kept lines: drop (-1: off)")
    min_words_per_line: int = Field(3, description="drop lines with fewer words (-1: off)")
    max_word_length: int = Field(1000, description="drop lines with a longer word (-1: off)")
    filter_lorem_ipsum: bool = Field(True, description="drop documents with 'lorem ipsum'")
    filter_javascript: bool = Field(True, description="drop lines mentioning javascript")
    filter_curly_bracket: bool = Field(True, description="drop documents with a '{'")
    filter_policy: bool = Field(True, description="drop lines with cookie/terms phrases")
    remove_lines: bool = Field(
        True,
        description="keep only the good lines in the text of kept documents, as C4 (and "
        "datatrove) do; False only decides (annotate mode never edits)",
    )
    line_rules_sources: list[str] | None = Field(
        None,
        description="judge lines (words per line, terminal punctuation, word length, "
        "javascript, policy phrases, citations) only in documents whose `source` is one of "
        "these, e.g. the web sources; the others keep every line and face the page rules "
        "only (lorem ipsum, curly bracket, sentence count). None: every document, as C4",
    )


def _at_least_words(line: pl.Expr, count: int) -> pl.Expr:
    """``len(line.split()) >= count`` for a stripped line, without finding every word.

    After the first word each one follows a run of whitespace, so ``count`` words are
    ``count - 1`` such runs: one search that stops at the first match, where counting every
    word costs a regex match per word.
    """
    if count <= 0:
        return line.is_not_null()
    if count == 1:
        return line != ""
    return line.str.contains(f"[{WS}]" + f"(?:[^{WS}]+[{WS}]+)" * (count - 2))


@register_stage
class C4Quality(HeuristicFilter):
    """Drops pages with lorem ipsum, code braces, or too few sentences in their good lines."""

    name = "c4_quality"
    Params: ClassVar[type[FilterParams]] = C4QualityParams
    params: C4QualityParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.params.line_rules_sources is None:
            return (columns.ID, columns.TEXT)
        return (columns.ID, columns.TEXT, columns.SOURCE)

    def _line_exempt(self, batch: pa.Table) -> np.ndarray | None:
        """Per document, True where the line rules do not apply (its source is not listed)."""
        if self.params.line_rules_sources is None:
            return None
        source = batch.column(columns.SOURCE).cast(pa.string())
        listed = pa.array(self.params.line_rules_sources, pa.string())
        judged = pc.fill_null(pc.is_in(source, value_set=listed), False)
        exempt: np.ndarray = ~judged.to_numpy(zero_copy_only=False)
        self.stats.count("documents_without_line_rules", int(exempt.sum()))
        return exempt

    def _lines(self, texts: pl.DataFrame, exempt: np.ndarray | None = None) -> pl.DataFrame:
        """One row per line, with what each rule needs, in document and line order; the lines
        of ``exempt`` documents survive whole (only the page rules see them)."""
        p = self.params
        line = pl.col("line")
        cleaned = line.str.replace_all(CITATION, "") if p.remove_citations else line
        frame = (
            texts.select(splitlines(pl.col("text")).alias("line"))
            .with_row_index("doc")
            .explode("line")
            .drop_nulls("line")
            .with_columns(line.str.strip_chars(PY_WHITESPACE))
            .with_columns(cleaned=cleaned)
        )
        survives = self._survives(frame)
        line_exempt = None
        if exempt is not None and exempt.any():
            line_exempt = exempt[frame["doc"].to_numpy()]
            frame = frame.with_columns(
                cleaned=pl.when(pl.Series(line_exempt))
                .then(pl.col("line"))
                .otherwise(pl.col("cleaned"))
            )
            survives = np.where(line_exempt, frame["line"].str.len_chars().to_numpy() > 0, survives)
        # The page-level phrases only matter on lines that survive: look only at those.
        flags = self._line_flags(
            frame["cleaned"].filter(pl.Series(survives)),
            None if line_exempt is None else line_exempt[survives],
        )
        columns = {name: np.zeros(frame.height, dtype=bool) for name in flags}
        for name, values in flags.items():
            columns[name][survives] = values
        return frame.select("doc", "cleaned").with_columns(
            **{name: pl.Series(values) for name, values in columns.items()}
        )

    def _survives(self, frame: pl.DataFrame) -> np.ndarray:
        """Lines that pass the word-count, word-length and terminal-punctuation rules."""
        p = self.params
        cleaned = pl.col("cleaned")
        survives = _at_least_words(pl.col("line"), p.min_words_per_line)
        if p.filter_no_terminal_punct:
            ends = cleaned.str.contains(r"[.?!\"']$") & ~cleaned.str.ends_with("...")
            survives = survives & ends
        keep = frame.select(survives.alias("keep"))["keep"].to_numpy().copy()
        if p.max_word_length != -1:
            # Only a line longer than the limit can hold a longer word, so the counted
            # pattern (slow on every line) runs on those alone.
            line = frame["line"]
            long = np.flatnonzero(keep & (line.str.len_chars().to_numpy() > p.max_word_length))
            too_long = line.gather(long).str.contains(f"[^{WS}]{{{p.max_word_length + 1}}}")
            keep[long[too_long.to_numpy()]] = False
        return keep

    def _line_flags(
        self, cleaned: pl.Series, exempt: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Of surviving lines: which drop the page (lorem, curly) and which are kept; the line
        rules (javascript, policy) spare ``exempt`` lines."""
        p = self.params
        lower = cleaned.str.to_lowercase()
        none = np.zeros(len(cleaned), dtype=bool)
        judged = ~exempt if exempt is not None else ~none

        def contains(on: pl.Series, enabled: bool, phrase: str) -> np.ndarray:
            return on.str.contains(phrase, literal=True).to_numpy() if enabled else none

        lorem = contains(lower, p.filter_lorem_ipsum, "lorem ipsum")
        javascript = contains(lower, p.filter_javascript, "javascript") & judged
        curly = contains(cleaned, p.filter_curly_bracket, "{")
        policy = none
        if p.filter_policy:
            policy = lower.str.contains_any(list(POLICY_PHRASES)).to_numpy() & judged
        return {
            "lorem": lorem,
            "curly": ~lorem & ~javascript & curly,
            "kept": ~lorem & ~javascript & ~curly & ~policy,
        }

    def judge(self, batch: pa.Table) -> Verdict:
        texts = self.texts(batch)
        exempt = self._line_exempt(batch)
        lines = self._lines(texts, exempt)
        reasons = self._decide(texts, lines)
        keep = pa.array([reason is None for reason in reasons], pa.bool_())
        verdict = Verdict(keep, pa.array(reasons, pa.string()))
        if self.params.remove_lines and self.params.mode == "drop":
            # Kept documents go on with their kept lines; dropped ones are rejected whole, and
            # documents the line rules do not apply to go on as they came.
            original = batch.column(columns.TEXT)
            kept_text = self._kept_text(lines, texts.height).cast(original.type)
            edit = keep if exempt is None else pc.and_(keep, pa.array(~exempt))
            rewritten = pc.if_else(edit, kept_text, original)
            position = batch.column_names.index(columns.TEXT)
            verdict.edited = batch.set_column(position, columns.TEXT, rewritten)
        return verdict

    def _kept_text(self, lines: pl.DataFrame, rows: int) -> pa.Array:
        """Per document, its kept lines joined by line breaks and stripped ("" if none)."""
        joined = (
            lines.filter(pl.col("kept"))
            .group_by("doc", maintain_order=True)
            .agg(pl.col("cleaned").str.join("\n").str.strip_chars(PY_WHITESPACE))
        )
        text = np.full(rows, "", dtype=object)
        text[joined["doc"].to_numpy()] = joined["cleaned"].to_numpy()
        return pa.array(text, pa.string())

    def decide(self, texts: pl.DataFrame) -> Sequence[str | None]:
        return self._decide(texts, self._lines(texts))

    def _decide(self, texts: pl.DataFrame, lines: pl.DataFrame) -> list[str | None]:
        p = self.params
        reasons = np.full(texts.height, None, dtype=object)
        # The first line (in order) that drops the whole page names the reason.
        page = lines.filter(pl.col("lorem") | pl.col("curly")).group_by("doc").first()
        reasons[page["doc"].to_numpy()] = np.where(
            page["lorem"].to_numpy(), "lorem_ipsum", "curly_bracket"
        )
        if p.min_num_sentences == -1:
            return reasons.tolist()  # type: ignore[no-any-return]
        kept = lines.filter(pl.col("kept"))
        counts = np.bincount(kept["doc"].to_numpy(), minlength=texts.height)
        few = (counts < p.min_num_sentences) & (reasons == None)  # noqa: E711
        # A sentence boundary needs a punctuation token, so a line holds at most one
        # sentence more than it has punctuation marks: below the minimum even then, no
        # need to split.
        most = np.bincount(
            kept["doc"].to_numpy(),
            weights=kept["cleaned"].str.count_matches(r"\p{P}").to_numpy() + 1,
            minlength=texts.height,
        )
        sentences = counts.copy()
        unsure = np.flatnonzero(few & (counts > 0) & (most >= p.min_num_sentences))
        needed = kept.filter(pl.col("doc").is_in(unsure))
        if needed.height:
            # Sentences on our words first; spaCy's own split only where the total is near
            # the minimum.
            approx = sentence_counts(needed["cleaned"])
            doc = needed["doc"].to_numpy()
            sentences[unsure] = 0
            np.add.at(sentences, doc, approx)
            near = unsure[self.near(sentences[unsure].astype(np.float64), p.min_num_sentences)]
            exact = needed.filter(pl.col("doc").is_in(near))
            sentences[near] = 0
            for row, line in exact.select("doc", "cleaned").iter_rows():
                sentences[row] += exact_sentence_count(line)
            self.stats.count("sentence_splits", exact.height)
        reasons[(reasons == None) & (sentences < p.min_num_sentences)] = "too_few_sentences"  # noqa: E711
        return reasons.tolist()  # type: ignore[no-any-return]
