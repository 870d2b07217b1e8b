"""The FineInstructions template bank: its format, the template validator, and the loader.

A template is a real user query made generic: every span that names a specific entity or
scenario is replaced by ``<fi>DESCRIPTION</fi>``, where DESCRIPTION says in words what belongs
there (``what effects does <fi>a medical or psychological condition</fi> have?``). Each template
carries a *compatible document description*, a short paragraph on which documents could both
fill its variables and answer it: that paragraph, not the template, is what matching embeds.

Every bank gristmill reads, whichever file it came from, is turned into one Arrow table with
``BANK_SCHEMA`` so that the matcher, the instantiator and reports never look at file layouts.
Invalid rows are a configuration error naming the file and the row (a bank is small, curated
input: a broken row is a bug to fix, not noise to drop) unless the caller asks to skip them, in
which case they are counted by reason.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.errors import ConfigError

log = logging.getLogger(__name__)

FI_VARIABLE = re.compile(r"<fi>(.*?)</fi>", re.S)
"""One template variable; group 1 is its description (what belongs in the slot)."""

_FI_TAG = re.compile(r"</?fi>")

BANK_SCHEMA = pa.schema(
    [
        pa.field("template_id", pa.int64(), nullable=False),
        pa.field("template", pa.string(), nullable=False),
        pa.field("compatible_document_description", pa.string(), nullable=False),
        pa.field("n_fi", pa.int32(), nullable=False),
        pa.field("source", pa.string()),
    ]
)
"""The one in-memory layout of a bank. ``source`` says where the template's query came from
(our starter bank: ``file#row``; the released bank: its source dataset when it names one)."""

STARTER_BANK: Traversable = resources.files("gristmill.templates").joinpath("starter_bank.jsonl")
"""The packaged starter bank (built by ``scripts/build_template_bank.py``): package data, read
through importlib.resources so that a wheel carries it."""

# Column names other layouts use for our fields. The released ``finetemplates`` dataset stores
# the template and its description under the names the templatizer emits (``template``,
# ``compatible_document_description``); the id and source columns vary between exports, so the
# loader accepts the spellings below and numbers rows itself when no id column exists.
_ALIASES: dict[str, tuple[str, ...]] = {
    "template_id": ("template_id", "id", "_id"),
    "template": ("template", "instruction_template"),
    "compatible_document_description": (
        "compatible_document_description",
        "document_description",
        "description",
    ),
    "source": ("source", "query_source", "dataset", "source_dataset"),
    "query": ("query", "source_query", "original_query"),
}


def count_variables(template: str) -> int:
    """Number of ``<fi>...</fi>`` variables (a repeated description counts each time)."""
    return len(FI_VARIABLE.findall(template))


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def validate_template(template: str, query: str | None = None) -> str | None:
    """None if ``template`` is a usable template, else one line saying what is wrong.

    Checks the structure the instantiator relies on: tags balanced and never nested, at least
    one variable, no empty variable description; and, when the query it came from is given,
    that the template is not the query unchanged (a templatizer that copies its input has not
    made anything generic).
    """
    if not isinstance(template, str) or not template.strip():
        return "empty template"
    if query is not None and _normalise(template) == _normalise(query):
        return "template is identical to its query (nothing was made generic)"
    depth = 0
    for tag in _FI_TAG.finditer(template):
        if tag.group() == "<fi>":
            depth += 1
            if depth > 1:
                return f"nested <fi> tag at character {tag.start()}"
        else:
            depth -= 1
            if depth < 0:
                return f"</fi> without an opening <fi> at character {tag.start()}"
    if depth:
        return "unbalanced <fi> tags: a <fi> is never closed"
    variables = FI_VARIABLE.findall(template)
    if not variables:
        return "no <fi>...</fi> variable"
    for description in variables:
        if not description.strip():
            return "a <fi></fi> variable has an empty description"
    if query is not None and _normalise(FI_VARIABLE.sub("", template)) == "":
        return "template is only variables (no wording of the query is left)"
    return None


def validate_description(description: Any) -> str | None:
    """None if a compatible-document description is usable, else the reason."""
    if not isinstance(description, str) or not description.strip():
        return "empty compatible_document_description"
    if _FI_TAG.search(description):
        return "compatible_document_description contains <fi> tags"
    return None


@dataclass
class BankLoad:
    """A loaded bank and what was skipped on the way (only when skipping was asked for)."""

    table: pa.Table
    skipped: Counter[str] = field(default_factory=Counter)


def load_bank(
    path: str | Path | None = None, *, skip_invalid: bool = False, limit: int | None = None
) -> pa.Table:
    """Read a template bank into a ``BANK_SCHEMA`` table.

    ``path`` is None for the packaged starter bank, or a ``.jsonl`` file, a ``.parquet`` file,
    or a directory of Parquet shards (our own layout or the released ``finetemplates`` one).
    An invalid row raises ConfigError naming the file and row, unless ``skip_invalid``, which
    drops it and logs the counts per reason (``read_bank`` returns them).
    """
    return read_bank(path, skip_invalid=skip_invalid, limit=limit).table


def read_bank(
    path: str | Path | None = None, *, skip_invalid: bool = False, limit: int | None = None
) -> BankLoad:
    """``load_bank`` that also returns how many rows were skipped, by reason."""
    ids: list[int] = []
    templates: list[str] = []
    descriptions: list[str] = []
    n_fis: list[int] = []
    sources: list[str | None] = []
    skipped: Counter[str] = Counter()
    seen_ids: dict[int, str] = {}
    for where, row_no, row in _rows(path):
        if limit is not None and len(ids) >= limit:
            break
        try:
            tid, template, description, source = _check_row(row, row_no)
            if tid in seen_ids:
                raise _RowError(f"duplicate template_id {tid} (first at {seen_ids[tid]})")
        except _RowError as exc:
            if not skip_invalid:
                raise ConfigError(f"template bank {where}, row {row_no}: {exc}") from None
            # Count by kind: positions and ids would split one reason into many.
            skipped[re.sub(r"\d+", "N", str(exc).split(" (first at")[0])] += 1
            continue
        seen_ids[tid] = f"row {row_no}"
        ids.append(tid)
        templates.append(template)
        descriptions.append(description)
        n_fis.append(count_variables(template))
        sources.append(source)
    if skipped:
        log.warning(
            "template bank %s: skipped %d invalid rows (%s)",
            _describe(path),
            sum(skipped.values()),
            ", ".join(f"{reason}: {n}" for reason, n in skipped.most_common()),
        )
    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(templates, pa.string()),
            pa.array(descriptions, pa.string()),
            pa.array(n_fis, pa.int32()),
            pa.array(sources, pa.string()),
        ],
        schema=BANK_SCHEMA,
    )
    if table.num_rows == 0:
        raise ConfigError(f"template bank {_describe(path)}: no valid template")
    return BankLoad(table, skipped)


class _RowError(ValueError):
    pass


def _check_row(row: Mapping[str, Any], row_no: int) -> tuple[int, str, str, str | None]:
    template = _get(row, "template")
    if template is None:
        raise _RowError("no template column/field")
    description = _get(row, "compatible_document_description")
    query = _get(row, "query")
    reason = validate_template(template, query if isinstance(query, str) else None)
    if reason is None:
        reason = validate_description(description)
    if reason is not None:
        raise _RowError(reason)
    raw_id = _get(row, "template_id")
    if raw_id is None:
        tid = row_no
    else:
        try:
            tid = int(raw_id)
        except (TypeError, ValueError):
            raise _RowError(f"template_id {raw_id!r} is not an integer") from None
    declared = row.get("n_fi")
    if declared is not None and int(declared) != count_variables(template):
        raise _RowError(
            f"n_fi is {declared} but the template has {count_variables(template)} variables"
        )
    source = _get(row, "source")
    return tid, template, description, None if source is None else str(source)


def _get(row: Mapping[str, Any], name: str) -> Any:
    for alias in _ALIASES[name]:
        if alias in row and row[alias] is not None:
            return row[alias]
    return None


def _describe(path: str | Path | None) -> str:
    return "starter bank (gristmill/templates/starter_bank.jsonl)" if path is None else str(path)


def _rows(path: str | Path | None) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, row number from 0 within that file, row) for every row of the bank."""
    if path is None:
        with resources.as_file(STARTER_BANK) as starter:
            yield from _jsonl_rows(starter, _describe(None))
        return
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"template bank {p}: no such file or directory")
    if p.is_dir():
        shards = sorted(p.rglob("*.parquet"))
        if not shards:
            raise ConfigError(f"template bank {p}: directory holds no .parquet file")
        offset = 0
        for shard in shards:
            # Without an id column, ids run on across shards so they stay unique in the bank.
            for row_no, row in _parquet_rows(shard):
                yield str(shard), row_no, _with_default_id(row, offset + row_no)
            offset += pq.ParquetFile(shard).metadata.num_rows
        return
    name = p.name.lower()
    if name.endswith(".parquet"):
        for row_no, row in _parquet_rows(p):
            yield str(p), row_no, row
    elif name.endswith((".jsonl", ".json")):
        yield from _jsonl_rows(p, str(p))
    else:
        raise ConfigError(f"template bank {p}: expected .jsonl, .parquet or a directory of shards")


def _with_default_id(row: dict[str, Any], default: int) -> dict[str, Any]:
    if _get(row, "template_id") is None:
        row = dict(row)
        row["template_id"] = default
    return row


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"template bank {path}: not a readable Parquet file ({exc})") from None
    wanted = {alias for aliases in _ALIASES.values() for alias in aliases} | {"n_fi"}
    columns = [c for c in pf.schema_arrow.names if c in wanted]
    if not any(c in columns for c in _ALIASES["template"]):
        raise ConfigError(
            f"template bank {path}: no template column (have {pf.schema_arrow.names})"
        )
    row_no = 0
    for batch in pf.iter_batches(columns=columns, batch_size=8192):
        for row in batch.to_pylist():
            yield row_no, row
            row_no += 1


def _jsonl_rows(path: Path, where: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for row_no, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"template bank {where}, row {row_no}: bad JSON ({exc})"
                ) from None
            if not isinstance(row, dict):
                raise ConfigError(f"template bank {where}, row {row_no}: not a JSON object")
            yield where, row_no, row
