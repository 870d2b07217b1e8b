"""Excerpt expansion on a real book chapter: found, ambiguous, missing and malformed markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.instructions.excerpts import ExcerptStatus, expand_excerpts, resolve


@pytest.fixture(scope="module")
def chapter(data_dir: Path) -> str:
    """Chapter I of Alice in Wonderland, with the book's hard line wraps."""
    book = (data_dir / "sources" / "books_gutenberg_11_alice_in_wonderland.txt").read_text(
        encoding="utf-8"
    )
    start = book.index("CHAPTER I. Down the Rabbit-Hole")
    return book[start : book.index("CHAPTER II.", start)]


def test_a_marker_with_an_ellipsis_expands_to_the_document_span(chapter: str):
    answer = "She was bored: <excerpt>Alice was beginning to<...>nothing to do:</excerpt>"
    out = expand_excerpts(answer, chapter)
    assert out.ok and out.markers == 1
    span = out.text.removeprefix("She was bored: ")
    # The document's own characters, line break included, never the marker's words.
    assert span == (
        "Alice was beginning to get very tired of sitting by her sister on the\n"
        "bank, and of having nothing to do:"
    )
    assert span in chapter
    assert out.excerpt_chars == len(span)
    assert out.ratio == pytest.approx(len(span) / len(out.text))


def test_whitespace_in_a_marker_matches_any_whitespace(chapter: str):
    # The book wraps "on the\nbank"; the model writes it on one line, with double spaces.
    out = expand_excerpts("<excerpt>her sister on the  bank, and of having</excerpt>", chapter)
    assert out.ok and out.text == "her sister on the\nbank, and of having"
    assert out.ratio == 1.0


def test_a_whole_span_marker_and_several_markers(chapter: str):
    text = (
        "<excerpt>a White Rabbit with pink eyes</excerpt> ran by, with "
        "<excerpt>either a waistcoat-pocket, or a watch</excerpt>."
    )
    out = expand_excerpts(text, chapter)
    assert out.ok and out.markers == 2
    assert out.text.startswith("a White Rabbit with pink eyes ran by")
    quoted = len("a White Rabbit with pink eyes") + len("either a waistcoat-pocket, or a watch")
    assert out.excerpt_chars == quoted
    assert out.ratio == pytest.approx(quoted / len(out.text))
    assert 0 < out.ratio < 1


def test_text_without_markers_has_ratio_zero(chapter: str):
    out = expand_excerpts("  Alice fell down a rabbit hole.  ", chapter)
    assert out.ok and out.text == "Alice fell down a rabbit hole." and out.ratio == 0.0


def test_first_words_found_twice_before_the_last_words_are_ambiguous(chapter: str):
    assert resolve("Down, down, down.<...>Alice", chapter)[0] is ExcerptStatus.AMBIGUOUS
    # "Alice" starts many spans that end at "Rabbit-hole": the start is not determined.
    assert chapter.count("Alice") > 2
    status, span = resolve("Alice<...>rabbit-hole", chapter)
    assert status is ExcerptStatus.AMBIGUOUS and span == ""
    out = expand_excerpts("Answer: <excerpt>Alice<...>rabbit-hole</excerpt>", chapter)
    assert out.status is ExcerptStatus.AMBIGUOUS and out.text == ""


def test_a_whole_span_found_twice_is_ambiguous(chapter: str):
    assert chapter.count("said Alice") >= 2
    assert resolve("said Alice", chapter)[0] is ExcerptStatus.AMBIGUOUS


def test_unique_first_words_resolve_to_the_nearest_last_words(chapter: str):
    # "Down, down, down." twice in the chapter, but "Would the fall" follows it once.
    status, span = resolve("Down, down, down. Would the fall<...>Alice", chapter)
    assert status is ExcerptStatus.OK
    assert span.startswith("Down, down, down. Would the fall") and span.endswith("Alice")
    assert span.count("Alice") == 1  # the shortest span: the first "Alice" after the start


@pytest.mark.parametrize(
    "marker",
    [
        "the Cheshire Cat grinned",  # not in chapter I
        "Alice was beginning<...>the Queen of Hearts",  # last words never occur
        "the Queen of Hearts<...>Alice",  # first words never occur
        "nothing to do:<...>Alice was beginning to get",  # last words only before the first
        "ALICE WAS BEGINNING",  # matching is case-sensitive
    ],
)
def test_missing_spans(chapter: str, marker: str):
    assert resolve(marker, chapter) == (ExcerptStatus.MISSING, "")
    assert expand_excerpts(f"x <excerpt>{marker}</excerpt>", chapter).status is (
        ExcerptStatus.MISSING
    )


@pytest.mark.parametrize(
    "text",
    [
        "<excerpt>Alice was beginning",  # never closed
        "Alice was beginning</excerpt>",  # never opened
        "<excerpt>a <excerpt>White Rabbit</excerpt> b</excerpt>",  # nested
        "<excerpt>  </excerpt>",  # empty
        "<excerpt><...>nothing to do</excerpt>",  # no first words
        "<excerpt>Alice<...>sister<...>bank</excerpt>",  # two ellipses
    ],
)
def test_malformed_markers(chapter: str, text: str):
    out = expand_excerpts(text, chapter)
    assert out.status is ExcerptStatus.MALFORMED and out.text == "" and not out.ok


def test_one_bad_marker_rejects_the_whole_text(chapter: str):
    text = "<excerpt>a White Rabbit with pink eyes</excerpt> and <excerpt>a dragon</excerpt>"
    assert expand_excerpts(text, chapter).status is ExcerptStatus.MISSING


def test_common_first_words_on_a_long_document_stay_fast(chapter: str):
    # A word on every line and last words that never follow: one pass, not one per line.
    document = "the line\n" * 200_000 + "the end"
    assert resolve("the<...>nowhere", document)[0] is ExcerptStatus.MISSING
    assert resolve("the<...>end", document)[0] is ExcerptStatus.AMBIGUOUS
    assert resolve("the end", document) == (ExcerptStatus.OK, "the end")
