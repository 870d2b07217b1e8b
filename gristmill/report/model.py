"""What the report shows, as plain data: gathered by ``report.gather``, drawn by
``report.charts``, laid out by ``report.page``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gristmill.core.stage import Stage
from gristmill.core.stats import PipelineStats, StageStats


@dataclass
class StageInfo:
    """One stage of the run: its label in ``stats.json``, its spec, its figures."""

    label: str
    name: str
    params: dict[str, Any]
    stats: StageStats
    #: The stage rebuilt from its spec (None when its class is not registered here).
    stage: Stage | None = None


@dataclass
class FunnelRow:
    label: str
    docs_in: int
    docs_out: int
    chars_out: int
    tokens_out: int | None = None
    tokens_in: int | None = None


@dataclass
class Marker:
    """A line drawn on a histogram: a fixed threshold, or a whole-run percentile cut."""

    value: float
    label: str
    kind: str  # "threshold" | "cut"


@dataclass
class ScoreData:
    column: str
    kept: np.ndarray
    #: drop_stage label → the scores of the documents that stage dropped (after scoring).
    dropped: dict[str, np.ndarray]
    markers: list[Marker]


@dataclass
class YearData:
    before: Counter[str]
    after: Counter[str] | None
    markers: list[Marker]


@dataclass
class Mix:
    title: str
    column: str
    before: Counter[str]
    after: Counter[str]


@dataclass
class Sample:
    doc_id: str
    source: str
    url: str
    evidence: dict[str, str]
    text: str
    chars: int


@dataclass
class ReasonGroup:
    stage: str
    reason: str
    count: int
    samples: list[Sample]


@dataclass
class Diff:
    doc_id: str
    program: str
    before: str
    after: str


@dataclass
class ProxData:
    label: str
    program_column: str
    stats: StageStats
    documents: int = 0
    with_program: int = 0
    removals: int = 0
    lines_removed: int = 0
    normalisations: int = 0
    errors: int = 0
    status: Counter[str] = field(default_factory=Counter)
    diffs: list[Diff] = field(default_factory=list)
    note: str = ""


@dataclass
class DedupData:
    label: str
    counters: dict[str, float]
    #: cluster size → number of clusters of that size.
    sizes: dict[int, int]


@dataclass
class MecoData:
    label: str
    decision: dict[str, Any]
    docs: Counter[str]
    tokens: Counter[str]


@dataclass
class RunData:
    root: str
    name: str
    stats: PipelineStats
    stages: list[StageInfo]
    phases: dict[str, Any]
    failures: list[dict[str, Any]]
    not_run: list[str]
    funnel: list[FunnelRow] = field(default_factory=list)
    tokens_note: str = ""
    docs_kept: int = 0
    tokens_kept: int | None = None
    rejected: int = 0
    scores: list[ScoreData] = field(default_factory=list)
    years: YearData | None = None
    mixes: list[Mix] = field(default_factory=list)
    prox: list[ProxData] = field(default_factory=list)
    dedup: list[DedupData] = field(default_factory=list)
    meco: MecoData | None = None
    reasons: list[ReasonGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
