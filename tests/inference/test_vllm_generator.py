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


def test_encoded_text_is_what_vllm_makes_of_it(engine, samples_dir: Path):
    from gristmill.refiners.prox import build_chunk_prompts_batch

    texts = pq.read_table(samples_dir / "web-html-0000.parquet").column("text").to_pylist()
    chunks = build_chunk_prompts_batch(texts[:12], engine.tokenizer)
    prompts = [c.prompt for cs in chunks for c in cs][:24] + PROMPTS + ["", " ", "<s></s>"]
    ids = engine.encode(prompts)
    assert ids == [engine.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    fitting = [p for p, row in zip(prompts, ids, strict=True) if len(row) < engine.context]
    outputs = engine.llm.generate(
        fitting, engine._vllm.SamplingParams(max_tokens=1), use_tqdm=False
    )
    assert [o.prompt_token_ids for o in outputs] == [r for r in ids if len(r) < engine.context]


def test_streamed_batches_equal_one_call(engine):
    params = GenerationParams(max_tokens=6)
    ids = engine.tokenizer(PROMPTS[0])["input_ids"]
    batches = [[ids, "word " * 3000], [], ["", PROMPTS[1]], [PROMPTS[2], []]]
    flat = [p for b in batches for p in b]
    before = engine.errors, engine.prompts
    streamed = engine.complete_stream(iter(batches), params)
    assert engine.errors - before[0] == 2 and engine.prompts - before[1] == len(flat)
    assert streamed == engine.complete(flat, params)
    assert [c.ok for c in streamed] == [True, False, True, True, True, False]  # "" has a BOS
    assert streamed[0].text and streamed[0].text == engine.generate([PROMPTS[0]], params)[0]
    # vLLM without LLM.enqueue: one generate call, the same completions.
    assert engine._generate_at_once(flat, params) == streamed


def test_a_prompt_vllm_refuses_fails_alone(engine):
    params = GenerationParams(max_tokens=4)
    good = engine.tokenizer(PROMPTS[1])["input_ids"]
    done = engine.complete([good, [10**7, 5], PROMPTS[2]], params)
    assert done[0].ok and done[2].ok and not done[1].ok and done[1].error
    assert done[0].text == engine.generate([PROMPTS[1]], params)[0]  # nothing left queued


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


def test_a_failure_while_building_batches_leaves_nothing_queued(engine):
    params = GenerationParams(max_tokens=4)

    def batches():
        yield [PROMPTS[0], PROMPTS[1]]
        raise ValueError("prompt building failed")

    with pytest.raises(ValueError, match="prompt building failed"):
        engine.complete_stream(batches(), params)
    assert engine.complete([PROMPTS[2]], params) == [
        engine._generate_at_once([PROMPTS[2]], params)[0]
    ]
