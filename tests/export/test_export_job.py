"""The export as a run-driver job: the same bytes on every executor, resume after a kill,
reruns that do nothing, failures that keep the rest.

The interrupted export is a real ``gristmill export`` process (with a process pool) killed
with SIGKILL part-way through its tokenise step; the Dask export runs on a real LocalCluster.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import meco_curated, split_samples
from support.processes import kill_when

from gristmill.export import ExportIncompleteError, ExportOptions, export_corpus
from gristmill.export.writer import EXPORT_FILES, read_token_files

REPO = Path(__file__).resolve().parents[2]
KILL_SHARDS = 32


def _files(export: Path) -> dict[str, bytes]:
    return {name: (export / name).read_bytes() for name in EXPORT_FILES}


def _assert_same_files(export: Path, reference: Path) -> None:
    ours, expected = _files(export), _files(reference)
    for name in EXPORT_FILES:
        assert ours[name] == expected[name], f"{name} differs from the reference export"


def _assert_clean(export: Path) -> None:
    """A complete export keeps its markers and run.json, not its per-task files or temporaries."""
    assert not (export / "_run" / "tokenised").exists(), "per-task files kept"
    assert [p for p in export.rglob("*") if p.name.startswith(".tmp-")] == []
    assert (export / "_run" / "run.json").exists()
    assert (export / "_run" / "markers" / "write" / "export.json").exists()


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curated output of six files (small row groups) with MeCo prefixes and phases."""
    root = tmp_path_factory.mktemp("tagged")
    rows = meco_curated(root, rows=600, parts=6, row_group_size=40)
    (root / "_rejects").mkdir()
    pq.write_table(rows.slice(0, 3), root / "_rejects" / "part-000.parquet")
    return root


OPTIONS = {
    "unpacked": ExportOptions(batch_size=64),
    "split": ExportOptions(batch_size=64, seq_len=128),
    "truncate": ExportOptions(batch_size=64, seq_len=128, pack_mode="truncate"),
    "conditioning": ExportOptions(batch_size=64, seq_len=100, phase="conditioning"),
}


@pytest.fixture(scope="module")
def local_exports(tagged: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each option set exported in this process, task after task: the reference bytes."""
    root = tmp_path_factory.mktemp("local")
    exports = {}
    for name, options in OPTIONS.items():
        summary = export_corpus([str(tagged)], root / name, options)
        assert summary.tasks == summary.tasks_run == 6
        assert summary.tokens_in == summary.tokens + summary.tokens_dropped
        exports[name] = root / name
    return exports


def test_export_on_a_dask_cluster_gives_the_same_bytes(
    tagged: Path, local_exports: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    from gristmill.executors.config import DaskConfig
    from gristmill.executors.dask import DaskExecutor

    executor = DaskExecutor(DaskConfig(dashboard_address=":0"), workers=2)
    with executor.session():  # one cluster for the four exports
        for name, options in OPTIONS.items():
            summary = export_corpus([str(tagged)], tmp_path / name, options, executor=executor)
            assert summary.tasks_run == 6
            _assert_same_files(tmp_path / name, local_exports[name])
            _assert_clean(tmp_path / name)
    assert executor.dashboard_link is not None
    meta = read_token_files(tmp_path / "truncate")[3]
    assert meta["tokens_dropped"] > 0  # truncation was exercised
    assert meta["tokens_in"] == meta["tokens_written"] + meta["tokens_dropped"]
    phases = pq.read_table(tmp_path / "unpacked" / "sequences.parquet").column("phase")
    assert set(phases.to_pylist()) == {"conditioning", "cooldown"}


def test_a_rerun_of_a_complete_export_does_nothing(
    tagged: Path, local_exports: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "out"
    first = export_corpus([str(tagged)], output, OPTIONS["split"])
    _assert_clean(output)
    _assert_same_files(output, local_exports["split"])
    stamps = {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()}
    stamps.pop(output / "_run" / "run.json")  # the claim rewrites it, with the same content
    stamps.pop(output / "_run" / "failures.json")
    again = export_corpus([str(tagged)], output, OPTIONS["split"])
    assert again.tasks_run == 0 and again.tasks == 6
    assert (again.documents, again.sequences, again.tokens, again.tokens_in) == (
        first.documents,
        first.sequences,
        first.tokens,
        first.tokens_in,
    )
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "a complete export was rewritten"


def test_a_lost_output_file_is_made_again(
    tagged: Path, local_exports: dict[str, Path], tmp_path: Path
) -> None:
    """The write step's marker is not enough: with a file gone, both steps run again (the
    per-task files were removed when the export completed)."""
    output = tmp_path / "out"
    export_corpus([str(tagged)], output, OPTIONS["truncate"])
    (output / "index.npy").unlink()
    again = export_corpus([str(tagged)], output, OPTIONS["truncate"])
    assert again.tasks_run == 6
    _assert_same_files(output, local_exports["truncate"])
    _assert_clean(output)


def test_an_unreadable_input_fails_its_task_and_a_rerun_finishes(
    tagged: Path, local_exports: dict[str, Path], tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in tagged.glob("*.parquet"):
        (inputs / path.name).write_bytes(path.read_bytes())
    broken = inputs / "part-003.parquet"
    good = broken.read_bytes()
    broken.write_bytes(b"PAR1 not parquet")
    output = tmp_path / "out"
    with pytest.raises(ExportIncompleteError, match="1 of 6 input tasks could not be tokenised"):
        export_corpus([str(inputs)], output, OPTIONS["split"])
    assert not (output / "meta.json").exists()  # never a complete-looking export
    failures = json.loads((output / "_run" / "failures.json").read_text())
    assert [f["input"] for f in failures] == [str(broken)]
    assert "not a readable Parquet file" in failures[0]["error"]
    assert len(list((output / "_run" / "tokenised").glob("*.parquet"))) == 5

    broken.write_bytes(good)
    summary = export_corpus([str(inputs)], output, OPTIONS["split"])
    assert summary.tasks_run == 1
    assert json.loads((output / "_run" / "failures.json").read_text()) == []
    _assert_same_files(output, local_exports["split"])


def test_a_changed_input_is_exported_again(tagged: Path, tmp_path: Path) -> None:
    """Not refused (the options are the same): the export follows its inputs. The per-task
    files of a complete export are gone, so every task is tokenised again."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("part-000.parquet", "part-001.parquet"):
        (inputs / name).write_bytes((tagged / name).read_bytes())
    output = tmp_path / "out"
    first = export_corpus([str(inputs)], output, OPTIONS["unpacked"])
    assert (first.tasks, first.tasks_run, first.documents) == (2, 2, 200)
    table = pq.read_table(tagged / "part-001.parquet")
    pq.write_table(table.slice(0, 10), inputs / "part-001.parquet")
    again = export_corpus([str(inputs)], output, OPTIONS["unpacked"])
    assert (again.tasks_run, again.documents) == (2, 110)
    written = pq.read_table(output / "sequences.parquet")
    # Training order: the conditioning documents of both files, then their cooldown ones.
    first_file = pq.read_table(inputs / "part-000.parquet")
    expected = [
        doc
        for phase in ("conditioning", "cooldown")
        for part in (first_file, table.slice(0, 10))
        for doc, p in zip(
            part.column("id").to_pylist(), part.column("phase").to_pylist(), strict=True
        )
        if p == phase
    ]
    assert written.column("doc_id").to_pylist() == expected


# -- a real process, killed part-way ------------------------------------------------------------
@pytest.fixture(scope="module")
def many_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples as many small files, so that a kill lands while some are still to do."""
    directory = tmp_path_factory.mktemp("many")
    split_samples(directory, KILL_SHARDS)
    return directory


@pytest.fixture(scope="module")
def many_reference(many_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The many files exported in this process, packed: the bytes a resumed export must give."""
    reference = tmp_path_factory.mktemp("many_reference")
    export_corpus([str(many_shards)], reference, ExportOptions(seq_len=256))
    return reference


def _cli(inputs: Path, output: Path, *extra: str, capture: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gristmill", "export", str(inputs), "-o", str(output), *extra],
        cwd=REPO,
        start_new_session=True,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _markers(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.glob("*.json")}


@pytest.mark.parametrize("step", ["tokenise", "write"])
def test_an_export_killed_part_way_resumes_to_the_same_bytes(
    many_shards: Path, many_reference: Path, tmp_path: Path, step: str
) -> None:
    """Killed while tokenising (with a process pool) or while writing the files: nothing looks
    complete, and the rerun redoes only what is missing."""
    output = tmp_path / "out"
    markers = output / "_run" / "markers" / "tokenise"
    killed = _cli(many_shards, output, "--seq-len", "256", "--workers", "2", "--quiet")
    if step == "tokenise":
        kill_when(killed, lambda: len(_markers(markers)) >= 2)
        done = len(_markers(markers))
        assert 2 <= done < KILL_SHARDS, "the tokenise step should have been killed part-way"
    else:
        kill_when(killed, lambda: any(output.glob(".tmp-*-tokens.bin")))
        done = len(_markers(markers))
        assert done == KILL_SHARDS
        assert not (output / "_run" / "markers" / "write").exists()
    assert not (output / "meta.json").exists(), "a killed export looks complete"
    assert not (output / "tokens.bin").exists()
    before = _markers(markers)

    rerun = _cli(many_shards, output, "--seq-len", "256", capture=True)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    message = " ".join(stderr.split())
    assert f"{KILL_SHARDS - done} of {KILL_SHARDS} input tasks tokenised now" in message
    _assert_same_files(output, many_reference)
    _assert_clean(output)
    after = _markers(markers)
    assert len(after) == KILL_SHARDS
    assert all(after[name] == before[name] for name in before), "a completed task ran again"


def test_packed_rows_cross_files_as_if_they_were_one_stream(
    tagged: Path, local_exports: dict[str, Path], tmp_path: Path
) -> None:
    """Packing continues from one task's last document to the next task's first, in order."""
    whole = tmp_path / "whole"
    whole.mkdir()
    table = pa.concat_tables(pq.read_table(p) for p in sorted(tagged.glob("*.parquet")))
    pq.write_table(table, whole / "all.parquet")
    export_corpus([str(whole)], tmp_path / "one", OPTIONS["split"])
    for name in ("tokens.bin", "loss_mask.bin", "index.npy"):
        assert (tmp_path / "one" / name).read_bytes() == (
            local_exports["split"] / name
        ).read_bytes()
    rows = pq.read_table(local_exports["split"] / "sequences.parquet").to_pylist()
    tables = [pq.read_table(p) for p in sorted(tagged.glob("*.parquet"))]
    for phase in ("conditioning", "cooldown"):  # each phase is one stream across the files
        files = [
            [
                i
                for i, p in zip(
                    t.column("id").to_pylist(), t.column("phase").to_pylist(), strict=True
                )
                if p == phase
            ]
            for t in tables
        ]
        for last, first in itertools.pairwise(files):  # a row holds a file's end, the next's start
            assert any(last[-1] in row["doc_ids"] and first[0] in row["doc_ids"] for row in rows)
