"""Every registered stage survives every batch: a property-based harness over the registry.

Every stage that ``available_stages()`` knows (built-in and plugin stages; the test doubles
that ``tests/support`` registers are left out) is built from ``CASES`` below, set up once per
module, and fed batches drawn by hypothesis: the empty batch, one row, all null, all empty,
all whitespace or newlines, one very long line, a 10 MB document, control characters and NULs,
lone surrogates escaped as text (``"\\ud83d"``: Arrow strings are UTF-8, so a real lone
surrogate cannot reach a stage), right-to-left and CJK text, emoji, text that is only
punctuation or digits, repetitive and structured junk, and any of these mixed with real sample
documents (``data_samples/``) in every proportion. The optional columns stages read (``url``,
``crawl_date``, ``dump``, ``created``, scores, languages, dates, token counts) are drawn too:
absent (unless the stage requires them), typed ``null`` (an all-null column as a Parquet file
may store it), or present with null, malformed and extreme values (timestamps past year 9999,
NaN and infinite scores, impossible dump weeks). Batches come as ``string`` or
``large_string`` text, in one chunk or several (zero-copy slices, so arrays with offsets).

For every stage and batch:

* no exception;
* a tagger gives one row per input row, in order, and leaves the input columns as they were;
  a filter in ``mode: annotate`` gives ``keep_<name>`` (no nulls) for every row, and in
  ``mode: drop`` splits the rows into kept and rejected, each rejected row with a reason,
  keeping exactly the rows that annotate mode marks as kept;
* every produced column is there, with the Arrow type ``produced_fields()`` declares;
* the stage's counters (``stats.json``) and a whole-run phase's decision are JSON;
* a row's result does not depend on the rest of its batch: the batch is run again one row per
  batch, in order, and every row must come out the same (kept or dropped, the reason, every
  column). Floats are compared to ``FLOAT_TOLERANCE`` (1e-5, absolute): MiniLM (``topic``)
  pads each batch to its longest text, so its float32 similarities differ in the last bits
  between batch compositions (up to 2e-7 measured on the samples); every other stage is
  exact. Should a row's topic differ, the two topics must tie within that tolerance
  (``_topic_tie``).

Stages with a whole-run phase (``corpus_phase()`` not None: ``meco``, percentile and inverse
``score_filter``, the dedup stages) decide from the whole input, not from one batch. The drawn
batch is then the whole run, one task: the phase runs in memory over it (``run_in_memory``),
the stage takes the result, is set up and starts the task, as a run's worker does, and its
pass follows; the row-by-row pass starts the same task again with the same result, so each
row must come out as the whole run's decision says, whatever batch carries it (per-document
phase rows follow their rows through the batches).

The default run draws ``Case.examples`` batches of up to ``MAX_ROWS`` rows per case and
always tries the named ``REGRESSIONS`` batches, among them the 10 MB document: about two and
a half minutes for every stage on two cores. ``-m slow`` draws ``SLOW_FACTOR`` times as many,
with more rows, longer lines, and the 10 MB document among the drawn rows too: about twenty
minutes.

A stage registered later fails here (``test_every_registered_stage_is_in_the_table``) until
``CASES`` says how to build it: the harness never skips a stage it does not know.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import math
import string
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.data import sample_table
from support.fineinstructions_rows import MATCH_TYPE, drawn_matches, drawn_pairs

from gristmill.core import columns
from gristmill.core.filter import Filter
from gristmill.core.phase import TaskInfo, run_in_memory
from gristmill.core.registry import available_stages
from gristmill.core.stage import Stage, StageResult
from gristmill.instructions.generation import PAIRS_FIELD
from gristmill.stages.taggers.scoring import SPAN_TYPE

TESTS = Path(__file__).resolve().parents[1]

#: Absolute tolerance for produced floats (scores) between batch compositions.
FLOAT_TOLERANCE = 1e-5
#: Rows per drawn batch in the default run, and under ``-m slow``.
MAX_ROWS = 8
SLOW_MAX_ROWS = 16
#: ``-m slow`` draws this many times the default examples of each case.
SLOW_FACTOR = 10
#: Characters of the "one very long line" texts, in the default run and under ``-m slow``.
LONG_LINE = 200_000
SLOW_LONG_LINE = 2_000_000
#: The size of the huge document.
HUGE_CHARS = 10_000_000


# -- how to build each registered stage ---------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One way to build a stage: its parameters, and how many batches to draw for it."""

    params: Mapping[str, Any] = field(default_factory=dict)
    #: Drawn batches in the default run (``SLOW_FACTOR`` times as many under ``-m slow``).
    examples: int = 50


#: How to build every registered stage, by name: a stage whose defaults do not run (a
#: datatrove step, a score column, the ProX programmer) gets the parameters it needs, and
#: stages with several paths (a phase or none, document or sentence units) get a case each.
#: Filters run in both ``annotate`` and ``drop`` mode, so ``mode`` is never given here.
TEMPLATE_INDEX = str(Path(tempfile.gettempdir()) / "gristmill-test-template-index")


@functools.cache
def _tiny_llama() -> str:
    """The tests' tiny random Llama, built on first use only (model stages' cases)."""
    from support.tiny_model import build_tiny_llama

    return str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="gristmill-harness-llama-"))))


def tiny_generator() -> dict[str, Any]:
    """A generator on the tiny Llama, one prompt per generate call (no padding, so a row's
    output is the same whatever batch carries it). A callable parameter is resolved when
    the case is built."""
    return {"backend": "transformers", "model": _tiny_llama(), "options": {"batch_size": 1}}


CASES: dict[str, tuple[Case, ...]] = {
    "age": (Case(), Case({"priority": ["created", "dump", "crawl_date"]})),
    "age_filter": (
        Case({"min_date": 2013, "max_date": 2019, "on_missing": "drop"}),
        Case(),
    ),
    "c4_quality": (
        Case(),
        Case({"exact_margin": 0.2}, examples=15),
        Case({"line_rules_sources": ["c4", "ccnet", "dclm_html"]}),  # reads `source`
    ),
    "datatrove": (
        # The reference of the gopher_repetition regression below, through the filter path.
        Case({"step": "datatrove.pipeline.filters.GopherRepetitionFilter"}, examples=15),
        # A step that is not a filter: the mapper path.
        Case({"step": "datatrove.pipeline.formatters.SymbolLinesFormatter"}, examples=15),
    ),
    "domain": (Case(), Case({"lowercase": False, "url_column": "url"})),
    "exact_dedup": (Case(), Case({"column": "url", "normalise": "url"})),
    "minhash_dedup": (Case(), Case({"verify": True, "n_grams": 2})),
    "paragraph_dedup": (Case(), Case({"unit": "line", "normalise": "none"})),
    "fineweb_quality": (Case(), Case({"exact_margin": 0.2}, examples=15)),
    "gopher_quality": (Case(), Case({"exact_margin": 0.2}, examples=15)),
    "gopher_repetition": (Case(), Case({"exact_margin": 0.2}, examples=15)),
    "language": (Case(examples=20),),
    "language_filter": (Case({"languages": ["en", "de"]}), Case()),
    "meco": (
        Case(examples=20),  # url_host, exact cooldown share: a whole-run phase
        Case({"metadata_type": "topk"}, examples=15),
        Case({"metadata_type": "hashed", "cooldown_split": "hash", "on_missing": "unknown"}),
        Case({"metadata_type": "topic", "token_column": "token_count"}),
        Case({"metadata_type": "full_url", "cooldown_fraction": 0.0}),
        Case({"metadata_type": "registered_domain", "cooldown_split": "hash"}),
    ),
    "prox": (Case({"programmer": "rule"}, examples=15),),
    "prox_chunk": (Case({"programmer": "rule"}, examples=15),),
    "prox_doc": (Case({"programmer": "rule"}, examples=15),),
    "quality": (
        Case(examples=20),
        Case({"unit": "paragraph", "max_chars": 5000}, examples=10),
        Case({"unit": "sentence", "max_chars": 5000}, examples=10),
    ),
    "score_filter": (
        Case({"preset": "toxicity_keep_95"}),  # percentile: a whole-run phase
        Case({"preset": "quality_inverse_27"}),
        Case({"column": "quality_score", "method": "pareto"}),
        Case({"column": "toxicity_score", "threshold": 0.5, "direction": "keep_low"}),
    ),
    "tokens": (Case(examples=20),),
    "instantiate": (
        Case({"generator": tiny_generator, "max_new_tokens": 4, "max_document_chars": 300}, 10),
    ),
    "judge": (Case({"generator": tiny_generator, "max_new_tokens": 4}, examples=10),),
    "pack_instructions": (Case(examples=10), Case({"carry": False, "seed": 3}, examples=5)),
    "templatize": (Case({"generator": tiny_generator, "max_new_tokens": 4}, examples=10),),
    # The static encoder: the stage's code is the same for every encoder, and MiniLM's ~80 s
    # here would be most of the default run's budget (tests/instructions covers MiniLM).
    # The index goes to a temporary folder, not the user's cache.
    "template_match": (
        Case({"encoder": {"backend": "static"}, "index_dir": TEMPLATE_INDEX}, examples=20),
    ),
    "topic": (Case(examples=10),),
    "toxic_spans": (Case(), Case({"threshold": 0.0})),  # spans drawn: in range, out, NaN
    "toxicity": (
        Case(examples=15),
        Case({"unit": "sentence", "model": "mean", "max_chars": 5000}, examples=10),
        Case({"model": "profanity_check", "categories": False}, examples=10),
    ),
}


def registered_stages() -> dict[str, type[Stage]]:
    """Every stage of the registry except the test doubles registered from ``tests/``."""
    stages = {}
    for name, cls in available_stages().items():
        source = Path(getattr(sys.modules[cls.__module__], "__file__", None) or "").resolve()
        if TESTS not in source.parents:
            stages[name] = cls
    return stages


# -- the rows -------------------------------------------------------------------------------


def _normal_rows(per_source: int = 4, max_chars: int = 20_000) -> list[dict[str, Any]]:
    """A few real sample documents of every source (short enough to keep the run quick)."""
    table = sample_table()
    seen: dict[str, int] = {}
    rows = []
    for row in table.select(["text", "source", "url", "crawl_date", "dump"]).to_pylist():
        if len(row["text"] or "") > max_chars or seen.get(row["source"], 0) >= per_source:
            continue
        seen[row["source"]] = seen.get(row["source"], 0) + 1
        rows.append(row)
    return rows


NORMAL = _normal_rows()
PROSE = max(
    (r["text"] for r in sample_table().to_pylist() if (r["text"] or "").count(" the ") > 20),
    key=len,
)
#: The 10 MB document: real prose, paragraph after paragraph.
HUGE = (PROSE + "\n\n") * (HUGE_CHARS // (len(PROSE) + 2) + 1)

WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x85\xa0\u1680\u2000\u2007\u200a\u2028\u2029\u3000"
NEAR_WHITESPACE = WHITESPACE + "\u200b\u200c\u200d\u2060\ufeff"
WORDS = (
    "the", "of", "and", "to", "be", "that", "have", "with", "data", "model", "Lorem",
    "ipsum", "javascript", "cookies", "privacy", "policy", "{", "}", "#", "...", "…", "•",
    "-", "[1]", "[edit]", "e.g.", "U.S.", "don't", "http://example.com/a?b=c", "3.5",
)  # fmt: skip
ESCAPED_SURROGATES = ("\\ud83d", "\\ude00", "\\ud800\\udc00", "\\udfff", '{"t": "\\ud834"}')
RTL = (
    "שלום עולם, זה טקסט בעברית.",
    "مرحبا بالعالم. هذا نص عربي!",
    "\u202eRTL override\u202c",
    "\u200fمرحبا\u200e hello",
    "ہیلو دنیا۔",
)
CJK = (
    "你好，世界。这是中文文本。",
    "日本語のテキストです。",
    "한국어 텍스트입니다.",
    "鲁迅：《狂人日记》",
)
EMOJI = ("😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🏳️‍🌈", "🤖", "\U0001fae0", "1️⃣")
PUNCTUATION = string.punctuation + "…—–«»„“”‘’¡¿。、！？：；《》【】・"


def _long_line(word: str, size: int) -> str:
    """One line of ``size`` characters (no line break at all)."""
    return ((word + " ") * (size // (len(word) + 1) + 1))[:size]


def _joined(pieces: Sequence[str], separator: str = "") -> str:
    return separator.join(pieces)


def adversarial_texts(long_line: int, huge: bool) -> st.SearchStrategy[str | None]:
    """One text of an adversarial kind."""
    kinds: list[st.SearchStrategy[str | None]] = [
        st.none(),
        st.just(""),
        st.text(alphabet=NEAR_WHITESPACE, min_size=1, max_size=40),
        st.text(alphabet="\n\r", min_size=1, max_size=40),
        st.builds(_long_line, st.sampled_from(WORDS), st.integers(1_000, long_line)),
        st.text(alphabet=st.characters(categories=["Cc"]), min_size=1, max_size=60),
        st.lists(
            st.sampled_from(["\x00", "\x00\x00", "word", " ", "\n", "\x1b[31m", "\x7f", "\x85"]),
            min_size=1,
            max_size=40,
        ).map(_joined),
        st.lists(
            st.sampled_from((*ESCAPED_SURROGATES, "x", " ", "\n")), min_size=1, max_size=40
        ).map(_joined),
        st.lists(st.sampled_from((*RTL, " ", "\n")), min_size=1, max_size=20).map(_joined),
        st.text(alphabet=st.characters(min_codepoint=0x590, max_codepoint=0x6FF), min_size=1),
        st.lists(st.sampled_from((*CJK, "\n")), min_size=1, max_size=20).map(_joined),
        st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1),
        st.lists(
            st.sampled_from((*EMOJI, " ", "\n", "\u200d", "\ufe0f")), min_size=1, max_size=40
        ).map(_joined),
        st.text(alphabet=PUNCTUATION + " \n", min_size=1, max_size=200),
        st.text(alphabet=string.digits, min_size=1, max_size=200),
        st.text(alphabet=string.digits + " .,\n", min_size=1, max_size=200),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=200),
        # repetitive and structured junk: duplicate lines, paragraphs, braces, bullets
        st.builds(
            lambda piece, separator, count: separator.join([piece] * count),
            st.sampled_from(
                ["lorem ipsum dolor sit amet.", "{", "• item", "...", "the the the", "#", "a", ""]
            ),
            st.sampled_from(["\n", "\n\n", " ", "", "\r\n"]),
            st.integers(1, 300),
        ),
        st.lists(st.sampled_from((*WORDS, ".", "\n", "\n\n", "!", "?")), max_size=200).map(
            lambda pieces: " ".join(pieces)
        ),
    ]
    if huge:
        # Rarely: most draws would otherwise spend their time on the 10 MB document.
        kinds.append(st.integers(0, 24).map(lambda n: HUGE if n == 0 else "x"))
    return st.one_of(kinds)


# -- the optional columns ----------------------------------------------------------------------

TIMESTAMP = pa.timestamp("us", tz="UTC")
_MICROSECONDS = st.integers(-(2**62), 2**62)
_DATETIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31), timezones=st.just(dt.UTC)
)
_ISO_STRINGS = st.one_of(
    _DATETIMES.map(lambda d: d.isoformat()),
    _DATETIMES.map(lambda d: d.strftime("%Y-%m-%d")),
    st.sampled_from(["2020-02-30", "2019-13-01", "20-01-01", "  2019-05-04  ", "yesterday", ""]),
    st.text(max_size=20),
)
_SCORES = st.one_of(
    st.floats(0.0, 1.0),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 1e30, -5.0]),
)
_URLS = st.one_of(
    st.sampled_from([r["url"] for r in NORMAL if r["url"]] or ["https://example.com/"]),
    st.sampled_from(
        [
            "",
            "not a url",
            "http://",
            "://no-scheme.com",
            "example.com/page",
            "https://user:secret@Example.COM:8080/a?b#c",
            "http://[::1]:80/x",
            "http://192.168.0.1/",
            "HTTP://WWW.EXAMPLE.CO.UK/",
            "http://例子.测试/路径",
            "http://xn--fsq.com/",
            "https://a.b.c.d.e.f.github.io",
            "http:// spaces .com/",
            "http://\x00host/",
            "https://" + "a" * 5000 + ".com/",
            "mailto:someone@example.com",
            "file:///etc/passwd",
            "http://localhost",
            "http://.com",
            "http://com.",
        ]
    ),
    st.text(max_size=60),
    st.builds(lambda host: f"https://{host}/", st.text(min_size=1, max_size=30)),
)


@dataclass(frozen=True)
class ColumnKind:
    """An optional column: the Arrow types it may come as, and values for each type."""

    types: tuple[pa.DataType, ...]
    values: Callable[[pa.DataType], st.SearchStrategy[Any]]


def _dates_or_strings(kind: pa.DataType) -> st.SearchStrategy[Any]:
    if kind == TIMESTAMP:
        return st.one_of(st.none(), _DATETIMES, _MICROSECONDS)
    return st.one_of(st.none(), _ISO_STRINGS)


#: Span offsets: small ones that fit the drawn texts, and any int32 (negative, past the end).
_SPAN_OFFSETS = st.one_of(st.none(), st.integers(-5, 60), st.integers(-(2**31), 2**31 - 1))


def _of(strategy: st.SearchStrategy[Any]) -> Callable[[pa.DataType], st.SearchStrategy[Any]]:
    return lambda _kind: st.one_of(st.none(), strategy)


OPTIONAL_COLUMNS: dict[str, ColumnKind] = {
    columns.URL: ColumnKind((pa.string(), pa.large_string(), pa.null()), _of(_URLS)),
    columns.CRAWL_DATE: ColumnKind((TIMESTAMP, pa.string(), pa.null()), _dates_or_strings),
    "created": ColumnKind((pa.string(), TIMESTAMP, pa.null()), _dates_or_strings),
    columns.DUMP: ColumnKind(
        (pa.string(), pa.null()),
        _of(
            st.one_of(
                st.sampled_from(
                    [
                        "CC-MAIN-2019-35",
                        "CC-MAIN-2020-53",  # 2020 has a week 53, 2019 has not
                        "CC-MAIN-2019-53",
                        "CC-MAIN-2019-00",
                        "CC-MAIN-abcd-10",
                        "CC-MAIN-0000-01",
                        "CC-MAIN-9999-52",
                        "",
                        "cc-main",
                    ]
                ),
                st.builds("CC-MAIN-{:04d}-{:02d}".format, st.integers(0, 9999), st.integers(0, 99)),
                st.text(max_size=20),
            )
        ),
    ),
    columns.SOURCE: ColumnKind(
        (pa.string(), pa.large_string(), pa.null()),
        _of(
            st.one_of(st.sampled_from(sorted({r["source"] for r in NORMAL})), st.text(max_size=10))
        ),
    ),
    "quality_score": ColumnKind((pa.float32(), pa.float64(), pa.null()), _of(_SCORES)),
    "toxicity_score": ColumnKind((pa.float32(), pa.float64(), pa.null()), _of(_SCORES)),
    "toxicity_spans": ColumnKind(
        (SPAN_TYPE, pa.null()),
        _of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "start": _SPAN_OFFSETS,
                        "end": _SPAN_OFFSETS,
                        "score": st.one_of(st.none(), _SCORES),
                    }
                ),
                max_size=6,
            )
        ),
    ),
    "language": ColumnKind(
        (pa.string(), pa.null()),
        _of(st.sampled_from(["en", "de", "fr", "zh", "__label__en", "", "EN", " en "])),
    ),
    "language_score": ColumnKind((pa.float32(), pa.float64(), pa.null()), _of(_SCORES)),
    "age_date": ColumnKind(
        (pa.date32(), pa.null()),
        _of(
            st.one_of(
                st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
                st.sampled_from([dt.date(2013, 1, 1), dt.date(2019, 12, 31), dt.date(2020, 1, 1)]),
            )
        ),
    ),
    "topic": ColumnKind(
        (pa.string(), pa.null()),
        _of(st.one_of(st.sampled_from(["news", "", "{value}", "a\nb"]), st.text(max_size=20))),
    ),
    "token_count": ColumnKind(
        (pa.int64(), pa.int32(), pa.null()),
        lambda kind: st.one_of(
            st.none(), st.integers(0, 2**31 - 1 if kind == pa.int32() else 2**40)
        ),
    ),
    "fi_matches": ColumnKind((MATCH_TYPE, pa.null()), drawn_matches),
    "fi_pairs": ColumnKind((PAIRS_FIELD.type, pa.null()), drawn_pairs),
}
#: The type a required column gets when a batch does not draw it (all null).
DEFAULT_TYPES = {name: kind.types[0] for name, kind in OPTIONAL_COLUMNS.items()}


def _text_repr(text: str | None) -> str:
    if text is not None and len(text) > 80:
        return f"{text[:40]!r}...({len(text)} chars)"
    return repr(text)


@dataclass(frozen=True)
class Batch:
    """One drawn batch, whatever the stage: texts, optional columns, text type and chunks."""

    texts: tuple[str | None, ...]
    #: (name, type, values) of the optional columns present.
    extra: tuple[tuple[str, pa.DataType, tuple[Any, ...]], ...] = ()
    large_text: bool = False
    #: Row positions where a new chunk starts (zero-copy slices of one table); given for an
    #: empty batch, its columns have no chunk at all (as a table of no record batches).
    chunk_starts: tuple[int, ...] = ()

    def __repr__(self) -> str:  # the 10 MB document must not fill a failure report
        texts = ", ".join(_text_repr(t) for t in self.texts)
        extra = ", ".join(f"{name}: {kind}={list(values)!r}" for name, kind, values in self.extra)
        return (
            f"Batch(texts=[{texts}], extra={{{extra}}}, large_text={self.large_text}, "
            f"chunk_starts={self.chunk_starts})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' reports
        printer.text(repr(self))

    def table(self, requires: Sequence[str]) -> pa.Table:
        """The batch as a stage gets it; a required column it did not draw comes all null."""
        rows = len(self.texts)
        data: dict[str, pa.Array] = {
            columns.ID: pa.array([f"row-{i}" for i in range(rows)], pa.string()),
            columns.TEXT: pa.array(
                list(self.texts), pa.large_string() if self.large_text else pa.string()
            ),
        }
        for name, kind, values in self.extra:
            data[name] = _array(list(values), kind)
        for name in requires:
            if name not in data:
                if name not in DEFAULT_TYPES:
                    raise AssertionError(
                        f"a stage requires column {name!r}, which the harness cannot draw; "
                        "add it to OPTIONAL_COLUMNS"
                    )
                data[name] = pa.nulls(rows, DEFAULT_TYPES[name])
        table = pa.table(data)
        if not rows and self.chunk_starts:
            return pa.Table.from_batches([], table.schema)  # no chunks at all
        if not self.chunk_starts:
            return table
        edges = [0, *self.chunk_starts, rows]
        return pa.concat_tables(
            [table.slice(start, stop - start) for start, stop in itertools.pairwise(edges)]
        )


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(kind):
        # Datetimes and raw microseconds (any int64, far outside years 1-9999) alike.
        micros = [
            None
            if v is None
            else v
            if isinstance(v, int)
            else (v - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
            for v in values
        ]
        return pa.array(micros, pa.int64()).cast(kind)
    if pa.types.is_null(kind):
        return pa.nulls(len(values))
    return pa.array(values, kind)


@st.composite
def batches(draw: st.DrawFn, max_rows: int, long_line: int, huge: bool) -> Batch:
    """A batch: real documents and adversarial texts in any proportion, in any order."""
    rows = draw(st.integers(0, max_rows))
    normal = draw(st.integers(0, rows))
    if draw(st.booleans()):
        # One kind for every adversarial row: all null, all empty, all whitespace...
        kind = adversarial_texts(long_line, huge)
        first = draw(kind)
        uniform = draw(st.booleans())
        odd = [first if uniform else draw(kind) for _ in range(rows - normal)]
    else:
        kinds = adversarial_texts(long_line, huge)
        odd = draw(st.lists(kinds, min_size=rows - normal, max_size=rows - normal))
    chosen = draw(st.lists(st.sampled_from(NORMAL), min_size=normal, max_size=normal))
    order = draw(st.permutations(range(rows)))
    pool = [r["text"] for r in chosen] + odd
    texts = tuple(pool[i] for i in order)
    extra = []
    for name, kind in OPTIONAL_COLUMNS.items():
        if not draw(st.booleans()):
            continue  # absent (a required one comes all null)
        arrow_type = draw(st.sampled_from(kind.types))
        values = draw(st.lists(kind.values(arrow_type), min_size=rows, max_size=rows))
        extra.append((name, arrow_type, tuple(values)))
    chunk_starts: tuple[int, ...] = ()
    if rows > 1 and draw(st.booleans()):
        chunk_starts = tuple(sorted(draw(st.sets(st.integers(1, rows - 1), max_size=3))))
    return Batch(texts, tuple(extra), draw(st.booleans()), chunk_starts)


def _all_null_columns(rows: int) -> tuple[tuple[str, pa.DataType, tuple[Any, ...]], ...]:
    return tuple((name, pa.null(), (None,) * rows) for name in OPTIONAL_COLUMNS)


#: Batches every stage is always fed, named; the first four crashed gopher_repetition
#: (no row with a non-empty line: ``np.bincount`` of nothing is int64).
REGRESSIONS: dict[str, Batch] = {
    "empty_text": Batch(("",)),
    "null_text": Batch((None,)),
    "only_newline": Batch(("\n",)),
    "empty_and_newline": Batch(("", "\n")),
    "empty_batch": Batch(()),
    "empty_batch_without_chunks": Batch((), chunk_starts=(0,)),
    "empty_and_text": Batch(("", "x")),
    "all_null_columns": Batch((None, "", NORMAL[0]["text"]), _all_null_columns(3)),
    # Timestamps past Python's datetime (years 1 to 9999), as a wrong unit gives them.
    "timestamps_out_of_range": Batch(
        ("x", None),
        (
            (columns.CRAWL_DATE, TIMESTAMP, (-62135596800000001, 2**62)),
            ("created", TIMESTAMP, (2**62, None)),
        ),
    ),
    "ten_megabytes": Batch((NORMAL[1]["text"], HUGE, "", None), chunk_starts=(1,)),
}


# -- building and running the stages ---------------------------------------------------------


@dataclass
class Built:
    """One case's stages, set up once per module: annotate and drop instances of a filter."""

    name: str
    case: Case
    main: Stage  # the tagger, or the filter in annotate mode
    drop: Filter | None  # the filter in drop mode

    @property
    def stages(self) -> tuple[Stage, ...]:
        return (self.main,) if self.drop is None else (self.main, self.drop)


def build(name: str, case: Case) -> Built:
    cls = registered_stages()[name]
    params = {k: v() if callable(v) else v for k, v in case.params.items()}
    if issubclass(cls, Filter):
        main = cls(**{**params, "mode": "annotate"})
        drop = cls(**{**params, "mode": "drop"})
        assert isinstance(drop, Filter)
        built = Built(name, case, main, drop)
    else:
        built = Built(name, case, cls(**params), None)
    for stage in built.stages:
        if stage.corpus_phase() is None:  # the others after their phase's result (see start)
            stage.setup()
    return built


@pytest.fixture(scope="module")
def stages() -> Iterator[Callable[[str, int], Built]]:
    """Each case built and set up once per module, on first use; torn down at the end."""
    made: dict[tuple[str, int], Built] = {}

    def get(name: str, index: int) -> Built:
        if (name, index) not in made:
            made[name, index] = build(name, CASES[name][index])
        return made[name, index]

    yield get
    for built in made.values():
        for stage in built.stages:
            stage.teardown()


def start(stage: Stage, table: pa.Table) -> None:
    """What a run's worker does before a stage's pass over ``table`` (one task): the phase's
    result over the whole task, setup, the task's start (its per-document phase rows)."""
    task = TaskInfo("harness")
    phase = stage.corpus_phase()
    if phase is not None:
        result = run_in_memory(phase, [table], task)
        json.dumps(result.decision)  # saved with the run: it must be JSON
        stage.use_phase_result(result)
        stage.setup()
    stage.start_task(task)


def _rejected(result: StageResult) -> tuple[pa.Table | None, list[str]]:
    if result.rejected is None or result.rejected.num_rows == 0:
        return None, []
    assert result.reasons is not None, "rejected rows without reasons"
    reasons = result.reasons.to_pylist()
    assert len(reasons) == result.rejected.num_rows
    assert all(isinstance(r, str) and r for r in reasons), f"bad drop reasons: {reasons}"
    return result.rejected, reasons


def outcomes(built: Built, table: pa.Table) -> dict[str, tuple[Any, ...]]:
    """Each row's result by id: ("row", columns) for a tagger; ("kept", columns) or
    ("dropped", reason, columns) for a filter in drop mode."""
    if built.drop is None:
        out = built.main.run_batch(table).table
        return {row[columns.ID]: ("row", row) for row in rows_of(out)}
    return drop_outcomes(built.drop.run_batch(table))


def drop_outcomes(result: StageResult) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {
        row[columns.ID]: ("kept", row) for row in rows_of(result.table)
    }
    rejected, reasons = _rejected(result)
    if rejected is not None:
        for row, reason in zip(rows_of(rejected), reasons, strict=True):
            assert row[columns.ID] not in found, f"row {row[columns.ID]} both kept and dropped"
            found[row[columns.ID]] = ("dropped", reason, row)
    return found


def _plain(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Dates and timestamps as their integers: Python's datetime has only years 1 to 9999."""
    if pa.types.is_timestamp(values.type) or pa.types.is_date64(values.type):
        return values.cast(pa.int64())
    if pa.types.is_date32(values.type):
        return values.cast(pa.int32())
    return values


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    plain = pa.table({name: _plain(table.column(name)) for name in table.column_names})
    return plain.to_pylist()


def check_types(stage: Stage, table: pa.Table) -> None:
    """Every produced column is there, with its declared type."""
    for wanted in stage.produced_fields():
        assert wanted.name in table.column_names, f"{stage.name}: no column {wanted.name!r}"
        got = table.schema.field(wanted.name).type
        assert got == wanted.type, f"{stage.name}: {wanted.name} is {got}, declared {wanted.type}"


def check_batch(built: Built, table: pa.Table) -> dict[str, tuple[Any, ...]]:
    """Shape, types and verdicts of one whole batch; returns each row's outcome."""
    ids = table.column(columns.ID).to_pylist()
    main = built.main
    start(main, table)
    out = main.run_batch(table).table
    assert out.column(columns.ID).to_pylist() == ids, "rows lost, added or reordered"
    check_types(main, out)
    produced = set(main.produces)
    untouched = [c for c in table.column_names if c not in produced]
    if isinstance(main, Filter):
        keep = out.column(main.keep_column)
        assert keep.type == pa.bool_() and keep.null_count == 0, "a row without a verdict"
        untouched = [c for c in untouched if c != columns.TEXT]  # ProX edits in annotate mode
    for name in untouched:
        before = _plain(table.column(name)).to_pylist()
        after = _plain(out.column(name)).to_pylist()
        assert _close(after, before), f"input column {name!r} changed"
    json.dumps(main.stats.to_dict())  # stats.json
    if built.drop is None:
        return {row[columns.ID]: ("row", row) for row in rows_of(out)}
    # The filter in drop mode: kept + rejected are the input, as annotate mode said.
    drop = built.drop
    start(drop, table)
    result = drop.run_batch(table)
    check_types(drop, result.table)
    if result.rejected is not None and result.rejected.num_rows:
        check_types(drop, result.rejected)
    found = drop_outcomes(result)
    assert sorted(found) == sorted(ids), "drop mode lost or invented rows"
    marked = [i for i, k in zip(ids, keep.to_pylist(), strict=True) if k]
    assert [i for i in ids if found[i][0] == "kept"] == marked, "drop and annotate disagree"
    json.dumps(drop.stats.to_dict())
    return found


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= FLOAT_TOLERANCE
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _topic_tie(built: Built, alone: dict[str, Any], inside: dict[str, Any]) -> bool:
    """The topic tagger's two choices for a row are (to the tolerance) equally near."""
    stage: Any = built.main
    if built.name != "topic" or alone.get("topic") == inside.get("topic"):
        return False
    similarity = stage.scores([alone[columns.TEXT]])[0]
    names = stage._names
    gap = similarity[names.index(alone["topic"])] - similarity[names.index(inside["topic"])]
    return bool(abs(gap) <= 2 * FLOAT_TOLERANCE)


def check_row_by_row(built: Built, table: pa.Table, whole: dict[str, tuple[Any, ...]]) -> None:
    """The batch again, one row per batch (same task order): every row comes out the same."""
    stage = built.main if built.drop is None else built.drop
    start(stage, table)
    for index in range(table.num_rows):
        row = table.slice(index, 1)
        (row_id,) = row.column(columns.ID).to_pylist()
        ((got_id, alone),) = outcomes(built, row).items()
        assert got_id == row_id
        inside = whole[row_id]
        if _close(alone, inside):
            continue
        if alone[0] == inside[0] == "row" and _topic_tie(built, alone[-1], inside[-1]):
            continue
        difference = {
            k: (alone[-1].get(k), inside[-1].get(k))
            for k in set(alone[-1]) | set(inside[-1])
            if k != columns.TEXT and not _close(alone[-1].get(k), inside[-1].get(k))
        }
        raise AssertionError(
            f"row {row_id} alone gives {alone[:-1]}, inside its batch {inside[:-1]}; "
            f"columns that differ (alone, inside): {difference}"
        )


def check(built: Built, batch: Batch) -> None:
    table = batch.table(built.main.requires)
    whole = check_batch(built, table)
    check_row_by_row(built, table, whole)


# -- the tests ---------------------------------------------------------------------------------


def _cases() -> list[Any]:
    params = []
    for name in registered_stages():
        cases = CASES.get(name)
        if cases is None:  # fails in the test, naming the stage
            params.append(pytest.param(name, -1, id=f"{name}-UNKNOWN"))
            continue
        for index in range(len(cases)):
            params.append(pytest.param(name, index, id=f"{name}-{index}"))
    return params


def run_harness(
    stages: Callable[[str, int], Built],
    name: str,
    index: int,
    *,
    factor: int,
    max_rows: int,
    long_line: int,
    huge: bool,
) -> None:
    if index < 0:
        pytest.fail(
            f"stage {name!r} is registered, but tests/stages/test_every_stage.py does not "
            "know how to build it: add it to CASES"
        )
    built = stages(name, index)

    @settings(
        max_examples=built.case.examples * factor,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=batches(max_rows, long_line, huge))
    def survives(batch: Batch) -> None:
        check(built, batch)

    for regression in REGRESSIONS.values():
        survives = example(batch=regression)(survives)
    survives()


@pytest.mark.parametrize(("name", "index"), _cases())
def test_stage_survives_every_batch(stages: Callable[[str, int], Built], name: str, index: int):
    run_harness(stages, name, index, factor=1, max_rows=MAX_ROWS, long_line=LONG_LINE, huge=False)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "index"), _cases())
def test_stage_survives_every_batch_at_length(
    stages: Callable[[str, int], Built], name: str, index: int
):
    run_harness(
        stages,
        name,
        index,
        factor=SLOW_FACTOR,
        max_rows=SLOW_MAX_ROWS,
        long_line=SLOW_LONG_LINE,
        huge=True,
    )


def test_every_registered_stage_is_in_the_table():
    registered = set(registered_stages())
    assert not registered - set(CASES), "registered stages the harness cannot build"
    assert not set(CASES) - registered, "CASES names stages that are no longer registered"
