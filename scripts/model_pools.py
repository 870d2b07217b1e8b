"""Training pools of the default quality and toxicity models, built from the origin data.

The earlier defaults were trained on the few hundred labelled rows of ``data_samples/`` only.
These pools use everything at hand that the held-out evaluations do not use:

* quality (DCLM/GPT-3 spirit, curated and filtered text against unfiltered crawl): positives
  are reference, book, legal, paper, patent, biomedical and Q&A text, instruction/answer pairs
  (self-instruct, in the spirit of DCLM's OpenHermes/ELI5 positives) and heuristically filtered
  web text (C4, CCNet's head bucket: web pages that passed a cleaning recipe, as WebText did for
  GPT-3); negatives are unfiltered crawl: raw page text with its menus and footers, HPLT rows that
  HPLT's annotators flagged unnatural, web snippets and raw Common Crawl documents. Long texts
  (books, WikiText articles) are cut into page-sized chunks at paragraph breaks, so that one
  play does not stand for "good". Benchmark splits (GSM8K, HumanEval, NQ, MT-Bench, Vicuna)
  are never used. The DCLM human-labelled set is not read here at all: it is the evaluation.
* toxicity: every Jigsaw and Davidson row except the held-out slice that ``tests/data`` keeps
  (``is_toxicity_held_out``: the rows outside ``data_samples/`` whose id hashes below
  ``DAVIDSON_FRACTION``, and every Jigsaw row outside the samples). The rule was fixed before any
  model was trained on this split.

Development tooling beside ``train_default_models.py``, like ``labelled.py``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

#: Curated sources of ``data_samples/`` (each already one document per row).
CURATED_SAMPLE_SOURCES = (
    "wikitext", "wikipedia", "gutenberg", "shakespeare", "luxun", "constitution",
    "uspto", "nih", "stackexchange", "arxiv",
)  # fmt: skip
#: Web text that passed a cleaning recipe (C4's rules, CCNet's perplexity head bucket).
FILTERED_WEB_SOURCES = ("c4", "ccnet")
#: Unfiltered crawl in ``data_samples/``: page text with menus, snippets, raw WET text.
RAW_CRAWL_SOURCES = ("wget", "web_snippets", "dclm_html", "cc_wet")
#: Instruction/answer files under ``<data>/queries`` (no benchmark among them).
INSTRUCTION_FILES = (
    "self_instruct_seed_tasks.jsonl",
    "self_instruct_user_oriented_instructions.jsonl",
)
#: Longest training document, in characters, before a text is cut at paragraph breaks.
CHUNK_CHARS = 2500

_WIKITEXT_FIXES = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" <unk>", ""))
_SPACE_BEFORE = re.compile(r" ([.,;:!?)\]'])")
_SPACE_AFTER = re.compile(r"([(\[]) ")


def untokenize_wikitext(text: str) -> str:
    """WikiText is word-tokenised (``word @-@ word``, ``end .``); undo the obvious marks so the
    model learns prose, not the tokeniser."""
    for old, new in _WIKITEXT_FIXES:
        text = text.replace(old, new)
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """``text`` cut at paragraph breaks into pieces of about ``size`` characters."""
    pieces: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        if not paragraph.strip():
            continue
        if current and len(current) + len(paragraph) > size:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        pieces.append(current)
    return pieces


def _by_source(samples: pa.Table, sources: Iterable[str]) -> Iterator[tuple[str, str]]:
    for source in sources:
        rows = samples.filter(pc.equal(samples["source"], source))
        for text in rows["text"].to_pylist():
            yield source, text


def instruction_texts(data: Path) -> list[str]:
    """Instruction, input and output of every self-instruct instance, one text each."""
    texts = []
    for name in INSTRUCTION_FILES:
        with (data / "queries" / name).open(encoding="utf-8") as handle:
            for line in handle:
                task = json.loads(line)
                for instance in task["instances"]:
                    parts = [task["instruction"], instance.get("input", ""), instance["output"]]
                    texts.append("\n".join(part for part in parts if part))
    return texts


def quality_pools(samples: pa.Table, data: Path) -> tuple[list[str], list[str]]:
    """(positive texts, negative texts) of the default quality model."""
    from labelled import hplt_table, in_samples

    positives: list[str] = []
    for source, text in _by_source(samples, CURATED_SAMPLE_SOURCES):
        positives.extend(chunks(untokenize_wikitext(text) if source == "wikitext" else text))
    positives.extend(instruction_texts(data))
    positives.extend(text for _, text in _by_source(samples, FILTERED_WEB_SOURCES))

    negatives = [text for _, text in _by_source(samples, RAW_CRAWL_SOURCES)]
    with gzip.open(data / "web" / "dolma_provided_documents_000.json.gz", "rt") as handle:
        negatives.extend(json.loads(line)["text"] for line in handle if line.strip())
    # Only rows in the samples: the other labelled HPLT rows are a held-out test.
    hplt = in_samples(hplt_table(data))
    negatives.extend(hplt.filter(hplt["unnatural"])["text"].to_pylist())
    return positives, negatives


def is_toxicity_held_out(id: str) -> bool:
    """The held-out rule of the toxicity models: exactly the rows ``tests/data`` keeps."""
    from build_test_data import DAVIDSON_FRACTION, is_sample_row, unit_hash

    if is_sample_row(id):
        return False
    return id.startswith("jigsaw-") or unit_hash(id) < DAVIDSON_FRACTION


def toxicity_train(table: pa.Table) -> pa.Table:
    """The rows of ``labelled.toxicity_table`` that the toxicity models train on."""
    held = pa.array([is_toxicity_held_out(i) for i in table["id"].to_pylist()], pa.bool_())
    return table.filter(pc.invert(held))


def toxicity_categories(root: Path | None = None) -> pa.Table:
    """``labelled.toxicity_table`` plus ``hate`` and ``nsfw`` labels from the origin columns.

    Hate: a Jigsaw ``identity_hate`` or ``threat`` label, or a Davidson tweet voted hate speech
    (class 0). NSFW: a Jigsaw ``obscene`` label, or a Davidson tweet voted offensive but not
    hateful (class 1: in that set overwhelmingly sexual slurs and profanity), the nearest the
    data comes to Dolma's obscene-only NSFW model.
    """
    import csv

    from labelled import data_root, toxicity_table

    table = toxicity_table(root)
    base = data_root(root) / "toxicity"
    hate: dict[str, bool] = {}
    nsfw: dict[str, bool] = {}
    with (base / "jigsaw_toxic_comment_train_sample.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = f"jigsaw-{row['id']}"
            hate[key] = row["identity_hate"] == "1" or row["threat"] == "1"
            nsfw[key] = row["obscene"] == "1"
    with (base / "davidson_hate_offensive_labeled_data.csv").open(
        newline="", encoding="utf-8"
    ) as f:
        for row in csv.DictReader(f):
            key = f"davidson-{row['']}"
            hate[key] = row["class"] == "0"
            nsfw[key] = row["class"] == "1"
    ids = table["id"].to_pylist()
    table = table.append_column("hate", pa.array([hate[i] for i in ids], pa.bool_()))
    return table.append_column("nsfw", pa.array([nsfw[i] for i in ids], pa.bool_()))
