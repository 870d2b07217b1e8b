"""Documents per second of each model-backed stage, and of the whole default pipeline against
the Parquet read-and-write floor, printed as a ratio.

The bundled ``data_samples/`` shards. Each model stage is built from its defaults, set up
(models loaded) outside the timing, then runs in this process over every sample document in
batches of ``--batch`` rows. The whole pipeline is ``gristmill run pipelines/default.yaml`` as a
user runs it (a fresh process: imports, model loads, the dedup phases, two workers), timed end
to end. The floor is reading the same shards and writing them back as Parquet, nothing else.
Each stage's documents per second inside that run (its documents in over its seconds, summed
over the workers, from the run's ``stats.json``) are printed too: that is where a stage added
to ``pipelines/default.yaml`` later (``template_match``, a whole-run phase) shows. The issue's
target is the pipeline within 10x of the floor on two cores; what we measure is in
``docs/topic.md``.

    python benchmarks/model_stages.py [--minilm] [--no-pipeline]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.core.registry import get_stage_class

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"
#: (label, stage name, params): the model-backed stages of pipelines/default.yaml, and the
#: topic tagger's slower MiniLM mode for comparison (``--minilm``).
STAGES: list[tuple[str, str, dict]] = [
    ("language (fastText lid.176)", "language", {}),
    ("quality (fastText, bundled)", "quality", {}),
    ("toxicity (alt-profanity-check)", "toxicity", {}),
    ("tokens (MiniLM tokenizer.json)", "tokens", {}),
    ("topic static (WordLlama + head)", "topic", {}),
]
MINILM = ("topic zero_shot (MiniLM, 128 tok)", "topic", {"mode": "zero_shot"})


def sample_table() -> pa.Table:
    tables = [pq.read_table(path) for path in sorted(SAMPLES.glob("*.parquet"))]
    return pa.concat_tables(tables, promote_options="default")


def stage_rate(name: str, params: dict, table: pa.Table, batch: int) -> float:
    stage = get_stage_class(name)(params)
    stage.setup()
    started = time.perf_counter()
    for offset in range(0, table.num_rows, batch):
        stage.process(table.slice(offset, batch))
    elapsed = time.perf_counter() - started
    stage.teardown()
    return table.num_rows / elapsed


def floor_seconds(out: Path) -> float:
    """Read every sample shard and write it back as Parquet: the least a pipeline does."""
    started = time.perf_counter()
    for path in sorted(SAMPLES.glob("*.parquet")):
        pq.write_table(pq.read_table(path), out / path.name)
    return time.perf_counter() - started


def pipeline_seconds(out: Path) -> tuple[float, dict[str, dict]]:
    """Wall time of ``gristmill run pipelines/default.yaml``, and its per-stage stats."""
    command = [sys.executable, "-c", "from gristmill.cli.app import main; main()"]
    command += ["run", "pipelines/default.yaml", "-o", str(out), "--overwrite", "-q"]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, env=dict(os.environ))
    elapsed = time.perf_counter() - started
    stats = json.loads((out / "_run" / "stats.json").read_text(encoding="utf-8"))
    return elapsed, stats["stages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="rows per process() call")
    parser.add_argument("--minilm", action="store_true", help="also time topic zero_shot")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the whole pipeline")
    args = parser.parse_args()
    table = sample_table()
    print(f"{table.num_rows} sample documents, {os.cpu_count()} CPUs\n")
    print(f"{'stage':36s} {'docs/s':>10s}")
    for label, name, params in STAGES + ([MINILM] if args.minilm else []):
        print(f"{label:36s} {stage_rate(name, params, table, args.batch):10,.0f}", flush=True)
    if args.no_pipeline:
        return
    with tempfile.TemporaryDirectory() as tmp:
        floor_dir, run_dir = Path(tmp, "floor"), Path(tmp, "run")
        floor_dir.mkdir()
        floor_s = floor_seconds(floor_dir)
        pipeline_s, stages = pipeline_seconds(run_dir)
    print(f"\n{'stage, inside the default pipeline':36s} {'docs/s':>10s} {'docs in':>8s}")
    for key, stage in stages.items():
        rate = stage["docs_in"] / stage["seconds"] if stage["seconds"] else float("inf")
        print(f"{key:36s} {rate:10,.0f} {stage['docs_in']:8,d}")
    docs = table.num_rows
    print(f"\nParquet read+write floor: {docs / floor_s:12,.0f} docs/s ({floor_s:.2f} s)")
    print(f"default pipeline:         {docs / pipeline_s:12,.0f} docs/s ({pipeline_s:.1f} s)")
    print(f"ratio pipeline/floor:     {pipeline_s / floor_s:12.1f}x (target: within 10x)")


if __name__ == "__main__":
    main()
