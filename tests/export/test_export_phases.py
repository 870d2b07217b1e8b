"""MeCo exports in training order, and a packing mode that keeps the prefix in context.

MeCo trains the conditioning documents (with their ``URL: host`` prefix) and then, last, the
cooldown documents (plain). One ``--phase all`` export must therefore be trainable front to
back: conditioning rows first, cooldown rows last, each row's phase recorded. And in
``repeat_prefix`` packing no conditioning row starts inside a document without that
document's BOS and prefix in front of it. Real sample documents, tagged by the real MeCo
stage, exported with the bundled tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import meco_curated

from gristmill.export import ExportOptions, export_corpus
from gristmill.export.pack import Packer
from gristmill.export.sequences import Sequence
from gristmill.export.writer import read_token_files

ORDER = ["conditioning", "cooldown"]


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three files whose conditioning and cooldown documents are interleaved, as tagged."""
    root = tmp_path_factory.mktemp("tagged")
    table = meco_curated(root, rows=120, parts=3)
    phases = table.column("phase").to_pylist()
    assert phases != sorted(phases, key=ORDER.index)  # the input interleaves the phases
    return root


@pytest.fixture(scope="module")
def documents(tagged: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The unpacked export: one sequence per document, the reference for the packed ones."""
    out = tmp_path_factory.mktemp("unpacked")
    export_corpus([str(tagged)], out, ExportOptions())
    return pq.read_table(out / "sequences.parquet").to_pylist()


def test_unpacked_export_is_in_training_order(tagged: Path, documents: list[dict]) -> None:
    inputs = pq.read_table(sorted(tagged.glob("*.parquet"))).to_pylist()
    expected = [r["id"] for phase in ORDER for r in inputs if r["phase"] == phase]
    assert [d["doc_id"] for d in documents] == expected
    assert any(d["prefix_len"] > 0 for d in documents if d["phase"] == "conditioning")
    assert all(d["prefix_len"] == 0 for d in documents if d["phase"] == "cooldown")


def _packed(tagged: Path, out: Path, mode: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    options = ExportOptions(seq_len=64, pack_mode=mode)  # type: ignore[arg-type]
    export_corpus([str(tagged)], out, options)
    return pq.read_table(out / "sequences.parquet").to_pylist(), read_token_files(out)[3]


def _opens_without_prefix(row: dict[str, Any], by_id: dict[str, dict]) -> bool:
    """The row starts inside a prefixed document and the prefix is not in front of it."""
    document = by_id[row["doc_ids"][0]]
    return row["doc_starts"][0] > 0 and document["prefix_len"] > 0 and row["head_lens"][0] == 0


def test_conditioning_rows_precede_cooldown_rows(tagged: Path, documents: list[dict]) -> None:
    for mode in ("split", "repeat_prefix"):
        rows, meta = _packed(tagged, tagged.parent / f"order-{mode}", mode)
        phases = [row["phase"] for row in rows]
        assert phases == sorted(phases, key=ORDER.index) and set(phases) == set(ORDER)
        assert meta["phase_order"] == ORDER
        cut = phases.index("cooldown")
        assert meta["phase_rows"] == {"conditioning": [0, cut], "cooldown": [cut, len(rows)]}
        by_id = {d["doc_id"]: d for d in documents}
        for row in rows:  # rows never mix phases
            assert {by_id[doc]["phase"] for doc in row["doc_ids"]} == {row["phase"]}


def test_repeat_prefix_never_continues_a_document_without_its_prefix(
    tagged: Path, documents: list[dict]
) -> None:
    by_id = {d["doc_id"]: d for d in documents}
    split_rows, _ = _packed(tagged, tagged.parent / "split", "split")
    # The problem being fixed: split packing trains tails without their URL in context.
    assert any(_opens_without_prefix(row, by_id) for row in split_rows if row["phase"] == ORDER[0])

    rows, meta = _packed(tagged, tagged.parent / "repeat", "repeat_prefix")
    rebuilt: dict[str, list[int]] = {}
    repeated = 0
    for row in rows:
        assert not _opens_without_prefix(row, by_id)
        for (start, end), doc_id, doc_start, head in zip(
            row["indices"], row["doc_ids"], row["doc_starts"], row["head_lens"], strict=True
        ):
            document = by_id[doc_id]
            ids = document["input_ids"]
            if head:  # BOS + prefix again, masked, then the text from where it was cut
                assert start == 0 and head == 1 + document["prefix_len"]
                assert row["input_ids"][:head] == ids[:head]
                assert row["loss_mask"][:head] == [0] * head
                repeated += head
            piece = row["input_ids"][start + head : end]
            assert piece == ids[doc_start : doc_start + len(piece)]
            assert (
                row["loss_mask"][start + head : end]
                == document["loss_mask"][doc_start : doc_start + len(piece)]
            )
            so_far = rebuilt.setdefault(doc_id, [])
            so_far[:head] = row["input_ids"][:head]  # a cut inside BOS + prefix: now whole
            assert doc_start == len(so_far)  # pieces arrive in order, none missing
            so_far[doc_start:] = piece
    assert rebuilt == {d["doc_id"]: d["input_ids"] for d in documents}
    total = sum(len(d["input_ids"]) for d in documents)
    assert meta["tokens_in"] == total and meta["tokens_dropped"] == 0
    assert meta["tokens_written"] == total + meta["tokens_repeated"]
    assert 0 < meta["tokens_repeated"] <= repeated  # a cut inside the head repeats less


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40)), min_size=1, max_size=25),
    seq_len=st.integers(8, 24),
)
def test_repeat_prefix_packer_accounts_for_every_token(
    docs: list[tuple[int, int]], seq_len: int
) -> None:
    """Cuts anywhere, inside the prefix included: every token of every document arrives,
    every continuation row opens with its document's BOS and prefix."""
    sequences = []
    for n, (prefix, text) in enumerate(docs):
        ids = np.array([1, *range(100, 100 + prefix), *range(1000, 1000 + text), 2], np.uint32)
        mask = np.ones(len(ids), np.uint8)
        mask[: 1 + prefix] = 0
        sequences.append(Sequence(f"d{n}", ids, mask, prefix))
    packer = Packer(seq_len, "repeat_prefix")
    rows = [row for s in sequences for row in packer.add(s)] + list(packer.flush())
    assert all(len(row.ids) == seq_len for row in rows[:-1])
    written = sum(len(row.ids) for row in rows)
    assert written == packer.tokens_in + packer.repeated and packer.dropped == 0
    rebuilt: dict[str, list[int]] = {}
    for row in rows:
        for (start, end), doc_id, doc_start, head in zip(
            row.spans, row.doc_ids, row.doc_starts, row.head_lens, strict=True
        ):
            source = sequences[int(doc_id[1:])]
            if doc_start > 0 and start == 0 and source.prefix_len:
                assert head == 1 + source.prefix_len  # the prefix is in front of the tail
                assert row.ids[:head].tolist() == source.ids[:head].tolist()
            piece = row.ids[start + head : end].tolist()
            assert piece == source.ids[doc_start : doc_start + len(piece)].tolist()
            so_far = rebuilt.setdefault(doc_id, [])
            so_far[:head] = row.ids[:head].tolist()
            assert doc_start == len(so_far)
            so_far[doc_start:] = piece
    assert rebuilt == {s.doc_id: s.ids.tolist() for s in sequences}


def test_a_prefix_that_fills_the_row_is_refused_naming_the_document() -> None:
    ids = np.array([1, 5, 5, 5, 9, 2], np.uint32)
    packer = Packer(4, "repeat_prefix")
    with pytest.raises(ValueError, match=r"document 'long-url'.*4 tokens.*row of 4"):
        list(packer.add(Sequence("long-url", ids, np.array([0, 0, 0, 0, 1, 1], np.uint8), 3)))
