"""One run per output directory: a second run is refused while the first lives, a dead run's
lock is taken over, and killing a driver leaves no process of its run alive (local pool and
Dask), so nothing writes into the output after its run is gone. Real processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from support.data import read_output, split_samples
from support.stages import TextLength

from gristmill import Pipeline
from gristmill.errors import ConfigError
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.runs.lock import RunLock, process_alive

TESTS = Path(__file__).resolve().parents[1]

SLOW_RUN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from support.stages import TextLength
    from gristmill import Pipeline
    from gristmill.io import ParquetReader, ParquetWriter
    from gristmill.executors import LocalExecutor

    if __name__ == "__main__":
        executor = LocalExecutor(workers=2)
        if {dask!r}:
            from gristmill.executors.config import DaskConfig
            from gristmill.executors.dask import DaskExecutor
            executor = DaskExecutor(DaskConfig(dashboard_address=":0"), workers=2)
        Pipeline(
            [TextLength(sleep_per_batch={sleep})],
            reader=ParquetReader({inputs!r}, batch_size=50),
            writer=ParquetWriter({output!r}),
        ).run(executor=executor)
    """
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("in")
    split_samples(directory, 8)
    return directory


def _pipeline(inputs: Path, output: Path, sleep: float = 0.0) -> Pipeline:
    return Pipeline(
        [TextLength(sleep_per_batch=sleep)],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=50),
        writer=ParquetWriter(str(output)),
    )


def _start(
    tmp_path: Path, inputs: Path, output: Path, *, dask: bool = False, sleep: float = 0.3
) -> subprocess.Popen:
    script = tmp_path / "run.py"
    script.write_text(
        SLOW_RUN.format(
            tests=str(TESTS),
            inputs=str(inputs / "*.parquet"),
            output=str(output),
            dask=dask,
            sleep=sleep,
        )
    )
    return subprocess.Popen([sys.executable, str(script)], start_new_session=True)


def _wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            pass
    return living


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(
    shards: Path, tmp_path: Path
):
    output = tmp_path / "out"
    first = _start(tmp_path, shards, output)
    try:
        _wait_for(lambda: (output / "_run" / "lock.json").exists())
        with pytest.raises(ConfigError, match=r"being written by another gristmill run \(pid"):
            _pipeline(shards, output).run()
        lock = json.loads((output / "_run" / "lock.json").read_text())
        assert lock["pid"] == first.pid
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_the_lock_of_a_killed_run_is_taken_over_and_the_run_completes(shards: Path, tmp_path: Path):
    output = tmp_path / "out"
    first = _start(tmp_path, shards, output, sleep=0.1)
    _wait_for(lambda: len(list((output / "_run" / "markers" / "pass-01").glob("*.json"))) >= 1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert (output / "_run" / "lock.json").exists(), "the dead run's lock is left behind"

    report = _pipeline(shards, output, sleep=0.1).run(workers=2)
    assert report.ok and report.tasks_skipped >= 1
    assert not (output / "_run" / "lock.json").exists()
    reference = tmp_path / "reference"
    _pipeline(shards, reference).run()
    assert read_output(output).equals(read_output(reference))


@pytest.mark.parametrize("dask", [False, True], ids=["local", "dask"])
def test_killing_the_driver_leaves_no_process_of_the_run_and_nothing_more_is_written(
    shards: Path, tmp_path: Path, dask: bool
):
    if dask:
        pytest.importorskip("distributed")
    output = tmp_path / "out"
    driver = _start(tmp_path, shards, output, dask=dask, sleep=0.5)
    markers = output / "_run" / "markers" / "pass-01"
    _wait_for(lambda: len(list(markers.glob("*.json"))) >= 1, seconds=180)
    children = psutil.Process(driver.pid).children(recursive=True)
    assert len(children) >= 2, "the run should have worker processes"

    os.kill(driver.pid, signal.SIGKILL)  # the driver alone: its workers are not signalled
    driver.wait()
    deadline = time.monotonic() + 10
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(children) == [], "worker processes outlived their driver"

    written = sorted(p.name for p in output.rglob("*") if p.is_file())
    time.sleep(2)
    assert sorted(p.name for p in output.rglob("*") if p.is_file()) == written


def test_a_lock_names_a_live_holder_and_a_dead_one_is_stale(tmp_path: Path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        url = str(tmp_path / "_run" / "lock.json")
        (tmp_path / "_run").mkdir()
        held = {
            "token": "x",
            "host": socket.gethostname(),
            "pid": sleeper.pid,
            "started": 0,
            "heartbeat": time.time(),
            "command": "gristmill run other.yaml",
        }
        Path(url).write_text(json.dumps(held))
        with pytest.raises(ConfigError, match=r"pid \d+ on .*gristmill run other.yaml"):
            RunLock(url, str(tmp_path)).acquire()
        sleeper.kill()
        sleeper.wait()
        assert not process_alive(sleeper.pid)
        lock = RunLock(url, str(tmp_path))
        lock.acquire()
        assert lock.took_over is not None and lock.took_over["pid"] == sleeper.pid
        assert json.loads(Path(url).read_text())["token"] == lock.token
        lock.release()
        assert not Path(url).exists()
    finally:
        sleeper.kill()
