"""Picking readers and writers: a directory reads every supported format in it, two inputs
that would write the same output are refused, and a JSON Lines output round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table

from gristmill import Pipeline
from gristmill.errors import ConfigError
from gristmill.io import JsonlReader, open_reader, open_writer
from gristmill.io.filesystem import data_files


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_directory_of_parquet_and_jsonl_reads_both(tmp_path: Path):
    table = sample_table().select(["id", "text", "source"])
    inputs = tmp_path / "in"
    inputs.mkdir()
    pq.write_table(table.slice(0, 40), inputs / "a.parquet")
    _jsonl(inputs / "b.jsonl", table.slice(40, 25).to_pylist())
    reader = open_reader(str(inputs))
    tasks = reader.plan()
    assert [(t.task_id, t.format) for t in tasks] == [("a", "parquet"), ("b", "jsonl")]

    out = tmp_path / "out"
    report = Pipeline([], reader=reader, writer=open_writer(str(out))).run()
    assert report.ok, report.failures
    written = read_output(out)
    assert (
        written.column("id").to_pylist()
        == table.slice(0, 65).sort_by("id").column("id").to_pylist()
    )
    assert (
        written.column("text").to_pylist()
        == table.slice(0, 65).sort_by("id").column("text").to_pylist()
    )


def test_two_inputs_that_would_write_the_same_output_are_refused(tmp_path: Path):
    table = sample_table().select(["id", "text"]).slice(0, 5)
    pq.write_table(table, tmp_path / "a.parquet")
    _jsonl(tmp_path / "a.jsonl", table.to_pylist())
    with pytest.raises(ConfigError, match=r"a\.jsonl.*a\.parquet.*would both write 'a'"):
        open_reader(str(tmp_path)).plan()


def test_bookkeeping_folders_of_an_output_are_never_data(tmp_path: Path):
    for name in (
        "a.parquet",
        "_run/passes/01/a.parquet",
        "_rejects/a.parquet",
        "sub/.tmp-x.parquet",
        "sub/b.parquet",
    ):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(sample_table().slice(0, 1), path)
    assert [f.relative for f in data_files(str(tmp_path), (".parquet",))] == [
        "a.parquet",
        "sub/b.parquet",
    ]
    assert [t.relative for t in open_reader(str(tmp_path)).plan()] == ["a.parquet", "sub/b.parquet"]


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_jsonl_output_round_trips(tmp_path: Path, compression: str):
    table = sample_table().slice(0, 50)
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "out"
    writer = open_writer(str(out), format="jsonl", compression=compression)
    report = Pipeline([], reader=open_reader(str(tmp_path / "in.parquet")), writer=writer).run()
    assert report.ok, report.failures
    (written,) = [p for p in out.iterdir() if p.is_file()]
    assert written.name == "in" + writer.suffix
    reader = JsonlReader(str(written))
    rows = [row for t in reader.read(reader.plan()[0]) for row in t.to_pylist()]
    assert [r["id"] for r in rows] == table.column("id").to_pylist()
    assert [r["text"] for r in rows] == table.column("text").to_pylist()
    assert rows[0]["crawl_date"] is None or "T" in rows[0]["crawl_date"]


def test_unreadable_jsonl_lines_are_set_aside_with_their_line_numbers(tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "fine"}).encode(),
        b'{"id": "b", "text": broken}',
        b"[1, 2, 3]",
        b'{"id": "d", "text": "bad \xff bytes"}',
        json.dumps({"id": "e", "text": 5}).encode(),
        json.dumps({"id": "f", "text": "also fine"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    reader = JsonlReader(str(path), batch_size=4)
    set_aside: list[tuple[list, list[str]]] = []
    tables = list(
        reader.read(
            reader.plan()[0],
            unreadable=lambda rows, why: set_aside.append((rows.column("id").to_pylist(), why)),
        )
    )
    assert [i for t in tables for i in t.column("id").to_pylist()] == ["a", "f"]
    reasons = [reason for _ids, why in set_aside for reason in why]
    assert [r.split(":")[0] for r in reasons] == [
        "unreadable line 2",
        "unreadable line 3",
        "unreadable line 4",
        "unreadable line 5",
    ]
    assert "invalid JSON" in reasons[0] and "object" in reasons[1]
    assert "invalid UTF-8" in reasons[2] and "types of the first rows" in reasons[3]
