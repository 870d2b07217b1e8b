"""Never lose good work: the default pipeline (its whole-run cut and MeCo split included) over
the samples plus one bad file. The bad file fails alone and is named; every good shard gets
exactly the output a clean run over the good files gives; a rerun completes what is missing.
A file with one unreadable row is not a failure: the row goes to the rejects, named, and the
rest of the file goes on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import sample_table

from gristmill.runs.config import load_pipeline

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"
DEFAULT = REPO / "pipelines" / "default.yaml"
LIMIT = 30  # documents per task: every stage runs, quickly
EXTRA = "zz-extra"


def _run(inputs: Path, output: Path):
    config = load_pipeline(DEFAULT)
    config.input = config.input.model_copy(update={"paths": [str(inputs)]})
    config.output = config.output.model_copy(update={"path": str(output)})
    return config.build().run(workers=1, limit=LIMIT)


def _inputs(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for path in SAMPLES.glob("*.parquet"):
        shutil.copy(path, directory / path.name)
    return directory


def _extra_rows() -> pa.Table:
    """Twenty real documents under new ids: a good file that is not among the samples."""
    table = sample_table().slice(500, 20)
    ids = pa.array([f"{EXTRA}-{i}" for i in range(table.num_rows)])
    return table.set_column(table.column_names.index("id"), "id", ids)


def _files(output: Path) -> dict[str, pa.Table]:
    """Every data and rejects file of an output, by its path relative to it."""
    found = {}
    for path in sorted(output.rglob("*.parquet")):
        relative = path.relative_to(output)
        if relative.parts[0] == "_run":
            continue
        found[str(relative)] = pq.read_table(path)
    return found


def _assert_same_files(output: Path, expected: Path, *, leave_out: str | None = None) -> None:
    written, wanted = _files(output), _files(expected)
    if leave_out is not None:
        wanted = {k: v for k, v in wanted.items() if leave_out not in k}
    assert sorted(written) == sorted(wanted)
    for name, table in wanted.items():
        assert written[name].equals(table), name


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean run over the samples: what every good shard must get."""
    root = tmp_path_factory.mktemp("clean")
    report = _run(_inputs(root / "in"), root / "out")
    assert report.ok, report.failures
    return root / "out"


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_bad_file_fails_alone_and_every_good_shard_gets_its_output(
    clean: Path, tmp_path: Path, damage: str
):
    inputs = _inputs(tmp_path / "in")
    bad = inputs / f"{EXTRA}.parquet"
    whole = (SAMPLES / "web-c4-0000.parquet").read_bytes()
    bad.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else b"")
    output = tmp_path / "out"

    report = _run(inputs, output)

    assert not report.ok and report.not_run == []
    assert [f.task_id for f in report.failures] == [EXTRA]
    assert f"{EXTRA}.parquet" in report.failures[0].error
    assert "not a readable Parquet file" in report.failures[0].error
    # Every whole-run step was computed over the nine good files, and says so.
    assert set(report.phases) == {
        "07_exact_dedup",
        "08_minhash_dedup",
        "12_score_filter",
        "17_template_match",
        "19_meco",
    }
    # The template index reads no document: it ran before pass 1, over every task.
    index = report.phases["17_template_match"]
    assert index["tasks"] == 10 and index["tasks_left_out"] == []
    for label, phase in report.phases.items():
        if label != "17_template_match":
            assert phase["tasks"] == 9 and phase["tasks_left_out"] == [EXTRA]
    stats = json.loads((output / "_run" / "stats.json").read_text())
    assert stats["phases"]["19_meco"]["tasks_left_out"] == [EXTRA]
    failures = json.loads((output / "_run" / "failures.json").read_text())
    assert [(f["task"], f["step"]) for f in failures] == [
        (EXTRA, "pass 1 of 5: 01_language … 06_fineweb_quality")
    ]
    _assert_same_files(output, clean)

    # The bad file removed, a rerun has nothing left to do and cleans up.
    bad.unlink()
    again = _run(inputs, output)
    assert again.ok and again.tasks_run == 0
    _assert_same_files(output, clean)
    assert not (output / "_run" / "passes").exists()


@pytest.mark.slow  # three runs of the default pipeline
def test_a_fixed_file_rejoins_the_whole_run_steps_on_rerun(tmp_path: Path):
    inputs = _inputs(tmp_path / "in")
    bad = inputs / f"{EXTRA}.parquet"
    bad.write_bytes(b"PAR1 not a Parquet file")
    output = tmp_path / "out"
    first = _run(inputs, output)
    assert [f.task_id for f in first.failures] == [EXTRA]

    pq.write_table(_extra_rows(), bad)
    again = _run(inputs, output)
    assert again.ok, again.failures
    assert all(phase["tasks"] == 10 for phase in again.phases.values())

    reference = tmp_path / "reference"
    clean_inputs = _inputs(tmp_path / "clean-in")
    pq.write_table(_extra_rows(), clean_inputs / f"{EXTRA}.parquet")
    assert _run(clean_inputs, reference).ok
    _assert_same_files(output, reference)


def test_an_unreadable_row_goes_to_the_rejects_and_the_rest_of_its_file_goes_on(
    tmp_path: Path,
):
    good = _extra_rows()
    text = good.column("text").to_pylist()
    raw = [t.encode("utf-8") for t in text]
    raw[10] = b"broken \xff\xfe bytes in the middle of a document"
    columns = [good.column(name) for name in good.column_names]
    columns[good.column_names.index("text")] = pa.array(raw, pa.binary()).view(pa.string())
    damaged = pa.Table.from_arrays(columns, schema=good.schema)
    inputs = _inputs(tmp_path / "in")
    pq.write_table(damaged, inputs / f"{EXTRA}.parquet")
    output = tmp_path / "out"

    report = _run(inputs, output)

    assert report.ok, report.failures
    assert report.stats.unreadable == 1
    rejects = pq.read_table(output / "_rejects" / "pass-01" / f"{EXTRA}.parquet")
    unreadable = rejects.filter(pa.compute.equal(rejects.column("drop_stage"), "00_input"))
    assert unreadable.column("id").to_pylist() == [f"{EXTRA}-10"]
    (reason,) = unreadable.column("drop_reason").to_pylist()
    assert reason.startswith("unreadable row 10: invalid UTF-8 in 'text'")
    assert "\ufffd" in unreadable.column("text")[0].as_py()

    # The rest of the file went on: a clean run over the same good rows gives the same output.
    reference = tmp_path / "reference"
    clean_inputs = _inputs(tmp_path / "clean-in")
    rest = good.filter(pa.array([i != 10 for i in range(good.num_rows)]))
    pq.write_table(rest, clean_inputs / f"{EXTRA}.parquet")
    assert _run(clean_inputs, reference).ok
    written, wanted = _files(output), _files(reference)
    extra_rejects = f"_rejects/pass-01/{EXTRA}.parquet"
    others = written.pop(extra_rejects)
    others = others.filter(pa.compute.not_equal(others.column("drop_stage"), "00_input"))
    if others.num_rows:
        written[extra_rejects] = others
    assert sorted(written) == sorted(wanted)
    for name, table in wanted.items():
        assert written[name].equals(table), name
