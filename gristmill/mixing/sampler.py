"""Materialise one Skill-It round: exact per-skill counts, drawn from Parquet pools, as shards.

A round of Skill-It (Chen et al., 2023, "Skill-it! A Data-Driven Skills Framework for
Understanding and Training Language Models") trains on data drawn by the round's mixture over
training skills. Three properties drive the design:

* counts follow the mixture exactly (largest remainder, computed on exact fractions);
* each skill's pool is walked through a seeded permutation that carries over between rounds,
  so no row repeats until the whole pool has been seen (drawing without replacement from a
  pool that shrinks would starve small skills instead); a wrap-around is counted and logged;
* every decision (which row, which part, which order) is taken in the parent from the seed,
  so the parts are byte-identical whatever the executor or the number of workers.

The parts are written as one step on the run driver (``gristmill.runs``) over the round's
directory: ``round_NNNN/_run/`` holds its lock and completion markers, so a round killed
part-way resumes where it stopped, and ``manifest.json``, written last, means it is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray
from rich.console import Console

from gristmill.errors import InputError
from gristmill.executors.base import Executor
from gristmill.executors.local import LocalExecutor
from gristmill.io.filesystem import atomic_output, exists, join, remove, write_bytes_atomically
from gristmill.mixing.scheduler import MixtureError, json_bytes
from gristmill.runs.driver import RunDriver
from gristmill.runs.layout import OutputLayout
from gristmill.runs.steps import Step, Unit

MANIFEST_FORMAT = "gristmill.mixture_round/1"
MANIFEST_NAME = "manifest.json"
PARTS_STEP = "parts"
ROW_GROUP_ROWS = 16_384
COMPRESSION = "zstd"
_DRAW_STREAM = 0
_SHUFFLE_STREAM = 1
IntArray = NDArray[np.int64]
log = logging.getLogger(__name__)


def round_dir(output_dir: str | os.PathLike[str], round_index: int) -> Path:
    return Path(output_dir) / f"round_{round_index:04d}"


# -- counts ----------------------------------------------------------------------------------


def largest_remainder_counts(weights: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total``, each the floor or ceiling of its exact quota.

    Quotas are exact fractions of the floats' binary values, so 0.1 * 30 cannot turn into 2
    plus a remainder by rounding error; ties go to the earlier skill so the result is stable.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise MixtureError(f"total must be a non-negative integer, got {total!r}")
    values = [float(w) for w in weights]
    if not values or any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise MixtureError(f"weights must be finite, non-negative and not all zero: {values}")
    exact = [Fraction(w) for w in values]
    scale = Fraction(total) / sum(exact)
    quotas = [w * scale for w in exact]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def allocate(mixture: Mapping[str, float], total: int) -> dict[str, int]:
    """Per-skill counts for one round, in the mixture's skill order."""
    return dict(zip(mixture, largest_remainder_counts(list(mixture.values()), total), strict=True))


# -- seeded walks through each pool ---------------------------------------------------------


def _skill_key(skill: str) -> int:
    """A process-independent integer for a skill name (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(skill.encode("utf-8")).digest()[:8], "little")


def _permutation(size: int, *entropy: int) -> IntArray:
    """A permutation from raw PCG64 bits: NEP 19 keeps bit streams stable across NumPy versions,
    not ``Generator.permutation``, and a rerun must reproduce old rounds exactly."""
    bits = np.random.PCG64(np.random.SeedSequence(list(entropy))).random_raw(size)
    return np.argsort(bits, kind="stable").astype(np.int64)


def pool_permutation(seed: int, skill: str, epoch: int, size: int) -> IntArray:
    """The order in which pass ``epoch`` over a skill's pool visits its rows."""
    return _permutation(size, seed, _DRAW_STREAM, _skill_key(skill), epoch)


@dataclass(frozen=True)
class PoolCursor:
    """Where the walk through a pool stands: pass number and position inside that pass."""

    epoch: int = 0
    position: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}


@dataclass(frozen=True)
class Draw:
    """Pool positions drawn for one round, where the walk ended, and how often it repeated."""

    positions: IntArray
    end: PoolCursor
    repeats: int
    wraps: int


def draw_from_pool(size: int, count: int, *, seed: int, skill: str, start: PoolCursor) -> Draw:
    """``count`` positions continuing the walk at ``start``; a new pass starts only when needed.

    Rows drawn in a pass after the first are repeats: counted so a manifest shows them.
    """
    if count and size <= 0:
        raise MixtureError(f"skill {skill!r} has no rows in the inputs but the round needs {count}")
    if start.position > size:
        raise MixtureError(f"skill {skill!r}: cursor {start} lies past its pool of {size} rows")
    chunks: list[IntArray] = []
    epoch, position, repeats, wraps, needed = start.epoch, start.position, 0, 0, count
    while needed:
        if position == size:
            epoch, position, wraps = epoch + 1, 0, wraps + 1
        take = min(needed, size - position)
        chunks.append(pool_permutation(seed, skill, epoch, size)[position : position + take])
        repeats += take if epoch > 0 else 0
        position, needed = position + take, needed - take
    positions = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    return Draw(positions, PoolCursor(epoch, position), repeats, wraps)


# -- pools -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """One input Parquet file, with what is needed to read single rows from it cheaply."""

    path: str
    num_rows: int
    row_group_starts: tuple[int, ...]


@dataclass(frozen=True)
class SkillPools:
    """Every input row, grouped by skill as global row ids (shard offset + row in shard)."""

    shards: tuple[Shard, ...]
    rows: Mapping[str, IntArray]
    schema: pa.Schema
    skill_column: str
    shard_skills: Mapping[str, str] | None = None
    null_skill_rows: int = 0
    offsets: IntArray = field(init=False)

    def __post_init__(self) -> None:
        sizes = [s.num_rows for s in self.shards]
        object.__setattr__(
            self, "offsets", np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        )

    def size(self, skill: str) -> int:
        return int(self.rows[skill].size) if skill in self.rows else 0

    def shards_of(self, skill: str) -> list[str]:
        if skill not in self.rows or not self.rows[skill].size:
            return []
        used = np.unique(np.searchsorted(self.offsets, self.rows[skill], side="right") - 1)
        return [self.shards[i].path for i in used]

    def fingerprint(self) -> str:
        """Names the pools a cursor refers to; file names, not directories, so data may move."""
        payload = {
            "shards": [[PurePath(s.path).name, s.num_rows] for s in self.shards],
            "skills": {k: int(v.size) for k, v in sorted(self.rows.items())},
            "skill_source": self.skill_source(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()

    def skill_source(self) -> dict[str, Any]:
        if self.shard_skills is not None:
            return {"shard_skills": dict(self.shard_skills), "column": self.skill_column}
        return {"column": self.skill_column}


def _open_shard(path: str) -> tuple[Shard, pa.Schema]:
    try:
        metadata = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path, f"cannot read as Parquet: {exc}") from exc
    counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    starts = tuple(int(x) for x in np.concatenate([[0], np.cumsum(counts)])[:-1])
    return Shard(path, int(metadata.num_rows), starts), metadata.schema.to_arrow_schema()


def _skill_of_shard(path: str, shard_skills: Mapping[str, str]) -> str:
    """A shard's skill from a {path or glob: skill} map; ambiguity is an error, not a guess."""
    resolved = Path(path).resolve()
    hits = {
        skill
        for pattern, skill in shard_skills.items()
        if PurePath(path).match(pattern) or Path(pattern).resolve() == resolved
    }
    if len(hits) != 1:
        problem = (
            "matches no entry of shard_skills"
            if not hits
            else f"matches several skills {sorted(hits)}"
        )
        raise InputError(path, problem)
    return hits.pop()


def _column_codes(path: str, column: str) -> tuple[list[str], NDArray[np.int64]]:
    """The skill column as dictionary codes (-1 for null): one pass, no per-row Python objects."""
    try:
        values = pq.read_table(path, columns=[column]).column(0)
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise InputError(path, f"cannot read skill column {column!r}: {exc}") from exc
    if not (
        pa.types.is_string(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_dictionary(values.type)
    ):
        raise InputError(path, f"skill column {column!r} has type {values.type}, expected strings")
    encoded = values.combine_chunks()
    if not pa.types.is_dictionary(encoded.type):
        encoded = pc.dictionary_encode(encoded)
    names = [str(x) for x in encoded.dictionary.to_pylist()]
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return names, codes


def build_pools(
    paths: Iterable[str | os.PathLike[str]],
    *,
    skill_column: str = "skill",
    shard_skills: Mapping[str, str] | None = None,
) -> SkillPools:
    """Index the inputs by skill: from the ``skill_column`` of every row, or per shard.

    Shards are sorted by path, so the pools (and every later draw) do not depend on the order
    in which inputs were listed or globbed.
    """
    ordered = sorted({os.fspath(p) for p in paths})
    if not ordered:
        raise MixtureError("no input files to sample from")
    opened = [_open_shard(p) for p in ordered]
    shards = tuple(shard for shard, _ in opened)
    schema = _unified_schema(opened)
    groups: dict[str, list[IntArray]] = {}
    nulls, offset = 0, 0
    for shard in shards:
        if shard_skills is not None:
            if skill_column in schema.names:
                raise InputError(
                    shard.path,
                    f"already has a {skill_column!r} column; use it instead of shard_skills",
                )
            skill = _skill_of_shard(shard.path, shard_skills)
            groups.setdefault(skill, []).append(
                np.arange(offset, offset + shard.num_rows, dtype=np.int64)
            )
        else:
            names, codes = _column_codes(shard.path, skill_column)
            nulls += int((codes < 0).sum())
            for code, name in enumerate(names):
                groups.setdefault(name, []).append(
                    np.flatnonzero(codes == code).astype(np.int64) + offset
                )
        offset += shard.num_rows
    if nulls:
        log.warning("%d input rows have a null %r and are never sampled", nulls, skill_column)
    rows = {skill: np.concatenate(parts) for skill, parts in sorted(groups.items())}
    return SkillPools(
        shards, rows, schema, skill_column, dict(shard_skills) if shard_skills else None, nulls
    )


def _unified_schema(opened: Sequence[tuple[Shard, pa.Schema]]) -> pa.Schema:
    try:
        return pa.unify_schemas(
            [s.remove_metadata() for _, s in opened], promote_options="permissive"
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise MixtureError(f"input shards have incompatible schemas: {exc}") from exc


# -- planning a round (all decisions, in the parent) -------------------------------------------


@dataclass(frozen=True)
class RoundPlan:
    """Which rows a round holds and in what order; the writers only carry it out."""

    round_index: int
    counts: dict[str, int]
    rows: IntArray
    skill_codes: NDArray[np.int32]
    skills: tuple[str, ...]
    draws: dict[str, Draw]
    starts: dict[str, PoolCursor]


def plan_round(
    pools: SkillPools,
    mixture: Mapping[str, float],
    samples: int,
    *,
    seed: int,
    round_index: int,
    cursors: Mapping[str, PoolCursor] | None = None,
) -> RoundPlan:
    """Counts by largest remainder, draws per skill, then one seeded shuffle across skills."""
    counts = allocate(mixture, samples)
    starts = {skill: (cursors or {}).get(skill, PoolCursor()) for skill in mixture}
    draws: dict[str, Draw] = {}
    chosen: list[IntArray] = []
    labels: list[NDArray[np.int32]] = []
    for code, skill in enumerate(mixture):
        draw = draw_from_pool(
            pools.size(skill), counts[skill], seed=seed, skill=skill, start=starts[skill]
        )
        draws[skill] = draw
        chosen.append(pools.rows[skill][draw.positions] if draw.positions.size else draw.positions)
        labels.append(np.full(draw.positions.size, code, dtype=np.int32))
        if draw.repeats:
            log.warning(
                "round %d: skill %r: %d of its %d rows are repeats (pool of %d rows, %s pass %d)",
                round_index,
                skill,
                draw.repeats,
                counts[skill],
                pools.size(skill),
                "ran out, now in" if draw.wraps else "in",
                draw.end.epoch + 1,
            )
    order = _permutation(samples, seed, _SHUFFLE_STREAM, round_index)
    rows = np.concatenate(chosen)[order]
    codes = np.concatenate(labels)[order]
    return RoundPlan(round_index, counts, rows, codes, tuple(mixture), draws, starts)


# -- writing parts (on the executor's workers) ---------------------------------------------------


@dataclass(frozen=True)
class PartTask:
    """Everything one worker needs to write one part, so the result cannot depend on the worker."""

    path: str
    shard_paths: tuple[str, ...]
    shard_row_group_starts: tuple[tuple[int, ...], ...]
    shard_index: NDArray[np.int64]
    local_rows: IntArray
    schema: pa.Schema
    skill_column: str | None = None
    skill_labels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return PurePath(self.path).name


def _part_tasks(
    plan: RoundPlan, pools: SkillPools, directory: Path, rows_per_part: int
) -> list[PartTask]:
    parts = max(1, math.ceil(plan.rows.size / rows_per_part))
    tasks = []
    for number, (rows, codes) in enumerate(
        zip(np.array_split(plan.rows, parts), np.array_split(plan.skill_codes, parts), strict=True)
    ):
        global_shard = np.searchsorted(pools.offsets, rows, side="right") - 1
        used, shard_index = np.unique(global_shard, return_inverse=True)
        labels = tuple(plan.skills[c] for c in codes) if pools.shard_skills is not None else ()
        tasks.append(
            PartTask(
                path=str(directory / f"part-{number:05d}.parquet"),
                shard_paths=tuple(pools.shards[i].path for i in used),
                shard_row_group_starts=tuple(pools.shards[i].row_group_starts for i in used),
                shard_index=shard_index.astype(np.int64),
                local_rows=rows - pools.offsets[global_shard],
                schema=pools.schema,
                skill_column=pools.skill_column if labels else None,
                skill_labels=labels,
            )
        )
    return tasks


def _read_rows(
    path: str, row_group_starts: tuple[int, ...], rows: IntArray, schema: pa.Schema
) -> pa.Table:
    """Read only the row groups that hold ``rows``, take them in the given order, conform types."""
    starts = np.array(row_group_starts, dtype=np.int64)
    groups = np.searchsorted(starts, rows, side="right") - 1
    needed = np.unique(groups)
    try:
        parquet = pq.ParquetFile(path)
        table = parquet.read_row_groups(needed.tolist())
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path, f"cannot read rows: {exc}") from exc
    sizes = np.array([parquet.metadata.row_group(int(g)).num_rows for g in needed], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    positions = rows - starts[groups] + base[np.searchsorted(needed, groups)]
    return _conform(table.take(pa.array(positions)), schema)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_part(task: PartTask) -> dict[str, Any]:
    """Gather a part's rows shard by shard, restore the planned order, write it atomically.

    Returns the part's name, row count and SHA-256, which the manifest lists.
    """
    by_shard = np.argsort(task.shard_index, kind="stable")
    bounds = np.searchsorted(task.shard_index[by_shard], np.arange(len(task.shard_paths) + 1))
    pieces = [
        _read_rows(path, starts, task.local_rows[by_shard[bounds[i] : bounds[i + 1]]], task.schema)
        for i, (path, starts) in enumerate(
            zip(task.shard_paths, task.shard_row_group_starts, strict=True)
        )
    ]
    inverse = np.empty_like(by_shard)
    inverse[by_shard] = np.arange(by_shard.size)
    table = (
        pa.concat_tables(pieces).take(pa.array(inverse)) if pieces else task.schema.empty_table()
    )
    if task.skill_column is not None:
        table = table.append_column(
            task.skill_column, pa.array(task.skill_labels, type=pa.string())
        )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)
    data = sink.getvalue()
    with atomic_output(task.path, "wb") as handle:
        handle.write(data)
    return {"path": task.name, "rows": table.num_rows, "sha256": hashlib.sha256(data).hexdigest()}


def _write_part_unit(_shared: Any, task: PartTask) -> dict[str, Any]:
    """The step's work: one part on a worker; its value goes into the part's marker."""
    return write_part(task)


def parts_fingerprint(plan: RoundPlan, pools: SkillPools, *, seed: int, rows_per_part: int) -> str:
    """Names everything that decides the bytes of a round's parts.

    Markers and parts written under another fingerprint (other inputs, seed, mixture, part
    size, schema or Parquet writer) are never reused: the round directory is refused instead.
    """
    settings = {
        "format": MANIFEST_FORMAT,
        "round": plan.round_index,
        "seed": seed,
        "rows_per_part": rows_per_part,
        "skills": list(plan.skills),
        "counts": plan.counts,
        "pools": pools.fingerprint(),
        "schema": pools.schema.to_string(show_schema_metadata=False),
        "labels": pools.skill_column if pools.shard_skills is not None else None,
        "row_group_rows": ROW_GROUP_ROWS,
        "compression": COMPRESSION,
        "pyarrow": pa.__version__,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8"))
    digest.update(np.ascontiguousarray(plan.rows, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(plan.skill_codes, dtype="<i4").tobytes())
    return digest.hexdigest()


# -- manifests and the whole round ---------------------------------------------------------


def read_manifest(output_dir: str | os.PathLike[str], round_index: int) -> dict[str, Any]:
    path = round_dir(output_dir, round_index) / MANIFEST_NAME
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MixtureError(
            f"{path} does not exist: round {round_index} has not been sampled"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise MixtureError(f"{path}: cannot read manifest: {exc}") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise MixtureError(f"{path}: not a mixture round manifest")
    return manifest


def previous_cursors(
    output_dir: str | os.PathLike[str], round_index: int, pools: SkillPools, seed: int
) -> dict[str, PoolCursor]:
    """Where round r-1 left each pool; round r refuses to continue over different pools or seed."""
    if round_index == 1:
        return {}
    manifest = read_manifest(output_dir, round_index - 1)
    if manifest["pool_fingerprint"] != pools.fingerprint() or manifest["seed"] != seed:
        raise MixtureError(
            f"round {round_index - 1} was sampled from other inputs or another seed; its pool "
            "positions do not apply. Use the same inputs and seed, or start a new output_dir"
        )
    return {skill: PoolCursor(**info["end"]) for skill, info in manifest["pools"].items()}


def sample_round(
    output_dir: str | os.PathLike[str],
    round_index: int,
    mixture: Mapping[str, float],
    samples: int,
    inputs: Iterable[str | os.PathLike[str]],
    *,
    seed: int = 0,
    skill_column: str = "skill",
    shard_skills: Mapping[str, str] | None = None,
    rows_per_part: int = 100_000,
    executor: Executor | None = None,
    workers: int = 1,
    graph_hash: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Write ``round_NNNN/part-XXXXX.parquet`` and the manifest; returns the manifest.

    The parts are written on ``executor`` (default: ``LocalExecutor(workers=workers)``; one
    worker writes in this process) and come out byte-identical whatever it is. Round r
    continues the pool walks where round r-1's manifest stopped, so rounds must be sampled in
    order. A round killed part-way resumes: the same call writes only the parts that are
    missing. A round that has a manifest is complete and is refused unless ``overwrite``,
    which starts it again (and reproduces it byte for byte). A part that fails is reported in
    ``round_NNNN/_run/failures.json`` and a ``MixtureError``; no manifest is written then.
    """
    if executor is not None and workers != 1:
        raise MixtureError("give either an executor or a number of workers, not both")
    _check_round_args(round_index, samples, seed, rows_per_part, workers)
    directory = round_dir(output_dir, round_index)
    if (directory / MANIFEST_NAME).exists() and not overwrite:
        raise MixtureError(f"{directory} is already sampled; pass overwrite to redo it")
    pools = build_pools(inputs, skill_column=skill_column, shard_skills=shard_skills)
    cursors = previous_cursors(output_dir, round_index, pools, seed)
    plan = plan_round(pools, mixture, samples, seed=seed, round_index=round_index, cursors=cursors)
    tasks = _part_tasks(plan, pools, directory, rows_per_part)
    fingerprint = parts_fingerprint(plan, pools, seed=seed, rows_per_part=rows_per_part)
    step = Step(
        key=PARTS_STEP,
        title=f"round {round_index}: parts",
        fingerprint=fingerprint,
        units=[Unit(PurePath(t.path).stem, t.path, t) for t in tasks],
        work=_write_part_unit,
        # a part whose marker survived but whose file was removed is written again
        still_valid=lambda unit: exists(unit.payload.path),
    )
    driver = RunDriver(
        str(directory),
        executor or LocalExecutor(workers=workers),
        progress=progress,
        console=console,
    )
    with driver:
        if overwrite:
            _clear_round(driver.layout, directory)
        elif (directory / MANIFEST_NAME).exists():  # completed while this call was planning
            raise MixtureError(f"{directory} is already sampled; pass overwrite to redo it")
        driver.claim(
            fingerprint,
            {"job": "mixture round", "round": round_index, "seed": seed, "samples": samples},
            what="mixture round (other inputs, mixture, seed or rows_per_part)",
        )
        outcome = driver.run_step(step)
        driver.write_failures()
        if outcome.failed:
            first = outcome.failed[0]
            raise MixtureError(
                f"round {round_index}: {len(outcome.failed)} of {len(tasks)} parts failed "
                f"({first.key}: {first.error}); see {driver.layout.failures_path}. The parts "
                "written are kept: run the same command again to write the others"
            )
        values = outcome.values()
        manifest = _manifest(
            plan,
            pools,
            mixture,
            [values[unit.key] for unit in step.units],
            seed=seed,
            graph_hash=graph_hash,
            parameters={**(parameters or {}), "samples": samples, "rows_per_part": rows_per_part},
        )
        write_bytes_atomically(str(directory / MANIFEST_NAME), json_bytes(manifest))
        if progress:
            resumed = len(outcome.results) - len(outcome.ran)
            driver.console.print(
                f"round {round_index}: {len(outcome.ran)} parts written"
                + (f", {resumed} already there from an interrupted run" if resumed else ""),
                highlight=False,
            )
    return manifest


def _clear_round(layout: OutputLayout, directory: Path) -> None:
    """What ``overwrite`` starts again from: no manifest, parts or markers; the round's
    mixture and the trainer's losses stay."""
    for stale in [directory / MANIFEST_NAME, *directory.glob("part-*.parquet")]:
        stale.unlink(missing_ok=True)
    for bookkeeping in (join(layout.run_dir, "markers"), layout.run_path, layout.failures_path):
        remove(bookkeeping)


def _check_round_args(
    round_index: int, samples: int, seed: int, rows_per_part: int, workers: int
) -> None:
    for name, value, low in (
        ("round_index", round_index, 1),
        ("samples", samples, 1),
        ("seed", seed, 0),
        ("rows_per_part", rows_per_part, 1),
        ("workers", workers, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise MixtureError(f"{name} must be an integer >= {low}, got {value!r}")


def _manifest(
    plan: RoundPlan,
    pools: SkillPools,
    mixture: Mapping[str, float],
    parts: list[dict[str, Any]],
    *,
    seed: int,
    graph_hash: str | None,
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "round": plan.round_index,
        "mixture": {skill: float(p) for skill, p in mixture.items()},
        "counts": plan.counts,
        "seed": seed,
        "graph_hash": graph_hash,
        "parameters": dict(parameters),
        "repeats": sum(d.repeats for d in plan.draws.values()),
        "pools": {
            skill: {
                "size": pools.size(skill),
                "start": plan.starts[skill].to_dict(),
                "end": draw.end.to_dict(),
                "repeats": draw.repeats,
                "wraps": draw.wraps,
                "shards": pools.shards_of(skill),
            }
            for skill, draw in plan.draws.items()
        },
        "unsampled_skills": {s: pools.size(s) for s in pools.rows if s not in mixture},
        "null_skill_rows": pools.null_skill_rows,
        "skill_source": pools.skill_source(),
        "pool_fingerprint": pools.fingerprint(),
        "inputs": [s.path for s in pools.shards],
        "parts": parts,
    }
