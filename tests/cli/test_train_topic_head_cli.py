"""``gristmill train-topic-head`` on the hand-labelled topic documents (Parquet and JSONL): a
head over WordLlama's static table that the ``topic`` stage runs, its metrics, a topic list of
one's own, cross-validation, and the errors a wrong input gets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from support.cli import command_app
from typer.testing import CliRunner

from gristmill.cli.train_topic_head import register
from gristmill.stages.taggers.topic import TopicTagger
from gristmill.stages.taggers.topic_head import TopicHead


def app() -> typer.Typer:
    return command_app(register)


def read_rows(data_dir: Path, name: str) -> list[dict[str, str]]:
    with gzip.open(data_dir / "topic" / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def labelled(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The training documents as two Parquet shards; 150 held-out ones as JSON Lines with
    other column names."""
    directory = tmp_path_factory.mktemp("labelled")
    rows = read_rows(data_dir, "train")
    half = len(rows) // 2
    for index, part in enumerate((rows[:half], rows[half:])):
        table = pa.table({"text": [r["text"] for r in part], "topic": [r["topic"] for r in part]})
        pq.write_table(table, directory / f"train-{index}.parquet")
    with (directory / "eval.jsonl").open("w", encoding="utf-8") as handle:
        for row in read_rows(data_dir, "eval")[::3][:150]:
            handle.write(json.dumps({"body": row["text"], "label": row["topic"]}) + "\n")
    return directory, directory / "eval.jsonl"


def test_trains_a_head_the_stage_runs(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    directory = labelled[0]
    head_path = tmp_path / "heads" / "mine.npz"
    args = ["train-topic-head", "--train", *map(str, sorted(directory.glob("*.parquet"))),
            "--output", str(head_path), "--encoder", "static"]  # fmt: skip
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "heads" / "mine.metrics.json").read_text())
    assert metrics["train_documents"] == 1024 and "held_out" not in metrics
    head = TopicHead.load(head_path)
    assert head.fingerprint() == metrics["fingerprint"]
    # the same recipe as the bundled default head: the same head
    assert head.fingerprint() == TopicHead.load().fingerprint()
    stage = TopicTagger(head=str(head_path))
    stage.setup()
    out = stage.process(pa.table({"text": ["Preheat the oven and bake the bread.", None]}))
    assert out.column("topic").to_pylist() == ["food & drink", None]


def test_measures_on_held_out_files_with_other_columns(
    labelled: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, held_out = labelled
    jsonl = tmp_path / "train.jsonl"
    table = pq.read_table(directory / "train-0.parquet")
    with jsonl.open("w", encoding="utf-8") as handle:
        for row in table.to_pylist():
            handle.write(json.dumps({"body": row["text"], "label": row["topic"]}) + "\n")
    head_path = tmp_path / "mine.npz"
    args = ["train-topic-head", "--train", str(jsonl), "--eval", str(held_out),
            "--text-column", "body", "--label-column", "label", "-o", str(head_path),
            "--c", "1"]  # fmt: skip
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "mine.metrics.json").read_text())
    assert metrics["C"] == 1.0 and metrics["held_out"]["documents"] == 150
    assert f"held-out accuracy: {metrics['held_out']['accuracy']:.3f}" in result.output
    assert 0.4 <= metrics["held_out"]["accuracy"] <= 1.0


def test_a_topic_list_of_ones_own_and_cross_validation(data_dir: Path, tmp_path: Path) -> None:
    """Three topics of one's own, from the labelled documents of three of the bundled ones."""
    keep = {"food & drink": "cooking", "sports & fitness": "sport", "religion": "faith"}
    rows = [r for r in read_rows(data_dir, "train") if r["topic"] in keep]
    pq.write_table(
        pa.table({"text": [r["text"] for r in rows], "topic": [keep[r["topic"]] for r in rows]}),
        tmp_path / "mine.parquet",
    )
    topics = tmp_path / "topics.yaml"
    topics.write_text(
        "topics:\n"
        "  - {topic: cooking, description: recipes and food}\n"
        "  - {topic: sport, description: games, teams and training}\n"
        "  - {topic: faith, description: churches, prayer and scripture}\n"
    )
    base = ["train-topic-head", "--train", str(tmp_path / "mine.parquet"), "--topics", str(topics)]
    result = CliRunner().invoke(app(), [*base, "--select"])
    assert result.exit_code == 0, result.output
    assert result.output.count("(5-fold on the training documents)") == 6
    result = CliRunner().invoke(app(), [*base, "-o", str(tmp_path / "mine.npz")])
    assert result.exit_code == 0, result.output
    stage = TopicTagger(head=str(tmp_path / "mine.npz"))
    stage.setup()
    out = stage.process(pa.table({"text": ["The team won the cup final after extra time."]}))
    assert out.column("topic").to_pylist() == ["sport"]


def test_wrong_inputs_get_clear_errors(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    directory, held_out = labelled
    train = str(directory / "train-0.parquet")
    out = str(tmp_path / "h.npz")
    cases = [
        (["--train", str(held_out), "-o", out], "eval.jsonl: no 'text' column"),
        (["--train", str(held_out), "--text-column", "body", "-o", out], "no 'topic' column"),
        (["--train", str(tmp_path / "none"), "-o", out], "none' matches no file"),
        (["--train", train, "-o", out, "--encoder", "{backend: nope}"], "encoder"),
        (["--train", train], "--output"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app(), ["train-topic-head", *args])
        assert result.exit_code != 0, args
        assert message in result.output, result.output
    topics = tmp_path / "two.yaml"
    topics.write_text("topics:\n  - {topic: a}\n  - {topic: b}\n")
    result = CliRunner().invoke(
        app(), ["train-topic-head", "--train", train, "-o", out, "--topics", str(topics)]
    )
    assert result.exit_code != 0 and "labels not in the topic list" in result.output
    assert not Path(out).exists()
