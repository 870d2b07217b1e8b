"""Peak memory of a pipeline run over a large shard, as a ratio of the shard's size.

Generates a Parquet shard of about ``--size-gb`` (real sample text, varied per row so that it
does not compress away), then runs a pipeline over it in a separate process and reads that
process's peak RSS. Streaming means the ratio stays far below 1: memory is bounded by the
batch and row-group sizes, not by the data.

    python benchmarks/streaming_memory.py [--size-gb 1.0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]

RUN = textwrap.dedent(
    """
    import sys
    from gristmill import Pipeline
    from gristmill.io import ParquetReader, ParquetWriter

    if __name__ == "__main__":
        report = Pipeline(
            [], reader=ParquetReader(sys.argv[1]), writer=ParquetWriter(sys.argv[2])
        ).run(workers=1, overwrite=True)
        assert report.ok, report.failures
        print(report.docs_read)
    """
)

BASELINE = "import gristmill, gristmill.executors.local, pyarrow.parquet"


def generate(path: Path, size_bytes: int) -> int:
    """Write sample texts, each made unique, until the file reaches ``size_bytes`` on disk."""
    texts = (
        pa.concat_tables(
            pq.read_table(p, columns=["text"])
            for p in sorted((REPO / "data_samples").glob("*.parquet"))
        )
        .column("text")
        .to_pylist()
    )
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string())])
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        while path.stat().st_size < size_bytes:
            batch_texts = [f"{rows + i} {t} {rows + i}" for i, t in enumerate(texts)]
            ids = [f"doc-{rows + i}" for i in range(len(texts))]
            writer.write_table(
                pa.table(
                    {"id": ids, "text": batch_texts, "source": ["bench"] * len(texts)},
                    schema=schema,
                ),
                row_group_size=len(texts),
            )
            rows += len(texts)
    return rows


def child_peak_rss(command: list[str]) -> tuple[int, str]:
    """Run a child process and return the largest peak RSS of any child so far, in bytes."""
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, output.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--keep", type=Path, help="work directory to use (kept)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="gristmill-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    shard = work / "big.parquet"
    if not shard.exists():
        generate(shard, int(args.size_gb * 1024**3))
    shard_bytes = shard.stat().st_size
    uncompressed = pq.read_metadata(shard).to_dict()
    raw_bytes = sum(g["total_byte_size"] for g in uncompressed["row_groups"])

    baseline, _ = child_peak_rss([sys.executable, "-c", BASELINE])
    script = work / "run.py"
    script.write_text(RUN)
    peak, docs = child_peak_rss([sys.executable, str(script), str(shard), str(work / "out"), "--"])
    print(
        f"shard: {shard_bytes / 1024**2:,.0f} MiB on disk, {raw_bytes / 1024**2:,.0f} MiB "
        f"uncompressed, {int(docs):,} documents"
    )
    print(
        f"peak RSS of the run: {peak / 1024**2:,.0f} MiB "
        f"(an interpreter with gristmill imported: {baseline / 1024**2:,.0f} MiB)"
    )
    print(f"peak RSS / shard size on disk:      {peak / shard_bytes:.3f}")
    print(f"peak RSS / shard size uncompressed: {peak / raw_bytes:.3f}")


if __name__ == "__main__":
    main()
