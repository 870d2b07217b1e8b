"""``pipelines/fineinstructions.yaml`` through the real vLLM engine (vllm-cpu) on the tiny Llama.

Excluded from the default run (``-m vllm``; CI runs it in its own step, in the vLLM venv).
With random weights the generations are garbage: the run must count them and lose nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from support.fineinstructions_rows import bank_matches, real_documents  # noqa: E402
from support.fineinstructions_run import check_run, on_cpu, run_on_cpu  # noqa: E402

from gristmill.instructions.generation import PAIRS_FIELD  # noqa: E402
from gristmill.instructions.instantiate import Instantiate  # noqa: E402

#: CPU-friendly engine settings, as tests/inference uses them: fp32, no compilation.
OPTIONS = {
    "dtype": "float32",
    "max_model_len": 2048,
    "enforce_eager": True,
    "cpu_kvcache_space_gb": 1,
    "engine_args": {"compilation_config": {"mode": 0}},
}


def test_instantiate_through_vllm_counts_garbage(samples_dir: Path, tiny_model_dir: Path):
    documents = real_documents(samples_dir, 6)
    batch = documents.append_column("fi_matches", bank_matches(documents, 2))
    stage = Instantiate(
        generator={"backend": "vllm", "model": str(tiny_model_dir), "options": OPTIONS},
        max_new_tokens=32,
        max_document_chars=1500,
    )
    stage.setup()
    try:
        out = stage.process(batch)
    finally:
        stage.teardown()
    assert out.column("id").to_pylist() == batch.column("id").to_pylist()
    assert out.schema.field("fi_pairs").type == PAIRS_FIELD.type
    counters = stage.stats.counters
    assert counters["prompts"] == counters["pairs_in"] == 12
    outcomes = [k for k in counters if k not in ("prompts", "pairs_in", "truncated_documents")]
    assert sum(counters[k] for k in outcomes) == 12, counters
    assert all(isinstance(p, list) for p in out.column("fi_pairs").to_pylist())


def test_the_pipeline_runs_through_vllm(samples_dir: Path, tiny_model_dir: Path, tmp_path: Path):
    generator = {"backend": "vllm", "model": str(tiny_model_dir), "options": OPTIONS}
    report, out = run_on_cpu(on_cpu(generator), samples_dir, tmp_path)
    check_run(report, out)
    assert isinstance(out, pa.Table)
