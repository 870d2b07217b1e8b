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

import numpy as np

from gristmill.embeddings.base import TokenStates, normalise

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
