"""Heuristic filters on bad input, in pipelines, and on rules one can check by hand."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from support.data import sample_table

from gristmill import Pipeline
from gristmill.adapters.datatrove_in_gristmill import DatatroveStep
from gristmill.core.filter import Filter
from gristmill.core.registry import get_stage_class
from gristmill.stages.filters.heuristics.c4_quality import C4Quality
from gristmill.stages.filters.heuristics.fineweb_quality import FineWebQuality
from gristmill.stages.filters.heuristics.gopher_quality import GopherQuality
from gristmill.stages.filters.heuristics.gopher_repetition import GopherRepetition, gram_chars
from gristmill.stages.filters.heuristics.text import exact_words, splitlines, words

FILTERS = (GopherQuality, GopherRepetition, C4Quality, FineWebQuality)
DATATROVE = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4_quality": C4QualityFilter,
    "fineweb_quality": FineWebQualityFilter,
}


@pytest.fixture(scope="module")
def prose() -> str:
    """A real, long English sample document."""
    table = sample_table()
    texts = [t for t in table.column("text").to_pylist() if t and t.count(" the ") > 20]
    return max(texts, key=len)


def _bad_rows(prose: str, *, huge: bool = True) -> pa.Table:
    garbage = bytes(range(256)).decode("latin-1") * 40
    texts = [None, "", "   \n\n\t ", garbage, "\x00" * 5000, "{" * 2000 + "\n"]
    if huge:
        texts.append((prose + "\n\n") * (10_000_000 // (len(prose) + 2) + 1))
    return pa.table(
        {"id": [f"bad-{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())}
    )


@pytest.mark.parametrize("stage_class", FILTERS, ids=lambda c: c.name)
def test_bad_input_gets_datatroves_verdict_and_never_crashes(stage_class: type[Filter], prose: str):
    stage = stage_class()
    stage.setup()
    rows = _bad_rows(prose, huge=False)
    verdict = stage.judge(rows)
    keep = verdict.keep.to_pylist()
    reasons = verdict.reasons.to_pylist()  # type: ignore[union-attr]
    assert len(keep) == rows.num_rows and None not in keep
    assert all(k == (r is None) for k, r in zip(keep, reasons, strict=True))
    # Null and empty texts are dropped, with a reason, by every filter.
    assert keep[:2] == [False, False] and reasons[0] and reasons[1]
    oracle = DatatroveStep(DATATROVE[stage_class.name]()).judge(rows)
    assert keep == oracle.keep.to_pylist()
    # The whole batch goes through the stage itself too.
    assert stage.process(rows).num_rows == sum(keep)


def test_the_ten_megabyte_document_is_judged_by_its_content(prose: str):
    big = _bad_rows(prose).slice(6, 1)
    assert len(big.column("text")[0].as_py()) >= 10_000_000
    reasons = {f.name: f().judge(big).reasons[0].as_py() for f in FILTERS}  # type: ignore[index]
    assert reasons["gopher_quality"] == "gopher_long_doc"
    assert reasons["gopher_repetition"] == "dup_para_frac"
    assert reasons["fineweb_quality"] == "char_dup_ratio"


def test_registered_names_and_yaml_parameters():
    for stage_class in FILTERS:
        assert get_stage_class(stage_class.name) is stage_class
    stage = get_stage_class("gopher_quality")({"min_doc_words": 80, "mode": "annotate"})
    assert stage.params.min_doc_words == 80  # type: ignore[attr-defined]
    assert stage.produces == ("keep_gopher_quality",)


def test_pipeline_of_all_four_counts_drops_by_datatrove_reason():
    table = sample_table().slice(0, 400)
    pipeline = Pipeline([cls() for cls in FILTERS])
    pipeline.setup()
    out, rejected = pipeline.apply(table)
    assert 0 < out.num_rows < table.num_rows
    assert sum(r.table.num_rows for r in rejected) == table.num_rows - out.num_rows
    reasons = set()
    for stage in pipeline.stages:
        reasons |= set(stage.stats.dropped)
    assert "gopher_short_doc" in reasons and "too_few_sentences" in reasons


def test_annotate_mode_keeps_every_row():
    table = sample_table().slice(0, 200)
    out = FineWebQuality(mode="annotate").process(table)
    assert out.num_rows == table.num_rows
    assert 0 < sum(out.column("keep_fineweb_quality").to_pylist()) < table.num_rows


def test_lines_follow_python_splitlines():
    import polars as pl

    texts = ["", "a", "a\n", "a\r\nb\rc\x0bd\u2028e", "\n", "a\n\nb\n\n", "x\x85y"]
    got = pl.DataFrame({"t": texts}).select(splitlines(pl.col("t")))["t"].to_list()
    assert got == [t.splitlines() for t in texts]


def test_words_follow_spacy_on_common_english_shapes():
    import polars as pl

    text = (
        "He said \"hello, world.\" Don't go! John's car costs $100 (see [1]) at 3:30, "
        "e.g. in the U.S. with Mr. Brown; a well-known COVID-19 site: http://x.org/a?b=1. "
        "It's 10-20 km... ok!!! They'll email user@mail.com."
    )
    ours = words(pl.Series([text]))[0].to_list()
    assert ours == exact_words(text)


def test_greedy_duplicates_skip_past_each_repeat():
    import polars as pl

    tokens = ["a", "b", "c", "a", "b", "c", "a", "b", "c"]
    # "abc" first at 0, then repeats at 3 and 6: two counted repeats of 3 characters.
    _, dup = gram_chars(pl.Series([tokens]), [], [3, 5])
    assert dup[:, 0].tolist() == [6, 5]


def test_yaml_pipeline_builds_the_four_filters_with_datatroves_defaults():
    from gristmill.runs.config import parse_pipeline

    config = parse_pipeline(
        """
input:
  paths: [data_samples/*.parquet]
output:
  path: output/heuristics
stages:
  - gopher_repetition: {}
  - gopher_quality: {min_doc_words: 50}
  - c4_quality: {filter_no_terminal_punct: false}
  - fineweb_quality: {}
"""
    )
    stages = config.build_stages()
    names = [stage.name for stage in stages]
    assert names == ["gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"]
    assert stages[2].params.filter_no_terminal_punct is False  # type: ignore[attr-defined]


def test_words_reused_from_the_previous_batch_are_the_words_of_the_subset():
    import polars as pl

    from gristmill.stages.filters.heuristics.text import batch_words

    texts = pl.Series("text", sample_table().column("text").to_pylist()[:300]).fill_null("")
    batch_words(texts)
    subset = texts.gather(list(range(299, 0, -7)))
    again = batch_words(subset)
    fresh = words(subset)
    assert again.to_list() == fresh.to_list()


def test_c4_keeps_only_the_good_lines_as_datatrove_does():
    from datatrove.data import Document

    table = sample_table().slice(0, 250)
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    out = C4Quality().run_batch(table)
    out_ids, out_texts = out.table.column("id").to_pylist(), out.table.column("text").to_pylist()
    ours = dict(zip(out_ids, out_texts, strict=True))
    reference = C4QualityFilter()
    edited = {}
    for doc_id, text in zip(ids, texts, strict=True):
        document = Document(text=text or "", id=doc_id)
        if reference.filter(document) is True:
            edited[doc_id] = document.text
    assert ours == edited
    original = dict(zip(ids, texts, strict=True))
    assert any(ours[i] != original[i] for i in ours), "some kept page should lose lines"
    # Rejected rows keep their text; annotate mode edits nothing.
    assert out.rejected is not None
    for doc_id, text in zip(
        out.rejected.column("id").to_pylist(), out.rejected.column("text").to_pylist(), strict=True
    ):
        assert text == original[doc_id]
    assert C4Quality(mode="annotate").process(table).column("text").equals(table.column("text"))


def test_words_reused_for_the_unchanged_texts_and_split_for_the_rest():
    import polars as pl

    from gristmill.stages.filters.heuristics.text import batch_words

    texts = pl.Series("text", sample_table().column("text").to_pylist()[:200]).fill_null("")
    batch_words(texts)
    # Some texts as before, some rewritten (as C4 rewrites them), in another order.
    rewritten = "A new text, don't split it twice."
    mixed = pl.Series("text", [*texts[150:100:-1], rewritten, *texts[:20]])
    fresh = words(mixed)
    assert batch_words(mixed).to_list() == fresh.to_list()


def test_no_symbol_is_a_letter():
    # gopher_quality counts a word holding a letter as content without the symbol test.
    import polars as pl

    from gristmill.stages.filters.heuristics.text import SYMBOLS

    assert not pl.Series(sorted(SYMBOLS)).str.contains(r"\p{L}").any()


@pytest.mark.parametrize(
    "text",
    ["", "a", "a\nb", "a\n\nb", "a\n\n\nb", "a\n\n\n\n\nb\nc\n\n", "\n\nx\n\n\ny \n\n\n\n", " \n"],
)
def test_paragraphs_and_lines_split_as_the_regular_expressions_do(text: str):
    import re

    import polars as pl

    from gristmill.stages.filters.heuristics.gopher_repetition import _pieces
    from gristmill.stages.filters.heuristics.text import PY_WHITESPACE

    frame = pl.DataFrame({"text": [text]})
    stripped = frame.select(pl.col("text").str.strip_chars(PY_WHITESPACE))
    paragraphs = _pieces(stripped, "\n\n", "\n")["text"].to_list()
    lines = _pieces(frame, "\n")["text"].to_list()
    assert paragraphs == re.findall(r"[^\n]+(?:\n[^\n]+)*", text.strip(PY_WHITESPACE))
    assert lines == re.findall(r"[^\n]+", text)


def test_fineweb_list_rule_by_the_chunk_bound_agrees_with_counting_words():
    # Both have more line breaks per whitespace chunk than the rule allows (3 / 8), so both
    # need their words: "!" and "." are words of their own, 8 in the first, 12 in the other.
    listing = "\n".join(f"Supercalifragilisticexpialidociousness{i}!" for i in range(4))
    prose = "\n".join(f"Supercalifragilisticexpialidocious wonderful{i}." for i in range(4))
    table = pa.table({"id": ["1", "2"], "text": [listing, prose]})
    for margin in (0.0, 0.2):
        result = FineWebQuality(exact_margin=margin).run_batch(table)
        assert result.reasons is not None and result.reasons.to_pylist() == ["list_ratio"]
        assert result.table.column("id").to_pylist() == ["2"]


@pytest.mark.parametrize("count", [-1, 0, 1, 2, 3, 4, 6])
def test_c4_word_count_test_is_python_split(count: int):
    import polars as pl

    from gristmill.stages.filters.heuristics.c4_quality import _at_least_words

    lines = ["", "a", "a b", "a  b\u3000\u3000c", "a \t b  c\xa0\xa0d", "a b c d e", "x\u2003y z"]
    got = pl.DataFrame({"line": lines}).select(_at_least_words(pl.col("line"), count))["line"]
    assert got.to_list() == [len(line.split()) >= count for line in lines]


def test_c4_line_rules_only_on_the_sources_named():
    """Named sources lose their bad lines as in C4; the others keep every line, byte for byte,
    and still face the page rules (here: a curly bracket, too few sentences)."""
    verse = (
        "MENENIUS:\nWhat work's, my countrymen, in hand? where go you\n"
        "With bats and clubs? The matter? speak, I pray you.\n\n"
        "First Citizen:\nOur business is not unknown to the senate; they have had\n"
        "inkling this fortnight what we intend to do, which now we'll show 'em in deeds.\n"
        "They say poor suitors have strong breaths: they shall know we have strong arms too.\n"
        "Why, masters, my good friends, mine honest neighbours, will you undo yourselves?\n"
        "We cannot, sir, we are undone already. I tell you, friends, most charitable care.\n"
        "Have the patricians of you. For your wants, your suffering in this dearth.\n"
    )
    page = "Home\nMenu\n" + verse
    table = pa.table(
        {
            "id": ["web", "book", "none", "curly", "short"],
            "text": [page, verse, verse, verse + "x = {1}\n", "Too short.\nReally."],
            "source": ["c4", "shakespeare", None, "shakespeare", "shakespeare"],
        }
    )
    stage = C4Quality(filter_no_terminal_punct=False, line_rules_sources=["c4"])
    assert stage.requires == ("id", "text", "source")
    out = stage.run_batch(table)
    kept = dict(zip(out.table["id"].to_pylist(), out.table["text"].to_pylist(), strict=True))
    assert kept["book"] == verse and kept["none"] == verse
    assert (
        kept["web"]
        == C4Quality(filter_no_terminal_punct=False)
        .process(table.slice(0, 1))
        .column("text")[0]
        .as_py()
    )
    assert "MENENIUS:" not in kept["web"] and not kept["web"].startswith("Home")
    assert dict(zip(out.rejected["id"].to_pylist(), out.reasons.to_pylist(), strict=True)) == {
        "curly": "curly_bracket",
        "short": "too_few_sentences",
    }
    assert stage.stats.counters["documents_without_line_rules"] == 4
    assert C4Quality().requires == ("id", "text")


def test_python_whitespace_is_every_code_point_str_isspace_accepts() -> None:
    """The import-time scan stops at the BMP: nothing above it is whitespace to Python."""
    import sys

    from gristmill.stages.dedup.normalise import WHITESPACE
    from gristmill.stages.filters.heuristics.text import PY_WHITESPACE

    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert PY_WHITESPACE == WHITESPACE == every
