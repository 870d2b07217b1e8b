"""``exact_dedup``: documents whose text (or any column, e.g. ``url``) is the same after a
normalisation form one cluster, across the whole run.

The map hashes each document's normalised value twice (two independent 64-bit hashes: the
first is the key that spreads values over reduce tasks, the second must match too), so two
different values merge with probability about n^2 / 2^128, nothing at any corpus size. Empty
and null values are never duplicates of each other. A reduce task's key range holds whole
groups, so each reduce writes its documents' clusters directly, with nothing to join.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core import columns
from gristmill.core.phase import KEY, CorpusPhase, PhaseInputs
from gristmill.core.registry import register_stage
from gristmill.stages.dedup.base import DedupParams, DedupStage, keyed
from gristmill.stages.dedup.clusters import groups_to_clusters
from gristmill.stages.dedup.normalise import Normalisation, normalised
from gristmill.stages.filters.id_hash import id_hashes, salt_for

CHECK = "check"


class ExactDedupParams(DedupParams):
    column: str = Field(columns.TEXT, description="the column compared: text, url, ...")
    normalise: Literal["auto", "none", "whitespace", "simplify", "url"] = Field(
        "auto",
        description="auto: url for a url column, whitespace otherwise; whitespace: trim and "
        "collapse whitespace; simplify: lowercase, no punctuation, numbers as 0, no "
        "diacritics (datatrove's normalisation); url: no scheme, www., default port, "
        "fragment, trailing slash or tracking parameters; none: as stored",
    )

    @property
    def normalisation(self) -> Normalisation:
        if self.normalise != "auto":
            return self.normalise
        return "url" if self.column == columns.URL else "whitespace"


class ExactPhase(CorpusPhase):
    """Map: two hashes of each document's normalised value. Reduce: groups → clusters."""

    def __init__(self, params: ExactDedupParams) -> None:
        self.params = params
        wanted = [columns.ID, params.column, *([params.prefer] if params.prefer else [])]
        self.columns = tuple(dict.fromkeys(wanted))
        self.reduce_rows = params.reduce_rows

    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        for first, batch in batches:
            values = normalised(batch.column(self.params.column), self.params.normalisation)
            present = np.flatnonzero(pc.greater(pc.binary_length(values), 0).to_numpy(False))
            if not len(present):
                continue
            chosen = values.take(pa.array(present))
            key = id_hashes(chosen, salt_for("exact_dedup.key", 0))
            check = id_hashes(chosen, salt_for("exact_dedup.check", 0))
            yield keyed(batch, first, present, key, self.params.prefer, **{CHECK: pa.array(check)})

    def reduce(self, rows: pa.Table) -> pa.Table:
        return groups_to_clusters(rows, [KEY, CHECK])

    def finish(
        self, reduced: Iterator[pa.Table], inputs: PhaseInputs | None = None
    ) -> dict[str, Any]:
        return {"column": self.params.column, "normalise": self.params.normalisation}


@register_stage
class ExactDedup(DedupStage):
    """Exact duplicates, on the text or any column, after a normalisation; one kept each."""

    name = "exact_dedup"
    Params = ExactDedupParams  # type: ignore[assignment]
    params: ExactDedupParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        return (columns.ID, self.params.column)

    def corpus_phase(self) -> ExactPhase:
        return ExactPhase(self.params)
