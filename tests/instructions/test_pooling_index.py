"""Gaussian pooling against the spec's worked example, and the numpy and FAISS indexes."""

from __future__ import annotations

import numpy as np
import pytest

from gristmill.embeddings.base import TokenStates
from gristmill.instructions.index import TemplateIndex, resolve_kind
from gristmill.instructions.pooling import (
    document_vectors,
    gaussian_pool,
    gaussian_pool_lookup,
    gaussian_weights,
)


def test_weights_equal_the_spec_worked_example() -> None:
    """T_eff = 18 real tokens + 2 padding: centres 3, 6, 9, 12, 15; sigma*T = 0.9 tokens;
    chunk 1 puts 0.444 on token 3, 0.240 on tokens 2 and 4, 0.038 on token 1 (spec A.3)."""
    mask = np.array([[True] * 18 + [False] * 2])
    weights = gaussian_weights(mask)[0]
    assert weights.shape == (5, 20)
    chunk = weights[0]  # token t sits at index t - 1
    assert chunk[2] == pytest.approx(0.444, abs=5e-4)
    assert chunk[1] == pytest.approx(0.240, abs=5e-4)
    assert chunk[3] == pytest.approx(0.240, abs=5e-4)
    assert chunk[0] == pytest.approx(0.038, abs=5e-4)
    assert chunk[18:].sum() == 0  # padding never weighs
    for k, centre in enumerate((3, 6, 9, 12, 15)):
        assert int(np.argmax(weights[k])) == centre - 1
        assert weights[k].sum() == pytest.approx(1.0)


def test_padding_side_does_not_matter_and_global_is_the_mean() -> None:
    rng = np.random.default_rng(0)
    states = rng.normal(size=(1, 18, 8))
    right = TokenStates(
        np.concatenate([states, np.zeros((1, 2, 8))], 1), np.array([[1] * 18 + [0] * 2], bool)
    )
    left = TokenStates(
        np.concatenate([np.zeros((1, 2, 8)), states], 1), np.array([[0] * 2 + [1] * 18], bool)
    )
    a, b = gaussian_pool(right), gaussian_pool(left)
    assert a.shape == (1, 6, 8)
    np.testing.assert_allclose(a, b, atol=1e-6)
    mean = states[0].mean(0)
    np.testing.assert_allclose(a[0, 0], mean / np.linalg.norm(mean), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, atol=1e-6)
    # alpha = 0: every window vector is the global one
    blended = gaussian_pool(right, alpha=0.0)
    np.testing.assert_allclose(blended[0, 1:], np.repeat(blended[0, :1], 5, 0), atol=1e-6)


def test_a_text_without_tokens_gives_zero_vectors_not_nan() -> None:
    out = gaussian_pool(TokenStates(np.zeros((1, 0, 4)), np.zeros((1, 0), bool)))
    assert out.shape == (1, 6, 4) and not np.isnan(out).any() and not out.any()


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_the_static_lookup_path_equals_pooling_the_padded_states(alpha: float) -> None:
    """The matcher pools a static table's rows without padding a batch: the same vectors as
    ``gaussian_pool`` over the padded token states, on real documents of every length (one
    token, empty, a 10 MB text clipped to the encoder's 512 tokens)."""
    from support.data import sample_table

    from gristmill.embeddings import EncoderConfig, create_encoder

    encoder = create_encoder(EncoderConfig(backend="static", batch_size=64))
    texts = [*sample_table()["text"].to_pylist()[:300], "", "a", "Water boils. " * 800_000]
    padded = np.concatenate(
        [
            gaussian_pool(encoder.token_states(texts[s : s + 64]), alpha=alpha)
            for s in range(0, len(texts), 64)
        ]
    )
    lookup = gaussian_pool_lookup(encoder.token_ids(texts), encoder.table, alpha=alpha)
    np.testing.assert_allclose(lookup, padded, atol=2e-6)
    np.testing.assert_allclose(document_vectors(encoder, texts, alpha=alpha), lookup, atol=0)
    assert not lookup[-3].any() and np.isfinite(lookup).all()
    assert encoder.token_ids(texts[-1:])[0].size == encoder.max_tokens


def test_numpy_and_faiss_indexes_agree(tmp_path) -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    bank = rng.normal(size=(3000, 32)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    queries = bank[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    exact = TemplateIndex(bank, "numpy")
    flat = TemplateIndex(bank, "faiss")
    s1, r1 = exact.search(queries, 10)
    s2, r2 = flat.search(queries, 10)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert (r1[:, 0] == np.arange(50)).all()  # each query's own row is its nearest
    assert (np.diff(s1, axis=1) <= 1e-6).all()  # best first
    flat.save(tmp_path / "i")
    again = TemplateIndex.load(tmp_path / "i")
    assert again.kind == "faiss"
    np.testing.assert_array_equal(again.search(queries, 10)[1], r1)
    hnsw = TemplateIndex(bank, "faiss", "HNSW32")
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(hnsw.search(queries, 10)[1], r1, strict=True)]
    )
    assert recall > 0.9


def test_auto_picks_numpy_for_small_banks_and_k_is_capped() -> None:
    assert resolve_kind("auto", 300) == "numpy"
    index = TemplateIndex(np.eye(3, dtype=np.float32), "auto")
    _scores, rows = index.search(np.eye(3, dtype=np.float32), 10)
    assert rows.shape == (3, 3) and (rows[:, 0] == np.arange(3)).all()
    empty = TemplateIndex(np.zeros((0, 3), np.float32), "numpy")
    assert empty.search(np.eye(3, dtype=np.float32), 5)[1].shape == (3, 0)
