"""The template bank: validator, loader (our layouts and the released one), starter bank."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.errors import ConfigError
from gristmill.instructions.bank import (
    BANK_SCHEMA,
    FI_VARIABLE,
    count_variables,
    load_bank,
    read_bank,
    validate_template,
)

# Examples from the FineInstructions paper (App. A, section 6.1).
PAPER_TEMPLATES = [
    "what effects does <fi>a medical or psychological condition</fi> have?",
    "how to <fi>a few word description of the action to be performed</fi> "
    "<fi>name of a service, system, or platform</fi>?",
    "Give me a summary of <fi>topic</fi>",
]


@pytest.mark.parametrize("template", PAPER_TEMPLATES)
def test_the_papers_templates_are_valid(template: str) -> None:
    assert validate_template(template) is None


def test_count_variables_counts_each_occurrence() -> None:
    template = (
        "summarise <fi>type of document, e.g. technical report</fi> for <fi>an audience</fi>, "
        "keeping the tone of the <fi>type of document</fi>"
    )
    assert count_variables(template) == 3
    assert FI_VARIABLE.findall(template)[2] == "type of document"
    assert count_variables("no variable here") == 0


@pytest.mark.parametrize(
    ("template", "query", "reason"),
    [
        ("what effects does <fi>a condition have?", None, "never closed"),
        ("what effects does a condition</fi> have?", None, "without an opening <fi>"),
        ("what <fi>outer <fi>inner</fi></fi> is", None, "nested"),
        ("what effects does stress have?", None, "no <fi>"),
        ("what effects does <fi> </fi> have?", None, "empty description"),
        ("", None, "empty template"),
        ("What is  the capital of France?", "what is the capital of france?", "identical"),
        ("<fi>a question</fi>", "why is the sky blue", "only variables"),
    ],
)
def test_validator_names_the_problem(template: str, query: str | None, reason: str) -> None:
    found = validate_template(template, query)
    assert found is not None and reason in found


def test_a_template_differing_from_its_query_is_valid() -> None:
    query = "what is the capital of france"
    assert validate_template("what is the capital of <fi>name of a country</fi>", query) is None


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = {
    "template": "who plays <fi>name of a character</fi> in <fi>title of a film</fi>",
    "compatible_document_description": "A cast list or review of a film naming its actors.",
}


def test_loads_our_jsonl_layout_and_recomputes_n_fi(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "bank.jsonl",
        [{"template_id": 7, **GOOD, "n_fi": 2, "source": "mine#0"}, {"template_id": 9, **GOOD}],
    )
    table = load_bank(path)
    assert table.schema.equals(BANK_SCHEMA)
    assert table.column("template_id").to_pylist() == [7, 9]
    assert table.column("n_fi").to_pylist() == [2, 2]
    assert table.column("source").to_pylist() == ["mine#0", None]


def test_an_invalid_row_is_an_error_naming_the_file_and_row(tmp_path: Path) -> None:
    bad = {**GOOD, "template": "who plays <fi>name of a character in a film"}
    path = _jsonl(tmp_path / "bank.jsonl", [GOOD, GOOD, bad])
    with pytest.raises(ConfigError, match=r"bank\.jsonl, row 2: unbalanced <fi> tags"):
        load_bank(path)


def test_wrong_n_fi_duplicate_ids_and_bad_json_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="row 0: n_fi is 5 but the template has 2"):
        load_bank(_jsonl(tmp_path / "a.jsonl", [{**GOOD, "n_fi": 5}]))
    dup = [{"template_id": 1, **GOOD}, {"template_id": 1, **GOOD}]
    with pytest.raises(ConfigError, match="row 1: duplicate template_id 1"):
        load_bank(_jsonl(tmp_path / "b.jsonl", dup))
    (tmp_path / "c.jsonl").write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.jsonl, row 1: bad JSON"):
        load_bank(tmp_path / "c.jsonl")
    with pytest.raises(ConfigError, match="no such file"):
        load_bank(tmp_path / "missing.parquet")


def test_invalid_rows_can_be_skipped_and_are_counted(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {**GOOD, "template": "who plays a character"},
        {**GOOD, "template": "who plays <fi>x"},
        {**GOOD, "compatible_document_description": ""},
        {**GOOD, "template": "who plays a character in a film"},
    ]
    loaded = read_bank(_jsonl(tmp_path / "bank.jsonl", rows), skip_invalid=True)
    assert loaded.table.num_rows == 1
    assert loaded.skipped == {
        "no <fi>...</fi> variable": 2,
        "unbalanced <fi> tags: a <fi> is never closed": 1,
        "empty compatible_document_description": 1,
    }


def _released_layout(root: Path) -> Path:
    """A bank in the layout of the released ``finetemplates`` Parquet shards: hub-style
    ``data/train-*.parquet`` files with the templatizer's field names, the query and its
    source dataset, extra columns, and no id column."""
    data = root / "data"
    data.mkdir(parents=True)
    shards = [
        [
            ("what are the side effects of ibuprofen", "reddit_qa"),
            ("how to reset a netgear router", "gooaq"),
        ],
        [("give me a summary of the french revolution", "dolly")],
    ]
    templates = [
        [
            "what are the side effects of <fi>name of a medication</fi>",
            "how to <fi>an action to perform</fi> <fi>name of a device or service</fi>",
        ],
        ["Give me a summary of <fi>topic</fi>"],
    ]
    for n, (rows, temps) in enumerate(zip(shards, templates, strict=True)):
        table = pa.table(
            {
                "query": [q for q, _ in rows],
                "template": temps,
                "compatible_document_description": [f"A document about {q}" for q, _ in rows],
                "source": [s for _, s in rows],
                "language": ["en"] * len(rows),
            }
        )
        pq.write_table(table, data / f"train-{n:05d}-of-00002.parquet")
    return root


def test_loads_the_released_finetemplates_layout(tmp_path: Path) -> None:
    table = load_bank(_released_layout(tmp_path / "finetemplates"))
    assert table.schema.equals(BANK_SCHEMA)
    # ids run on across shards, in file order, when the layout has no id column
    assert table.column("template_id").to_pylist() == [0, 1, 2]
    assert table.column("n_fi").to_pylist() == [1, 2, 1]
    assert table.column("source").to_pylist() == ["reddit_qa", "gooaq", "dolly"]
    one_shard = load_bank(tmp_path / "finetemplates" / "data" / "train-00001-of-00002.parquet")
    assert one_shard.column("template").to_pylist() == ["Give me a summary of <fi>topic</fi>"]


def test_a_released_row_identical_to_its_query_names_the_shard(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    query = "how to cook <fi>a dish</fi>"  # a row whose template was never made generic
    pq.write_table(
        pa.table({"query": [query], "template": [query], "compatible_document_description": ["x"]}),
        data / "train-00000-of-00001.parquet",
    )
    with pytest.raises(ConfigError, match=r"train-00000-of-00001\.parquet, row 0: .*identical"):
        load_bank(tmp_path)
    with pytest.raises(ConfigError, match="no template column"):
        pq.write_table(pa.table({"text": ["a"]}), data / "train-00000-of-00001.parquet")
        load_bank(tmp_path)


# -- the packaged starter bank ----------------------------------------------------------------


def _origin_rows(data_dir: Path, name: str) -> list[dict]:
    path = data_dir / "queries" / name
    opener = gzip.open if not path.exists() else open
    if not path.exists():
        path = path.with_name(name + ".gz")
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_the_starter_bank_is_valid_big_enough_and_traceable(data_dir: Path) -> None:
    table = load_bank()
    assert table.schema.equals(BANK_SCHEMA)
    assert table.num_rows >= 300
    ids = table.column("template_id").to_pylist()
    assert len(set(ids)) == len(ids)
    templates = table.column("template").to_pylist()
    assert len({" ".join(t.lower().split()) for t in templates}) == len(templates)
    # provenance: every template names a file and row of the real queries it came from,
    # and is a valid template *for that query* (not the query unchanged)
    raw = [json.loads(line) for line in _starter_lines()]
    cache: dict[str, list[dict]] = {}
    for row in raw:
        name, row_no = row["source"].split("#")
        rows = cache.setdefault(name, _origin_rows(data_dir, name))
        origin = rows[int(row_no)]
        query = origin.get("question") or origin.get("instruction") or origin["turns"][0]
        assert query == row["query"]
        assert validate_template(row["template"], query) is None
        assert row["licence"] in ("CC BY-SA 3.0", "Apache-2.0")
    sources = {r["source"].split("#")[0] for r in raw}
    assert len(sources) >= 4  # search questions and written instructions both contribute


def _starter_lines() -> list[str]:
    from importlib import resources

    text = resources.files("gristmill.templates").joinpath("starter_bank.jsonl").read_text()
    return [line for line in text.splitlines() if line.strip()]


def test_the_build_script_rebuilds_the_packaged_bank(data_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "bank.jsonl"
    subprocess.run(
        [
            sys.executable,
            str(repo / "scripts" / "build_template_bank.py"),
            str(data_dir),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8").splitlines() == _starter_lines()
