"""Apply ProX programs to documents, in ``compat`` or ``strict`` mode.

``compat`` reproduces the decisions of the executor released with the paper (GAIR-NLP/ProX,
``utils/chunk_utils.py``; Zhou et al., 2024), so that outputs of the released refining models
are turned into the same documents they were in the paper; its only deviation is that a
document without words is dropped instead of crashing. ``strict`` applies only clean
whitelisted calls, confined to the lines of the chunk whose program contains them, with the
same keep/drop thresholds.

Neither mode runs model output as code: the parsers in :mod:`.program` read it as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from gristmill.refiners.prox.program import (
    DocDecision,
    Level,
    Normalize,
    RemoveAll,
    RemoveLines,
    parse_compat_line,
    parse_strict_line,
)

Mode = Literal["compat", "strict"]


class Branch(StrEnum):
    """Which decision produced the result; recorded per document so parity diffs are easy."""

    KEEP_DOC = "keep_doc"  # doc level: no drop verdict
    DROP_DOC = "drop_doc"  # doc level: the program asked to drop
    DROP_EMPTY = "drop_empty"  # chunk level: the input has no words (upstream crashes)
    DROP_RATIO = "drop_ratio"  # at most 5% of the words survive and the program is valid
    DROP_SHORT = "drop_short"  # at most 10 words survive, whatever the error count
    APPLIED = "applied"  # the program was applied (the text may be unchanged)
    DISCARDED = "discarded"  # too many errors: the program is ignored, the input kept


DROPPED = frozenset({Branch.DROP_DOC, Branch.DROP_EMPTY, Branch.DROP_RATIO, Branch.DROP_SHORT})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Upstream's chunk-level decision parameters; the defaults are the released values."""

    keep_ratio: float = 0.0  # T1
    drop_ratio: float = 0.95  # T2: drop when surviving words / input words <= 1 - T2
    max_errors: int = 2  # E: a program with this many errors is discarded
    min_words: int = 10  # documents with at most this many surviving words are dropped


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class RefineResult:
    """The outcome of one program on one document.

    ``text`` is ``""`` when the document is dropped. ``calls`` counts lines that parsed to a
    known call, for the calls-per-program statistic.
    """

    text: str
    errors: int
    branch: Branch
    edited: bool = False
    calls: int = 0

    @property
    def dropped(self) -> bool:
        return self.branch in DROPPED


class LineSpan(Protocol):
    """Anything with inclusive global line bounds, e.g. a :class:`~.prompts.Chunk`."""

    @property
    def first_line(self) -> int: ...

    @property
    def last_line(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Span:
    """A plain :class:`LineSpan`, for callers that chunk without a tokenizer."""

    first_line: int
    last_line: int


def whole_document(text: str) -> Span:
    """The span of every line of ``text``: one chunk holding the whole document."""
    return Span(0, text.count("\n"))


# --------------------------------------------------------------------------- decisions


def _decide(text: str, processed: str, errors: int, calls: int, th: Thresholds) -> RefineResult:
    """Upstream's keep/drop ladder, in its order."""
    words_in = len(text.split())
    if words_in == 0:
        return RefineResult("", errors, Branch.DROP_EMPTY, calls=calls)
    words_out = len(processed.split())
    valid = errors < th.max_errors
    if words_out / words_in <= 1 - th.drop_ratio and valid:
        return RefineResult("", errors, Branch.DROP_RATIO, calls=calls)
    if words_out <= th.min_words:
        return RefineResult("", errors, Branch.DROP_SHORT, calls=calls)
    if words_out / words_in >= th.keep_ratio and valid:
        return RefineResult(processed, errors, Branch.APPLIED, processed != text, calls)
    return RefineResult(text, errors, Branch.DISCARDED, calls=calls)


def _removed_mask(n: int, ranges: Sequence[tuple[int, int]]) -> bytearray:
    """Mark lines covered by inclusive ranges; clipping keeps huge ranges cheap."""
    mask = bytearray(n)
    for start, end in ranges:
        lo, hi = max(start, 0), min(end, n - 1)
        if lo <= hi:
            mask[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    return mask


def _out_of_range_errors(n: int, ranges: Sequence[tuple[int, int]]) -> int:
    """Upstream counts one error per merged interval reaching past the last line."""
    errors = 0
    merged: list[list[int]] = []
    for start, end in sorted(ranges, key=lambda r: r[0]):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        if start >= n or end >= n:
            errors += 1
    return errors


def _join_kept(lines: Sequence[str], mask: bytearray) -> str:
    return "\n".join(line for line, gone in zip(lines, mask, strict=True) if not gone)


# --------------------------------------------------------------------------- compat


def _run_compat(text: str, program: str, th: Thresholds) -> RefineResult:
    cur = text
    ranges: list[tuple[int, int]] = []
    remove_all = False
    errors = calls = 0
    for op in program.strip(" ").split("\n"):
        parsed = parse_compat_line(op)
        errors += parsed.errors
        call = parsed.call
        if call is None:
            continue
        calls += 1
        if isinstance(call, RemoveLines):
            ranges.append((call.start, call.end))
        elif isinstance(call, RemoveAll):
            remove_all = True
        elif isinstance(call, Normalize):
            if call.target is None:
                cur = cur.replace(call.source, "")
            elif call.source not in ("", " "):
                cur = cur.replace(call.source, call.target)
    lines = cur.split("\n")
    n = len(lines)
    mask = bytearray(b"\x01" * n) if remove_all else _removed_mask(n, ranges)
    errors += _out_of_range_errors(n, ranges)
    return _decide(text, _join_kept(lines, mask), errors, calls, th)


# --------------------------------------------------------------------------- strict


def _run_strict(
    text: str, spans: Sequence[LineSpan], programs: Sequence[str], th: Thresholds
) -> RefineResult:
    lines = text.split("\n")
    n = len(lines)
    mask = bytearray(n)
    errors = calls = 0
    for span, program in zip(spans, programs, strict=True):
        first, last = max(span.first_line, 0), min(span.last_line, n - 1)
        for raw in program.split("\n"):
            if not raw.strip():
                continue
            parsed = parse_strict_line(raw, "chunk")
            call = parsed.call
            if call is None:
                errors += parsed.errors
                continue
            if isinstance(call, RemoveLines):
                if call.start < first or call.end > last:
                    errors += 1  # outside the lines this chunk's model was shown
                    continue
                mask[call.start : call.end + 1] = b"\x01" * (call.end - call.start + 1)
            elif isinstance(call, RemoveAll):
                if first <= last:
                    mask[first : last + 1] = b"\x01" * (last - first + 1)
            elif isinstance(call, Normalize):
                target = call.target or ""
                for i in range(first, last + 1):
                    lines[i] = lines[i].replace(call.source, target)
            calls += 1
    return _decide(text, _join_kept(lines, mask), errors, calls, th)


def _run_doc(program: str, text: str, mode: Mode) -> RefineResult:
    if mode == "compat":
        # Upstream's whole doc-level executor: a substring test.
        if "drop" in program:
            return RefineResult("", 0, Branch.DROP_DOC)
        return RefineResult(text, 0, Branch.KEEP_DOC)
    errors = calls = 0
    verdicts: set[bool] = set()
    for raw in program.split("\n"):
        if not raw.strip():
            continue
        parsed = parse_strict_line(raw, "doc")
        if isinstance(parsed.call, DocDecision):
            verdicts.add(parsed.call.drop)
            calls += 1
        else:
            errors += parsed.errors
    if verdicts == {True}:
        return RefineResult("", errors, Branch.DROP_DOC, calls=calls)
    # No verdict, or contradictory ones: keep, as compat does for output without "drop".
    conflict = int(len(verdicts) > 1)
    return RefineResult(text, errors + conflict, Branch.KEEP_DOC, calls=calls)


# --------------------------------------------------------------------------- public API


def execute_program(
    text: str,
    program: str,
    level: Level = "chunk",
    mode: Mode = "compat",
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> RefineResult:
    """Apply one program to one document and decide whether the document survives.

    At chunk level the program is the document's merged program (chunk outputs joined with
    newlines); strict mode then treats the whole document as a single chunk. Use
    :func:`apply_chunk_programs` when the per-chunk outputs are at hand. Never raises on
    any program text.
    """
    if mode not in ("compat", "strict"):
        raise ValueError(f"mode must be 'compat' or 'strict', not {mode!r}")
    if level == "doc":
        return _run_doc(program, text, mode)
    if level != "chunk":
        raise ValueError(f"level must be 'doc' or 'chunk', not {level!r}")
    if mode == "compat":
        return _run_compat(text, program, thresholds)
    return _run_strict(text, [whole_document(text)], [program], thresholds)


def merge_chunk_programs(programs: Sequence[str]) -> str:
    """Join per-chunk outputs the way upstream stores them (``metadata.chunk_program``).

    Each output is ``strip(" ")``-ed first, as upstream does after decoding; that is
    idempotent, so raw or already-stripped engine outputs may be passed.
    """
    return "\n".join(p.strip(" ") for p in programs)


def apply_chunk_programs(
    text: str,
    chunks: Sequence[LineSpan],
    programs: Sequence[str],
    mode: Mode = "compat",
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> RefineResult:
    """Apply the programs generated for each chunk of ``text`` to the whole document.

    Compat merges them and executes once, so a ``normalize`` from one chunk edits every
    chunk and errors add up across chunks, exactly as upstream. Strict confines each
    program to its own chunk's lines. ``programs[i]`` must belong to ``chunks[i]``.
    """
    if len(chunks) != len(programs):
        raise ValueError(f"{len(chunks)} chunks but {len(programs)} programs")
    if mode == "compat":
        return _run_compat(text, merge_chunk_programs(programs), thresholds)
    if mode == "strict":
        return _run_strict(text, chunks, [p.strip(" ") for p in programs], thresholds)
    raise ValueError(f"mode must be 'compat' or 'strict', not {mode!r}")
