"""Everything the report shows, gathered from a run's output directory.

The sources: ``_run/stats.json`` (per-stage counters and histograms, each phase's decision),
``_run/run.json`` (the pipeline's stages and parameters), ``_run/failures.json``, the curated
files, and the rejects (``_rejects/``, ``_rejects/pass-NN/``: every dropped row, with
``drop_stage`` and ``drop_reason``). Files are read a batch at a time and only the columns a
figure needs; the text is read where a figure cannot do without it (token counts of rows that
were dropped before the ``tokens`` stage, the sampled documents), never kept whole.

Rows dropped before a tagger never got its column; where a figure compares before and after
(the domain mix, tokens per stage), the tagger is run again on those rows, with the run's own
parameters (``run.json``), so that both sides are measured alike.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.core import columns
from gristmill.core.registry import get_stage_class
from gristmill.core.stage import Stage
from gristmill.core.stats import PipelineStats
from gristmill.errors import ConfigError, GristmillError
from gristmill.io.base import FORMAT_SUFFIXES, format_of
from gristmill.io.filesystem import data_files, join, read_json
from gristmill.io.formats import open_reader
from gristmill.io.parquet import open_parquet
from gristmill.report.model import (
    DedupData,
    Diff,
    FunnelRow,
    Marker,
    MecoData,
    Mix,
    ProxData,
    ReasonGroup,
    RunData,
    Sample,
    ScoreData,
    StageInfo,
    YearData,
)

log = logging.getLogger(__name__)

DROP_STAGE = "drop_stage"
DROP_REASON = "drop_reason"
INPUT_LABEL = "00_input"
TOKENS = "token_count"
DOMAIN = "url_registered_domain"
#: Characters of a sampled document kept for the page.
SAMPLE_CHARS = 1500
#: Categories shown per mix (the rest are summed as "other").
MIX_TOP = 12
BATCH_ROWS = 4096

#: Programs that change nothing (the document or chunk kept as it is).
NO_EDIT = {"", "keep_doc()", "keep_chunk()"}
PROGRAM_CALL = re.compile(
    r"remove_lines\(\s*line_start\s*=\s*(\d+)\s*,\s*line_end\s*=\s*(\d+)\s*\)"
)


# -- reading -------------------------------------------------------------------------------------
def output_files(root: str) -> list[str]:
    """The curated files of the output (bookkeeping under ``_`` names left out)."""
    suffixes = tuple(s for group in FORMAT_SUFFIXES.values() for s in group)
    return [f.url for f in data_files(root, suffixes)]


def reject_files(root: str) -> list[str]:
    return [f.url for f in data_files(join(root, "_rejects"), (".parquet",))]


def _batches(url: str, wanted: list[str]) -> Iterator[pa.Table]:
    """The file's batches, holding those of ``wanted`` columns it has."""
    if format_of(url) == "parquet":
        parquet = open_parquet(url)
        present = [c for c in wanted if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
            yield pa.Table.from_batches([batch])
        return
    reader = open_reader([url], format="jsonl", batch_size=BATCH_ROWS)
    for task in reader.plan():
        for table in reader.read(task, None, unreadable=lambda _rows, _reasons: None):
            yield table.select([c for c in wanted if c in table.column_names])


def _schema_names(url: str) -> list[str]:
    if format_of(url) == "parquet":
        return list(open_parquet(url).schema_arrow.names)
    for table in _batches(url, []):
        return list(table.column_names)
    return []


def _strings(table: pa.Table, name: str) -> list[str | None]:
    if name not in table.column_names:
        return [None] * table.num_rows
    return [None if v is None else str(v) for v in table.column(name).to_pylist()]


def _floats(table: pa.Table, name: str) -> np.ndarray:
    values = table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return values[~np.isnan(values)]


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# -- re-tagging rows that were dropped before a tagger -----------------------------------------
class Retagger:
    """A tagger of the run, run again on rows that never reached it (with the run's params)."""

    def __init__(self, stage: Stage, column: str) -> None:
        self.stage = stage
        self.column = column
        self._ready = False

    def fill(self, table: pa.Table) -> pa.Array | None:
        """``column`` for every row: the stored value, or the tagger's where there is none."""
        stored = table.column(self.column) if self.column in table.column_names else None
        if stored is not None and stored.null_count == 0:
            return stored.combine_chunks()
        needed = [*self.stage.requires]
        if any(name not in table.column_names for name in needed):
            return stored.combine_chunks() if stored is not None else None
        if not self._ready:
            self.stage.setup()
            self._ready = True
        keep = [c for c in table.column_names if c in {*needed, columns.ID, columns.TEXT}]
        tagged = self.stage.process(table.select(keep)).column(self.column).combine_chunks()
        if stored is None:
            return tagged
        return pc.coalesce(stored.combine_chunks(), tagged.cast(stored.type))

    def close(self) -> None:
        if self._ready:
            self.stage.teardown()


def _stage_from_spec(spec: dict[str, Any]) -> Stage | None:
    try:
        return get_stage_class(str(spec.get("stage")))(spec.get("params") or {})
    except (GristmillError, TypeError, ValueError) as error:
        log.info("stage %s not rebuilt: %s", spec.get("stage"), error)
        return None


def _tagger(stages: list[StageInfo], name: str, column: str, default: bool) -> Retagger | None:
    for info in stages:
        if info.name == name and info.stage is not None:
            return Retagger(info.stage, column)
    if default:
        stage = _stage_from_spec({"stage": name, "params": {}})
        return Retagger(stage, column) if stage is not None else None
    return None


# -- the gathering ------------------------------------------------------------------------------
def _load(root: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    record = read_json(join(root, "_run", "stats.json"))
    if not isinstance(record, dict):
        raise ConfigError(
            f"{root} is not the output of a gristmill run (no _run/stats.json); run a pipeline "
            "into it first"
        )
    run = read_json(join(root, "_run", "run.json"))
    failures = read_json(join(root, "_run", "failures.json"))
    return (
        record,
        run if isinstance(run, dict) else {},
        failures if isinstance(failures, list) else [],
    )


def _stages(record: dict[str, Any], run: dict[str, Any]) -> list[StageInfo]:
    stats = PipelineStats.from_dict(record)
    specs = (run.get("pipeline") or {}).get("stages") or []
    infos = []
    for position, (label, figures) in enumerate(stats.stages.items()):
        spec: dict[str, Any] = specs[position] if position < len(specs) else {}
        name = str(spec.get("stage", figures.name))
        params = spec.get("params")
        infos.append(
            StageInfo(
                label,
                name,
                dict(params) if isinstance(params, dict) else {},
                figures,
                _stage_from_spec({"stage": name, "params": params}),
            )
        )
    return infos


def _evidence_columns(info: StageInfo | None) -> list[str]:
    """The columns that tell why a stage dropped a row: what it reads and what it wrote."""
    if info is None or info.stage is None:
        return []
    named = [*info.stage.requires, *info.stage.produces]
    column = info.params.get("column")
    if isinstance(column, str):
        named.append(column)
    skip = {columns.TEXT, columns.ID, "url"}
    return list(dict.fromkeys(c for c in named if c not in skip))


def _markers(stages: list[StageInfo], phases: dict[str, Any]) -> dict[str, list[Marker]]:
    """Per score column: the thresholds and cuts the pipeline applied to it."""
    found: dict[str, list[Marker]] = defaultdict(list)
    for info in stages:
        params = info.params
        if info.name == "language_filter" and params.get("threshold") is not None:
            found["language_score"].append(
                Marker(float(params["threshold"]), f"{info.label}: threshold", "threshold")
            )
        elif info.name == "topic" and params.get("min_score") is not None:
            found["topic_score"].append(
                Marker(float(params["min_score"]), f"{info.label}: min_score", "threshold")
            )
        elif info.name == "score_filter" and isinstance(params.get("column"), str):
            column = params["column"]
            method = params.get("method")
            keep = "≥" if params.get("direction") == "keep_high" else "≤"
            if method == "threshold" and params.get("threshold") is not None:
                found[column].append(
                    Marker(
                        float(params["threshold"]),
                        f"{info.label}: keep {keep} {params['threshold']}",
                        "threshold",
                    )
                )
            decision = (phases.get(info.label) or {}).get("decision") or {}
            low, high = decision.get("boundary_low"), decision.get("boundary_high")
            if method in ("percentile", "inverse") and low is not None and high is not None:
                share = (
                    f"keep {float(params['keep_fraction']):.0%}"
                    if params.get("keep_fraction")
                    else f"remove {float(params.get('remove_fraction') or 0):.0%}"
                )
                value = (float(low) + float(high)) / 2
                found[column].append(
                    Marker(value, f"{info.label}: {method} cut, {share} ({value:.4g})", "cut")
                )
    return found


def gather(root: str, samples: int = 3, diffs: int = 3) -> RunData:
    """Read a run's output directory into the figures of the report."""
    root = root.rstrip("/")
    record, run, failures = _load(root)
    stages = _stages(record, run)
    phases = dict(record.get("phases") or {})
    data = RunData(
        root=root,
        name=str((run.get("pipeline") or {}).get("name") or root.rsplit("/", 1)[-1]),
        stats=PipelineStats.from_dict(record),
        stages=stages,
        phases=phases,
        failures=failures,
        not_run=list(record.get("not_run") or []),
    )
    order = {info.label: position for position, info in enumerate(stages, start=1)}
    order[INPUT_LABEL] = 0
    tokens = _tagger(stages, "tokens", TOKENS, default=True)
    domains = _tagger(stages, "domain", DOMAIN, default=False)
    outputs, rejects = output_files(root), reject_files(root)
    names: set[str] = set()
    for url in [*outputs[:1], *rejects[:1]]:
        names.update(_schema_names(url))
    wanted = _Wanted(
        scores=sorted(n for n in names if n.endswith("_score")),
        programs=sorted(n for n in names if n.startswith("prox") and n.endswith("_program")),
        evidence={info.label: _evidence_columns(info) for info in stages},
    )
    try:
        kept = _scan_output(outputs, wanted, tokens, domains)
        rejected = _scan_rejects(data, rejects, wanted, order, tokens, domains, samples)
    finally:
        for tagger in (tokens, domains):
            if tagger is not None:
                tagger.close()
    _funnel(data, kept, rejected, order)
    _scores(data, kept, rejected, wanted.scores, _markers(stages, phases))
    _mixes(data, kept, rejected)
    _years(data)
    _dedup(data)
    _meco(data, kept)
    _prox(data, kept, wanted.programs, diffs)
    return data


@dataclass
class _Wanted:
    """The columns the figures read, besides ``BASE``."""

    scores: list[str]
    programs: list[str]
    #: drop_stage label → the columns shown beside its samples.
    evidence: dict[str, list[str]]


BASE = [columns.ID, columns.TEXT, "source", "url", "language", DOMAIN, TOKENS]
MIXES = {"source": "Sources", "language": "Languages", DOMAIN: "Registered domains"}


@dataclass
class _Scan:
    """Running totals over the curated files (key "kept") or the rejects (key: drop stage)."""

    docs: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)
    tokens_missing: int = 0
    scores: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    mixes: dict[str, Counter[str]] = field(default_factory=dict)
    phases: Counter[str] = field(default_factory=Counter)
    phase_tokens: Counter[str] = field(default_factory=Counter)
    programs: dict[str, Counter[str]] = field(default_factory=dict)
    #: Edited documents: (rank, id, file, program), for the before/after diffs.
    edited: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add_scores(self, key: str, table: pa.Table, names: list[str]) -> None:
        for column in names:
            if column in table.column_names:
                values = _floats(table, column)
                if values.size:
                    self.scores.setdefault(column, {}).setdefault(key, []).append(values)

    def add_mixes(self, table: pa.Table, domain: pa.Array | None) -> None:
        for column in ("source", "language"):
            if column in table.column_names:
                values = ["(none)" if v is None else v for v in _strings(table, column)]
                self.mixes.setdefault(column, Counter()).update(values)
        if domain is not None:
            values = ["(no URL)" if v is None else str(v) for v in domain.to_pylist()]
            self.mixes.setdefault(DOMAIN, Counter()).update(values)

    def add_tokens(self, key: str, table: pa.Table, tokens: Retagger | None) -> None:
        counts = tokens.fill(table) if tokens is not None else None
        if counts is None:
            self.tokens_missing += table.num_rows
            return
        self.tokens_missing += counts.null_count
        self.tokens[key] += int(pc.sum(counts).as_py() or 0)


def _scan_output(
    files: list[str], wanted: _Wanted, tokens: Retagger | None, domains: Retagger | None
) -> _Scan:
    scan = _Scan()
    everything = [*BASE, *wanted.scores, *wanted.programs, "prox_status", "phase"]
    for url in files:
        names = _schema_names(url)
        needs_text = TOKENS not in names or (domains is not None and DOMAIN not in names)
        read = everything if needs_text else [c for c in everything if c != columns.TEXT]
        for table in _batches(url, read):
            scan.docs["kept"] += table.num_rows
            scan.add_tokens("kept", table, tokens)
            scan.add_mixes(table, domains.fill(table) if domains is not None else None)
            scan.add_scores("kept", table, wanted.scores)
            if "phase" in table.column_names:
                phases = ["(none)" if p is None else p for p in _strings(table, "phase")]
                scan.phases.update(phases)
                if TOKENS in table.column_names:
                    counts = table.column(TOKENS).to_pylist()
                    for phase, count in zip(phases, counts, strict=True):
                        scan.phase_tokens[phase] += int(count or 0)
            for column in wanted.programs:
                if column in table.column_names:
                    _count_programs(scan, column, table, url)
    return scan


def _count_programs(scan: _Scan, column: str, table: pa.Table, url: str) -> None:
    figures = scan.programs.setdefault(column, Counter())
    status = _strings(table, "prox_status")
    ids = _strings(table, columns.ID)
    for row, program in enumerate(_strings(table, column)):
        figures["documents"] += 1
        if not program or program.strip() in NO_EDIT:
            continue
        figures["with_program"] += 1
        spans = PROGRAM_CALL.findall(program)
        figures["removals"] += len(spans)
        figures["lines"] += sum(int(end) - int(start) + 1 for start, end in spans)
        figures["normalise"] += program.count("normalize(")
        doc_id = ids[row]
        if status[row] == "edited" and doc_id is not None:
            scan.edited.append((_rank(doc_id), doc_id, url, program))


def _rank(doc_id: str) -> str:
    """A stable pseudo-random order of documents: samples spread over sources and files."""
    return hashlib.blake2b(doc_id.encode("utf-8", "replace"), digest_size=8).hexdigest()


def _reason_key(stage: str, reason: str) -> str:
    """Unreadable rows carry their line number in the reason: group them without it."""
    return re.sub(r"\d+", "N", reason) if stage == INPUT_LABEL else reason


def _scan_rejects(
    data: RunData,
    files: list[str],
    wanted: _Wanted,
    order: dict[str, int],
    tokens: Retagger | None,
    domains: Retagger | None,
    samples: int,
) -> _Scan:
    """Per drop stage: documents, tokens, scores; the mixes of every reject; the samples."""
    extra = [c for cs in wanted.evidence.values() for c in cs]
    read = list(dict.fromkeys([*BASE, *wanted.scores, *extra, DROP_STAGE, DROP_REASON]))
    groups: dict[tuple[str, str], list[tuple[str, Sample]]] = defaultdict(list)
    counts: Counter[tuple[str, str]] = Counter()
    scan = _Scan()
    for url in files:
        for table in _batches(url, read):
            if DROP_STAGE not in table.column_names:
                continue
            stages = ["(unknown)" if s is None else s for s in _strings(table, DROP_STAGE)]
            data.rejected += table.num_rows
            scan.add_mixes(table, domains.fill(table) if domains is not None else None)
            for label in sorted(set(stages)):
                part = table.filter(pa.array([s == label for s in stages]))
                scan.docs[label] += part.num_rows
                if order.get(label, 0) > 0:  # rows that never entered a stage have no tokens
                    scan.add_tokens(label, part, tokens)
                scan.add_scores(label, part, wanted.scores)
            _sample(table, stages, wanted.evidence, groups, counts, samples)
    data.reasons = [
        ReasonGroup(
            stage, reason, counts[(stage, reason)], [s for _r, s in groups[(stage, reason)]]
        )
        for stage, reason in sorted(counts, key=lambda k: (order.get(k[0], 999), -counts[k], k))
    ]
    return scan


def _sample(
    table: pa.Table,
    stages: list[str],
    evidence: dict[str, list[str]],
    groups: dict[tuple[str, str], list[tuple[str, Sample]]],
    counts: Counter[tuple[str, str]],
    samples: int,
) -> None:
    """Keep, per drop stage and reason, the ``samples`` rows first in a stable random order."""
    ids = _strings(table, columns.ID)
    reasons = _strings(table, DROP_REASON)
    candidates: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for row, label in enumerate(stages):
        key = (label, _reason_key(label, reasons[row] or ""))
        counts[key] += 1
        candidates[key].append((_rank(ids[row] or f"{row}"), row))
    taken: list[tuple[tuple[str, str], str, int]] = []
    for key, found in candidates.items():
        held = {rank for rank, _sample in groups[key]}
        best = sorted([*held, *(rank for rank, _row in found)])[:samples]
        groups[key] = [(rank, s) for rank, s in groups[key] if rank in best]
        taken += [(key, rank, row) for rank, row in found if rank in best and rank not in held]
    if not taken:
        return
    rows = table.take(pa.array([row for _key, _rank_, row in taken], pa.int64()))
    texts, sources, urls = (_strings(rows, c) for c in (columns.TEXT, "source", "url"))
    for position, (key, rank, _row) in enumerate(taken):
        shown = {}
        for column in evidence.get(key[0], []):
            if column in rows.column_names:
                value = rows.column(column)[position].as_py()
                if value is not None:
                    shown[column] = _shown(value)
        reason = reasons[taken[position][2]]
        if reason and reason != key[1]:
            shown[DROP_REASON] = reason
        text = texts[position] or ""
        sample = Sample(
            doc_id=str(rows.column(columns.ID)[position].as_py()),
            source=sources[position] or "",
            url=urls[position] or "",
            evidence=shown,
            text=text[:SAMPLE_CHARS],
            chars=len(text),
        )
        groups[key].append((rank, sample))
        groups[key].sort(key=lambda item: item[0])


# -- the figures ---------------------------------------------------------------------------------
def _funnel(data: RunData, kept: _Scan, rejected: _Scan, order: dict[str, int]) -> None:
    """Documents and characters from the stats; tokens from the files: what each stage let
    through is what was kept in the end plus what every later stage dropped."""
    data.docs_kept = kept.docs["kept"]
    data.tokens_kept = kept.tokens["kept"] if kept.tokens_missing == 0 else None
    counted = kept.tokens_missing == 0 and rejected.tokens_missing == 0
    complete = True
    rows = []
    for info in data.stages:
        position = order[info.label]
        later = [label for label in rejected.docs if order.get(label, 999) > position]
        out = data.docs_kept + sum(rejected.docs[label] for label in later)
        if (out, out + rejected.docs[info.label]) != (info.stats.docs_out, info.stats.docs_in):
            complete = False
        tokens = kept.tokens["kept"] + sum(rejected.tokens[label] for label in later)
        entered = tokens + sum(
            n for label, n in rejected.tokens.items() if order.get(label) == position
        )
        rows.append(
            FunnelRow(
                info.label,
                info.stats.docs_in,
                info.stats.docs_out,
                info.stats.chars_out,
                tokens if counted else None,
                entered if counted else None,
            )
        )
    if not complete:
        for row in rows:
            row.tokens_out = row.tokens_in = None
        data.tokens_note = (
            "Tokens per stage are not shown: the curated files and the rejects do not add up to "
            "the stage counts (a run without rejects, or with failed tasks)."
        )
    elif not counted:
        data.tokens_note = "Tokens per stage are not shown: some documents could not be counted."
    data.funnel = rows


def _scores(
    data: RunData,
    kept: _Scan,
    rejected: _Scan,
    score_columns: list[str],
    markers: dict[str, list[Marker]],
) -> None:
    for column in score_columns:
        mine = kept.scores.get(column, {}).get("kept", [])
        kept_values = np.concatenate(mine) if mine else np.array([], dtype=np.float64)
        dropped = {
            label: np.concatenate(parts)
            for label, parts in (rejected.scores.get(column) or {}).items()
        }
        if kept_values.size or dropped:
            data.scores.append(ScoreData(column, kept_values, dropped, markers.get(column, [])))


def _mixes(data: RunData, kept: _Scan, rejected: _Scan) -> None:
    """Before: every document read (kept and rejected); after: the curated files."""
    for column, title in MIXES.items():
        before = Counter(kept.mixes.get(column, Counter()))
        before.update(rejected.mixes.get(column, Counter()))
        if before:
            data.mixes.append(Mix(title, column, before, kept.mixes.get(column, Counter())))


def _years(data: RunData) -> None:
    before: Counter[str] | None = None
    after: Counter[str] | None = None
    markers: list[Marker] = []
    for info in data.stages:
        if info.name == "age" and "crawl_year" in info.stats.histograms:
            before = Counter(info.stats.histograms["crawl_year"])
        if info.name == "age_filter":
            after = Counter(info.stats.histograms.get("kept_year", {}))
            for name in ("min_date", "max_date"):
                value = info.params.get(name)
                if value:
                    year = int(str(value)[:4]) + (0.0 if name == "min_date" else 1.0)
                    markers.append(Marker(year, f"{info.label}: {name} {value}", "threshold"))
    if before:
        data.years = YearData(before, after, markers)


def _dedup(data: RunData) -> None:
    for info in data.stages:
        if not info.name.endswith("dedup"):
            continue
        sizes: dict[int, int] = {}
        for size, count in info.stats.histograms.get("cluster_size", {}).items():
            if str(size).isdigit():
                sizes[int(size)] = sizes.get(int(size), 0) + int(count)
        data.dedup.append(DedupData(info.label, dict(info.stats.counters), sizes))


def _meco(data: RunData, kept: _Scan) -> None:
    for info in data.stages:
        if info.name == "meco":
            decision = (data.phases.get(info.label) or {}).get("decision") or {}
            docs = kept.phases or Counter(info.stats.histograms.get("phase", {}))
            data.meco = MecoData(info.label, decision, docs, kept.phase_tokens)


def _prox(data: RunData, kept: _Scan, program_columns: list[str], diffs: int) -> None:
    prox_stages = [info for info in data.stages if info.name.startswith("prox")]
    if not prox_stages:
        return
    from gristmill.report.replay import before_texts

    chosen = sorted(kept.edited)[: diffs * 3]
    replayed, note = before_texts(data, prox_stages[0].label, [(d, u) for _r, d, u, _p in chosen])
    found = [
        Diff(doc_id, program, *replayed[doc_id])
        for _rank_, doc_id, _url, program in chosen
        if doc_id in replayed and replayed[doc_id][0] != replayed[doc_id][1]
    ][:diffs]
    if chosen and not found and not note:
        note = "no edited document could be read back from its input"
    for number, info in enumerate(prox_stages):
        produced = info.stage.produces if info.stage is not None else ()
        column = next((c for c in program_columns if c in produced), "")
        figures = kept.programs.get(column, Counter())
        data.prox.append(
            ProxData(
                label=info.label,
                program_column=column,
                stats=info.stats,
                documents=figures["documents"],
                with_program=figures["with_program"],
                removals=figures["removals"],
                lines_removed=figures["lines"],
                normalisations=figures["normalise"],
                errors=int(info.stats.counters.get("errors", 0)),
                status=Counter(info.stats.histograms.get("status", {})),
                diffs=found if number == 0 else [],
                note=note if number == 0 else "",
            )
        )
