"""The default pipeline's output is text a pretraining team would train on, source by source.

``pipelines/default.yaml`` runs here in memory over every sample document, stage by stage as
a run's worker would (a whole-run phase first, over all the documents), recording each
document's text after every stage. For every source in the samples, a kept document keeps at
least 90 % of its characters, counting only what a stage removed without a stated reason:
ProX programs (``docs/prox.md``) and C4's line rules on the web sources the pipeline names
(menus, cookie and terms notices: boilerplate) are the stated ones; everything else counts.
No kept document starts mid-sentence because a stage removed the lines before it, and C4's
line rules leave the other sources (books, verse, wiki, patents, papers, comments) byte for
byte as they came.

``topic`` is left out: a tagger (it adds ``topic`` and ``topic_score`` and never edits the
text) that takes over a minute of CPU on the samples; the test checks that it is one.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from support.data import sample_table

from gristmill.core import columns
from gristmill.core.filter import Filter
from gristmill.core.phase import TaskInfo, run_in_memory
from gristmill.core.stage import Stage
from gristmill.runs.config import load_pipeline
from gristmill.stages.filters.heuristics.c4_quality import C4Quality

DEFAULT = Path(__file__).resolve().parents[1] / "pipelines" / "default.yaml"
LEFT_OUT = ("topic",)
PROX = ("prox_doc", "prox_chunk", "prox")
KEEP_AT_LEAST = 0.9
#: Characters that end a sentence, or a line that may end one (a heading's colon, a quote).
ENDS = ".!?:;\"')]”’…»"


@dataclass
class Trace:
    """Every stage of the run in order, and each document's text after it (kept ones)."""

    stages: list[Stage] = field(default_factory=list)
    texts: list[dict[str, str]] = field(default_factory=list)
    original: dict[str, str] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)

    def kept(self) -> dict[str, str]:
        return self.texts[-1]


@pytest.fixture(scope="module")
def trace() -> Trace:
    config = load_pipeline(DEFAULT)
    stages = [s for s in config.build_stages() if s.name not in LEFT_OUT]
    table = sample_table()
    ids, texts = table.column(columns.ID).to_pylist(), table.column(columns.TEXT).to_pylist()
    result = Trace(
        original=dict(zip(ids, texts, strict=True)),
        source=dict(zip(ids, table.column(columns.SOURCE).to_pylist(), strict=True)),
    )
    for stage in stages:
        phase = stage.corpus_phase()
        if phase is not None:
            stage.use_phase_result(run_in_memory(phase, [table]))
        stage.setup()
        stage.start_task(TaskInfo("default"))
        table = stage.run_batch(table).table
        stage.teardown()
        result.stages.append(stage)
        ids, texts = table.column(columns.ID).to_pylist(), table.column(columns.TEXT).to_pylist()
        result.texts.append(dict(zip(ids, texts, strict=True)))
    return result


def web_sources(trace: Trace) -> set[str]:
    (c4,) = [s for s in trace.stages if isinstance(s, C4Quality)]
    assert c4.params.line_rules_sources, "default.yaml names the web sources of C4's line rules"
    return set(c4.params.line_rules_sources)


def stated(stage: Stage, source: str, web: set[str]) -> bool:
    """Whether the stage removes lines of this source for a stated reason."""
    return stage.name in PROX or (isinstance(stage, C4Quality) and source in web)


def test_the_stages_left_out_only_tag() -> None:
    config = load_pipeline(DEFAULT)
    for stage in config.build_stages():
        if stage.name in LEFT_OUT:
            assert not isinstance(stage, Filter)
            assert columns.TEXT not in stage.produces


def test_every_source_keeps_its_text_but_for_stated_removals(trace: Trace) -> None:
    web = web_sources(trace)
    sources = sorted(set(trace.source.values()))
    assert web <= set(sources), "a web source named in default.yaml is not in the samples"
    kept = trace.kept()
    shares: dict[str, list[float]] = defaultdict(list)  # all removals, for the printout
    failures = []
    for doc, final in kept.items():
        source, before = trace.source[doc], trace.original[doc]
        unexplained = 1.0
        for stage, texts in zip(trace.stages, trace.texts, strict=True):
            after = texts[doc]
            if after != before and not stated(stage, source, web):
                unexplained *= len(after) / max(len(before), 1)
            before = after
        shares[source].append(len(final) / max(len(trace.original[doc]), 1))
        if unexplained < KEEP_AT_LEAST:
            failures.append((doc, round(unexplained, 3)))
    print(f"\n{'source':15s} {'docs':>5s} {'kept':>5s} {'median':>7s} {'least':>6s}  (chars kept)")
    for source in sources:
        docs = sum(1 for s in trace.source.values() if s == source)
        values = shares.get(source, [])
        median = f"{statistics.median(values):7.3f}" if values else "      -"
        least = f"{min(values):6.3f}" if values else "     -"
        print(f"{source:15s} {docs:5d} {len(values):5d} {median} {least}")
    assert not failures, f"{len(failures)} documents lost text to line rules: {failures[:10]}"
    assert kept, "the default pipeline keeps documents"


def test_c4_line_rules_leave_other_sources_as_they_came(trace: Trace) -> None:
    web = web_sources(trace)
    index = next(i for i, s in enumerate(trace.stages) if isinstance(s, C4Quality))
    before = trace.original if index == 0 else trace.texts[index - 1]
    after = trace.texts[index]
    others = [doc for doc in after if trace.source[doc] not in web]
    assert {trace.source[doc] for doc in others} >= {"gutenberg", "shakespeare", "constitution"}
    assert [doc for doc in others if after[doc] != before[doc]] == []


def _starts_mid_sentence(before: str, after: str) -> bool:
    """Lines were removed before the new first line, which goes on a sentence they began."""
    first = after.lstrip().split("\n", 1)[0].strip()
    if not first or before.lstrip().startswith(first):
        return False
    position = before.find(first)
    if position <= 0:
        return False  # the line itself was edited: not a line rule's doing
    preceding = before[:position].rstrip()
    opening = first.lstrip("\"'“‘([_—- ")
    return bool(opening) and opening[0].islower() and preceding[-1:] not in tuple(ENDS)


def test_no_kept_document_starts_mid_sentence_because_of_a_line_rule(trace: Trace) -> None:
    kept = trace.kept()
    cut = []
    for doc in kept:
        before = trace.original[doc]
        for stage, texts in zip(trace.stages, trace.texts, strict=True):
            after = texts[doc]
            if after != before and _starts_mid_sentence(before, after):
                cut.append((stage.name, doc, after[:80]))
            before = after
    assert cut == []


def test_the_check_catches_what_c4s_own_setting_does_to_a_book() -> None:
    """C4's terminal-punctuation rule on Alice's first chapter: the shredding measured above."""
    table = sample_table()
    (row,) = [r for r in table.to_pylist() if r["id"] == "gutenberg-11-ch01"]
    chapter = pa.Table.from_pylist([row], schema=table.schema)
    shredded = C4Quality().process(chapter).column(columns.TEXT)[0].as_py()
    assert len(shredded) < 0.3 * len(row["text"])
    assert _starts_mid_sentence(row["text"], shredded)
    kept = C4Quality(filter_no_terminal_punct=False, line_rules_sources=["c4"]).process(chapter)
    assert kept.column(columns.TEXT)[0].as_py() == row["text"]
