"""Resume and failure isolation of the local executor, with real processes killed for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
from support.data import read_output, split_samples
from support.stages import KillWorkerOnce, TextLength

from gristmill import Pipeline
from gristmill.io import ParquetReader, ParquetWriter

TESTS = Path(__file__).resolve().parents[1]

RUN_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from support.stages import TextLength
    from gristmill import Pipeline
    from gristmill.io import ParquetReader, ParquetWriter

    if __name__ == "__main__":
        Pipeline(
            [TextLength(sleep_per_batch=0.4)],
            reader=ParquetReader({inputs!r}, batch_size=100),
            writer=ParquetWriter({output!r}),
        ).run(workers=2)
    """
)


def _pipeline(inputs: Path, output: Path, **stage_options) -> Pipeline:
    return Pipeline(
        [TextLength(**stage_options)],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=100),
        writer=ParquetWriter(str(output)),
    )


def _markers(output: Path) -> list[Path]:
    return list((output / "_run" / "markers" / "pass-01").glob("*.json")) if output.exists() else []


def test_resume_after_kill_gives_exactly_the_uninterrupted_output(tmp_path: Path):
    inputs = tmp_path / "in"
    split_samples(inputs, 12)
    reference = tmp_path / "reference"
    _pipeline(inputs, reference).run(workers=2)

    interrupted = tmp_path / "interrupted"
    script = tmp_path / "run.py"
    script.write_text(
        RUN_SCRIPT.format(
            tests=str(TESTS), inputs=str(inputs / "*.parquet"), output=str(interrupted)
        )
    )
    process = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_markers(interrupted)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(_markers(interrupted))
    assert 3 <= done_before < 12, "the run should have been killed part-way"

    report = _pipeline(inputs, interrupted, sleep_per_batch=0.4).run(workers=2)
    assert report.ok
    assert report.tasks_skipped >= done_before
    assert report.tasks_run == 12 - report.tasks_skipped

    resumed, expected = read_output(interrupted), read_output(reference)
    ids = resumed.column("id").to_pylist()
    assert len(ids) == len(set(ids))
    assert resumed.equals(expected)
    leftovers = [p for p in interrupted.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert report.stats.stages["01_test_text_length"].docs_in == expected.num_rows


def test_rerun_of_a_complete_output_does_nothing(tmp_path: Path):
    inputs = tmp_path / "in"
    split_samples(inputs, 3, rows=300)
    first = _pipeline(inputs, tmp_path / "out").run()
    second = _pipeline(inputs, tmp_path / "out").run()
    assert first.tasks_run == 3 and second.tasks_run == 0 and second.tasks_skipped == 3
    assert second.stats.to_dict() == first.stats.to_dict()


def test_corrupt_shard_fails_alone_and_names_its_file(tmp_path: Path):
    inputs = tmp_path / "in"
    split_samples(inputs, 4)
    (inputs / "part-002.parquet").write_bytes(b"PAR1 this is not parquet at all")
    out = tmp_path / "out"

    report = _pipeline(inputs, out).run(workers=2)

    assert not report.ok and len(report.failures) == 1
    failure = report.failures[0]
    assert failure.url.endswith("part-002.parquet")
    assert "part-002.parquet" in failure.error and "not a readable Parquet file" in failure.error
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "part-000.parquet",
        "part-001.parquet",
        "part-003.parquet",
    ]
    for name in ("part-000", "part-001", "part-003"):
        assert pq.read_table(out / f"{name}.parquet").equals(
            pq.read_table(inputs / f"{name}.parquet").append_column(
                "text_length", pq.read_table(out / f"{name}.parquet").column("text_length")
            )
        )


def test_a_task_that_kills_its_worker_is_retried_and_the_others_finish(tmp_path: Path):
    inputs = tmp_path / "in"
    split_samples(inputs, 4)
    victim = pq.read_table(inputs / "part-001.parquet").column("source")[0].as_py()
    sentinel = tmp_path / "killed-once"
    out = tmp_path / "out"
    run = Pipeline(
        [KillWorkerOnce(victim_source=victim, sentinel=str(sentinel)), TextLength()],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=100),
        writer=ParquetWriter(str(out)),
    )
    report = run.run(workers=2)
    assert sentinel.exists(), "the worker was never killed: the test proves nothing"
    assert report.ok, report.failures
    reference = tmp_path / "reference"
    _pipeline(inputs, reference).run()
    assert read_output(out).equals(read_output(reference))


def test_a_deleted_output_file_is_written_again_and_only_it(tmp_path: Path):
    inputs = tmp_path / "in"
    split_samples(inputs, 3, rows=300)
    first = _pipeline(inputs, tmp_path / "out").run()
    complete = read_output(tmp_path / "out")
    (tmp_path / "out" / "part-001.parquet").unlink()
    again = _pipeline(inputs, tmp_path / "out").run()
    assert first.ok and again.ok
    assert (again.tasks_run, again.tasks_skipped) == (1, 2)
    assert read_output(tmp_path / "out").equals(complete)
