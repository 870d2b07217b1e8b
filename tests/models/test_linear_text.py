"""alt-profanity-check's model scored with numpy alone: the package's own probabilities on real
comments and tweets, read from the cache after the first load, without scikit-learn."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gristmill.core.cache import cache_dir
from gristmill.errors import ConfigError
from gristmill.models.linear_text import (
    LinearTextModel,
    from_scikit_learn,
    profanity_check_model,
)


def real_texts(data_dir: Path) -> list[str]:
    base = data_dir / "toxicity"
    with (base / "davidson_hate_offensive_labeled_data.csv").open(newline="") as handle:
        tweets = [row["tweet"] for row in csv.DictReader(handle)]
    with (base / "jigsaw_toxic_comment_train_sample.csv").open(newline="") as handle:
        comments = [row["comment_text"] for row in csv.DictReader(handle)]
    odd = ["", "   ", "a", "I", "\x00\ufffd\u202e", "ÉCOLE Straße ǅ", "word " * 50_000]
    return tweets + comments + odd


def test_scores_equal_the_packages_own(data_dir: Path) -> None:
    from profanity_check import predict_prob

    texts = real_texts(data_dir)
    ours = profanity_check_model().predict_proba(texts)
    theirs = predict_prob(texts)
    print(f"\n{len(texts)} texts, largest difference {np.abs(ours - theirs).max():.2e}")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ((ours > 0.5) == (theirs > 0.5)).all() and 0.05 < (ours > 0.5).mean() < 0.95


def test_a_second_load_reads_the_cache_and_imports_no_scikit_learn() -> None:
    profanity_check_model()
    assert list(cache_dir("models").glob("profanity_check-*.npz"))
    probe = (
        "import sys; from gristmill.models.linear_text import profanity_check_model; "
        "print(profanity_check_model().predict_proba(['you idiot'])[0] > 0.5, "
        "'sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=dict(os.environ), capture_output=True, text=True
    )
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_save_and_load_round_trip_and_a_bad_file_is_named(tmp_path: Path) -> None:
    model = profanity_check_model()
    model.save(tmp_path / "m.npz")
    again = LinearTextModel.load(tmp_path / "m.npz")
    texts = ["what a lovely day", "shut up you stupid idiot"]
    np.testing.assert_array_equal(again.predict_proba(texts), model.predict_proba(texts))
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match=r"bad\.npz"):
        LinearTextModel.load(tmp_path / "bad.npz")


def test_other_scikit_learn_shapes_are_refused(data_dir: Path) -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    texts = real_texts(data_dir)[:400]
    labels = np.arange(len(texts)) % 2
    vectorizer = TfidfVectorizer(ngram_range=(1, 2)).fit(texts)
    classifier = CalibratedClassifierCV(LinearSVC(), cv=2).fit(vectorizer.transform(texts), labels)
    with pytest.raises(ConfigError, match="only word-unigram"):
        from_scikit_learn(vectorizer, classifier)


def test_a_read_only_cache_still_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv("GRISTMILL_CACHE", str(blocked))
    model = profanity_check_model()
    assert model.predict_proba(["shut up you stupid idiot"])[0] > 0.5
