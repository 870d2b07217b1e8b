"""The text of a few refined documents before their ProX programs ran, for the report's diffs.

The run keeps each document's final text only. To show what a program changed, the report
reads a few edited documents back from the run's input (the file each task read, as recorded in
its pass-1 completion marker) and runs the stages before the ProX stage on them again, with the
run's parameters: the stages are deterministic, so this is the text the program saw. Stages
with a corpus-wide phase (dedup) only drop documents, and these were kept, so they are skipped.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.core import columns
from gristmill.errors import GristmillError
from gristmill.io.base import strip_data_suffix
from gristmill.io.filesystem import join, read_json
from gristmill.io.formats import open_reader

if TYPE_CHECKING:
    from gristmill.report.model import RunData


def _source_of(root: str, output_url: str) -> str | None:
    """The input file of the task that wrote ``output_url`` (its pass-1 marker says)."""
    relative = posixpath.relpath(output_url, root)
    marker = read_json(
        join(root, "_run", "markers", "pass-01", strip_data_suffix(relative) + ".json")
    )
    source = marker.get("source") if isinstance(marker, dict) else None
    return str(source) if source else None


def _rows(url: str, ids: set[str]) -> pa.Table | None:
    """The rows of ``url`` with those ids, read as the run read them."""
    reader = open_reader([url], format="auto")
    found = []
    for task in reader.plan():
        for table in reader.read(task, None, unreadable=lambda _rows, _reasons: None):
            mask = pc.is_in(table.column(columns.ID), value_set=pa.array(sorted(ids)))
            if pc.any(mask).as_py():
                found.append(table.filter(mask))
    return pa.concat_tables(found, promote_options="permissive") if found else None


def before_texts(
    data: RunData, prox_label: str, wanted: list[tuple[str, str]]
) -> tuple[dict[str, tuple[str, str]], str]:
    """For (id, output file) pairs: id → (text before the ProX stage, text now); and a note
    saying why none could be shown, if so."""
    if not wanted:
        return {}, ""
    labels = [info.label for info in data.stages]
    earlier = data.stages[: labels.index(prox_label)]
    missing = [info.label for info in earlier if info.stage is None]
    if missing:
        return {}, f"stage {missing[0]} cannot be rebuilt here (its class is not registered)"
    before_stages = [
        info.stage
        for info in earlier
        if info.stage is not None and info.stage.corpus_phase() is None
    ]
    by_source: dict[str, set[str]] = defaultdict(set)
    by_output: dict[str, set[str]] = defaultdict(set)
    for doc_id, output_url in wanted:
        source = _source_of(data.root, output_url)
        if source is not None:
            by_source[source].add(doc_id)
            by_output[output_url].add(doc_id)
    if not by_source:
        return {}, "the run's completion markers do not name its input files"
    after: dict[str, str] = {}
    before: dict[str, str] = {}
    try:
        for output_url, ids in by_output.items():
            rows = _rows(output_url, ids)
            if rows is not None:
                after.update(
                    zip(
                        rows.column(columns.ID).to_pylist(),
                        rows.column(columns.TEXT).to_pylist(),
                        strict=True,
                    )
                )
        for stage in before_stages:
            stage.setup()
        try:
            for source, ids in by_source.items():
                table = _rows(source, ids)
                if table is None:
                    continue
                for stage in before_stages:
                    table = stage.run_batch(table).table
                    if table.num_rows == 0:
                        break
                before.update(
                    zip(
                        table.column(columns.ID).to_pylist(),
                        table.column(columns.TEXT).to_pylist(),
                        strict=True,
                    )
                )
        finally:
            for stage in reversed(before_stages):
                stage.teardown()
    except (GristmillError, OSError) as error:
        return {}, f"the input could not be read back ({error})"
    return {i: (before[i] or "", after[i] or "") for i in before if i in after}, ""
