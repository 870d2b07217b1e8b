"""``gristmill train-classifier`` on real sample documents (Parquet and JSONL), tiny epochs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import typer
from support.cli import command_app
from support.data import sample_table
from typer.testing import CliRunner

from gristmill.cli.train_classifier import register
from gristmill.models.fasttext_model import FastTextModel
from gristmill.stages.taggers.quality import QualityScorer


def app() -> typer.Typer:
    return command_app(register)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Curated reference text as Parquet; noisy crawl text as JSONL with another column name."""
    directory = tmp_path_factory.mktemp("sets")
    table = sample_table()
    good = table.filter(pc.is_in(table["source"], pa.array(["wikitext", "uspto", "nih"])))
    bad = table.filter(pc.is_in(table["source"], pa.array(["wget", "web_snippets"])))
    pq.write_table(good, directory / "good.parquet")
    with (directory / "bad.jsonl").open("w") as handle:
        for row in bad.select(["id", "text"]).to_pylist():
            handle.write(json.dumps({"id": row["id"], "body": row["text"]}) + "\n")
    return directory / "good.parquet", directory / "bad.jsonl"


def test_trains_reports_and_saves(sets: tuple[Path, Path], tmp_path: Path) -> None:
    good, bad = sets
    bad_parquet = tmp_path / "bad.parquet"
    rows = [json.loads(line) for line in bad.read_text().splitlines()]
    pq.write_table(pa.table({"text": [r["body"] for r in rows]}), bad_parquet)
    model = tmp_path / "model.ftz"
    metrics = tmp_path / "metrics.json"
    args = ["train-classifier", "--positive", str(good), "--negative", str(bad_parquet),
            "--output", str(model), "--epochs", "3", "--dim", "16", "--bucket", "20000",
            "--holdout", "0.2", "--cutoff", "5000", "--metrics", str(metrics)]  # fmt: skip
    result = CliRunner().invoke(app(), args)
    print(result.output)
    assert result.exit_code == 0, result.output
    for name in ("precision:", "recall:", "roc_auc:"):
        assert name in result.output
    recorded = json.loads(metrics.read_text())
    assert recorded["held_out"]["positives"] == recorded["held_out"]["negatives"] == 10
    assert 0.0 <= recorded["held_out"]["roc_auc"] <= 1.0
    loaded = FastTextModel.load(model)
    assert loaded.is_quantized and set(loaded.labels) == {"__label__hq", "__label__cc"}
    # The quality stage loads what the command wrote.
    stage = QualityScorer(model_path=str(model))
    assert stage.score(pa.array(["Some text.", None])).shape == (2,)


def test_jsonl_input_with_another_text_column_and_custom_labels(
    sets: tuple[Path, Path], tmp_path: Path
) -> None:
    good, bad = sets
    good_jsonl = tmp_path / "good.jsonl"
    with good_jsonl.open("w") as handle:
        for text in pq.read_table(good)["text"].to_pylist():
            handle.write(json.dumps({"body": text}) + "\n")
    model = tmp_path / "model.bin"
    args = ["train-classifier", "-p", str(good_jsonl), "-n", str(bad), "-o", str(model),
            "--text-column", "body", "--positive-label", "keep", "--negative-label", "drop",
            "--epochs", "2", "--dim", "8", "--bucket", "10000", "--no-balance"]  # fmt: skip
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    assert set(FastTextModel.load(model).labels) == {"__label__keep", "__label__drop"}


def test_bad_input_is_a_clear_error(sets: tuple[Path, Path], tmp_path: Path) -> None:
    good, _bad = sets
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array(["", None, "  "], pa.string())}), empty)
    result = CliRunner().invoke(
        app(), ["train-classifier", "-p", str(good), "-n", str(empty), "-o", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert "need both classes" in result.output
    result = CliRunner().invoke(
        app(),
        [
            "train-classifier",
            "-p",
            str(good),
            "-n",
            str(tmp_path / "none.parquet"),
            "-o",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert "none.parquet" in result.output


def test_several_paths_after_one_flag_as_the_readme_shows(
    sets: tuple[Path, Path], tmp_path: Path
) -> None:
    """``--positive a b --negative c d``: each flag takes the paths that follow it."""
    good, bad = sets
    table = pq.read_table(good)
    halves = [tmp_path / "good-1.parquet", tmp_path / "good-2.parquet"]
    pq.write_table(table.slice(0, table.num_rows // 2), halves[0])
    pq.write_table(table.slice(table.num_rows // 2), halves[1])
    rows = [json.loads(line) for line in bad.read_text().splitlines()]
    bad_parquet = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": [r["body"] for r in rows]}), bad_parquet)
    model = tmp_path / "model.ftz"
    args = ["train-classifier", "--positive", *map(str, halves), "--negative", str(bad_parquet),
            str(bad_parquet), "-o", str(model), "--epochs", "2", "--dim", "8", "--bucket",
            "20000", "--cutoff", "2000"]  # fmt: skip
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    assert f"read {table.num_rows} positive and {2 * len(rows)} negative" in result.output
    assert model.is_file()
