"""Documents per second of each model-backed stage, and of the whole default pipeline against
the Parquet read-and-write floor, printed as a ratio.

The bundled ``data_samples/`` shards. Each model stage is built from its defaults, set up
(models loaded) outside the timing, then runs in this process over every sample document in
batches of ``--batch`` rows. The whole pipeline is ``gristmill run pipelines/default.yaml`` as a
user runs it (a fresh process: imports, model loads, the dedup phases, two workers), timed end
to end. The floor is reading the same shards and writing them back as Parquet, nothing else.
Each stage's documents per second inside that run (its documents in over its seconds, summed
over the workers, from the run's ``stats.json``) are printed too: that is where a stage added
to ``pipelines/default.yaml`` later (``template_match``, a whole-run phase) shows.

On 3,548 documents most of a run is fixed cost: starting Python and two workers, importing,
loading every model once per worker, and the five passes' steps. So the run is timed twice,
over every document and with ``--limit 1`` (one document per task: the fixed costs alone), and
the difference gives the pipeline's documents per second once started, the figure a shard of
millions of documents sees. Both are printed against the floor; each time is the best of
``--repeats`` runs. The issue's target is the pipeline within 10x of the floor on two cores;
what we measure is in ``docs/topic.md``.

    python benchmarks/model_stages.py [--minilm] [--no-pipeline] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.core.registry import get_stage_class

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"
#: (label, stage name, params): the model-backed stages of pipelines/default.yaml, and the
#: topic tagger's slower MiniLM options for comparison (``--minilm``).
STAGES: list[tuple[str, str, dict]] = [
    ("language (fastText lid.176)", "language", {}),
    ("quality (fastText, bundled)", "quality", {}),
    ("toxicity (alt-profanity-check)", "toxicity", {}),
    ("tokens (MiniLM tokenizer.json)", "tokens", {}),
    ("topic head (WordLlama, default)", "topic", {}),
]
MINILM: list[tuple[str, str, dict]] = [
    ("topic head wordllama+minilm", "topic", {"head": "wordllama+minilm"}),
    ("topic zero_shot (MiniLM, 128 tok)", "topic", {"mode": "zero_shot"}),
]


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


def pipeline_seconds(out: Path, limit: int | None = None) -> tuple[float, dict]:
    """Wall time of ``gristmill run pipelines/default.yaml``, and its ``stats.json``."""
    command = [sys.executable, "-c", "from gristmill.cli.app import main; main()"]
    command += ["run", "pipelines/default.yaml", "-o", str(out), "--overwrite", "-q"]
    if limit is not None:
        command += ["--limit", str(limit)]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, env=dict(os.environ))
    elapsed = time.perf_counter() - started
    return elapsed, json.loads((out / "_run" / "stats.json").read_text(encoding="utf-8"))


def best_of(repeats: int, measure: Callable[[], tuple[float, Any]]) -> tuple[float, Any]:
    runs = [measure() for _ in range(repeats)]
    return min(runs, key=lambda run: run[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="rows per process() call")
    parser.add_argument("--minilm", action="store_true", help="also time topic's MiniLM options")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the whole pipeline")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best kept)")
    args = parser.parse_args()
    table = sample_table()
    print(f"{table.num_rows} sample documents, {os.cpu_count()} CPUs\n")
    print(f"{'stage':36s} {'docs/s':>10s}")
    for label, name, params in STAGES + (MINILM if args.minilm else []):
        print(f"{label:36s} {stage_rate(name, params, table, args.batch):10,.0f}", flush=True)
    if args.no_pipeline:
        return
    with tempfile.TemporaryDirectory() as tmp:
        floor_dir, run_dir = Path(tmp, "floor"), Path(tmp, "run")
        floor_dir.mkdir()
        floor_s, _ = best_of(args.repeats, lambda: (floor_seconds(floor_dir), None))
        pipeline_s, stats = best_of(args.repeats, lambda: pipeline_seconds(run_dir))
        fixed_s, fixed = best_of(args.repeats, lambda: pipeline_seconds(run_dir, limit=1))
    print(f"\n{'stage, inside the default pipeline':36s} {'docs/s':>10s} {'docs in':>8s}")
    for key, stage in stats["stages"].items():
        rate = stage["docs_in"] / stage["seconds"] if stage["seconds"] else float("inf")
        print(f"{key:36s} {rate:10,.0f} {stage['docs_in']:8,d}")
    docs = table.num_rows
    floor_rate = docs / floor_s
    marginal_docs = docs - fixed["tasks"]  # --limit 1 read one document per task
    marginal_rate = marginal_docs / max(pipeline_s - fixed_s, 1e-9)
    print(f"\nParquet read+write floor:      {floor_rate:10,.0f} docs/s ({floor_s:.2f} s)")
    print(f"default pipeline, end to end:  {docs / pipeline_s:10,.0f} docs/s ({pipeline_s:.1f} s)")
    print(f"  its fixed costs (--limit 1): {fixed_s:10.1f} s (start, imports, models, passes)")
    print(f"  once started:                {marginal_rate:10,.0f} docs/s")
    print(f"ratio to the floor, end to end:  {pipeline_s / floor_s:8.1f}x")
    print(f"ratio to the floor, once started:{floor_rate / marginal_rate:8.1f}x (target: 10x)")


if __name__ == "__main__":
    main()
