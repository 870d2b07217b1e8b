"""Template matching throughput: documents/s against a 100k-template bank, per encoder and
per index, side by side; and, with ``--gpu``, vLLM embedding and generation tokens/s.

    python benchmarks/template_match.py [--docs 200] [--bank 100000]
    python benchmarks/template_match.py --gpu [--docs 2000]      # on a machine with a GPU

CPU mode (this is what the docs' figures come from): the documents are the bundled samples
(``data_samples/``), each matched as ``template_match`` does it (Gaussian pooling: 6 vectors
per document, top-32 search per vector, threshold, weighted draw). The 100k bank is the real
starter bank's description vectors (embedded by each encoder) plus copies of them with small
random perturbations up to 100k rows: searching costs the same per row as for real
descriptions, and embedding 100k descriptions with MiniLM here would take longer than the
whole benchmark. Printed: encode ms/doc, search ms/doc per index, docs/s end to end, and each
index's speed as a ratio of exact numpy.

GPU mode (``--gpu``; needs vllm and a CUDA GPU, not run where this was written: no GPU was
available): random-weight models built from configs of the released architectures' sizes, a
BGE-M3-size XLM-R encoder (24 layers, hidden 1024, 8192 positions) through vLLM's pooling
runner (token states, as the matcher uses them) and a Llama-3.2-3B-size generator (28 layers,
hidden 3072, 24 heads, 8 KV heads) through vLLM generation; prints tokens/s of each. Random
weights generate garbage, but the arithmetic, and so the throughput, is that of the real
models at these sizes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def sample_texts(count: int) -> list[str]:
    import pyarrow.parquet as pq

    texts: list[str] = []
    for path in sorted((REPO / "data_samples").glob("*.parquet")):
        texts += [t for t in pq.read_table(path, columns=["text"]).column(0).to_pylist() if t]
    return (texts * (count // max(len(texts), 1) + 1))[:count]


def big_bank(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """``size`` unit vectors: the real ones, then perturbed copies of them."""
    rng = np.random.default_rng(seed)
    picks = vectors[rng.integers(0, len(vectors), size - len(vectors))]
    noisy = picks + 0.15 * rng.normal(size=picks.shape).astype(np.float32) / np.sqrt(
        vectors.shape[1]
    )
    bank = np.concatenate([vectors, noisy]).astype(np.float32)
    return bank / np.linalg.norm(bank, axis=1, keepdims=True)


def cpu(docs: int, bank_size: int) -> None:
    from gristmill.embeddings import EncoderConfig, create_encoder
    from gristmill.instructions.bank import load_bank
    from gristmill.instructions.index import TemplateIndex
    from gristmill.instructions.pooling import gaussian_pool

    texts = sample_texts(docs)
    descriptions = load_bank().column("compatible_document_description").to_pylist()
    indexes = [("numpy", "Flat"), ("faiss", "Flat"), ("faiss", "HNSW32")]
    rows = []
    for backend in ("minilm", "static"):
        encoder = create_encoder(EncoderConfig(backend=backend))
        encoder.encode(texts[:4])  # warm up
        bank = big_bank(encoder.encode(descriptions), bank_size)
        start = time.perf_counter()
        vectors = np.concatenate(
            [
                gaussian_pool(encoder.token_states(texts[s : s + encoder.batch_size]))
                for s in range(0, len(texts), encoder.batch_size)
            ]
        )
        encode_s = time.perf_counter() - start
        queries = vectors.reshape(-1, vectors.shape[2])
        exact_scores = None
        for kind, factory in indexes:
            built = time.perf_counter()
            index = TemplateIndex(bank, kind, factory)  # type: ignore[arg-type]
            build_s = time.perf_counter() - built
            start = time.perf_counter()
            scores, _found = index.search(queries, 32)
            search_s = time.perf_counter() - start
            if exact_scores is None:
                exact_scores = scores
            # The perturbed copies make near-ties, so row identity is the wrong yardstick:
            # count queries whose best score an approximate index still finds (within 0.005).
            top1 = float(np.mean(scores[:, 0] >= exact_scores[:, 0] - 0.005))
            rows.append((backend, f"{kind}:{factory}", encode_s, search_s, build_s, top1))
    print(
        f"{docs} documents (bundled samples), bank of {bank_size:,} templates, "
        "top-32, 6 vectors/doc"
    )
    print(
        f"{'encoder':8} {'index':14} {'encode ms/doc':>13} {'search ms/doc':>13} "
        f"{'docs/s':>8} {'search vs numpy':>15} {'build s':>8} {'top-1 found':>11}"
    )
    numpy_search = {r[0]: r[3] for r in rows if r[1] == "numpy:Flat"}
    for backend, name, encode_s, search_s, build_s, recall in rows:
        print(
            f"{backend:8} {name:14} {1000 * encode_s / docs:13.2f} {1000 * search_s / docs:13.3f} "
            f"{docs / (encode_s + search_s):8.1f} {numpy_search[backend] / search_s:14.2f}x "
            f"{build_s:8.2f} {recall:11.3f}"
        )


def write_model(kind: str, directory: Path) -> Path:
    """A random-weight model of the released size, with MiniLM's tokenizer (ids fit both)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, XLMRobertaConfig, XLMRobertaModel

    from gristmill.embeddings.transformers import minilm_path

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if kind == "encoder":  # BGE-M3 / instruction_template_retrieval_embedding
        config = XLMRobertaConfig(
            vocab_size=250002,
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            max_position_embeddings=8194,
            pad_token_id=0,
            torch_dtype="float16",
            position_embedding_type="absolute",
        )
        model = XLMRobertaModel(config).half()
    else:  # Llama-3.2-3B: template_instantiator
        config = LlamaConfig(
            vocab_size=128256,
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=28,
            num_attention_heads=24,
            num_key_value_heads=8,
            max_position_embeddings=8192,
            rope_theta=500000.0,
            tie_word_embeddings=True,
            torch_dtype="bfloat16",
            bos_token_id=101,
            eos_token_id=102,
            pad_token_id=0,
        )
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(Path(minilm_path()) / name, directory / name)
    return directory


def gpu(docs: int) -> None:
    from vllm import LLM, SamplingParams

    from gristmill.embeddings.vllm import VllmEncoder
    from gristmill.instructions.pooling import gaussian_pool

    texts = sample_texts(docs)
    scratch = Path(tempfile.mkdtemp(prefix="gristmill-bench-"))
    results = {}
    encoder = VllmEncoder(
        str(write_model("encoder", scratch / "enc")), max_tokens=2048, gpu_memory_utilization=0.4
    )
    encoder.token_states(texts[:8])
    start = time.perf_counter()
    tokens = encoder.token_states(texts)
    gaussian_pool(tokens)
    seconds = time.perf_counter() - start
    results["embed_tokens_per_s"] = float(tokens.mask.sum() / seconds)
    results["embed_docs_per_s"] = docs / seconds
    encoder.close()
    del encoder
    llm = LLM(
        model=str(write_model("generator", scratch / "gen")),
        max_model_len=4096,
        gpu_memory_utilization=0.4,
    )
    prompts = [t[:6000] for t in texts]
    params = SamplingParams(max_tokens=256, temperature=0.0, ignore_eos=True)
    llm.generate(prompts[:8], params, use_tqdm=False)
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    prompt_tokens = sum(len(o.prompt_token_ids) for o in outputs)
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    results["generate_output_tokens_per_s"] = generated / seconds
    results["generate_total_tokens_per_s"] = (prompt_tokens + generated) / seconds
    print(json.dumps({"docs": docs, **{k: round(v, 1) for k, v in results.items()}}, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--bank", type=int, default=100_000)
    parser.add_argument("--gpu", action="store_true", help="vLLM throughput on a CUDA GPU")
    args = parser.parse_args()
    if args.gpu:
        gpu(args.docs)
    else:
        cpu(args.docs, args.bank)


if __name__ == "__main__":
    main()
