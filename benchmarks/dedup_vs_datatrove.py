"""MinHash dedup, gristmill against datatrove, on the same Parquet data, one core each.

The data are the sample documents repeated to ``--docs`` rows, each copy edited a little
(words swapped, inserted or deleted at a random rate of 0-15 %), so that near duplicates of
every similarity are there to find. Both sides run FineWeb's setting (5-word shingles,
14 bands x 8 rows, xxHash64): datatrove its four steps with ``LocalPipelineExecutor``
(signatures, buckets, clusters, filter; one worker), gristmill ``minhash_dedup`` in a
pipeline (``workers=1``). Each side runs in a fresh process of its own, so that its peak
memory (max RSS) is its own. Prints documents per second, the speed-up, the peak memory of
each side, and the documents each removed.

    python benchmarks/dedup_vs_datatrove.py --docs 20000
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def build_data(path: Path, docs: int, seed: int = 0) -> None:
    """The samples repeated to ``docs`` rows, every copy after the first lightly edited."""
    base = pa.concat_tables(
        pq.read_table(p, columns=["id", "text"])
        for p in sorted((REPO / "data_samples").glob("*.parquet"))
    ).sort_by("id")
    texts = base.column("text").to_pylist()
    ids = base.column("id").to_pylist()
    rng = random.Random(seed)
    vocabulary = [w for t in texts[:200] for w in (t or "").split()[:20]]
    out_ids, out_texts = [], []
    for row in range(docs):
        index = row % len(texts)
        words = (texts[index] or "").split(" ")
        if row >= len(texts):
            for _ in range(round(rng.uniform(0.0, 0.15) * len(words))):
                if len(words) < 3:
                    break
                at = rng.randrange(len(words) - 1)
                kind = rng.random()
                if kind < 1 / 3:
                    words[at], words[at + 1] = words[at + 1], words[at]
                elif kind < 2 / 3:
                    words.insert(at, rng.choice(vocabulary))
                else:
                    del words[at]
        out_ids.append(f"{ids[index]}~{row // len(texts)}")
        out_texts.append(" ".join(words))
    pq.write_table(pa.table({"id": out_ids, "text": out_texts}), path, row_group_size=2048)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_gristmill(data: str, work: str) -> tuple[float, int, float]:
    import pyarrow as pa

    pa.set_cpu_count(1)
    from gristmill import Pipeline
    from gristmill.io import ParquetReader, ParquetWriter
    from gristmill.stages.dedup.minhash import MinhashDedup

    started = time.perf_counter()
    report = Pipeline(
        [MinhashDedup(prefer=None)],
        reader=ParquetReader(data),
        writer=ParquetWriter(str(Path(work) / "gristmill")),
        rejects=False,
    ).run(workers=1)
    seconds = time.perf_counter() - started
    removed = report.stats.stages["01_minhash_dedup"].docs_dropped
    return seconds, removed, _peak_mb()


def run_datatrove(data: str, work: str) -> tuple[float, int, float]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    root, config = Path(work) / "datatrove", MinhashConfig()
    path = Path(data)

    def reader() -> ParquetReader:
        return ParquetReader(str(path.parent), glob_pattern=path.name, id_key="id")

    started = time.perf_counter()
    for name, steps, tasks in (
        ("sigs", [reader(), MinhashDedupSignature(str(root / "sigs"), config=config)], 1),
        (
            "buckets",
            [MinhashDedupBuckets(str(root / "sigs"), str(root / "buckets"), config=config)],
            config.num_buckets,
        ),
        (
            "clusters",
            [MinhashDedupCluster(str(root / "buckets"), str(root / "remove"), config=config)],
            1,
        ),
        (
            "filter",
            [reader(), MinhashDedupFilter(str(root / "remove")), ParquetWriter(str(root / "out"))],
            1,
        ),
    ):
        LocalPipelineExecutor(
            steps, tasks=tasks, workers=1, logging_dir=str(root / "logs" / name)
        ).run()
    seconds = time.perf_counter() - started
    kept = sum(pq.read_metadata(p).num_rows for p in (root / "out").rglob("*.parquet"))
    total = pq.read_metadata(path).num_rows
    return seconds, total - kept, _peak_mb()


def in_child(function: object, *args: str) -> tuple[float, int, float]:
    """Run one side in a fresh process (its own peak memory); its seconds, removed, MB."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(function, args)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="rows of test data")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gristmill-dedup-bench-"))
    try:
        data = work / "data" / "docs.parquet"
        data.parent.mkdir()
        build_data(data, args.docs)
        print(f"{args.docs} documents; MinHash 5-grams, 14 x 8; one core each")
        ours_s, ours_removed, ours_mb = in_child(run_gristmill, str(data), str(work))
        theirs_s, theirs_removed, theirs_mb = in_child(run_datatrove, str(data), str(work))
        for name, seconds, peak in (
            ("gristmill minhash_dedup:", ours_s, ours_mb),
            ("datatrove MinHash (4 steps):", theirs_s, theirs_mb),
        ):
            print(f"{name:30s} {args.docs / seconds:8,.0f} docs/s  peak {peak:7,.0f} MB")
        print(f"gristmill speed-up over datatrove: {theirs_s / ours_s:6.1f}x")
        print(f"documents removed: gristmill {ours_removed}, datatrove {theirs_removed}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
