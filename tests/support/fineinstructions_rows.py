"""Real documents with ``fi_matches`` built from real templates, for the generation stages' tests.

The ``template_match`` stage's column is built here directly (its documented type), so the
instantiate, judge and pack tests do not depend on an encoder: real documents from the
bundled samples, templates from the packaged starter bank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import strategies as st

from gristmill.instructions.match import MATCH_TYPE

SOURCES = ("wikitext", "c4", "stackexchange", "gutenberg", "redpajama_cc")


def real_documents(samples_dir: Path, rows: int, max_chars: int = 3000) -> pa.Table:
    """``rows`` English documents of several sources (id, text, source), short enough to
    keep a tiny model's prompts quick."""
    tables = [
        pq.read_table(path, columns=["id", "text", "source"])
        for path in sorted(samples_dir.glob("*.parquet"))
    ]
    table = pa.concat_tables(tables)
    table = table.filter(
        pc.and_(
            pc.is_in(table.column("source"), pa.array(SOURCES)),
            pc.less(pc.utf8_length(table.column("text")), max_chars),
        )
    )
    # Round-robin over the sources, so every kind of document is in even a small slice.
    by_source = {s: table.filter(pc.equal(table.column("source"), s)) for s in SOURCES}
    picked: list[pa.Table] = []
    position = 0
    while sum(t.num_rows for t in picked) < rows:
        added = False
        for source in SOURCES:
            part = by_source[source]
            if position < part.num_rows and sum(t.num_rows for t in picked) < rows:
                picked.append(part.slice(position, 1))
                added = True
        if not added:
            break
        position += 1
    return pa.concat_tables(picked)


def bank_matches(documents: pa.Table, per_document: int, offset: int = 0) -> pa.Array:
    """``fi_matches`` giving each document ``per_document`` templates of the starter bank."""
    from gristmill.instructions.bank import load_bank

    bank = load_bank(limit=offset + documents.num_rows * per_document).slice(offset)
    rows = bank.to_pylist()
    matches = []
    for i in range(documents.num_rows):
        mine = rows[i * per_document : (i + 1) * per_document]
        matches.append(
            [
                {
                    "template_id": t["template_id"],
                    "template": t["template"],
                    "score": 0.9,
                    "slot": slot,
                    "n_fi": t["n_fi"],
                }
                for slot, t in enumerate(mine)
            ]
        )
    return pa.array(matches, MATCH_TYPE)


# -- drawn columns for the every-stage harness (tests/stages/test_every_stage.py) -------------

#: Template texts the harness draws: real ones of the starter bank's shape, and broken ones.
DRAWN_TEMPLATES = (
    "who wrote the lyrics of <fi>title of a song</fi>",
    "what are the effects of <fi>a medical condition</fi> on <fi>a body part</fi>?",
    "no variable here",
    "<fi>unclosed",
    "",
)


def drawn_matches(kind: pa.DataType) -> st.SearchStrategy[Any]:
    """``fi_matches`` values: null lists, empty lists, null entries and null or odd fields."""
    entry = st.fixed_dictionaries(
        {
            "template_id": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            "template": st.one_of(
                st.none(), st.sampled_from(DRAWN_TEMPLATES), st.text(max_size=40)
            ),
            "score": st.one_of(st.none(), st.floats(-1, 1, width=32)),
            "slot": st.one_of(st.none(), st.integers(-128, 127)),
            "n_fi": st.one_of(st.none(), st.integers(0, 12)),
        }
    )
    return st.one_of(st.none(), st.lists(st.one_of(st.none(), entry), max_size=3))


def drawn_pairs(kind: pa.DataType) -> st.SearchStrategy[Any]:
    """``fi_pairs`` values: null lists, empty lists, null entries, missing or odd texts."""
    texts = st.one_of(
        st.none(),
        st.just(""),
        st.sampled_from(("Why?", "Because of the rain.")),
        st.text(max_size=60),
    )
    entry = st.fixed_dictionaries(
        {
            "template_id": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            "slot": st.one_of(st.none(), st.integers(-128, 127)),
            "instruction": texts,
            "answer": texts,
            "excerpt_ratio": st.one_of(st.none(), st.floats(0, 1, width=32)),
            "judge_score": st.one_of(st.none(), st.sampled_from((1.0, 4.0, 5.0))),
        }
    )
    return st.one_of(st.none(), st.lists(st.one_of(st.none(), entry), max_size=3))
