"""Excerpt expansion: turn the instantiator's compact ``<excerpt>`` markers into document text.

The FineInstructions instantiator answers mostly by quoting its document, and to save tokens
it writes a long quote as ``<excerpt>first words<...>last words</excerpt>`` (or a short one
whole, ``<excerpt>quoted words</excerpt>``). Expansion replaces each marker with the one
document span that starts with the first words and ends with the last ones. Nothing is ever
synthesised: a marker that matches no span, or more than one, rejects the whole pair, because
a guessed span would put words in the answer that the model did not choose.

Matching is whitespace-tolerant (a run of whitespace in the marker matches any run of
whitespace in the document, since models re-flow line breaks) and otherwise exact, case
included. The expanded span is the document's own characters. For a marker with ``<...>``,
the candidate spans are, for each place the first words occur, the shortest span that ends
with the last words after them; the marker resolves when exactly one such span exists.

The excerpt ratio is the share of the answer's characters, after expansion and with outer
whitespace stripped, that come from expanded markers (FineInstructions keeps pairs whose
ratio is at least 0.80; the paper does not give the unit, characters are our choice).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from enum import StrEnum

OPEN = "<excerpt>"
CLOSE = "</excerpt>"
ELLIPSIS = "<...>"
_MARKER = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.S)


class ExcerptStatus(StrEnum):
    """Outcome of expanding every marker of one text."""

    OK = "ok"
    #: A marker whose words occur nowhere in the document (or not in that order).
    MISSING = "excerpt_missing"
    #: A marker that more than one document span fits.
    AMBIGUOUS = "excerpt_ambiguous"
    #: Unbalanced or nested tags, an empty marker, or more than one ``<...>`` in one marker.
    MALFORMED = "excerpt_malformed"


@dataclass(frozen=True, slots=True)
class Expansion:
    """A text with its markers expanded, and how much of it is document text."""

    status: ExcerptStatus
    text: str = ""
    #: Characters of ``text`` that come from expanded markers.
    excerpt_chars: int = 0
    markers: int = 0

    @property
    def ok(self) -> bool:
        return self.status is ExcerptStatus.OK

    @property
    def ratio(self) -> float:
        """Excerpted share of the text's characters (0.0 for an empty text)."""
        return self.excerpt_chars / len(self.text) if self.text else 0.0


def _pattern(words: str) -> re.Pattern[str] | None:
    """The words as a pattern where any whitespace run matches any whitespace run."""
    parts = words.split()
    if not parts:
        return None
    return re.compile(r"\s+".join(re.escape(p) for p in parts))


def _starts(
    pattern: re.Pattern[str], document: str, limit: int | None = None
) -> list[tuple[int, int]]:
    """(start, end) where ``pattern`` matches, overlapping occurrences included; at most
    ``limit`` of them."""
    found: list[tuple[int, int]] = []
    position = 0
    while limit is None or len(found) < limit:
        match = pattern.search(document, position)
        if match is None:
            break
        found.append((match.start(), match.end()))
        position = match.start() + 1
    return found


def resolve(marker: str, document: str) -> tuple[ExcerptStatus, str]:
    """The document span one marker's content (what is between the tags) stands for."""
    if ELLIPSIS in marker:
        head, _, tail = marker.partition(ELLIPSIS)
        if ELLIPSIS in tail:
            return ExcerptStatus.MALFORMED, ""
        first, last = _pattern(head), _pattern(tail)
        if first is None or last is None:
            return ExcerptStatus.MALFORMED, ""
        # Every place the last words occur, found once: a search per first-words place
        # would be quadratic on a long document with common first words.
        ends = _starts(last, document)
        if not ends:
            return ExcerptStatus.MISSING, ""
        end_starts = [start for start, _ in ends]
        spans: set[tuple[int, int]] = set()
        for start, end in _starts(first, document):
            after = bisect.bisect_left(end_starts, end)
            if after < len(ends):
                spans.add((start, ends[after][1]))
                if len(spans) > 1:
                    return ExcerptStatus.AMBIGUOUS, ""
    else:
        whole = _pattern(marker)
        if whole is None:
            return ExcerptStatus.MALFORMED, ""
        spans = set(_starts(whole, document, limit=2))
    if not spans:
        return ExcerptStatus.MISSING, ""
    if len(spans) > 1:
        return ExcerptStatus.AMBIGUOUS, ""
    ((start, end),) = spans
    return ExcerptStatus.OK, document[start:end]


def expand_excerpts(text: str, document: str) -> Expansion:
    """``text`` with every ``<excerpt>`` marker replaced by its unique document span.

    The first marker that cannot be resolved decides the status; the text is then empty.
    Tags left over once the well-formed markers are taken out (an opening tag without its
    closing one, a stray closing tag, a nested marker) make the text malformed.
    """
    pieces: list[str] = []
    excerpt_chars = 0
    markers = 0
    position = 0
    for match in _MARKER.finditer(text):
        between = text[position : match.start()]
        content = match.group(1)
        if OPEN in between or CLOSE in between or OPEN in content:
            return Expansion(ExcerptStatus.MALFORMED)
        status, span = resolve(content, document)
        if status is not ExcerptStatus.OK:
            return Expansion(status)
        pieces.extend((between, span))
        excerpt_chars += len(span)
        markers += 1
        position = match.end()
    rest = text[position:]
    if OPEN in rest or CLOSE in rest:
        return Expansion(ExcerptStatus.MALFORMED)
    pieces.append(rest)
    # Outer whitespace is not part of the answer. Spans start and end on a word (the
    # patterns do), so stripping never takes characters from an excerpt.
    joined = "".join(pieces).strip()
    return Expansion(ExcerptStatus.OK, joined, excerpt_chars, markers)
