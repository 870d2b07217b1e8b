"""A tiny random XLM-R encoder (the released retrieval encoder's architecture), saved as a
Hugging Face folder, with the byte-level BPE tokenizer the tiny Llama uses."""

from __future__ import annotations

from pathlib import Path

from support.tiny_model import build_tokenizer


def build_tiny_xlmr(directory: str | Path, seed: int = 0) -> Path:
    """Write a random 2-layer XLM-R (hidden 128, 2 heads) and its tokenizer."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=130,  # 128 usable positions after RoBERTa's padding offset
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        position_embedding_type="absolute",  # vLLM's RoBERTa reads it; transformers 5 omits it
    )
    torch.manual_seed(seed)
    XLMRobertaModel(config).save_pretrained(directory)
    return directory
