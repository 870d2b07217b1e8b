"""The local executor as a backend: ``fn(shared, item)`` over items in a spawned pool, in
order, with the shared object sent to each worker once, an exception kept with its item, and
an item that keeps killing its worker reported while the others complete."""

from __future__ import annotations

import os

from gristmill.executors import LocalExecutor, Lost


class Shared:
    """Counts, per worker process, how often it was unpickled."""

    loads = 0

    def __init__(self) -> None:
        self.payload = "stages and their parameters"

    def __setstate__(self, state: dict) -> None:
        type(self).loads += 1
        self.__dict__.update(state)


def square(_shared: object, value: int) -> int:
    return value * value


def where(shared: Shared, _item: int) -> tuple[int, int]:
    return os.getpid(), Shared.loads


def divide(_shared: object, value: int) -> float:
    return 1 / value


def die_on_three(_shared: object, value: int) -> int:
    if value == 3:
        os._exit(137)
    return value


def test_outcomes_come_back_in_order_and_each_is_heard_once():
    heard: list[int] = []
    outcomes = LocalExecutor(workers=2).map(
        square, list(range(9)), on_done=lambda index, _outcome: heard.append(index)
    )
    assert outcomes == [i * i for i in range(9)]
    assert sorted(heard) == list(range(9))


def test_the_shared_object_is_unpickled_once_per_worker_process():
    executor = LocalExecutor(workers=2)
    with executor.session():
        first = executor.map(where, list(range(12)), shared=Shared())
        second = executor.map(where, list(range(12)), shared=Shared())
    for outcomes in (first, second):
        assert all(loads == 1 for _pid, loads in outcomes)  # never once per item
    # One pool for the whole session: never more than its two worker processes.
    assert len({pid for pid, _ in first} | {pid for pid, _ in second}) <= 2
    assert all(pid != os.getpid() for pid, _ in first)


def test_an_exception_stays_with_its_item():
    for workers in (1, 2):
        outcomes = LocalExecutor(workers=workers).map(divide, [1, 0, 4])
        assert outcomes[0] == 1.0 and outcomes[2] == 0.25
        assert isinstance(outcomes[1], Lost) and "ZeroDivisionError" in outcomes[1].error
        assert outcomes[1].details and "divide" in outcomes[1].details


def test_an_item_that_kills_its_worker_is_retried_then_reported_and_the_others_complete():
    outcomes = LocalExecutor(workers=2, retries=1).map(die_on_three, list(range(6)))
    assert [o for i, o in enumerate(outcomes) if i != 3] == [0, 1, 2, 4, 5]
    assert isinstance(outcomes[3], Lost)
    assert "worker process died" in outcomes[3].error and "2 attempts" in outcomes[3].error


class Models:
    """A shared object holding models: its teardown releases them (here: leaves a mark)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def teardown(self) -> None:
        from pathlib import Path

        Path(self.folder, f"torn-down-{os.getpid()}").write_text("released")


def print_and_hook(models: Models, value: int) -> int:
    """Leaves unflushed output and an exit hook behind, as a model library does."""
    import atexit
    from pathlib import Path

    print(f"worker said {value}", end=" ")  # no newline, no flush: still in the buffer
    marker = Path(models.folder, f"hook-{os.getpid()}")
    atexit.register(marker.write_text, "ran")
    return value


def test_workers_end_without_losing_output_hooks_or_teardown(tmp_path, capfd):
    """Workers skip the interpreter's teardown when the pool shuts down, but only after their
    buffered output is written, every exit hook registered after they started has run, and
    the stage chains they keep are torn down (models released by their stage, not by GC)."""
    executor = LocalExecutor(workers=2)
    with executor.session():
        outcomes = executor.map(print_and_hook, [0, 1, 2, 3], shared=Models(str(tmp_path)))
    assert outcomes == [0, 1, 2, 3]
    said = capfd.readouterr().out
    assert all(f"worker said {value}" in said for value in range(4))
    hooks = sorted(path.name.split("-")[-1] for path in tmp_path.glob("hook-*"))
    torn = sorted(path.name.split("-")[-1] for path in tmp_path.glob("torn-down-*"))
    assert hooks and hooks == torn
