"""A word TF-IDF model with an ensemble of calibrated linear classifiers, as plain arrays.

This is the shape of the offensive-language model inside ``alt-profanity-check`` (scikit-learn's
``TfidfVectorizer`` and a ``CalibratedClassifierCV`` of ``LinearSVC``), scored here with numpy
alone. Why: importing scikit-learn and unpickling its estimators cost every worker process
2-4 s, more than the stage spends scoring a shard. The arrays are read out of the package's
joblib files once per machine (the only place that imports scikit-learn) and kept as an
``.npz`` in the cache, keyed by the files' digest; every later load reads that file with
``allow_pickle=False``. The scores equal the package's own ``predict_prob`` (tested).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.core.cache import cache_dir
from gristmill.errors import ConfigError
from gristmill.io.filesystem import atomic_output

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearTextModel:
    """``P(positive) = mean_i sigmoid(-(a_i * (w_i . x + c_i) + b_i))`` over the members i,
    where ``x`` is the L2-normalised TF-IDF vector of the text's in-vocabulary words (Platt
    scaling per member, scikit-learn's sigmoid calibration)."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # [features]
    coefficients: np.ndarray  # [members, features]
    intercepts: np.ndarray  # [members]
    platt_a: np.ndarray  # [members]
    platt_b: np.ndarray  # [members]
    token_pattern: str
    lowercase: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "_words", re.compile(self.token_pattern))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The positive class's probability of each text (float64)."""
        words: re.Pattern[str] = self._words  # type: ignore[attr-defined]
        lookup = self.vocabulary.get
        rows: list[int] = []
        terms: list[int] = []
        for row, text in enumerate(texts):
            found = words.findall(text.lower() if self.lowercase else text)
            ids = [i for i in map(lookup, found) if i is not None]
            rows.extend([row] * len(ids))
            terms.extend(ids)
        n = len(texts)
        members = self.coefficients.shape[0]
        if not terms:
            decision = np.repeat(self.intercepts[:, None], n, axis=1)
        else:
            row_ids = np.asarray(rows, dtype=np.int64)
            term_ids = np.asarray(terms, dtype=np.int64)
            # Counts per (row, term): one key per pair, summed; then tf * idf, L2 per row.
            keys, counts = np.unique(row_ids * len(self.idf) + term_ids, return_counts=True)
            pair_rows, pair_terms = np.divmod(keys, len(self.idf))
            weights = counts * self.idf[pair_terms]
            norms = np.sqrt(np.bincount(pair_rows, weights * weights, minlength=n))
            weights = weights / norms[pair_rows]
            decision = np.empty((members, n))
            for member in range(members):
                products = weights * self.coefficients[member, pair_terms]
                decision[member] = np.bincount(pair_rows, products, minlength=n)
            decision += self.intercepts[:, None]
        logits = self.platt_a[:, None] * decision + self.platt_b[:, None]
        return (1.0 / (1.0 + np.exp(logits))).mean(axis=0)

    def save(self, path: Path) -> None:
        """Written whole or not at all: concurrent workers may convert and save at once."""
        words = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        with atomic_output(str(path)) as handle:
            np.savez(
                handle,
                words=np.array(words, dtype=np.str_),
                idf=self.idf,
                coefficients=self.coefficients,
                intercepts=self.intercepts,
                platt_a=self.platt_a,
                platt_b=self.platt_b,
                token_pattern=np.array(self.token_pattern, dtype=np.str_),
                lowercase=np.array(self.lowercase),
            )

    @classmethod
    def load(cls, path: Path) -> LinearTextModel:
        try:
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                words = [str(w) for w in data["words"]]
                return cls(
                    vocabulary={w: i for i, w in enumerate(words)},
                    idf=data["idf"].astype(np.float64),
                    coefficients=data["coefficients"].astype(np.float64),
                    intercepts=data["intercepts"].astype(np.float64),
                    platt_a=data["platt_a"].astype(np.float64),
                    platt_b=data["platt_b"].astype(np.float64),
                    token_pattern=str(data["token_pattern"]),
                    lowercase=bool(data["lowercase"]),
                )
        except (OSError, KeyError, ValueError) as error:
            raise ConfigError(f"{path}: not a linear text model file ({error})") from None


def from_scikit_learn(vectorizer: Any, classifier: Any) -> LinearTextModel:
    """The arrays of a fitted word ``TfidfVectorizer`` and a binary ``CalibratedClassifierCV``
    of linear models with sigmoid calibration; anything else is refused, not approximated."""
    params = vectorizer.get_params()
    supported = (
        params["analyzer"] == "word"
        and params["ngram_range"] == (1, 1)
        and params["norm"] == "l2"
        and params["use_idf"]
        and not params["sublinear_tf"]
        and not params["binary"]
        and params["tokenizer"] is None
        and params["preprocessor"] is None
        and params["strip_accents"] is None
        and getattr(classifier, "method", None) == "sigmoid"
        and len(classifier.classes_) == 2
    )
    if not supported:
        raise ConfigError("only word-unigram L2 TF-IDF with sigmoid-calibrated linear models")
    members = classifier.calibrated_classifiers_
    return LinearTextModel(
        vocabulary={str(w): int(i) for w, i in vectorizer.vocabulary_.items()},
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coefficients=np.stack([np.ravel(m.estimator.coef_) for m in members]).astype(np.float64),
        intercepts=np.array([float(np.ravel(m.estimator.intercept_)[0]) for m in members]),
        platt_a=np.array([float(m.calibrators[0].a_) for m in members]),
        platt_b=np.array([float(m.calibrators[0].b_) for m in members]),
        token_pattern=params["token_pattern"],
        lowercase=bool(params["lowercase"]),
    )


def profanity_check_model() -> LinearTextModel:
    """``alt-profanity-check``'s model, from the cache or (once) from the package's files."""
    from importlib.util import find_spec

    # Found, not imported: importing the package unpickles its model with scikit-learn.
    spec = find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "model profanity_check needs the alt-profanity-check package "
            "(`pip install alt-profanity-check`)"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    vectorizer_file, model_file = data / "vectorizer.joblib", data / "model.joblib"
    digest = hashlib.sha256(vectorizer_file.read_bytes() + model_file.read_bytes()).hexdigest()
    cached = cache_dir("models", f"profanity_check-{digest[:16]}.npz")
    if cached.is_file():
        return LinearTextModel.load(cached)
    import joblib  # scikit-learn comes with it; only on this first, converting load

    model = from_scikit_learn(joblib.load(str(vectorizer_file)), joblib.load(str(model_file)))
    try:
        model.save(cached)
    except OSError as error:  # a read-only cache: score anyway, convert again next time
        log.warning("cannot keep the converted profanity model in %s (%s)", cached.parent, error)
    return model
