"""A run started at a script's import time, where worker processes would import the script
again and start the run again in each of them, is refused before any worker starts, with a
message that says what to do. Real scripts, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.data import split_samples

from gristmill.runs.mainguard import guarded_lines

SCRIPT = textwrap.dedent(
    """
    from gristmill import Pipeline
    from gristmill.io import ParquetReader, ParquetWriter

    def run():
        return Pipeline([], reader=ParquetReader({inputs!r}),
                        writer=ParquetWriter({output!r})).run(workers={workers})
    {call}
    """
)


def _script(tmp_path: Path, call: str, workers: int) -> subprocess.CompletedProcess[str]:
    split_samples(tmp_path / "in", 2, rows=40)
    path = tmp_path / "script.py"
    path.write_text(
        SCRIPT.format(
            inputs=str(tmp_path / "in" / "*.parquet"),
            output=str(tmp_path / "out"),
            workers=workers,
            call=call,
        )
    )
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )


def test_a_run_at_import_time_with_workers_is_refused_with_what_to_do(tmp_path: Path):
    result = _script(tmp_path, "report = run()", workers=2)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "script.py line" in last and "starts a gristmill run when the script is imported" in last
    assert 'if __name__ == "__main__":' in last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("call", "workers"),
    [('if __name__ == "__main__":\n    run()', 2), ("run()", 1)],
    ids=["guarded", "in-process"],
)
def test_a_guarded_script_or_an_in_process_run_goes_ahead(tmp_path: Path, call: str, workers: int):
    result = _script(tmp_path, call, workers=workers)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.parquet")) == [
        "part-000.parquet",
        "part-001.parquet",
    ]


def test_guarded_lines_are_found_either_way_round():
    source = textwrap.dedent(
        """
        a = 1
        if __name__ == "__main__":
            b = 2
            c = 3
        if "__main__" == __name__:
            d = 4
        if __name__ != "__main__":
            e = 5
        """
    )
    assert guarded_lines(source) == {4, 5, 7}
