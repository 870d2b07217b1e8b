"""Exact dedup (text and URL) and paragraph dedup, on real documents through real runs: which
document a cluster keeps, what goes to the rejects and why, and what paragraphs are removed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table

from gristmill import Pipeline
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.stages.dedup.exact import ExactDedup
from gristmill.stages.dedup.normalise import normalise_url
from gristmill.stages.dedup.paragraphs import ParagraphDedup, split_units, without_units


def _run(table: pa.Table, stages: list, tmp_path: Path, parts: int = 3):
    inputs = tmp_path / "in"
    inputs.mkdir()
    size = -(-table.num_rows // parts)
    for part in range(parts):
        pq.write_table(table.slice(part * size, size), inputs / f"part-{part}.parquet")
    output = tmp_path / "out"
    report = Pipeline(
        stages, reader=ParquetReader(str(inputs)), writer=ParquetWriter(str(output))
    ).run(workers=2)
    assert report.ok, report.failures
    rejects = [pq.read_table(p) for p in (output / "_rejects").glob("*.parquet")]
    return read_output(output), (pa.concat_tables(rejects) if rejects else None), report


def _expected_clusters(table: pa.Table) -> list[list[str]]:
    """Groups of ids whose texts are equal once whitespace is trimmed and collapsed."""
    frame = pl.DataFrame(
        {
            "id": table.column("id").to_pylist(),
            "key": pl.Series(table.column("text").to_pylist())
            .str.strip_chars()
            .str.replace_all(r"\s+", " "),
        }
    ).filter(pl.col("key").str.len_chars() > 0)
    groups = frame.group_by("key").agg(pl.col("id").sort()).filter(pl.col("id").list.len() > 1)
    return sorted(groups["id"].to_list())


def test_exact_text_duplicates_keep_the_smallest_id_and_reject_the_rest(tmp_path: Path):
    table = sample_table()
    clusters = _expected_clusters(table)
    assert clusters, "the samples hold exact duplicates: the test must see some"
    kept, rejects, report = _run(table, [ExactDedup()], tmp_path)

    duplicates = {doc for members in clusters for doc in members[1:]}
    assert set(rejects.column("id").to_pylist()) == duplicates
    assert set(rejects.column("drop_reason").to_pylist()) == {"exact_dedup:duplicate"}
    assert kept.num_rows == table.num_rows - len(duplicates)
    first_of = {doc: members[0] for members in clusters for doc in members}
    assert dict(
        zip(
            rejects.column("id").to_pylist(), rejects.column("dup_cluster").to_pylist(), strict=True
        )
    ) == {doc: first_of[doc] for doc in duplicates}
    sizes = dict(
        zip(kept.column("id").to_pylist(), kept.column("dup_cluster_size").to_pylist(), strict=True)
    )
    for members in clusters:
        assert sizes[members[0]] == len(members)
    stage = report.stats.stages["01_exact_dedup"]
    assert stage.counters["clusters"] == len(clusters)
    assert stage.counters["duplicates"] == len(duplicates)
    assert stage.dropped == {"exact_dedup:duplicate": len(duplicates)}


def test_a_prefer_column_chooses_the_document_kept(tmp_path: Path):
    table = sample_table()
    clusters = _expected_clusters(table)
    # Score each document by how late its id sorts: the largest id of a cluster must win.
    order = {doc: rank for rank, doc in enumerate(sorted(table.column("id").to_pylist()))}
    scores = pa.array([float(order[d]) for d in table.column("id").to_pylist()])
    scored = table.append_column("quality_score", scores)
    kept, _rejects, _ = _run(scored, [ExactDedup(mode="annotate")], tmp_path)
    assert kept.num_rows == table.num_rows  # annotate drops nothing
    cluster_of = dict(
        zip(kept.column("id").to_pylist(), kept.column("dup_cluster").to_pylist(), strict=True)
    )
    keep = dict(
        zip(kept.column("id").to_pylist(), kept.column("keep_exact_dedup").to_pylist(), strict=True)
    )
    for members in clusters:
        assert {cluster_of[d] for d in members} == {members[-1]}
        assert [keep[d] for d in members] == [False] * (len(members) - 1) + [True]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://www.example.com/a/b/", "http://example.com/a/b"),
        ("https://Example.COM:443/page#section", "https://example.com/page"),
        ("https://example.com/p?id=3&utm_source=x&fbclid=y", "https://example.com/p?id=3"),
    ],
)
def test_urls_that_name_the_same_page_normalise_alike(one: str, other: str):
    assert normalise_url(one) == normalise_url(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://example.com/a", "https://example.com/b"),
        ("https://example.com/p?id=3", "https://example.com/p?id=4"),
        ("https://example.com:8080/a", "https://example.com/a"),
        ("https://a.example.com/", "https://b.example.com/"),
    ],
)
def test_urls_of_different_pages_stay_different(one: str, other: str):
    assert normalise_url(one) != normalise_url(other)


def test_url_dedup_on_real_urls(tmp_path: Path):
    table = sample_table().filter(pc.is_valid(sample_table().column("url"))).slice(0, 300)
    urls = table.column("url").to_pylist()
    variants = [u.replace("https://", "http://", 1) + "#top" for u in urls[:40]]
    copies = table.slice(0, 40)
    copies = copies.set_column(copies.column_names.index("url"), "url", pa.array(variants))
    ids = pa.array([f"zz-copy-{i:03d}" for i in range(40)])
    copies = copies.set_column(copies.column_names.index("id"), "id", ids)
    both = pa.concat_tables([table, copies], promote_options="permissive")
    kept, rejects, _ = _run(both, [ExactDedup(column="url")], tmp_path)
    assert set(rejects.column("id").to_pylist()) >= set(ids.to_pylist())
    assert kept.num_rows + rejects.num_rows == table.num_rows + 40


def test_units_split_and_rejoin_exactly():
    text = "Intro line\nsecond line\n\n\nBody paragraph\n \nCookie notice\n"
    units, separators = split_units(text, "paragraph")
    assert units == ["Intro line\nsecond line", "Body paragraph", "Cookie notice\n"]
    assert "".join(u + s for u, s in zip(units, separators, strict=True)) == text
    assert without_units(text, {2}, "paragraph") == "Intro line\nsecond line\n\n\nBody paragraph"
    assert without_units(text, {0, 1, 2}, "paragraph") == ""
    lines, _ = split_units("a\nb\n", "line")
    assert lines == ["a", "b", ""]


def test_repeated_paragraphs_are_removed_after_their_first_occurrence(tmp_path: Path):
    real = sample_table().filter(pc.equal(sample_table().column("source"), "c4")).slice(0, 60)
    notice = "We use cookies to improve your experience. By continuing you accept our policy."
    texts = [f"{t}\n\n{notice}" for t in real.column("text").to_pylist()]
    texts[5] = notice  # a page that is only the notice
    table = real.set_column(real.column_names.index("text"), "text", pa.array(texts))
    kept, rejects, report = _run(table, [ParagraphDedup()], tmp_path)

    first = min(table.column("id").to_pylist())
    by_id = dict(zip(kept.column("id").to_pylist(), kept.column("text").to_pylist(), strict=True))
    assert by_id[first].endswith(notice)  # the first occurrence stays
    originals = dict(
        zip(real.column("id").to_pylist(), real.column("text").to_pylist(), strict=True)
    )
    emptied = table.column("id")[5].as_py()
    for doc, text in by_id.items():
        if doc != first:
            assert text == originals[doc], doc  # exactly the text without the notice
    assert emptied not in by_id or emptied == first
    if emptied != first:
        assert rejects.column("id").to_pylist() == [emptied]
        assert rejects.column("drop_reason").to_pylist() == ["paragraph_dedup:empty"]
    counters = report.stats.stages["01_paragraph_dedup"].counters
    assert counters["units_removed"] == len(texts) - 1
