"""MinHash near-duplicate detection on real documents with planted copies: recall follows the
banding S-curve, distinct documents are not merged, signatures equal datatrove's, and the
documents removed are datatrove's MinHash pipeline's (its four steps, run here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import read_output
from support.planted import jaccard, planted_corpus

from gristmill import Pipeline
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.stages.dedup.minhash import MinhashDedup, permutations, signatures
from gristmill.stages.dedup.normalise import simplify

RATES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15)
ORIGINALS = 600


def s_curve(similarity: float, bands: int = 14, rows: int = 8) -> float:
    return 1 - (1 - similarity**rows) ** bands


@pytest.fixture(scope="module")
def planted():
    return planted_corpus(ORIGINALS, RATES)


@pytest.fixture(scope="module")
def shards(planted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted corpus as four shards, copies and originals mixed across them."""
    directory = tmp_path_factory.mktemp("planted")
    table = planted.table
    order = np.random.default_rng(0).permutation(table.num_rows)
    table = table.take(pa.array(order))
    size = -(-table.num_rows // 4)
    for part in range(4):
        pq.write_table(table.slice(part * size, size), directory / f"part-{part}.parquet")
    return directory


@pytest.fixture(scope="module")
def annotated(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    output = tmp_path_factory.mktemp("annotated") / "out"
    report = Pipeline(
        [MinhashDedup(mode="annotate", reduce_rows=2000)],
        reader=ParquetReader(str(shards)),
        writer=ParquetWriter(str(output)),
    ).run(workers=2)
    assert report.ok, report.failures
    return read_output(output)


def test_recall_of_planted_pairs_follows_the_banding_s_curve(planted, annotated: pa.Table):
    cluster = dict(
        zip(
            annotated.column("id").to_pylist(),
            annotated.column("dup_cluster").to_pylist(),
            strict=True,
        )
    )
    bins: dict[float, list[tuple[bool, float]]] = {}
    for original, copy, similarity in planted.pairs:
        found = cluster[original] == cluster[copy]
        bins.setdefault(min(np.floor(similarity * 10) / 10, 0.9), []).append((found, similarity))
    print("\nJaccard   pairs  found  S-curve")
    for low in sorted(bins):
        pairs = bins[low]
        found = np.mean([f for f, _ in pairs])
        expected = np.mean([s_curve(s) for _, s in pairs])
        print(f"{low:.1f}-{low + 0.1:.1f}  {len(pairs):5d}  {found:.3f}  {expected:.3f}")
        spread = 3 * np.sqrt(max(expected * (1 - expected), 0.01) / len(pairs)) + 0.03
        assert abs(found - expected) <= spread, (low, found, expected)
    exact = [cluster[o] == cluster[c] for o, c, s in planted.pairs if s == 1.0]
    assert exact and all(exact)


def test_distinct_documents_are_not_merged(planted, annotated: pa.Table):
    """Documents that are not copies of one another stay apart: a cluster holds a document
    and its planted copy (found with the S-curve's probability, whatever their similarity),
    or real near duplicates the samples hold; a pair that is neither and shares less than
    half its shingles counts as wrongly merged."""
    texts = dict(
        zip(annotated.column("id").to_pylist(), annotated.column("text").to_pylist(), strict=True)
    )
    clusters: dict[str, list[str]] = {}
    for doc, cluster in zip(
        annotated.column("id").to_pylist(), annotated.column("dup_cluster").to_pylist(), strict=True
    ):
        clusters.setdefault(cluster, []).append(doc)
    merged = [members for members in clusters.values() if len(members) > 1]
    copies = {frozenset((original, copy)) for original, copy, _ in planted.pairs}
    wrong = [
        (one, other)
        for members in merged
        for i, one in enumerate(members)
        for other in members[i + 1 :]
        if frozenset((one, other)) not in copies and jaccard(texts[one], texts[other]) < 0.5
    ]
    documents = annotated.num_rows
    print(f"\n{len(merged)} clusters; wrongly merged pairs: {len(wrong)} of {documents} documents")
    assert len(wrong) <= 0.002 * documents
    sizes = annotated.column("dup_cluster_size").to_numpy()
    assert (sizes >= 1).all() and sizes.max() >= 2


def test_signatures_equal_datatroves_wherever_the_words_are_the_same(planted):
    """Same normalisation, same xxHash64 shingles, same permutations: the same signature,
    for every document whose words spaCy cuts as whitespace does (datatrove's tokenizer
    also splits a few forms: "cannot", "0gb", "£0", "™")."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.text import simplify_text

    reference = MinhashDedupSignature(output_folder="/tmp/unused-sigs", config=MinhashConfig())
    texts = planted.table.column("text").to_pylist()[:400]
    a, b = permutations(1, 14 * 8)
    assert np.array_equal(a, reference.parameters[0][0])
    assert np.array_equal(b, reference.parameters[1][0])
    ours, has = signatures(simplify(pa.array(texts)), 5, a, b)
    compared = 0
    for index, text in enumerate(texts):
        simplified = simplify_text(text)
        if reference.word_tokenizer.word_tokenize(simplified) != simplified.split():
            continue
        compared += 1
        theirs = np.concatenate(reference.get_signature(reference.get_shingles(text)))
        assert has[index] and np.array_equal(ours[index], theirs), index
    print(f"\nsignatures compared: {compared} of {len(texts)} documents, all equal")
    assert compared >= 0.6 * len(texts)


def _datatrove_removed(shards: Path, work: Path) -> set[str]:
    """The ids datatrove's four-step MinHash pipeline removes, run here on the same files."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader as DatatroveReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig()

    def reader():
        return DatatroveReader(str(shards), glob_pattern="*.parquet", id_key="id")

    for name, steps, tasks in (
        ("signatures", [reader(), MinhashDedupSignature(str(work / "sigs"), config=config)], 4),
        (
            "buckets",
            [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
            config.num_buckets,
        ),
        (
            "clusters",
            [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)],
            1,
        ),
        (
            "filter",
            [
                reader(),
                MinhashDedupFilter(
                    str(work / "remove"),
                    exclusion_writer=JsonlWriter(str(work / "removed"), compression=None),
                ),
            ],
            4,
        ),
    ):
        LocalPipelineExecutor(
            steps, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name)
        ).run()
    removed = set()
    for path in (work / "removed").glob("*.jsonl"):
        removed.update(json.loads(line)["id"] for line in path.read_text().splitlines())
    return removed


@pytest.fixture(scope="module")
def ordered_shards(planted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus as four shards in id order, so that the first document of a cluster in
    file and row order (the one datatrove keeps) is also the smallest id (gristmill's)."""
    directory = tmp_path_factory.mktemp("ordered")
    size = -(-planted.table.num_rows // 4)
    for part in range(4):
        pq.write_table(planted.table.slice(part * size, size), directory / f"part-{part}.parquet")
    return directory


def test_removes_the_documents_datatrove_removes(ordered_shards: Path, tmp_path: Path):
    shards = ordered_shards
    output = tmp_path / "ours"
    report = Pipeline(
        [MinhashDedup()],
        reader=ParquetReader(str(shards)),
        writer=ParquetWriter(str(output)),
    ).run(workers=1)
    assert report.ok, report.failures
    rejects = pa.concat_tables(pq.read_table(p) for p in (output / "_rejects").glob("*.parquet"))
    ours = set(rejects.column("id").to_pylist())
    assert set(rejects.column("drop_reason").to_pylist()) == {"minhash_dedup:duplicate"}
    theirs = _datatrove_removed(shards, tmp_path / "datatrove")
    total = sum(pq.read_metadata(p).num_rows for p in shards.glob("*.parquet"))
    differ = ours ^ theirs
    print(
        f"\nremoved: gristmill {len(ours)}, datatrove {len(theirs)}, differ on {len(differ)}"
        f" of {total} documents ({1 - len(differ) / total:.2%} agree)"
    )
    for doc in sorted(differ)[:10]:
        print("  ", doc, "removed by", "gristmill" if doc in ours else "datatrove")
    assert len(differ) <= 0.01 * total
    # Which document of a cluster stays: the smallest id, here the original (ids sort in
    # corpus order), as datatrove keeps the first one it read.
    kept = read_output(output)
    assert pc.all(pc.equal(kept.column("dup_cluster"), kept.column("id"))).as_py()


def test_verify_joins_only_pairs_whose_true_jaccard_reaches_the_threshold(planted):
    """With ``verify``, candidate pairs are checked against their shingle sets: the planted
    pairs joined are exactly the candidates at or above the threshold."""
    from gristmill.core.phase import TaskInfo, run_in_memory

    table = planted.table
    loose = MinhashDedup(mode="annotate", prefer=None)
    strict = MinhashDedup(mode="annotate", prefer=None, verify=True, jaccard_threshold=0.85)
    clusters = {}
    for name, stage in (("loose", loose), ("strict", strict)):
        result = run_in_memory(stage.corpus_phase(), [table])
        stage.use_phase_result(result)
        stage.start_task(TaskInfo("memory"))
        out = stage.run_batch(table).table
        clusters[name] = dict(
            zip(out.column("id").to_pylist(), out.column("dup_cluster").to_pylist(), strict=True)
        )
        if name == "strict":
            decision = result.decision
    assert decision["verified_pairs"] < decision["candidate_pairs"]
    checked = 0
    for original, copy, similarity in planted.pairs:
        candidate = clusters["loose"][original] == clusters["loose"][copy]
        joined = clusters["strict"][original] == clusters["strict"][copy]
        if candidate:
            checked += 1
            assert joined == (similarity >= 0.85), (original, copy, similarity)
        else:
            assert not joined
    assert checked > 100
