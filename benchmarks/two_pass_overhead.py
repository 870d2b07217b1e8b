"""What a whole-run percentile cut costs over a fixed threshold, as a ratio of wall times.

Same scorer (the ``tokens`` tagger), same data, same workers; the only difference is the
``score_filter`` method: ``threshold`` runs in one pass, ``percentile`` makes the run driver
write the scorer's pass, map only the score column into a sketch (the corpus-wide phase), and
run the cut from the pass's output. The ratio is what a percentile preset costs over a
threshold.

    python benchmarks/two_pass_overhead.py --copies 8 --workers 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill import Pipeline
from gristmill.executors import LocalExecutor
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.stages.filters.score_filter import ScoreFilter
from gristmill.stages.taggers.tokens import TokensTagger

REPO = Path(__file__).resolve().parents[1]


def _inputs(directory: Path, copies: int) -> int:
    tables = [pq.read_table(p) for p in sorted((REPO / "data_samples").glob("*.parquet"))]
    table = pa.concat_tables(tables)
    for copy in range(copies):
        ids = pc.binary_join_element_wise(table.column("id"), f"#{copy}", "")
        pq.write_table(table.set_column(0, "id", ids), directory / f"copy-{copy:03d}.parquet")
    return table.num_rows * copies


def _time(inputs: Path, output: Path, cut: ScoreFilter, workers: int) -> float:
    pipeline = Pipeline(
        [TokensTagger(), cut],
        reader=ParquetReader(str(inputs / "*.parquet")),
        writer=ParquetWriter(str(output)),
    )
    started = time.perf_counter()
    report = pipeline.run(executor=LocalExecutor(workers=workers), overwrite=True)
    assert report.ok, report.failures
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=8, help="copies of data_samples (shards)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        docs = _inputs(root / "in", args.copies)
        column = "token_count"
        one = _time(
            root / "in", root / "one", ScoreFilter(column=column, threshold=100), args.workers
        )
        two = _time(
            root / "in",
            root / "two",
            ScoreFilter(column=column, method="percentile", keep_fraction=0.5),
            args.workers,
        )
    print(f"{docs:,} docs, {args.copies} shards, {args.workers} workers")
    print(f"threshold (one pass): {one:.2f}s   percentile (two passes): {two:.2f}s")
    print(f"ratio percentile / threshold: {two / one:.2f}")


if __name__ == "__main__":
    main()
