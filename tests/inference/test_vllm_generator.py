"""The real vLLM engine (vllm-cpu on a CPU) on the tiny random Llama.

Excluded from the default run (``-m vllm``; CI runs it in its own step, in the vLLM venv):
starting an engine takes about a minute on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from gristmill import Pipeline  # noqa: E402
from gristmill.inference import GenerationParams, GeneratorConfig, create_generator  # noqa: E402
from gristmill.io import ParquetReader, ParquetWriter  # noqa: E402
from gristmill.refiners.prox.stages import ProxChunk, ProxDoc  # noqa: E402

PROMPTS = [
    "Alice was beginning to get very tired of sitting by her sister on the bank",
    "We the People of the United States, in Order to form a more perfect Union",
    "The game began development in 2010",
]
#: CPU-friendly engine settings: fp32 like the transformers backend, no compilation.
OPTIONS = {
    "dtype": "float32",
    "max_model_len": 2048,
    "enforce_eager": True,
    "cpu_kvcache_space_gb": 1,
    "engine_args": {"compilation_config": {"mode": 0}},
}


def vllm_config(model: Path) -> dict:
    return {"backend": "vllm", "model": str(model), "options": OPTIONS}


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path):
    gen = create_generator(GeneratorConfig(**vllm_config(tiny_model_dir)))
    yield gen
    gen.close()


def test_greedy_output_matches_the_transformers_backend(engine, tiny_model_dir: Path):
    params = GenerationParams(max_tokens=8)
    reference = create_generator(GeneratorConfig(backend="transformers", model=str(tiny_model_dir)))
    try:
        expected = [reference.generate([p], params)[0] for p in PROMPTS]
    finally:
        reference.close()
    assert engine.generate(PROMPTS, params) == expected


def test_token_ids_and_overlong_prompts_in_one_call(engine):
    ids = engine.tokenizer(PROMPTS[0])["input_ids"]
    done = engine.complete([ids, "word " * 3000, PROMPTS[0]], GenerationParams(max_tokens=6))
    assert done[0].ok and done[0].text == done[2].text  # ids are what text becomes
    assert not done[1].ok and done[1].text == "" and "context" in (done[1].error or "")
    assert engine.errors >= 1


def test_prox_pipeline_through_vllm(samples_dir: Path, tiny_model_dir: Path, tmp_path: Path):
    table = pa.concat_tables(
        [
            pq.read_table(samples_dir / n)
            for n in ("web-ccnet-0000.parquet", "web-html-0000.parquet")
        ]
    )
    table = table.filter(pc.less(pc.utf8_length(table.column("text")), 4000)).slice(0, 30)
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out"
    stages = [
        ProxDoc(generator=vllm_config(tiny_model_dir), max_new_tokens=16),
        ProxChunk(generator=vllm_config(tiny_model_dir), max_new_tokens=16, executor="strict"),
    ]
    report = Pipeline(stages, reader=ParquetReader(str(src)), writer=ParquetWriter(str(out))).run()
    assert report.ok, report.failures
    kept = pa.concat_tables(pq.read_table(p) for p in out.glob("*.parquet"))
    rejects = list((out / "_rejects").glob("*.parquet"))
    rejected = pa.concat_tables(pq.read_table(p) for p in rejects) if rejects else None
    rows = kept.to_pylist() + (rejected.to_pylist() if rejected is not None else [])
    original = dict(
        zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True)
    )
    assert sorted(r["id"] for r in rows) == sorted(original)
    assert all(r["prox_status"] and r["prox_doc_program"] is not None for r in rows)
    assert all(r["text"] == original[r["id"]] for r in rows)  # garbage edits nothing
    doc = report.stats.stages["01_prox_doc"].counters
    chunk = report.stats.stages["02_prox_chunk"].counters
    assert doc["prompts"] == table.num_rows and doc["generation_errors"] == 0
    assert chunk["errors"] >= 1  # strict mode counts the garbage
