"""The labelled data in ``shared/data`` as tables, split by the samples' held-out rule.

Every function takes the data root: ``shared/data`` by default (training), or the slices of
it in ``tests/data`` (held-out rows only; ``scripts/build_test_data.py``), which the tests read.

``data_samples/`` carries only some labelled rows (``is_sample_row`` in
``scripts/build_data_samples.py``, the one definition of the rule, loaded from there), with the
labels dropped. Models are trained on the sample side, with labels joined back from the origin
files, and judged on the rest, which no model here ever sees in training.

Development tooling, not part of the installed package: ``train_default_models.py`` beside it
imports it, and the tests put this folder on ``sys.path`` to do the same.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_data_samples.py"
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"

#: HPLT's file language (ISO 639-3 + script) → the code lid.176 uses for it.
HPLT_TO_LID: dict[str, str] = {
    "amh_Ethi": "am", "ara_Arab": "ar", "ast_Latn": "ast", "ben_Beng": "bn", "cat_Latn": "ca",
    "ces_Latn": "cs", "deu_Latn": "de", "ell_Grek": "el", "eng_Latn": "en", "fin_Latn": "fi",
    "fra_Latn": "fr", "gla_Latn": "gd", "heb_Hebr": "he", "hin_Deva": "hi", "ind_Latn": "id",
    "ita_Latn": "it", "jpn_Jpan": "ja", "kat_Geor": "ka", "kor_Hang": "ko", "mar_Deva": "mr",
    "nld_Latn": "nl", "nno_Latn": "nn", "nob_Latn": "no", "pes_Arab": "fa", "pol_Latn": "pl",
    "por_Latn": "pt", "rus_Cyrl": "ru", "slk_Latn": "sk", "spa_Latn": "es", "swh_Latn": "sw",
    "tha_Thai": "th", "tur_Latn": "tr", "ukr_Cyrl": "uk", "vie_Latn": "vi", "yor_Latn": "yo",
    "zho_Hans": "zh",
}  # fmt: skip


@lru_cache(maxsize=1)
def sample_rule() -> Callable[[str], bool]:
    """``is_sample_row`` from the samples' build script (a repository checkout is needed)."""
    if not BUILD_SCRIPT.is_file():
        raise ConfigError(f"{BUILD_SCRIPT} is missing: the held-out rule needs a repo checkout")
    spec = importlib.util.spec_from_file_location("gristmill_build_data_samples", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up in sys.modules while the module runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    rule: Callable[[str], bool] = module.is_sample_row
    return rule


def data_root(root: Path | None = None) -> Path:
    path = root or DEFAULT_DATA_ROOT
    if not path.is_dir():
        raise ConfigError(f"{path}: the shared labelled data is not here")
    return path


def _read_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """A CSV/TSV file's rows; a ``.gz`` one (the slices in ``tests/data``) is read the same."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter=delimiter))
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def toxicity_table(root: Path | None = None) -> pa.Table:
    """Jigsaw and Davidson rows: ``id``, ``text``, ``source``, ``toxic`` and ``in_sample``.

    Toxic means any Jigsaw label set, or a Davidson tweet voted hate speech or offensive
    (class 0 or 1); Davidson's ``neither`` (class 2) and unlabelled Jigsaw rows are not toxic.
    """
    base = data_root(root) / "toxicity"
    jigsaw_labels = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
    ids, texts, sources, toxic = [], [], [], []
    for row in _read_rows(base / "jigsaw_toxic_comment_train_sample.csv"):
        ids.append(f"jigsaw-{row['id']}")
        texts.append(row["comment_text"])
        sources.append("jigsaw")
        toxic.append(any(row[label] == "1" for label in jigsaw_labels))
    for row in _read_rows(base / "davidson_hate_offensive_labeled_data.csv"):
        ids.append(f"davidson-{row['']}")
        texts.append(row["tweet"])
        sources.append("davidson")
        toxic.append(row["class"] in ("0", "1"))
    rule = sample_rule()
    return pa.table(
        {
            "id": ids,
            "text": texts,
            "source": sources,
            "toxic": pa.array(toxic, pa.bool_()),
            "in_sample": pa.array([rule(i) for i in ids], pa.bool_()),
        }
    )


def _column(row: dict[str, str], prefix: str) -> str:
    """HPLT's header cells hold newlines (``"porn?\\nempty/1"``): match on the first word."""
    for key, value in row.items():
        if key and key.startswith(prefix):
            return (value or "").strip()
    return ""


def hplt_table(root: Path | None = None) -> pa.Table:
    """HPLT inspection rows: ``id``, ``text``, ``hplt_language``, ``lid_language`` (the
    lid.176 code), ``language_correct`` (1/0, null where nobody labelled), ``unnatural``,
    ``porn``, ``labelled`` and ``in_sample``."""
    base = data_root(root) / "langid" / "hplt_v2_inspection"
    records: dict[str, list[object]] = {
        name: []
        for name in (
            "id", "text", "hplt_language", "lid_language", "language_correct",
            "unnatural", "porn", "labelled",
        )
    }  # fmt: skip
    for path in sorted([*base.glob("*.tsv"), *base.glob("*.tsv.gz")]):
        language = path.stem.rsplit("_batch", 1)[0]
        for row in _read_rows(path, delimiter="\t"):
            correct = _column(row, "lang correct")
            records["id"].append(f"hplt-{language}-{row['id']}")
            records["text"].append(row["text_show"])
            records["hplt_language"].append(language)
            records["lid_language"].append(HPLT_TO_LID.get(language))
            records["language_correct"].append(int(correct) if correct in ("0", "1") else None)
            records["unnatural"].append(_column(row, "unnatural") == "1")
            records["porn"].append(_column(row, "porn") == "1")
            records["labelled"].append(correct in ("0", "1"))
    rule = sample_rule()
    table = pa.table(records)
    in_sample = pa.array([rule(i) for i in table.column("id").to_pylist()], pa.bool_())
    return table.append_column("in_sample", in_sample)


def held_out(table: pa.Table) -> pa.Table:
    """The rows that are not in ``data_samples/``: the only ones to evaluate on."""
    return table.filter(pc.invert(table.column("in_sample")))


def in_samples(table: pa.Table) -> pa.Table:
    return table.filter(table.column("in_sample"))
