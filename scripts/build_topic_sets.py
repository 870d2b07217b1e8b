"""Build the labelled topic sets (``tests/data/topic/{train,eval}.jsonl.gz``) from origin files.

The labels are ours: each document listed in ``scripts/topic_labels/{train,eval}.tsv`` was read
and given one topic of ``gristmill/templates/topics.yaml`` by hand (documents that fit no
single topic were left out, not forced). This script only fetches and cuts the text the
labels point at, so that the sets can be rebuilt and checked against the origin files::

    python scripts/build_topic_sets.py DATA_ROOT [--out tests/data]

``DATA_ROOT`` is the folder of origin files described in ``tests/data/SOURCES.md`` (the same
layout ``scripts/build_test_data.py`` reads). A key in the TSV names the document in its file:
a row number (JSON lines), an HPLT id, ``LINE+N`` (N non-empty lines from a 0-based line of a
plain-text book) or the 0-based line of a WikiText ``= Title =`` heading (the whole article).
Texts are cut to ``MAX_CHARS`` at a space: the taggers read a document's opening only.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS = REPO_ROOT / "scripts" / "topic_labels"
MAX_CHARS = 1000

#: The annotation codes of the TSVs and the topic names they stand for.
CODES = {
    "AD": "adult",
    "AE": "arts & entertainment",
    "BU": "business & finance",
    "CO": "computing & electronics",
    "ED": "education & jobs",
    "EN": "engineering & industry",
    "FO": "food & drink",
    "HE": "health & medicine",
    "HI": "history",
    "HL": "home & lifestyle",
    "LA": "law & government",
    "LI": "literature",
    "MA": "mathematics",
    "NE": "news & politics",
    "RE": "religion",
    "SC": "science & nature",
    "SP": "sports & fitness",
    "TR": "travel & transport",
}


def _json_rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return [json.loads(line) for line in handle if line.strip()]


def _row_text(row: dict) -> str:
    """The document of a JSON row: text, a GSM8K question, a HumanEval prompt, a first turn."""
    for field in ("text", "question", "prompt"):
        if isinstance(row.get(field), str):
            return row[field]
    return str(row["turns"][0])


def _hplt_texts(path: Path) -> dict[str, str]:
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return {row[4]: row[3] for row in rows[1:] if len(row) > 4}


def _passage(lines: list[str], key: str) -> str:
    start, count = (int(part) for part in key.split("+"))
    kept = [line for line in lines[start:] if line.strip()]
    return "\n".join(kept[:count])


def _wiki_article(lines: list[str], key: str) -> str:
    start = int(key)
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith(" = ") and not lines[i].startswith(" = = ")
        ),
        len(lines),
    )
    return "\n".join(line.strip() for line in lines[start:end] if line.strip())


def cut(text: str, limit: int = MAX_CHARS) -> str:
    """The first ``limit`` characters, ended at the last space so no word is split."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    return head[: head.rfind(" ")] if " " in head else head


class Origin:
    """Reads documents out of the origin files, each file once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, object] = {}

    def text(self, file: str, key: str) -> str:
        path = self.root / file
        if file not in self._cache:
            if file.endswith(".tsv"):
                self._cache[file] = _hplt_texts(path)
            elif file.endswith(".txt"):
                self._cache[file] = path.read_text(encoding="utf-8").split("\n")
            else:
                self._cache[file] = _json_rows(path)
        data = self._cache[file]
        if isinstance(data, dict):
            return data[key]
        assert isinstance(data, list)
        if file.endswith(".txt"):
            return _passage(data, key) if "+" in key else _wiki_article(data, key)
        return _row_text(data[int(key)])


def build(root: Path, name: str) -> list[dict[str, str]]:
    origin = Origin(root)
    with (LABELS / f"{name}.tsv").open(encoding="utf-8", newline="") as handle:
        labels = list(csv.DictReader(handle, delimiter="\t"))
    rows = []
    for entry in labels:
        file, key = entry["file"], entry["key"]
        rows.append(
            {
                "id": f"{Path(file).name}:{key}",
                "file": file,
                "topic": CODES[entry["label"]],
                "text": cut(origin.text(file, key)),
            }
        )
    return rows


def write(rows: list[dict[str, str]], path: Path) -> None:
    """Gzipped JSON lines with no timestamp in the header, so a rebuild is byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(data)
    path.write_bytes(buffer.getvalue())


def write_sets(root: Path, out: Path) -> dict[str, int]:
    """Both sets under ``out/topic/``; each local path's size in bytes (``build_test_data.py``
    calls this, so the test-data rebuild covers them)."""
    sizes = {}
    for name in ("train", "eval"):
        local = f"topic/{name}.jsonl.gz"
        write(build(root, name), out / local)
        sizes[local] = (out / local).stat().st_size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", type=Path, help="folder of the origin data files")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "tests" / "data")
    args = parser.parse_args()
    for local, size in write_sets(args.data_root, args.out).items():
        print(f"{args.out / local}: {size:,} bytes")


if __name__ == "__main__":
    main()
