"""Round sampling over real Parquet pools: exact counts, reproducibility, no repeats within a
pass, continuation across rounds, and byte-identical output whatever the worker count.

A round's parts are written on the run driver: any executor (in-process, a process pool, a
Dask cluster) gives the same bytes, a round that stopped part-way resumes with only its
missing parts, a failed part is reported and no manifest is written, and a round directory
made by other settings is refused rather than mixed."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import TEST_DATA

from gristmill.errors import ConfigError, InputError
from gristmill.executors.local import LocalExecutor
from gristmill.mixing import (
    MixtureError,
    PoolCursor,
    build_pools,
    draw_from_pool,
    largest_remainder_counts,
    read_manifest,
    round_dir,
    sample_round,
)

SOURCES = TEST_DATA / "sources"
POOL_SIZES = {"a": 40, "b": 25, "c": 12}


def write_shards(
    directory: Path, sizes: dict[str, int] = POOL_SIZES, files: int = 3, *, column: bool = True
) -> list[str]:
    """Skills spread over several files, interleaved, with small row groups to exercise reads."""
    rows = [(skill, n) for skill, size in sizes.items() for n in range(size)]
    rows.sort(key=lambda r: (r[1] * 7 + sum(map(ord, r[0]))) % 11)  # interleave skills within files
    paths = []
    for f in range(files):
        chunk = rows[f::files]
        table = pa.table(
            {
                "id": [f"{s}-{n}" for s, n in chunk],
                "text": [f"document {n} of skill {s} " * (1 + n % 3) for s, n in chunk],
                "skill": [s for s, _ in chunk],
                "n": pa.array([n for _, n in chunk], type=pa.int32()),
            }
        )
        if not column:
            table = table.drop_columns(["skill"])
        path = directory / f"shard-{f}.parquet"
        pq.write_table(table, path, row_group_size=4)
        paths.append(str(path))
    return paths


def read_round(output: Path, round_index: int) -> pa.Table:
    parts = sorted(round_dir(output, round_index).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def round_files(output: Path, round_index: int) -> dict[str, bytes]:
    """What a trainer reads of a round: its parts and manifest (not the run's ``_run/``)."""
    directory = round_dir(output, round_index)
    paths = [*directory.glob("part-*.parquet"), directory / "manifest.json"]
    return {p.name: p.read_bytes() for p in sorted(paths) if p.exists()}


MIX = {"a": 0.5, "b": 0.3, "c": 0.2}


# -- largest remainder ---------------------------------------------------------------------


def test_largest_remainder_hand_examples() -> None:
    # quotas 3.6, 3.6, 2.8: floors 3, 3, 2; two left over go to .8 then the first .6
    assert largest_remainder_counts([0.36, 0.36, 0.28], 10) == [4, 3, 3]
    # 0.7 * 30 is 20.999... in floating point; exact fractions still give the obvious answer
    assert largest_remainder_counts([0.1, 0.2, 0.7], 30) == [3, 6, 21]
    # the official code's floor-plus-remainder-to-last would give [1, 0, 2]
    assert largest_remainder_counts([0.5, 0.25, 0.25], 3) == [1, 1, 1]
    assert largest_remainder_counts([2, 0, 2], 5) == [3, 0, 2]  # unnormalised weights are fine
    with pytest.raises(MixtureError):
        largest_remainder_counts([0.5, float("nan")], 3)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=8).filter(
        lambda w: sum(w) > 0
    ),
    total=st.integers(0, 10_000),
)
def test_largest_remainder_property(weights: list[float], total: int) -> None:
    counts = largest_remainder_counts(weights, total)
    assert sum(counts) == total
    quotas = [Fraction(w) * total / sum(Fraction(x) for x in weights) for w in weights]
    for count, quota in zip(counts, quotas, strict=True):
        assert math.floor(quota) <= count <= math.ceil(quota)
    rounded_up = [q - math.floor(q) for c, q in zip(counts, quotas, strict=True) if c > q]
    rounded_down = [q - math.floor(q) for c, q in zip(counts, quotas, strict=True) if c < q]
    if rounded_up and rounded_down:
        assert min(rounded_up) >= max(rounded_down)


# -- pool walks -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 60), splits=st.lists(st.integers(0, 50), min_size=1, max_size=6))
def test_a_walk_split_over_rounds_equals_one_long_walk(size: int, splits: list[int]) -> None:
    whole = draw_from_pool(size, sum(splits), seed=3, skill="x", start=PoolCursor())
    cursor, pieces, repeats = PoolCursor(), [], 0
    for count in splits:
        draw = draw_from_pool(size, count, seed=3, skill="x", start=cursor)
        pieces.extend(draw.positions.tolist())
        cursor, repeats = draw.end, repeats + draw.repeats
    assert pieces == whole.positions.tolist()
    assert cursor == whole.end and repeats == whole.repeats == max(0, sum(splits) - size)
    first_pass = whole.positions[:size].tolist()
    assert len(set(first_pass)) == len(first_pass)  # nothing twice within a pass


# -- whole rounds ----------------------------------------------------------------------------


def test_round_counts_match_the_mixture_exactly(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    manifest = sample_round(tmp_path / "out", 1, MIX, 33, inputs, seed=7, rows_per_part=10)
    expected = dict(zip(MIX, largest_remainder_counts(list(MIX.values()), 33), strict=True))
    assert manifest["counts"] == expected == {"a": 16, "b": 10, "c": 7}  # 16.5, 9.9, 6.6
    table = read_round(tmp_path / "out", 1)
    assert Counter(table.column("skill").to_pylist()) == Counter(expected)
    assert [p["rows"] for p in manifest["parts"]] == [9, 8, 8, 8]  # 33 rows in 4 even parts


def test_rows_keep_their_content_and_the_parts_are_zstd(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    sample_round(tmp_path / "out", 1, MIX, 30, inputs, seed=1)
    source = pa.concat_tables([pq.read_table(p) for p in inputs])
    by_id = {row["id"]: row for row in source.to_pylist()}
    table = read_round(tmp_path / "out", 1)
    assert table.schema == source.schema.remove_metadata()
    for row in table.to_pylist():
        assert row == by_id[row["id"]]
    part = next(round_dir(tmp_path / "out", 1).glob("part-*.parquet"))
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"
    assert not list(round_dir(tmp_path / "out", 1).glob(".tmp-*"))


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    ids = {}
    for name, seed in (("x", 5), ("y", 5), ("z", 6)):
        sample_round(tmp_path / name, 1, MIX, 30, inputs, seed=seed)
        ids[name] = read_round(tmp_path / name, 1).column("id").to_pylist()
    assert ids["x"] == ids["y"]
    assert ids["x"] != ids["z"]
    # The order in which inputs are listed does not matter either.
    sample_round(tmp_path / "w", 1, MIX, 30, list(reversed(inputs)), seed=5)
    assert read_round(tmp_path / "w", 1).column("id").to_pylist() == ids["x"]


def test_rounds_continue_the_walk_without_repeats_until_a_pool_runs_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = write_shards(tmp_path)
    out = tmp_path / "out"
    drawn: dict[str, list[str]] = {s: [] for s in MIX}
    mixture = {"a": 0.25, "b": 0.25, "c": 0.5}  # c (12 rows) gets 5 a round: runs out in round 3
    with caplog.at_level(logging.WARNING):
        manifests = [sample_round(out, r, mixture, 10, inputs, seed=2) for r in (1, 2, 3)]
    for r in (1, 2, 3):
        table = read_round(out, r)
        for skill, row_id in zip(
            table.column("skill").to_pylist(), table.column("id").to_pylist(), strict=True
        ):
            drawn[skill].append(row_id)
    # a and b: 7 or 8 rows over 3 rounds, far below their pools: never a repeat
    for skill in ("a", "b"):
        assert len(set(drawn[skill])) == len(drawn[skill])
    # c: 15 rows from 12. The first 12 cover the pool once; exactly 3 repeat.
    assert [m["counts"]["c"] for m in manifests] == [5, 5, 5]
    assert manifests[1]["pools"]["c"]["start"] == manifests[0]["pools"]["c"]["end"]
    assert [m["pools"]["c"]["repeats"] for m in manifests] == [0, 0, 3]
    assert manifests[2]["pools"]["c"]["wraps"] == 1 and manifests[2]["repeats"] == 3
    assert manifests[2]["pools"]["c"]["end"] == {"epoch": 1, "position": 3}
    assert (
        "round 3: skill 'c': 3 of its 5 rows are repeats (pool of 12 rows, ran out" in caplog.text
    )
    assert len(set(drawn["c"][:10])) == 10  # rounds 1 and 2: first pass, all distinct
    times_drawn = Counter(drawn["c"])
    assert len(times_drawn) == 12 and sorted(times_drawn.values()) == [1] * 9 + [2] * 3


def test_output_is_byte_identical_whatever_the_worker_count(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    manifests = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}"
        for r in (1, 2):
            manifests[workers, r] = sample_round(
                out, r, MIX, 40, inputs, seed=9, rows_per_part=7, workers=workers
            )
    for r in (1, 2):
        assert manifests[1, r] == manifests[3, r]
        one = round_dir(tmp_path / "w1", r)
        files = round_files(tmp_path / "w1", r)
        assert files == round_files(tmp_path / "w3", r) and len(files) == 7  # 6 parts
        for part in manifests[1, r]["parts"]:
            assert hashlib.sha256((one / part["path"]).read_bytes()).hexdigest() == part["sha256"]


def test_a_round_can_be_redone_exactly_but_not_by_accident(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    out = tmp_path / "out"
    sample_round(out, 1, MIX, 20, inputs, seed=4, rows_per_part=5)
    sample_round(out, 2, MIX, 20, inputs, seed=4, rows_per_part=5)
    before = round_files(out, 2)
    with pytest.raises(MixtureError, match="already sampled"):
        sample_round(out, 2, MIX, 20, inputs, seed=4, rows_per_part=5)
    sample_round(out, 2, MIX, 20, inputs, seed=4, rows_per_part=5, overwrite=True)
    assert round_files(out, 2) == before
    # fewer, larger parts on a redo leave no stale part behind
    sample_round(out, 2, MIX, 20, inputs, seed=4, rows_per_part=20, overwrite=True)
    assert sorted(p.name for p in round_dir(out, 2).glob("part-*")) == ["part-00000.parquet"]


def test_rounds_must_follow_on_from_the_same_pools(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(MixtureError, match="round 1 has not been sampled"):
        sample_round(out, 2, MIX, 10, inputs, seed=1)
    sample_round(out, 1, MIX, 10, inputs, seed=1)
    with pytest.raises(MixtureError, match="other inputs or another seed"):
        sample_round(out, 2, MIX, 10, inputs[:2], seed=1)
    with pytest.raises(MixtureError, match="other inputs or another seed"):
        sample_round(out, 2, MIX, 10, inputs, seed=2)
    assert read_manifest(out, 1)["round"] == 1


def test_manifest_records_what_a_round_depends_on(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path, {"a": 10, "b": 10, "c": 10, "spare": 5})
    manifest = sample_round(
        tmp_path / "out", 1, MIX, 12, inputs, seed=3, graph_hash="abc",
        parameters={"eta": 0.5, "window": 3},
    )  # fmt: skip
    assert manifest["mixture"] == MIX and manifest["seed"] == 3 and manifest["graph_hash"] == "abc"
    assert manifest["parameters"] == {
        "eta": 0.5,
        "window": 3,
        "samples": 12,
        "rows_per_part": 100_000,
    }
    assert manifest["unsampled_skills"] == {"spare": 5}
    assert manifest["pools"]["a"]["shards"] == sorted(inputs)
    assert manifest == json.loads((round_dir(tmp_path / "out", 1) / "manifest.json").read_text())


def test_skill_from_a_shard_map_with_real_text(tmp_path: Path) -> None:
    paths = {}
    for source, name in (("arxiv", "dj_arxiv.jsonl"), ("stackexchange", "dj_stack_exchange.jsonl")):
        lines = (SOURCES / name).read_text(encoding="utf-8").splitlines()[:30]
        texts = [json.loads(line)["text"] for line in lines]
        for half in (0, 1):
            path = tmp_path / "data" / source / f"part-{half}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"text": texts[half::2]}), path)
            paths.setdefault(source, []).append(str(path))
    inputs = paths["arxiv"] + paths["stackexchange"]
    shard_skills = {
        "arxiv/*.parquet": "arxiv",
        str(tmp_path / "data/stackexchange/*.parquet"): "se",
    }
    manifest = sample_round(
        tmp_path / "out", 1, {"arxiv": 0.75, "se": 0.25}, 20, inputs, shard_skills=shard_skills
    )
    table = read_round(tmp_path / "out", 1)
    assert table.column_names == ["text", "skill"]
    assert Counter(table.column("skill").to_pylist()) == {"arxiv": 15, "se": 5}
    assert manifest["pools"]["se"]["shards"] == paths["stackexchange"]
    arxiv_texts = set(pq.read_table(paths["arxiv"][0]).column("text").to_pylist())
    arxiv_texts |= set(pq.read_table(paths["arxiv"][1]).column("text").to_pylist())
    for text, skill in zip(
        table.column("text").to_pylist(), table.column("skill").to_pylist(), strict=True
    ):
        assert (text in arxiv_texts) == (skill == "arxiv")


def test_shard_map_problems_are_named(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path, column=False)
    with pytest.raises(InputError, match=r"shard-2\.parquet: matches no entry"):
        build_pools(inputs, shard_skills={"shard-[01].parquet": "a"})
    with pytest.raises(InputError, match=r"matches several skills \['a', 'b'\]"):
        build_pools(inputs, shard_skills={"shard-*.parquet": "a", "shard-1.parquet": "b"})
    with pytest.raises(InputError, match="cannot read skill column 'skill'"):
        build_pools(inputs)
    (tmp_path / "labelled").mkdir()
    labelled = write_shards(tmp_path / "labelled")
    with pytest.raises(InputError, match="already has a 'skill' column"):
        build_pools(labelled, shard_skills={"*.parquet": "a"})


def test_missing_pool_nulls_and_mixed_schemas(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    extra = tmp_path / "zz-extra.parquet"  # sorts last: its new column comes last
    pq.write_table(
        pa.table(
            {"id": ["u1", "u2", "u3"], "skill": ["c", None, "c"], "url": ["http://x", "", "z"]}
        ),
        extra,
    )
    pools = build_pools([*inputs, str(extra)])
    assert pools.null_skill_rows == 1 and pools.size("c") == POOL_SIZES["c"] + 2
    out = tmp_path / "out"
    sample_round(out, 1, {"c": 1.0}, 14, [*inputs, str(extra)], seed=0)
    table = read_round(out, 1)
    assert table.column_names == ["id", "text", "skill", "n", "url"]
    urls = dict(zip(table.column("id").to_pylist(), table.column("url").to_pylist(), strict=True))
    assert urls["u1"] == "http://x" and urls["c-0"] is None
    with pytest.raises(MixtureError, match="skill 'zzz' has no rows"):
        sample_round(tmp_path / "o2", 1, {"a": 0.5, "zzz": 0.5}, 10, inputs)
    # a zero-weight skill with no data is fine: it is simply not drawn
    assert (
        sample_round(tmp_path / "o3", 1, {"a": 1.0, "zzz": 0.0}, 10, inputs)["counts"]["zzz"] == 0
    )


# -- a round on the run driver: executors, resume, failures ---------------------------------


def markers(output: Path, round_index: int = 1) -> Path:
    return round_dir(output, round_index) / "_run" / "markers" / "parts"


def stamps(directory: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of each file: unchanged means not written again."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.glob("*")}


def test_a_round_on_a_dask_cluster_is_byte_identical_to_one_in_process(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from gristmill.executors.config import DaskConfig
    from gristmill.executors.dask import DaskExecutor

    inputs = write_shards(tmp_path)
    local = sample_round(tmp_path / "local", 1, MIX, 40, inputs, seed=9, rows_per_part=7)
    executor = DaskExecutor(DaskConfig(dashboard_address=":0"), workers=2)
    on_dask = sample_round(
        tmp_path / "dask", 1, MIX, 40, inputs, seed=9, rows_per_part=7, executor=executor
    )
    assert executor.dashboard_link is not None  # the parts did go through the cluster
    assert on_dask == local
    files = round_files(tmp_path / "dask", 1)
    assert files == round_files(tmp_path / "local", 1) and len(files) == 7
    assert len(list(markers(tmp_path / "dask").glob("*.json"))) == 6


def test_only_the_missing_parts_are_written_again(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    out = tmp_path / "out"
    sample_round(out, 1, MIX, 40, inputs, seed=3, rows_per_part=5)
    whole = round_files(out, 1)
    directory = round_dir(out, 1)
    # As a run killed part-way leaves it: no manifest, a part without its marker (killed
    # between the two), a marker whose part was removed since, a temporary file.
    (directory / "manifest.json").unlink()
    (markers(out) / "part-00002.json").unlink()
    (directory / "part-00005.parquet").unlink()
    (directory / ".tmp-0123456789ab-part-00006.parquet").write_bytes(b"half a part")
    before = stamps(directory)
    sample_round(out, 1, MIX, 40, inputs, seed=3, rows_per_part=5)
    assert round_files(out, 1) == whole
    after = stamps(directory)
    rewritten = {n for n in after if n.startswith("part-") and after[n] != before.get(n)}
    assert rewritten == {"part-00002.parquet", "part-00005.parquet"}
    assert not list(directory.glob(".tmp-*"))


def test_a_failed_part_is_reported_and_a_rerun_finishes_the_round(tmp_path: Path) -> None:
    """Skills come from a shard map, so planning reads only the footers: a shard whose data
    pages are damaged fails the one part that holds its row, and only that part."""
    inputs = write_shards(tmp_path, {"a": 30, "b": 30, "c": 3}, files=1, column=False)
    for skill in ("b", "c"):
        table = pq.read_table(inputs[0]).slice(0, 30 if skill == "b" else 3)
        pq.write_table(table, tmp_path / f"shard-{skill}.parquet", row_group_size=4)
    inputs = [inputs[0], str(tmp_path / "shard-b.parquet"), str(tmp_path / "shard-c.parquet")]
    shard_skills = {"shard-0.parquet": "a", "shard-b.parquet": "b", "shard-c.parquet": "c"}
    mixture = {"a": 0.5, "b": 0.45, "c": 0.05}  # c gets 1 row of 20: in one part of 5
    options = {"seed": 1, "rows_per_part": 4, "shard_skills": shard_skills}
    reference = sample_round(tmp_path / "reference", 1, mixture, 20, inputs, **options)

    damaged = Path(inputs[2])
    good = damaged.read_bytes()
    footer = int.from_bytes(good[-8:-4], "little") + 8
    damaged.write_bytes(good[:4] + b"\xab" * (len(good) - 4 - footer) + good[-footer:])
    out = tmp_path / "out"
    failed_part = r"round 1: 1 of 5 parts failed \(part-0000\d: .*shard-c"
    with pytest.raises(MixtureError, match=failed_part):
        sample_round(out, 1, mixture, 20, inputs, **options)
    directory = round_dir(out, 1)
    assert not (directory / "manifest.json").exists()
    failures = json.loads((directory / "_run" / "failures.json").read_text())
    assert len(failures) == 1 and "shard-c.parquet: cannot read rows" in failures[0]["error"]
    failed = failures[0]["task"] + ".parquet"
    assert sorted(p.name for p in directory.glob("part-*")) == sorted(
        p["path"] for p in reference["parts"] if p["path"] != failed
    )

    damaged.write_bytes(good)
    before = stamps(directory)
    assert sample_round(out, 1, mixture, 20, inputs, **options) == reference
    after = stamps(directory)
    assert {n for n in after if n.startswith("part-") and after[n] != before.get(n)} == {failed}
    assert round_files(out, 1) == round_files(tmp_path / "reference", 1)
    assert json.loads((directory / "_run" / "failures.json").read_text()) == []


def test_a_half_written_round_is_not_finished_with_other_settings(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    out = tmp_path / "out"
    sample_round(out, 1, MIX, 20, inputs, seed=4, rows_per_part=5)
    directory = round_dir(out, 1)
    (directory / "mixture.json").write_text('{"round": 1}')  # the schedule's, not the run's
    (directory / "manifest.json").unlink()
    with pytest.raises(ConfigError, match="holds the output of a different mixture round"):
        sample_round(out, 1, MIX, 20, inputs, seed=4, rows_per_part=3)
    with pytest.raises(ConfigError, match="different mixture round"):
        sample_round(out, 1, MIX, 20, inputs, seed=5, rows_per_part=5)
    sample_round(out, 1, MIX, 20, inputs, seed=4, rows_per_part=3, overwrite=True)
    assert sorted(p.name for p in directory.glob("part-*")) == [
        f"part-{n:05d}.parquet" for n in range(7)
    ]
    assert len(list(markers(out).glob("*.json"))) == 7
    assert (directory / "mixture.json").read_text() == '{"round": 1}'


def test_workers_and_an_executor_exclude_each_other(tmp_path: Path) -> None:
    inputs = write_shards(tmp_path)
    with pytest.raises(MixtureError, match="not both"):
        sample_round(tmp_path / "o", 1, MIX, 10, inputs, workers=2, executor=LocalExecutor(2))
    assert not os.path.exists(tmp_path / "o")
