"""Encoders behind one interface: the packaged MiniLM, the WordLlama table, and a local
transformers folder in the released retrieval encoder's architecture (a tiny XLM-R built here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gristmill.core.phase import run_in_memory
from gristmill.embeddings import EncoderConfig, create_encoder, load_encoder, mean_pool
from gristmill.errors import ConfigError
from gristmill.instructions.match import FI_MATCHES, TemplateMatch

TEXTS = [
    "The rainbow is caused by refraction of sunlight in water droplets.",
    "A patent for a clock timer with a vibrating balance.",
    "",
]


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from support.tiny_encoder import build_tiny_xlmr

    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny_xlmr"))


def test_minilm_matches_its_own_sentence_transformers_pooling() -> None:
    from sentence_transformers import SentenceTransformer

    from gristmill.embeddings.transformers import minilm_path

    encoder = load_encoder(EncoderConfig(backend="minilm"))
    assert encoder.dim == 384 and encoder.max_tokens == 256
    ours = encoder.encode(TEXTS[:2])
    reference = SentenceTransformer(minilm_path(), device="cpu", local_files_only=True).encode(
        TEXTS[:2], normalize_embeddings=True
    )
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_static_encoder_states_are_table_rows_and_empty_text_is_zero() -> None:
    encoder = create_encoder(EncoderConfig(backend="static"))
    tokens = encoder.token_states(TEXTS)
    assert tokens.states.shape[0] == 3 and tokens.states.shape[2] == encoder.dim == 256
    assert not tokens.mask[2].any()  # no BOS or other special token counts
    vectors = mean_pool(tokens)
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-6)
    assert not vectors[2].any()
    assert vectors[0] @ vectors[1] < 0.5


@pytest.mark.parametrize("limit", [64, 256])
def test_static_token_ids_are_the_whole_texts_first_tokens(limit: int) -> None:
    """The static encoder reads a short cut of each text first and widens it only where that
    gives too few tokens: the ids are those of the whole text, on every sample document (code,
    Chinese, verse, pages of one long line) and on texts whose words are long."""
    from support.data import sample_table

    from gristmill.embeddings.static import StaticEncoder

    encoder = StaticEncoder()
    long_words = "Antidisestablishmentarianism notwithstanding, " * 200
    texts = [*sample_table()["text"].to_pylist(), long_words, "", "word"]
    whole = encoder.tokenizer.encode_batch(texts, add_special_tokens=False)
    expected = [e.ids[:limit] for e in whole]
    assert [ids.tolist() for ids in encoder.token_ids(texts, limit)] == expected
    assert sum(len(ids) == limit for ids in expected) > len(texts) // 3


def test_static_token_ids_read_before_serve_a_later_call_for_fewer_tokens() -> None:
    """``template_match`` (512 tokens, in chunks of 256 documents) then ``topic`` (256, the
    whole batch) tokenise a batch once, and the reused ids are still the whole text's first."""
    from support.data import sample_table

    from gristmill.embeddings.static import StaticEncoder

    StaticEncoder.recent.clear()
    texts = sample_table()["text"].to_pylist()[:600]
    whole = StaticEncoder().tokenizer.encode_batch(texts, add_special_tokens=False)
    first, second = StaticEncoder(), StaticEncoder()  # two stages, one process
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        assert [ids.tolist() for ids in first.token_ids(chunk, 512)] == [
            e.ids[:512] for e in whole[start : start + 256]
        ]
    second.tokenizer = None  # any tokenising now fails
    assert [ids.tolist() for ids in second.token_ids(texts, 256)] == [e.ids[:256] for e in whole]
    assert [ids.tolist() for ids in second.token_ids(texts, 512)] == [e.ids[:512] for e in whole]
    assert [len(ids) for ids in second.token_ids(["", ""], 256)] == [0, 0]
    # More tokens than were read: tokenised again unless the text was read whole.
    longer = [t for t, e in zip(texts, whole, strict=True) if len(e.ids) > 600]
    assert longer
    with pytest.raises(AttributeError):
        second.token_ids(longer[:1], 600)
    second.tokenizer = first.tokenizer
    expected = [
        e.ids[:1024] for e in second.tokenizer.encode_batch(longer, add_special_tokens=False)
    ]
    assert [ids.tolist() for ids in second.token_ids(longer, 1024)] == expected


def test_remembered_token_ids_are_bounded_by_characters() -> None:
    from gristmill.embeddings.static import RecentTokenIds

    recent = RecentTokenIds(max_chars=1_000)
    ids = np.arange(10)
    for n in range(50):
        recent.put(f"{n:03d}" + "x" * 97, ids, whole=True)  # 100 characters each
    held = [n for n in range(50) if recent.get(f"{n:03d}" + "x" * 97, 5) is not None]
    assert held == list(range(40, 50))  # the latest ten, the oldest dropped first
    recent.put("y" * 200_000, ids, whole=True)  # too long to keep
    assert recent.get("y" * 200_000, 5) is None
    assert recent.get("049" + "x" * 97, 20) is not None  # read whole: all of its ids
    recent.put("z", ids, whole=False)
    assert recent.get("z", 20) is None and recent.get("z", 10) is not None


def test_a_local_xlmr_folder_encodes_and_matches(tiny_xlmr: Path, tmp_path: Path) -> None:
    config = EncoderConfig(backend="transformers", path=str(tiny_xlmr), max_tokens=64)
    encoder = create_encoder(config)
    assert encoder.dim == 128 and encoder.max_tokens == 64
    long = " ".join(TEXTS[:2]) * 40
    tokens = encoder.token_states([long, TEXTS[0]])
    assert tokens.states.shape[:2] == tokens.mask.shape and tokens.mask.sum(1)[0] == 64
    table = pa.table({"text": [long, TEXTS[0], None]})
    stage = TemplateMatch(
        encoder=config.model_dump(), index_dir=str(tmp_path / "idx"), threshold=-1.0
    )
    assert TemplateMatch(encoder=config.model_dump()).threshold == 0.865  # the paper's
    stage.use_phase_result(run_in_memory(stage.corpus_phase(), [table]))
    stage.setup()
    out = stage.process(table).column(FI_MATCHES).to_pylist()
    assert [len(m) for m in out] == [6, 6, 0]
    json.dumps(out)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load an encoder"):
        create_encoder(EncoderConfig(backend="transformers", path=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="needs path"):
        create_encoder(EncoderConfig(backend="transformers"))
