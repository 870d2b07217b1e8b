"""Sentence and paragraph spans by small rules, for scoring text unit by unit (Dolma's units).

Dolma splits with BlingFire; this rule is close enough for span scoring and needs no model:
a sentence ends at Latin end punctuation followed by whitespace, at a CJK full stop, or at a
line break.
Offsets are Python string indices (code points), trimmed of surrounding whitespace, so
``text[start:end]`` is the sentence.
"""

from __future__ import annotations

import re

# Latin end punctuation ends a sentence only before whitespace ("3.5", "e.g.x" stay whole);
# CJK full stops end one anywhere, since CJK text puts no space between sentences.
_BOUNDARY = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*|\s*\n\s*")
_LEADING = re.compile(r"\S")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every non-blank sentence of ``text``, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for boundary in _BOUNDARY.finditer(text):
        _add(text, start, boundary.start(), spans)
        start = boundary.end()
    _add(text, start, len(text), spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    first = _LEADING.search(text, start, end)
    if first is None:
        return
    start = first.start()
    while end > start and text[end - 1].isspace():
        end -= 1
    spans.append((start, end))


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every non-blank line of ``text``: Dolma's and datatrove's paragraph
    unit (both split on newlines, since extracted web text has one paragraph per line)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for boundary in _LINE_BREAK.finditer(text):
        _add(text, start, boundary.start(), spans)
        start = boundary.end()
    _add(text, start, len(text), spans)
    return spans


_LINE_BREAK = re.compile(r"\n")


def unit_spans(text: str, unit: str) -> list[tuple[int, int]]:
    """Spans of the scoring ``unit`` (``paragraph`` or ``sentence``) of ``text``."""
    if unit == "paragraph":
        return paragraph_spans(text)
    if unit == "sentence":
        return sentence_spans(text)
    raise ValueError(f"no span unit {unit!r}; use paragraph or sentence")
