"""A gristmill pipeline's stages as one datatrove step, for users who keep datatrove's executors.

Documents are gathered into Arrow batches (``id``, ``text`` and one column per metadata key),
run through the stages, and yielded back with the columns the stages added or changed stored
in ``metadata``; dropped documents are not yielded.

A stage that needs the whole run before it decides (``corpus_phase()``: a percentile cut,
MeCo's exact cooldown share) is refused when the step is built: datatrove streams each task's
documents through its steps, with nothing that runs a phase over every task first, so such a
stage could only decide from one batch, which is not what it promises. Run it in a gristmill
pipeline, or give it its decision up front (a threshold, ``quantiles_from``, a MeCo plan).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from gristmill.core import columns
from gristmill.core.chain import StageChain
from gristmill.core.stage import Stage
from gristmill.errors import ConfigError

ROW = "_gristmill_row"


class GristmillStep(PipelineStep):  # type: ignore[misc]
    """Wraps gristmill stages (or a ``Pipeline``, whose stages it takes) so datatrove can run
    them."""

    name = "gristmill"
    type = "🌾 - GRISTMILL"

    def __init__(self, stages: StageChain | Sequence[Stage], batch_size: int = 1024) -> None:
        super().__init__()
        self.pipeline = stages if isinstance(stages, StageChain) else StageChain(list(stages))
        self.batch_size = batch_size
        whole_run = [stage.name for stage in self.pipeline.stages if stage.corpus_phase()]
        if whole_run:
            raise ConfigError(
                f"GristmillStep: stage(s) {', '.join(map(repr, whole_run))} decide from the "
                "whole run (a corpus-wide phase over every task), which a datatrove step cannot "
                "run: it sees one task's documents as they stream. Run them in a gristmill "
                "pipeline, or give them their decision up front (score_filter: a threshold or "
                "quantiles_from; meco: a plan from `gristmill meco plan`)"
            )

    def _table(self, documents: list[Document]) -> pa.Table:
        rows = [
            {**doc.metadata, columns.ID: doc.id, columns.TEXT: doc.text, ROW: i}
            for i, doc in enumerate(documents)
        ]
        return pa.Table.from_pylist(rows)

    def _process(self, documents: list[Document]) -> Iterator[Document]:
        table, _rejected = self.pipeline.apply(self._table(documents))
        added = [n for n in table.column_names if n not in (columns.ID, columns.TEXT, ROW)]
        for row in table.to_pylist():
            doc = documents[row[ROW]]
            doc.text = row[columns.TEXT]
            for name in added:
                doc.metadata[name] = row[name]
            self.stat_update("forwarded")
            yield doc

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.pipeline.setup()
        batch: list[Document] = []
        for document in data or ():
            batch.append(document)
            if len(batch) >= self.batch_size:
                yield from self._process(batch)
                batch = []
        if batch:
            yield from self._process(batch)
