"""Documents per second of the Dask executor with 1 and with 2 workers, on the same data.

    python benchmarks/dask_scaling.py [--limit 100] [--pipeline pipelines/default.yaml]

Runs the stages of a pipeline file (the default: pipelines/default.yaml, whose datatrove
Gopher quality filter tokenises every document with spaCy, so the work is CPU-bound) over
data_samples/ through a LocalCluster of N one-thread workers, for N = 1 and N = 2, and prints
docs/s for each and the ratio. Each cluster is started and warmed up (workers import the
stages and load their models) before the timed run, so the figure is steady-state throughput.
The ratio is only meaningful on a machine with at least 2 idle cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def throughput(stages_file: Path, workers: int, limit: int, scratch: Path) -> tuple[int, float]:
    """(documents read, seconds) of one timed run on a fresh, warmed-up LocalCluster."""
    from distributed import Client

    from gristmill import Pipeline
    from gristmill.executors.config import DaskConfig
    from gristmill.executors.dask import DaskExecutor
    from gristmill.executors.dask_cluster import local_cluster
    from gristmill.io import ParquetReader, ParquetWriter
    from gristmill.runs.config import load_pipeline

    def pipeline(output: Path) -> Pipeline:
        return Pipeline(
            load_pipeline(stages_file).build_stages(),
            reader=ParquetReader(str(REPO / "data_samples")),
            writer=ParquetWriter(str(output)),
        )

    cluster = local_cluster(DaskConfig(dashboard_address=":0"), workers)
    with cluster, Client(cluster) as client:
        executor = DaskExecutor(client=client)
        pipeline(scratch / f"warmup-{workers}").run(executor=executor, limit=2)
        started = time.perf_counter()
        report = pipeline(scratch / f"run-{workers}").run(executor=executor, limit=limit)
        seconds = time.perf_counter() - started
    if not report.ok:
        sys.exit(f"run with {workers} workers failed: {report.failures[0].error}")
    return report.docs_read, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=Path, default=REPO / "pipelines" / "default.yaml")
    parser.add_argument("--limit", type=int, default=100, help="documents per input file")
    args = parser.parse_args()
    rates = {}
    with tempfile.TemporaryDirectory(prefix="gristmill-dask-bench-") as scratch:
        for workers in (1, 2):
            docs, seconds = throughput(args.pipeline, workers, args.limit, Path(scratch))
            rates[workers] = docs / seconds
            print(f"workers={workers}: {docs} docs in {seconds:.2f}s = {rates[workers]:.1f} docs/s")
    print(f"speedup 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
