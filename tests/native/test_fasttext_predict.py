"""Our C fastText predictor against fastText's own binding, on real text and real models.

The native reader must give the labels fastText gives, in its order, with probabilities
within float32 rounding (it sums word vectors in double, fastText in float), for every loss
and matrix form: the hierarchical-softmax, product-quantized ``lid.176.ftz`` with subwords
and pruned rows; the bundled softmax classifiers with word bigrams; models trained here with
one-vs-all and hierarchical-softmax losses saved dense (``.bin``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.data import sample_table

from gristmill.errors import ConfigError
from gristmill.models import fasttext_model as ft
from gristmill.native.fasttext_predict import Model
from gristmill.stages.taggers.language import bundled_lid_model

MODELS = Path(ft.__file__).resolve().parent
#: Texts that exercise the tokenizer's corners, added to the real documents.
CORNERS = [
    "",
    "   ",
    "\t\x0b\x0c\r",
    "__label__en only a label-looking token",
    "</s> the end-of-sentence token spelled out",
    "x" * 5000,
    "日本語のテキストと English mixed",
    "nul\x00inside",
    "emoji 🙂🙂 and accents: café naïve",
]


def real_lines(limit: int = 1500) -> list[str]:
    texts = [t or "" for t in sample_table().column("text").to_pylist()[:limit]]
    return [ft.as_line(t) for t in texts + CORNERS]


def binding_predictions(path: Path, lines: list[str], k: int) -> tuple[list, list]:
    model = ft.binding().fasttext()
    model.loadModel(str(path))
    labels, probabilities = model.multilinePredict(lines, k, 0.0, "replace")
    return list(labels), [np.asarray(p, dtype=np.float32) for p in probabilities]


def native_predictions(model: Model, lines: list[str], k: int) -> tuple[list, list]:
    counts, labels, probabilities = model.predict(lines, k, 0.0)
    ends = np.cumsum(np.frombuffer(counts, np.int32))
    names = np.array(model.labels, dtype=object)
    label_rows = np.split(names[np.frombuffer(labels, np.int32)], ends[:-1])
    return [list(r) for r in label_rows], np.split(
        np.frombuffer(probabilities, np.float32), ends[:-1]
    )


def assert_same(
    path: Path, k: int, lines: list[str], model: Model | None = None, *, ties: bool = False
) -> None:
    """Same labels in the same order, probabilities within float32 rounding.

    With ``ties`` (one-vs-all: fastText's table sigmoid makes equal probabilities common)
    labels of equal probability may come in another order, and the top ``k`` cut may pick
    another of them; each label still has the same probability.
    """
    theirs_labels, theirs_p = binding_predictions(path, lines, k)
    ours_labels, ours_p = native_predictions(model or Model(str(path)), lines, k)
    for ours_l, ours, theirs_l, theirs in zip(
        ours_labels, ours_p, theirs_labels, theirs_p, strict=True
    ):
        if not ties:
            assert ours_l == theirs_l
            np.testing.assert_allclose(ours, theirs, atol=2e-5)
            continue
        assert len(ours_l) == len(theirs_l)
        assert np.all(np.diff(ours) <= 0)
        np.testing.assert_allclose(ours, theirs, atol=2e-5)
        theirs_of = dict(zip(theirs_l, theirs, strict=True))
        for label, probability in zip(ours_l, ours, strict=True):
            if label in theirs_of:
                assert abs(theirs_of[label] - probability) <= 2e-5


@pytest.mark.parametrize(
    ("path", "k"),
    [
        (bundled_lid_model(), 1),
        (bundled_lid_model(), 5),
        (MODELS / "quality_default.ftz", -1),
        (MODELS / "toxicity_fasttext.ftz", -1),
    ],
    ids=["lid176-top1", "lid176-top5", "quality", "toxicity"],
)
def test_matches_the_binding_on_real_text(path: Path, k: int) -> None:
    assert_same(path, k, real_lines())


@pytest.mark.parametrize("loss", ["ova", "hs"])
def test_matches_the_binding_on_dense_models_of_other_losses(tmp_path: Path, loss: str) -> None:
    table = sample_table()
    train = tmp_path / "train.txt"
    with train.open("w") as handle:
        for text, source in zip(
            table["text"].to_pylist(), table["source"].to_pylist(), strict=True
        ):
            handle.write(f"__label__{source} {ft.one_line(text or '')}\n")
    options = ft.TrainingOptions(epoch=3, lr=0.2, dim=16, bucket=50_000, loss=loss)
    saved = ft.train_supervised(train, options).save(tmp_path / f"{loss}.bin")
    assert_same(saved, -1 if loss == "ova" else 3, real_lines(800), ties=loss == "ova")


def test_a_tiny_word_cache_gives_the_same_answers() -> None:
    """The cache starts afresh whenever it fills; answers must not depend on it."""
    lines = real_lines(600)
    path = bundled_lid_model()
    assert_same(path, 2, lines, Model(str(path), cache_bytes=4096))
    assert_same(path, 2, lines, Model(str(path), cache_bytes=0))


def test_threads_share_one_model_safely() -> None:
    model = Model(str(bundled_lid_model()))
    lines = real_lines(400)
    expected = model.predict(lines, 1, 0.0)
    results: list[tuple] = []

    def work() -> None:
        for _ in range(3):
            results.append(model.predict(lines, 1, 0.0))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 9


def test_lone_surrogates_are_read_as_question_marks() -> None:
    model = Model(str(bundled_lid_model()))
    assert model.predict(["caf\udce9 au lait\n"], 1) == model.predict(["caf? au lait\n"], 1)


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    model = Model(str(bundled_lid_model()))
    with pytest.raises(TypeError, match=r"texts\[1\] is bytes"):
        model.predict(["fine\n", b"bytes"], 1)
    with pytest.raises(ValueError, match="k must be positive"):
        model.predict(["text\n"], 0)
    with pytest.raises(OSError):
        Model(str(tmp_path / "missing.ftz"))


@pytest.mark.parametrize(
    "content",
    [b"", b"not a model at all", (793712314).to_bytes(4, "little") + b"\x0c\x00\x00\x00\x10"],
    ids=["empty", "garbage", "truncated"],
)
def test_corrupt_files_name_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.ftz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.ftz"):
        Model(str(path))
    with pytest.raises(ConfigError, match=r"broken\.ftz"):
        ft.FastTextModel.load(path)


def test_truncated_real_model_is_refused(tmp_path: Path) -> None:
    data = bundled_lid_model().read_bytes()
    for cut in (100, len(data) // 2, len(data) - 3):
        path = tmp_path / f"cut{cut}.ftz"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.ftz"):
            Model(str(path))
        with pytest.raises(ConfigError, match=rf"cut{cut}\.ftz"):
            ft.FastTextModel.load(path)


def test_valid_files_it_does_not_take_go_to_the_binding(tmp_path: Path) -> None:
    """An older format version is fastText's to read; the wrapper falls back to it."""
    data = bytearray(bundled_lid_model().read_bytes())
    data[4:8] = (11).to_bytes(4, "little")
    path = tmp_path / "v11.ftz"
    path.write_bytes(bytes(data))
    with pytest.raises(NotImplementedError, match="version 11"):
        Model(str(path))


def test_the_wrapper_predicts_natively() -> None:
    model = ft.FastTextModel.load(bundled_lid_model())
    assert model._native is not None
    predictions = model.predict(["The quick brown fox jumps over the lazy dog.", None, ""], k=1)
    assert predictions.labels[0] == ["__label__en"]
    assert predictions.probabilities[0].dtype == np.float32


def test_arrow_buffers_give_what_lines_give() -> None:
    """Texts read in place from Arrow (newlines as spaces) = the same texts as lines."""
    model = ft.FastTextModel.load(bundled_lid_model())
    texts = [t or "" for t in sample_table().column("text").to_pylist()[:700]] + CORNERS
    texts += ["two\nlines", "crlf\r\nline", "\n\n\n", "trailing newline\n"]
    expected = model.predict([ft.as_line(t) for t in texts], k=2)
    for column in (
        pa.array(texts, pa.string()),
        pa.array(texts, pa.large_string()),
        pa.array(["padding"] * 5 + texts, pa.string()).slice(5),
    ):
        got = model.predict(column, k=2)
        assert got.labels == expected.labels
        np.testing.assert_array_equal(got.flat_probabilities, expected.flat_probabilities)


def test_arrow_nulls_and_empty_arrays() -> None:
    model = ft.FastTextModel.load(bundled_lid_model())
    got = model.predict(pa.array(["a sentence in English", None, ""], pa.string()), k=1)
    assert got.counts.tolist() == [1, 1, 1]  # "" and null read as the bare end of sentence
    assert len(model.predict(pa.array([], pa.string())).counts) == 0


def test_arrow_offsets_outside_the_data_are_refused() -> None:
    model = Model(str(bundled_lid_model()))
    data = b"hello world"
    with pytest.raises(ValueError, match="outside the data"):
        model.predict_arrow(np.array([0, 5, 50], np.int32), data, 1, 0.0, 4)
    with pytest.raises(ValueError, match="outside the data"):
        model.predict_arrow(np.array([5, 2], np.int64), data, 1, 0.0, 8)
    with pytest.raises(ValueError, match="offset_bytes"):
        model.predict_arrow(np.array([0, 5], np.int32), data, 1, 0.0, 2)
