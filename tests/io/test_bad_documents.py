"""Null, empty and huge documents flow through readers, stages and writers unharmed."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from support.data import read_output, sample_table
from support.stages import MinLength, TextLength

from gristmill import Pipeline
from gristmill.io import ParquetReader, ParquetWriter

TEN_MB = 10 * 1024 * 1024


def _awkward_table() -> pa.Table:
    real = sample_table().slice(0, 50)
    huge = ("A real sentence, repeated to make a very large document. " * 200_000)[:TEN_MB]
    odd = pa.table(
        {
            "id": ["null-text", "empty-text", "ten-megabytes", "binary-garbage"],
            "text": [
                None,
                "",
                huge,
                "\x00\x01\ufffd\u202e\udcff".encode("utf-8", "surrogatepass").decode(
                    "utf-8", "replace"
                ),
            ],
        }
    )
    real = real.select(["id", "text"])
    return pa.concat_tables([real.cast(odd.schema), odd]).sort_by("id")


def test_awkward_documents_round_trip_and_get_defined_results(tmp_path: Path):
    table = _awkward_table()
    pq.write_table(table, tmp_path / "awkward.parquet")
    out = tmp_path / "out"
    report = Pipeline(
        [TextLength(), MinLength(min_chars=1)],
        reader=ParquetReader(str(tmp_path / "awkward.parquet"), batch_size=16),
        writer=ParquetWriter(str(out)),
    ).run()
    assert report.ok, report.failures
    written = read_output(out)
    kept = {r["id"]: r for r in written.to_pylist()}
    assert "null-text" not in kept and "empty-text" not in kept
    assert kept["ten-megabytes"]["text_length"] == TEN_MB
    assert (
        kept["ten-megabytes"]["text"]
        == table.filter(pa.compute.equal(table.column("id"), "ten-megabytes"))
        .column("text")[0]
        .as_py()
    )
    rejects = pq.read_table(out / "_rejects" / "awkward.parquet")
    assert sorted(rejects.column("id").to_pylist()) == ["empty-text", "null-text"]
    assert rejects.column("text_length").to_pylist() == [0, 0]


def test_fsspec_urls_work_for_input_and_output():
    fs = fsspec.filesystem("memory")
    table = sample_table().slice(0, 120)
    with fs.open("/gristmill-test/in/a.parquet", "wb") as handle:
        pq.write_table(table, handle)
    report = Pipeline(
        [TextLength()],
        reader=ParquetReader("memory://gristmill-test/in/*.parquet"),
        writer=ParquetWriter("memory://gristmill-test/out"),
    ).run()
    assert report.ok, report.failures
    with fs.open("/gristmill-test/out/a.parquet", "rb") as handle:
        written = pq.read_table(handle)
    assert written.select(table.column_names).equals(table)
    assert fs.exists("/gristmill-test/out/_run/markers/pass-01/a.json")
    fs.rm("/gristmill-test", recursive=True)
