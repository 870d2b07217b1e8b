"""Gaussian pooling (FineInstructions, App. B): one global and K local vectors per document.

A document can answer templates about its opening and others about its middle; one mean vector
blurs them together. Gaussian pooling keeps the global mean and adds K window averages whose
kernels sit at 1/(K+1), ..., K/(K+1) of the document's real length, each with standard deviation
``sigma`` times that length, so each local vector speaks for one part of the document. Template
descriptions are embedded with the global vector only (the spec leaves the template side
unstated; a description is one short paragraph, so it has no parts to tell apart).

Positions count real tokens only, from 1 (``t = 1..T``): padding on either side changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from gristmill.embeddings.base import Encoder, TokenStates, normalise
from gristmill.embeddings.static import StaticEncoder

#: The paper's defaults: 5 windows, kernels 5% of the length wide, purely local vectors.
WINDOWS = 5
SIGMA = 0.05
ALPHA = 1.0


def gaussian_weights(mask: np.ndarray, windows: int = WINDOWS, sigma: float = SIGMA) -> np.ndarray:
    """``w[b, k, t]``: the weight of token t in window k of text b (each window sums to 1).

    A text with no real token gets all-zero weights (its vectors are zero, never NaN).
    """
    mask = np.asarray(mask, dtype=bool)
    real = mask.sum(axis=1).astype(np.float64)  # T per text
    position = np.cumsum(mask, axis=1).astype(np.float64)  # t = 1..T on real tokens
    ratios = np.arange(1, windows + 1, dtype=np.float64) / (windows + 1)
    centers = ratios[None, :] * real[:, None]  # c_k = rho_k T
    width = np.maximum(sigma * real, 1e-12)[:, None, None]
    offsets = (position[:, None, :] - centers[:, :, None]) / width
    kernel = np.exp(-0.5 * offsets**2) * mask[:, None, :]
    total = kernel.sum(axis=2, keepdims=True)
    return np.divide(kernel, total, out=np.zeros_like(kernel), where=total > 0)


def gaussian_pool(
    tokens: TokenStates,
    windows: int = WINDOWS,
    sigma: float = SIGMA,
    alpha: float = ALPHA,
    normalize: bool = True,
) -> np.ndarray:
    """``E[b] = [h_bar, h*_1, ..., h*_K]``: ``[batch, K+1, dim]``, L2-normalised by default.

    ``h_bar`` is the masked mean, ``h~_k`` the Gaussian window averages, and
    ``h*_k = (1 - alpha) h_bar + alpha h~_k``.
    """
    states = np.asarray(tokens.states, dtype=np.float64)
    mask = np.asarray(tokens.mask, dtype=bool)
    counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    mean = (states * mask[..., None]).sum(axis=1) / counts  # [B, d]
    local = np.einsum("bkt,btd->bkd", gaussian_weights(mask, windows, sigma), states)
    blended = (1.0 - alpha) * mean[:, None, :] + alpha * local
    out = np.concatenate([mean[:, None, :], blended], axis=1).astype(np.float32)
    return normalise(out) if normalize else out


def gaussian_pool_lookup(
    ids: Sequence[np.ndarray],
    table: np.ndarray,
    windows: int = WINDOWS,
    sigma: float = SIGMA,
    alpha: float = ALPHA,
) -> np.ndarray:
    """``gaussian_pool`` for a static encoder, whose token states are rows of ``table``.

    Pooling is linear in the states, so each text's K+1 vectors are its slot weights times its
    token rows, one small matrix product per text: no batch padded to its longest text, no
    ``[batch, tokens, dim]`` array (that array was most of the matcher's time on a CPU).
    """
    out = np.zeros((len(ids), windows + 1, table.shape[1]), dtype=np.float32)
    for row, tokens in enumerate(ids):
        if len(tokens):
            out[row] = slot_weights(len(tokens), windows, sigma, alpha) @ table[tokens]
    return normalise(out)


@lru_cache(maxsize=128)
def slot_weights(length: int, windows: int, sigma: float, alpha: float) -> np.ndarray:
    """``[K+1, length]`` float32: the mean's and the K blended windows' weights of a text of
    ``length`` tokens. They depend on the length alone, and most documents share one (the
    token limit), so that one is computed once per process; the bound keeps a long limit's
    rarer lengths from piling up."""
    mask = np.ones((1, length), dtype=bool)
    local = gaussian_weights(mask, windows, sigma)[0]  # [K, T]
    mean = np.full((1, length), 1.0 / length)
    weights = np.concatenate([mean, (1.0 - alpha) * mean + alpha * local]).astype(np.float32)
    weights.flags.writeable = False  # shared by every caller
    return weights


def document_vectors(
    encoder: Encoder,
    texts: Sequence[str],
    windows: int = WINDOWS,
    sigma: float = SIGMA,
    alpha: float = ALPHA,
) -> np.ndarray:
    """``[len(texts), K+1, dim]``: the matcher's Gaussian-pooled vectors of each document,
    in the encoder's batches (a static table takes the lookup path above)."""
    size = encoder.batch_size
    parts = []
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        if isinstance(encoder, StaticEncoder):
            parts.append(
                gaussian_pool_lookup(encoder.token_ids(chunk), encoder.table, windows, sigma, alpha)
            )
        else:
            parts.append(gaussian_pool(encoder.token_states(chunk), windows, sigma, alpha))
    if not parts:
        return np.zeros((0, windows + 1, encoder.dim), dtype=np.float32)
    return np.concatenate(parts)
