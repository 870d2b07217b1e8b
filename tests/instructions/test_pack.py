"""``pack_instructions``: within each document's token budget, the carry within a task, and the
same packing whatever the batching."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from support.fineinstructions_rows import real_documents

from gristmill.core.phase import TaskInfo
from gristmill.instructions.generation import PAIRS_FIELD
from gristmill.instructions.pack import PackInstructions, pack, render
from gristmill.stages.taggers.tokens import encode_texts, load_tokenizer


@pytest.fixture(scope="module")
def documents(samples_dir: Path) -> pa.Table:
    """Real documents, each with pairs whose answers are passages of it (as instantiate makes)."""
    table = real_documents(samples_dir, 12, max_chars=2500)
    rows = []
    for i, text in enumerate(table.column("text").to_pylist()):
        sentences = [s.strip() for s in text.split(".") if len(s.split()) > 3][: 2 + i % 5]
        rows.append(
            [
                {
                    "template_id": 100 * i + k,
                    "slot": k % 6,
                    "instruction": f"What does the text say about {s.split()[0]} {s.split()[1]}?",
                    "answer": s + ".",
                    "excerpt_ratio": 1.0,
                    "judge_score": 4.0 + k % 2,
                }
                for k, s in enumerate(sentences)
            ]
        )
    return table.append_column("fi_pairs", pa.array(rows, PAIRS_FIELD.type))


def run(stage: PackInstructions, *batches: pa.Table) -> pa.Table:
    stage.setup()
    stage.start_task(TaskInfo("t"))
    return pa.concat_tables([stage.process(b) for b in batches])


def test_first_pair_that_does_not_fit_ends_the_packing():
    assert pack([0, 1, 2], [5, 10, 1], budget=8) == [0]
    assert pack([2, 0, 1], [5, 10, 1], budget=8) == [2, 0]
    assert pack([0, 1], [5, 3], budget=8) == [0, 1]
    assert pack([0], [9], budget=8) == []


def test_every_document_stays_within_its_budget_plus_the_carry(documents: pa.Table):
    # Budgets smaller than the documents, so that the cut and the carry both matter.
    counts = [n // 3 for n in (len(ids) for ids in _encode(documents.column("text")))]
    batch = documents.append_column("token_count", pa.array(counts, pa.int64()))
    out = run(PackInstructions(), batch)
    carry = 0
    tokenizer = load_tokenizer()
    for row, budget in zip(out.to_pylist(), counts, strict=True):
        packed = row["fi_packed"]
        used = sum(p["tokens"] for p in packed)
        assert used == row["fi_packed_tokens"] <= budget + carry
        assert {p["template_id"] for p in packed} <= {p["template_id"] for p in row["fi_pairs"]}
        carry = budget + carry - used
        for p in packed:
            assert p["text"].startswith("Instruction: ") and "\n\nAnswer: " in p["text"]
            assert p["tokens"] == len(tokenizer.encode(p["text"], add_special_tokens=False).ids)
    assert any(row["fi_packed"] for row in out.to_pylist())
    assert any(len(r["fi_packed"]) < len(r["fi_pairs"]) for r in out.to_pylist())


def test_unused_budget_is_carried_to_the_next_document(documents: pa.Table):
    two = documents.slice(0, 2)
    pairs = two.column("fi_pairs").to_pylist()
    second = [render(p["instruction"], p["answer"]) for p in pairs[1]]
    need = sum(len(ids) for ids in encode_texts(load_tokenizer(), second))
    # The first document has no pairs and leaves its whole budget; the second has none of its
    # own: everything it packs comes from the carry.
    batch = pa.table(
        {
            "id": two.column("id"),
            "text": two.column("text"),
            "fi_pairs": pa.array([[], pairs[1]], PAIRS_FIELD.type),
            "token_count": pa.array([need, 0], pa.int32()),
        }
    )
    out = run(PackInstructions(), batch).to_pylist()
    assert out[0]["fi_packed"] == [] and len(out[1]["fi_packed"]) == len(pairs[1])
    assert out[1]["fi_packed_tokens"] == need
    alone = run(PackInstructions(carry=False), batch).to_pylist()
    assert alone[1]["fi_packed"] == []


def test_the_carry_goes_across_batches_but_not_across_tasks(documents: pa.Table):
    counts = [len(ids) // 4 for ids in _encode(documents.column("text"))]
    batch = documents.append_column("token_count", pa.array(counts, pa.int64()))
    whole = run(PackInstructions(), batch)
    stage = PackInstructions()
    split = run(stage, batch.slice(0, 5), batch.slice(5, 1), batch.slice(6))
    assert split.column("fi_packed").to_pylist() == whole.column("fi_packed").to_pylist()
    # A new task starts from zero: the second half alone packs as if it came first.
    again = run(stage, batch.slice(6))
    fresh = run(PackInstructions(), batch.slice(6))
    assert again.column("fi_packed").to_pylist() == fresh.column("fi_packed").to_pylist()


def test_the_shuffle_depends_on_the_document_and_the_seed(documents: pa.Table):
    big = documents.append_column("token_count", pa.array([10**6] * documents.num_rows))
    first = run(PackInstructions(), big).column("fi_packed").to_pylist()
    reversed_rows = big.take(pa.array(range(big.num_rows - 1, -1, -1)))
    backwards = run(PackInstructions(), reversed_rows).column("fi_packed").to_pylist()
    assert backwards[::-1] == first  # each document's order is its own
    other = run(PackInstructions(seed=1), big).column("fi_packed").to_pylist()
    assert other != first
    for row, packed in zip(big.column("fi_pairs").to_pylist(), first, strict=True):
        assert sorted(p["template_id"] for p in packed) == sorted(p["template_id"] for p in row)


def test_counts_tokens_itself_when_token_count_is_absent_or_null(documents: pa.Table):
    counted = run(PackInstructions(), documents)
    counts = [len(ids) for ids in _encode(documents.column("text"))]
    given = documents.append_column("token_count", pa.array(counts, pa.int64()))
    assert run(PackInstructions(), given).column("fi_packed").equals(counted.column("fi_packed"))
    nulls = documents.append_column("token_count", pa.nulls(documents.num_rows, pa.int64()))
    assert run(PackInstructions(), nulls).column("fi_packed").equals(counted.column("fi_packed"))


def test_documents_without_pairs_and_broken_pairs(documents: pa.Table):
    pair = documents.column("fi_pairs")[0].as_py()[0]
    batch = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["Some words here.", None, "", "Some more words."],
            "fi_pairs": pa.array([None, [], [{**pair, "answer": None}], [pair]], PAIRS_FIELD.type),
            "token_count": pa.array([0, 0, 0, 1000], pa.int64()),
        }
    )
    stage = PackInstructions()
    out = run(stage, batch)
    assert out.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert [len(p) for p in out.column("fi_packed").to_pylist()] == [0, 0, 0, 1]
    assert stage.stats.counters["pairs_in"] == 1


def _encode(texts: pa.ChunkedArray) -> list[list[int]]:
    return encode_texts(load_tokenizer(), texts.to_pylist())
