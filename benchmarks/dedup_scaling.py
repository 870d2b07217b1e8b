"""MinHash dedup as the corpus grows: documents per second, and peak memory of each worker and
of the driver, at each corpus size (default 100k and 1M generated documents).

Documents are generated from the samples' words (about 120 words each, in sentences drawn
from the sample documents), a tenth of them near copies of others, and written as Parquet
shards of 25,000 documents. The run is a real pipeline on the local pool (``--workers``); a
thread samples the resident memory of the driver and of every worker process four times a
second. What should hold: memory per worker stays nearly flat while the corpus grows ten
times (a map holds one shard's band keys, a reduce one key range, sized by ``reduce_rows``).

    python benchmarks/dedup_scaling.py --docs 100000 1000000 --workers 2
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill import Pipeline
from gristmill.executors import LocalExecutor
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.stages.dedup.minhash import MinhashDedup

REPO = Path(__file__).resolve().parents[1]
SHARD_DOCS = 25_000


def sentences() -> list[str]:
    table = pa.concat_tables(
        pq.read_table(p, columns=["text"])
        for p in sorted((REPO / "data_samples").glob("*.parquet"))
    )
    found = []
    for text in table.column("text").to_pylist():
        found += [
            s.strip() for s in (text or "").replace("\n", " ").split(". ") if len(s.split()) > 5
        ]
    return found


def generate(directory: Path, docs: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    pool = sentences()
    rows: list[str] = []
    part = 0

    def flush() -> None:
        nonlocal rows, part
        ids = [f"gen-{part:04d}-{i:06d}" for i in range(len(rows))]
        pq.write_table(pa.table({"id": ids, "text": rows}), directory / f"part-{part:04d}.parquet")
        rows, part = [], part + 1

    for index in range(docs):
        if rows and rng.random() < 0.1:  # a near copy of an earlier document of the shard
            words = rng.choice(rows).split(" ")
            for _ in range(max(1, len(words) // 50)):
                del words[rng.randrange(len(words))]
            rows.append(" ".join(words))
        else:
            text, length = [], 0
            while length < 120:
                sentence = rng.choice(pool)
                text.append(sentence)
                length += sentence.count(" ") + 1
            rows.append(". ".join(text) + ".")
        if len(rows) == SHARD_DOCS or index == docs - 1:
            flush()


class MemoryWatch:
    """The peak resident memory of this process and of each of its children."""

    def __init__(self) -> None:
        self.driver = 0
        self.workers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.25):
            self.driver = max(self.driver, me.memory_info().rss)
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.workers[child.pid] = max(self.workers.get(child.pid, 0), rss)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    mb = 1024 * 1024
    print(
        f"{'documents':>10} {'docs/s':>8} {'driver MB':>10} {'worker MB (peak)':>17} {'removed':>8}"
    )
    for docs in args.docs:
        work = Path(tempfile.mkdtemp(prefix="gristmill-dedup-scaling-"))
        try:
            (work / "in").mkdir()
            generate(work / "in", docs)
            started = time.perf_counter()
            with MemoryWatch() as memory:
                report = Pipeline(
                    [MinhashDedup(prefer=None)],
                    reader=ParquetReader(str(work / "in")),
                    writer=ParquetWriter(str(work / "out")),
                    rejects=False,
                ).run(executor=LocalExecutor(workers=args.workers))
            seconds = time.perf_counter() - started
            assert report.ok, report.failures
            worker = max(memory.workers.values(), default=0)
            removed = report.stats.stages["01_minhash_dedup"].docs_dropped
            print(
                f"{docs:>10,} {docs / seconds:>8,.0f} {memory.driver / mb:>10,.0f} "
                f"{worker / mb:>17,.0f} {removed:>8,}"
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
