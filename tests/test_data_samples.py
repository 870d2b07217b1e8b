"""Checks on the committed ``data_samples/`` shards.

Other tests and the default pipeline read these shards, so their contract (the
exact column schema, ``EXPECTED_SCHEMA`` below; unique ids; the crawl-date/dump cases; the
held-out rule for labelled rows) is pinned here, and so is ``tests/data`` (the real files the
tests read: every one described in its SOURCES.md, a few MB in all). That both rebuild exactly
from the origin files is checked by ``scripts/check_data_rebuild.py``, not here: the suite
reads nothing outside the repository.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"
SCRIPT = REPO / "scripts" / "build_data_samples.py"
TEST_DATA = REPO / "tests" / "data"

EXPECTED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("crawl_date", pa.timestamp("us", tz="UTC")),
        pa.field("dump", pa.string()),
    ]
)
LABELLED = ("jigsaw", "davidson", "hplt")
TEST_DATA_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def shard_paths() -> list[Path]:
    """Every committed shard, in name order."""
    return sorted(SAMPLES.glob("*.parquet"))


@pytest.fixture(scope="module")
def samples(shard_paths: list[Path]) -> pa.Table:
    """All shards as one table; the schema test makes sure they concatenate."""
    return pa.concat_tables(pq.read_table(path) for path in shard_paths)


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    """The build script as a module, for its held-out rule."""
    spec = importlib.util.spec_from_file_location("build_data_samples", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while loading
    spec.loader.exec_module(module)
    return module


def ids_of(table: pa.Table, source: str) -> list[str]:
    """The ids of one source's rows."""
    return table.filter(pc.equal(table["source"], source))["id"].to_pylist()


def test_shard_files_and_names(shard_paths: list[Path]) -> None:
    assert 6 <= len(shard_paths) <= 10
    for path in shard_paths:
        assert re.fullmatch(r"[a-z]+-[a-z0-9]+-\d{4}\.parquet", path.name), path.name


def test_schema_is_exact(shard_paths: list[Path]) -> None:
    for path in shard_paths:
        schema = pq.read_schema(path)
        assert schema.equals(EXPECTED_SCHEMA, check_metadata=False), (path, schema)


def test_zstd_and_small_row_groups(shard_paths: list[Path]) -> None:
    multi_group_files = 0
    for path in shard_paths:
        meta = pq.ParquetFile(path).metadata
        multi_group_files += meta.num_row_groups > 1
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            assert group.num_rows <= 500
            assert all(group.column(c).compression == "ZSTD" for c in range(group.num_columns))
    assert multi_group_files >= 2, "row-group splitting needs files with several groups"


def test_ids_unique(samples: pa.Table) -> None:
    assert pc.count_distinct(samples["id"]).as_py() == samples.num_rows
    assert samples["id"].null_count == 0


def test_text_mostly_non_empty(samples: pa.Table) -> None:
    lengths = pc.utf8_length(pc.utf8_trim_whitespace(samples["text"]))
    assert samples["text"].null_count == 0
    assert pc.min(lengths).as_py() > 0
    assert pc.mean(pc.greater_equal(lengths, 50)).as_py() > 0.95


def test_row_count_and_size(samples: pa.Table, shard_paths: list[Path]) -> None:
    assert 3000 <= samples.num_rows <= 5000
    total_bytes = sum(path.stat().st_size for path in shard_paths)
    assert total_bytes < 6 * 1024 * 1024


def test_sources_and_languages(samples: pa.Table) -> None:
    sources = set(samples["source"].to_pylist())
    # English web, multilingual web, Chinese and English books, Spanish Q&A, toxic text.
    assert {"c4", "ccnet", "hplt", "luxun", "gutenberg", "stackexchange"} <= sources
    assert {"jigsaw", "davidson", "wikitext", "shakespeare"} <= sources
    assert len(sources) >= 8
    # The HPLT ids carry the language code: the multilingual source must span many.
    languages = {doc_id.split("-")[1] for doc_id in ids_of(samples, "hplt")}
    assert len(languages) >= 5
    assert {"zho_Hans", "rus_Cyrl", "ara_Arab", "deu_Latn", "hin_Deva"} <= languages


def test_no_benchmark_test_data(samples: pa.Table) -> None:
    sources = {s.lower() for s in samples["source"].to_pylist()}
    assert not sources & {"gsm8k", "humaneval", "human_eval"}


def test_crawl_date_and_dump_cases(samples: pa.Table) -> None:
    dated = pc.is_valid(samples["crawl_date"])
    dumped = pc.is_valid(samples["dump"])
    assert pc.sum(dated).as_py() > 0
    assert pc.sum(pc.and_(pc.invert(dated), dumped)).as_py() > 0, "dump only"
    assert pc.sum(pc.and_(pc.invert(dated), pc.invert(dumped))).as_py() > 0, "neither"
    for dump in samples["dump"].drop_null().to_pylist():
        assert re.fullmatch(r"CC-MAIN-\d{4}-\d{2}", dump)
    years = pc.year(samples["crawl_date"].drop_null())
    assert pc.min(years).as_py() >= 2010 and pc.max(years).as_py() <= 2030


def test_labelled_rows_follow_held_out_rule(samples: pa.Table, builder: ModuleType) -> None:
    for source in LABELLED:
        ids = ids_of(samples, source)
        assert ids
        assert all(builder.is_sample_row(doc_id) for doc_id in ids)
    assert builder.is_sample_row("c4-000000"), "unlabelled sources are always sampled"


def test_held_out_toxicity_rows_are_disjoint_and_usable(
    samples: pa.Table, builder: ModuleType
) -> None:
    path = TEST_DATA / "toxicity" / "jigsaw_toxic_comment_train_sample.csv"  # the whole file
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    held_out = [r for r in rows if not builder.is_sample_row(f"jigsaw-{r['id']}")]
    sampled = set(ids_of(samples, "jigsaw"))
    assert held_out and not {f"jigsaw-{r['id']}" for r in held_out} & sampled
    assert len(held_out) + len(sampled) == len(rows)
    assert any(r["toxic"] == "1" for r in held_out), "held-out set needs positives"


def test_sources_md_covers_every_source(samples: pa.Table) -> None:
    text = (SAMPLES / "SOURCES.md").read_text(encoding="utf-8")
    assert "scripts/build_data_samples.py" in text
    for source in set(samples["source"].to_pylist()):
        assert f"### `{source}`" in text


def test_test_data_is_small_and_every_file_has_its_source() -> None:
    files = [p for p in TEST_DATA.rglob("*") if p.is_file() and p.name != "SOURCES.md"]
    assert files
    assert sum(p.stat().st_size for p in files) < TEST_DATA_LIMIT
    sources_md = (TEST_DATA / "SOURCES.md").read_text(encoding="utf-8")
    assert "scripts/build_test_data.py" in sources_md
    for path in files:
        assert f"`{path.relative_to(TEST_DATA).as_posix()}`" in sources_md, path
