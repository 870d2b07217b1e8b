"""JSON Lines inputs: plain, gzip and zstd, with ids generated where the data has none."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import zstandard
from support.data import read_output

from gristmill import Pipeline
from gristmill.errors import InputError
from gristmill.io import JsonlReader, ParquetWriter


def _ccnet_rows(data_dir: Path) -> list[dict]:
    path = data_dir / "web" / "dolma_ccnet_cc_en_head-0091.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_plain_gzip_and_zstd_files_read_the_same_documents(data_dir: Path, tmp_path: Path):
    source = data_dir / "web" / "dolma_ccnet_cc_en_head-0091.jsonl"
    raw = source.read_bytes()
    (tmp_path / "a.jsonl").write_bytes(raw)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    rows = _ccnet_rows(data_dir)

    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        reader = JsonlReader(str(tmp_path / name), batch_size=3)
        (task,) = reader.plan()
        tables = list(reader.read(task))
        assert [t.num_rows for t in tables] == [3, 3, 3, 1]
        texts = [text for t in tables for text in t.column("text").to_pylist()]
        ids = [i for t in tables for i in t.column("id").to_pylist()]
        assert texts == [r["text"] for r in rows]
        assert ids == [r["id"] for r in rows]
        assert "metadata" in tables[0].column_names


def test_dolma_documents_run_through_a_pipeline(data_dir: Path, tmp_path: Path):
    path = data_dir / "web" / "dolma_provided_documents_000.json.gz"
    out = tmp_path / "out"
    report = Pipeline([], reader=JsonlReader(str(path)), writer=ParquetWriter(str(out))).run()
    assert report.ok
    table = read_output(out)
    assert table.num_rows == 10
    assert all(text for text in table.column("text").to_pylist())


def test_rows_without_ids_get_file_and_line_ids(tmp_path: Path):
    path = tmp_path / "noid.jsonl"
    path.write_text("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(5)))
    reader = JsonlReader(str(path), batch_size=2)
    ids = [i for t in reader.read(reader.plan()[0]) for i in t.column("id").to_pylist()]
    assert ids == [f"noid.jsonl#{i}" for i in range(5)]


def test_invalid_json_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": broken}\n')
    reader = JsonlReader(str(path))
    with pytest.raises(InputError, match=r"bad.jsonl: unreadable line 2: invalid JSON"):
        list(reader.read(reader.plan()[0]))


def test_a_type_change_after_the_first_batch_is_reported(tmp_path: Path):
    path = tmp_path / "types.jsonl"
    rows = [{"id": str(i), "text": "t", "score": 1.5} for i in range(4)]
    rows.append({"id": "4", "text": "t", "score": {"nested": True}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reader = JsonlReader(str(path), batch_size=2)
    with pytest.raises(
        InputError, match=r"types.jsonl: unreadable line 5: does not match the types"
    ):
        list(reader.read(reader.plan()[0]))


@pytest.mark.parametrize("wanted", [None, ["topic"]])
def test_lines_without_the_text_column_name_the_file(tmp_path: Path, wanted: list[str] | None):
    """Lines that hold none of the columns a read wants (no text, no id, not the extra column
    asked for) get the same clear error as lines with other columns, not Arrow's."""
    path = tmp_path / "body.jsonl"
    path.write_text("".join(json.dumps({"body": f"document {i}"}) + "\n" for i in range(3)))
    reader = JsonlReader(str(path), columns=wanted)
    with pytest.raises(InputError, match=r"body.jsonl: no 'text' column"):
        list(reader.read(reader.plan()[0]))
