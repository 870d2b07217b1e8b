"""A model-free ProX programmer: transparent rules that write chunk-level programs.

Rules spot the boilerplate a ProX chunk model is trained to remove (navigation, share
buttons, cookie and newsletter notices, copyright footers, page headers, runs of menu-like
short lines, trailing "Read more" links) and express every edit as a program line. Writing
programs instead of editing text directly keeps refinement auditable with the same tools
as model output, and lets it run on a CPU.

Programs written here mean the same thing to the compat and the strict executor: removals
stay inside the chunk they are written for, and a ``normalize`` is only emitted when every
occurrence of its string in the surviving lines is the trailing phrase the rule found, so
the compat executor's document-wide replacement cannot touch anything else.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gristmill.refiners.prox.executor import LineSpan, whole_document
from gristmill.refiners.prox.program import NoOp, Normalize, RemoveLines, is_safe_literal


@dataclass(frozen=True, slots=True)
class RuleProgrammerConfig:
    """Thresholds of the line rules; defaults lean towards keeping text."""

    short_line_max_words: int = 4
    short_run_min_lines: int = 4
    nav_min_items: int = 3
    nav_max_item_words: int = 4
    nav_max_words: int = 24
    share_max_words: int = 16
    notice_max_words: int = 40
    footer_max_words: int = 25
    repeat_min_count: int = 3
    repeat_max_words: int = 12
    trailing_phrases: bool = True


@dataclass(frozen=True, slots=True)
class RuleEdit:
    """One program line, the rule(s) that wrote it (``+``-joined) and the lines it touches."""

    rule: str
    call: RemoveLines | Normalize | NoOp
    lines: tuple[int, ...]

    @property
    def program_line(self) -> str:
        return self.call.render()


_I = re.IGNORECASE
_SOCIAL = re.compile(
    r"\b(facebook|twitter|tweet|pinterest|pin it|linkedin|instagram|youtube|whatsapp|"
    r"reddit|tumblr|telegram|rss)\b",
    _I,
)
_SHARE_LINE = re.compile(
    r"^\W*(share( this( post| article| page)?| on \w+)?|\d+\s+shares?|like this"
    r"|follow us( on \w+)?)\W*$",
    _I,
)
_COPYRIGHT = re.compile(
    r"^\W*(copyright\s*(©|\(c\)|(19|20)\d\d)|©|\(c\)\s*(19|20)\d\d)|all rights reserved"
    r"|^\W*powered by\b",
    _I,
)
_COOKIE = re.compile(r"\bcookies?\b", _I)
_COOKIE_CONTEXT = re.compile(
    r"\b(we use|uses|use of|accept|consent|policy|settings|browsing|this (web)?site)\b", _I
)
_SUBSCRIPTION = re.compile(
    r"\bsubscribe\b.*\b(newsletter|updates|rss|feed|channel|mailing list|e-?mail)\b"
    r"|\bnewsletter\b.*\b(sign ?up|subscribe|join|e-?mail)\b"
    r"|\b(sign ?up|subscribe)\b.*\bnewsletter\b"
    r"|enter your e-?mail|join our mailing list|\bsubscribe (now|today|here)\b"
    r"|click here to subscribe",
    _I,
)
_NAV_SEPARATORS = re.compile(r"\s*(?:\||»|›|•|·|::)\s*|\s+(?:/|>)\s+")
_NAV_LINE = re.compile(r"^\W*(skip to\b|(main |toggle )?(menu|navigation)\b|back to top\b)", _I)
_WIDGET = re.compile(r"^\W*(archives?|categories)\s+select (month|category)\b", _I)
_NAV_WORD = re.compile(
    r"^(home|search|log ?in|sign ?in|register|sitemap|site map|menu|contact|about)\b", _I
)
_PAGINATION = re.compile(
    r"^\W*(«|‹|<)?\s*(prev(ious)?|next|older posts|newer posts)\b|^\W*«\s*\w{3}\W*$", _I
)
_TAGS = re.compile(r"^\W*(tags?|tagged|filed under)\s*:|^posted in\b.*\|\s*tagged\b", _I)
_PAGE_NUMBER = re.compile(r"^\s*(page\s+\d+(\s+of\s+\d+)?|\d+\s*/\s*\d+|-\s?\d+\s?-)\s*$", _I)
_URL_LINE = re.compile(r"^\s*(https?://|www\.)\S+(\s+\d+\s*/\s*\d+)?\s*$", _I)
_REFERENCE_MARKERS = re.compile(r"^\s*(\[\d+\])+\s*$")
_ENDS_SENTENCE = re.compile(r"""[.!?:;,"'”’]\s*$""")
_DIGITS = re.compile(r"\d+")
# Dates, years, "3/19" and "page 3": the numbers page headers and footers carry.
_HEADER_NUMBER = re.compile(
    r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b(19|20)\d\d\b|\b\d+\s*/\s*\d+\b|\bpage\s+\d+", _I
)
_ALPHA_WORD = re.compile(r"[^\W\d_]{2,}")
_TRAILING_PHRASE = re.compile(
    r"(?<=\S)(\s+(?:click here to (?:subscribe|buy|read more|download)|click here|read more"
    r"|continue reading|subscribe now)\b[\s!.»›>…:-]*)$",
    _I,
)
_WHOLE_PHRASE = re.compile(
    r"^\W*(click here|read more|continue reading|subscribe now|load more|show more)\W*$", _I
)

# Words without one of which the unanchored patterns above cannot match a line (lowercase):
# a substring test costs a fraction of a microsecond where each pattern costs 4-20 on a line
# of prose, and most lines hold none of these words.
_COPYRIGHT_WORDS = ("copyright", "(c)", "all rights reserved", "powered by")
_NOTICE_WORDS = ("cookie", "subscribe", "newsletter", "enter your e", "join our mailing list")
_SOCIAL_WORDS = (
    "facebook", "twitter", "tweet", "pinterest", "pin it", "linkedin", "instagram", "youtube",
    "whatsapp", "reddit", "tumblr", "telegram", "rss",
)  # fmt: skip
_TRAILING_WORDS = ("click here", "read more", "continue reading", "subscribe now")
#: The characters of ``_NAV_SEPARATORS``: a line without any is a single item, never a menu.
_NAV_SEPARATOR_CHARS = frozenset("|»›•·:/>")


def _ascii_lowered(line: str) -> str | None:
    """The line lowercased for ``_may_mention``, or None where a substring test cannot decide:
    under ``re.IGNORECASE`` Unicode case folding lets "ſ" match "s", which a lowercase
    substring test would miss, so lines with non-ASCII characters always go to the patterns."""
    return line.lower() if line.isascii() else None


def _may_mention(lowered: str | None, words: tuple[str, ...]) -> bool:
    """Whether a line (``_ascii_lowered``) may match a case-insensitive pattern that needs one
    of ``words``; never False where the pattern could match, so no label changes."""
    return lowered is None or any(word in lowered for word in words)


class RuleProgrammer:
    """Writes one program per chunk; :meth:`edits` explains each line of those programs."""

    def __init__(self, config: RuleProgrammerConfig | None = None) -> None:
        self.config = config or RuleProgrammerConfig()

    # ------------------------------------------------------------------ line rules

    def _line_rule(self, line: str, words: int) -> str | None:
        """The first rule a single line triggers, judged on the line alone."""
        cfg = self.config
        # Word-count gates and word prefilters go first: most lines are long prose, and these
        # patterns cost microseconds a line where an integer comparison costs nothing.
        lowered = _ascii_lowered(line)
        if (
            words <= cfg.footer_max_words
            and _may_mention(lowered, _COPYRIGHT_WORDS)
            and _COPYRIGHT.search(line)
        ):
            return "copyright"
        if words <= cfg.notice_max_words and _may_mention(lowered, _NOTICE_WORDS):
            # A sentence that merely ends in a call to action keeps its line; the trailing
            # phrase is cut by normalize instead.
            trailing = (
                _TRAILING_PHRASE.search(line) if _may_mention(lowered, _TRAILING_WORDS) else None
            )
            notice = line[: trailing.start()] if trailing else line
            if _COOKIE.search(notice) and _COOKIE_CONTEXT.search(notice):
                return "cookie_notice"
            if _SUBSCRIPTION.search(notice):
                return "subscription"
        if words <= cfg.share_max_words and (
            (
                _may_mention(lowered, _SOCIAL_WORDS)
                and len({m.lower() for m in _SOCIAL.findall(line)}) >= 2
            )
            or _SHARE_LINE.search(line)
        ):
            return "share_buttons"
        if _TAGS.search(line):
            return "tags"
        if _WIDGET.search(line):
            return "navigation"
        if words <= cfg.nav_max_words and (_NAV_LINE.search(line) or self._is_nav_bar(line)):
            return "navigation"
        if (
            words <= 3
            and self._is_label(line)
            and (_NAV_WORD.search(line) or _PAGINATION.search(line))
        ):
            return "navigation"
        if _PAGE_NUMBER.match(line) or _URL_LINE.match(line):
            return "page_marker"
        if _REFERENCE_MARKERS.match(line):
            return "reference_marker"
        if _WHOLE_PHRASE.match(line):
            return "boilerplate_phrase"
        return None

    def _is_nav_bar(self, line: str) -> bool:
        """Several short items between separators, none of them a sentence."""
        cfg = self.config
        if cfg.nav_min_items > 1 and _NAV_SEPARATOR_CHARS.isdisjoint(line):
            return False
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|") and stripped.count("|") > 2:
            return False  # a table row, not a menu
        items = [s for s in _NAV_SEPARATORS.split(stripped) if s.strip()]
        return len(items) >= cfg.nav_min_items and all(
            len(s.split()) <= cfg.nav_max_item_words and not s.rstrip().endswith((".", "?", "!"))
            for s in items
        )

    @staticmethod
    def _is_label(line: str) -> bool:
        """Menu items and link texts: capitalised, flush left, not ending a sentence.

        Lowercase starts, indentation and final punctuation mark verse, wrapped prose and
        captions, which come in runs of short lines too but are content.
        """
        if line[:2].isspace() or _ENDS_SENTENCE.search(line):
            return False
        first = next((c for c in line if c.isalnum()), "")
        return first.isupper() or first.isdigit()

    def _is_short(self, line: str, words: int) -> bool:
        return 0 < words <= self.config.short_line_max_words and self._is_label(line)

    def classify(self, text: str) -> list[str | None]:
        """The rule that removes each line of ``text``, or ``None`` for lines kept.

        Document-wide rules (repeated page headers, runs of short lines) need every line,
        which is why classification is per document even though programs are per chunk.
        """
        cfg = self.config
        lines = text.split("\n")
        words = [len(line.split()) for line in lines]
        labels = [
            self._line_rule(line, w) if w else None for line, w in zip(lines, words, strict=True)
        ]

        # Page headers and footers: short lines with a date or page number that recur,
        # numbers aside. Two words besides the numbers keep numbered headings
        # ("Section. 2.") out; requiring dates or page numbers keeps speaker labels out.
        keys = [_DIGITS.sub("0", line.strip()) for line in lines]
        counts = Counter(
            k
            for k, line, w in zip(keys, lines, words, strict=True)
            if 0 < w <= cfg.repeat_max_words
            and _HEADER_NUMBER.search(line)
            and len(_ALPHA_WORD.findall(k)) >= 2
        )
        for i, key in enumerate(keys):
            if labels[i] is None and counts.get(key, 0) >= cfg.repeat_min_count:
                labels[i] = "repeated_header"

        # Menus and link lists: runs of short unpunctuated lines. Lines removed by another
        # rule and blank lines continue a run; only the short lines are counted.
        i = 0
        while i < len(lines):
            j, members = i, 0
            while j < len(lines) and (
                words[j] == 0 or labels[j] is not None or self._is_short(lines[j], words[j])
            ):
                members += words[j] > 0
                j += 1
            if members >= cfg.short_run_min_lines:
                for k in range(i, j):
                    if labels[k] is None and words[k] > 0:
                        labels[k] = "short_line_run"
            i = max(j, i + 1)

        # A blank line between two lines removed by the same rule goes with them, so one
        # remove_lines call covers the block.
        i = 0
        while i < len(lines):
            if words[i] == 0:
                j = i
                while j < len(lines) and words[j] == 0:
                    j += 1
                if i > 0 and j < len(lines) and labels[i - 1] and labels[i - 1] == labels[j]:
                    for k in range(i, j):
                        labels[k] = labels[j]
                i = j
            else:
                i += 1
        return labels

    # ------------------------------------------------------------------ phrases

    def _trailing_literals(self, lines: Sequence[str], labels: Sequence[str | None]) -> set[str]:
        """Trailing link phrases that can be deleted by ``normalize`` without side effects.

        A literal is accepted only if, in every surviving line that contains it, it occurs
        once and ends the line, and no other accepted literal contains it or is contained in
        it. Then the order of the replacements and their scope (whole document in compat,
        one chunk in strict) cannot change the result.
        """
        kept = [line for line, label in zip(lines, labels, strict=True) if label is None]
        found = set()
        for line in kept:
            if not _may_mention(_ascii_lowered(line), _TRAILING_WORDS):
                continue
            m = _TRAILING_PHRASE.search(line)
            # "Read more" as a link is capitalised; "... to read more." is a sentence.
            if m and m.group(1).lstrip()[:1].isupper():
                found.add(m.group(1))
        safe = {lit for lit in found if lit.strip() and is_safe_literal(lit)}
        unrelated = {
            lit for lit in safe if not any(lit != o and (lit in o or o in lit) for o in safe)
        }
        return {
            lit
            for lit in unrelated
            if all(line.endswith(lit) and line.count(lit) == 1 for line in kept if lit in line)
        }

    # ------------------------------------------------------------------ programs

    def edits(self, text: str, chunks: Sequence[LineSpan] | None = None) -> list[list[RuleEdit]]:
        """Per chunk, the calls of its program and why each was written.

        ``chunks`` defaults to one chunk covering the whole document, which is all a
        CPU-only run needs; pass the chunks of :func:`~.prompts.build_chunk_prompts` to
        produce programs shaped like a model's.
        """
        spans: Sequence[LineSpan] = chunks if chunks is not None else [whole_document(text)]
        lines = text.split("\n")
        labels = self.classify(text)
        literals = (
            sorted(self._trailing_literals(lines, labels)) if self.config.trailing_phrases else []
        )
        out: list[list[RuleEdit]] = []
        for span in spans:
            first, last = max(span.first_line, 0), min(span.last_line, len(lines) - 1)
            found: list[tuple[int, RuleEdit]] = []
            i = first
            while i <= last:
                if labels[i] is None:
                    i += 1
                    continue
                j = i
                while j + 1 <= last and labels[j + 1] is not None:
                    j += 1
                # One call per block of removed lines, naming every rule that fired in it.
                rules = "+".join(dict.fromkeys(str(labels[k]) for k in range(i, j + 1)))
                found.append((i, RuleEdit(rules, RemoveLines(i, j), tuple(range(i, j + 1)))))
                i = j + 1
            for lit in literals:
                where = tuple(
                    k for k in range(first, last + 1) if labels[k] is None and lit in lines[k]
                )
                if where:
                    found.append((where[0], RuleEdit("trailing_phrase", Normalize(lit, ""), where)))
            found.sort(key=lambda item: item[0])
            out.append([edit for _, edit in found] or [RuleEdit("none", NoOp("keep_chunk"), ())])
        return out

    def programs(self, text: str, chunks: Sequence[LineSpan] | None = None) -> list[str]:
        """One program per chunk, in the language the ProX chunk model writes."""
        return ["\n".join(e.program_line for e in chunk) for chunk in self.edits(text, chunks)]

    def program(self, text: str) -> str:
        """The program for ``text`` taken as a single chunk."""
        return self.programs(text)[0]
