"""``pipelines/fineinstructions.yaml`` on a CPU: the shipped file with its models swapped for
the tiny Llama (any backend) and MiniLM, run over real documents, and the checks every such
run must pass. Shared by the transformers and the vLLM tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from gristmill.runs.config import parse_pipeline
from support.fineinstructions_rows import real_documents

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipelines" / "fineinstructions.yaml"
#: Outcomes of every pair ``instantiate`` is asked for; they add up to its ``pairs_in``.
OUTCOMES = (
    "pairs_out",
    "null_outputs",
    "malformed",
    "generation_errors",
    "unfilled_variables",
    "excerpt_missing",
    "excerpt_ambiguous",
    "excerpt_malformed",
    "low_excerpt_ratio",
)


def on_cpu(generator: dict[str, Any]) -> dict[str, Any]:
    """The pipeline file with its models swapped for CPU ones, everything else as shipped."""
    raw = yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))
    for entry in raw["stages"]:
        if not isinstance(entry, dict):
            continue
        ((name, params),) = entry.items()
        if name == "template_match":
            params["encoder"] = {"backend": "minilm"}  # the CPU default, shipped in a package
            params["max_templates"] = 2  # fewer prompts for the CPU
        if name in ("instantiate", "judge"):
            params["generator"] = generator
            params["max_new_tokens"] = 16
        if name == "instantiate":
            params["max_document_chars"] = 500
    return raw


def run_on_cpu(raw: dict[str, Any], samples_dir: Path, tmp_path: Path) -> tuple[Any, pa.Table]:
    documents = real_documents(samples_dir, 8, max_chars=1200)
    pq.write_table(documents, tmp_path / "in.parquet")
    raw["input"] = {"paths": [str(tmp_path / "in.parquet")]}
    raw["output"] = {"path": str(tmp_path / "out"), "rejects": True}
    raw["executor"] = {"type": "local", "workers": 1}
    os_env_index = tmp_path / "index"
    for entry in raw["stages"]:
        if isinstance(entry, dict) and "template_match" in entry:
            entry["template_match"]["index_dir"] = str(os_env_index)
    report = parse_pipeline(yaml.safe_dump(raw), "fineinstructions-on-cpu").build().run()
    assert report.ok, report.failures
    out = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "out").glob("*.parquet")))
    assert sorted(out.column("id").to_pylist()) == sorted(documents.column("id").to_pylist())
    return report, out


def check_run(report: Any, out: pa.Table) -> None:
    """Documents all out; pairs well formed or counted; packing within budget."""
    counters = {s.name: s.counters for s in report.stats.stages.values()}
    matched = sum(len(m or []) for m in out.column("fi_matches").to_pylist())
    asked = counters["instantiate"].get("pairs_in", 0)
    assert asked == matched  # every match with text became one prompt
    assert sum(counters["instantiate"].get(k, 0) for k in OUTCOMES) == asked
    json.dumps(report.stats.to_dict())
    for row in out.to_pylist():
        for pair in row["fi_pairs"]:
            assert pair["instruction"] and pair["answer"] and pair["excerpt_ratio"] >= 0.8
            assert pair["judge_score"] is not None and pair["judge_score"] >= 4
        assert row["fi_packed_tokens"] == sum(p["tokens"] for p in row["fi_packed"])
