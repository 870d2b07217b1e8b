"""Build ``tests/data/``: the slices of the real data in ``shared/data`` that the tests read.

The tests need nothing outside the repository: every real file they read is here, cut
from the read-only origin files in ``shared/data`` (see its ``SOURCES.md`` and
``MANIFEST.tsv``) by the rules below, which ``tests/data/SOURCES.md`` states file by file.
Everything is deterministic (rows chosen by a hash of their id, gzip written without a
timestamp), so a rebuild gives the committed files byte for byte. Run::

    python scripts/build_test_data.py [DATA_ROOT] [--out DIR]

``DATA_ROOT`` defaults to ``<repo>/../shared/data`` and ``--out`` to ``<repo>/tests/data``.
The layout mirrors ``shared/data`` (same relative paths, ``.gz`` added where a slice is
compressed), so ``scripts/labelled.py`` reads either root.

Labelled rows are held-out rows only (those ``is_sample_row`` keeps out of
``data_samples/``): the tests judge the bundled models on them, and the models were
trained on the sample side.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "tests" / "data"

#: Held-out Davidson tweets kept: those whose id hashes below this fraction (about 1,600).
DAVIDSON_FRACTION = 0.06
#: Held-out, human-labelled HPLT rows kept per file (plus every one labelled unnatural).
HPLT_PER_FILE = 30
#: Lines of Tiny Shakespeare kept (the start of the file: Coriolanus).
SHAKESPEARE_LINES = 5000
#: Rows kept of the two large JSON Lines sources (the tests read the first rows only).
FIRST_ROWS = 30

csv.field_size_limit(sys.maxsize)


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) for a string: sha256 of it, first 48 bits."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16) / 16**12


def is_sample_row(row_id: str) -> bool:
    """The samples' held-out rule, from ``scripts/build_data_samples.py`` (one definition)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import labelled

    return labelled.sample_rule()(row_id)


def whole(root: Path, rel: str) -> bytes:
    return (root / rel).read_bytes()


def whole_gzipped(root: Path, rel: str) -> bytes:
    return gzip.compress((root / rel).read_bytes(), mtime=0)


def first_lines(count: int) -> Callable[[Path, str], bytes]:
    def cut(root: Path, rel: str) -> bytes:
        lines = (root / rel).read_bytes().split(b"\n")
        return b"\n".join(lines[:count]) + b"\n"

    return cut


def _csv_bytes(header: list[str], rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def davidson(root: Path, rel: str) -> bytes:
    """Held-out tweets (ids ``davidson-<row>``) whose id hashes below DAVIDSON_FRACTION."""
    with (root / rel).open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    kept = [
        row
        for row in rows
        if not is_sample_row(f"davidson-{row[0]}")
        and unit_hash(f"davidson-{row[0]}") < DAVIDSON_FRACTION
    ]
    return _csv_bytes(header, kept, ",")


def hplt(root: Path, rel: str) -> bytes:
    """Held-out rows a person labelled: every one flagged unnatural, and the HPLT_PER_FILE
    others with the smallest hash of their id; gzipped (no timestamp)."""
    language = Path(rel).name.rsplit("_batch", 1)[0]
    with (root / rel).open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle, delimiter="\t"))
    correct, unnatural, text_id = (
        next(i for i, name in enumerate(header) if name.startswith(prefix))
        for prefix in ("lang correct", "unnatural", "id")
    )
    held = [
        row
        for row in rows
        if row[correct].strip() in ("0", "1")
        and not is_sample_row(f"hplt-{language}-{row[text_id]}")
    ]
    flagged = [row for row in held if row[unnatural].strip() == "1"]
    others = sorted(
        (row for row in held if row[unnatural].strip() != "1"),
        key=lambda row: unit_hash(f"hplt-{language}-{row[text_id]}"),
    )[:HPLT_PER_FILE]
    chosen = {id(row) for row in flagged + others}
    kept = [row for row in held if id(row) in chosen]  # in file order
    return gzip.compress(_csv_bytes(header, kept, "\t"), mtime=0)


@dataclass(frozen=True)
class Slice:
    """One file of tests/data: its origin path under the data root and how it is cut."""

    origin: str
    cut: Callable[[Path, str], bytes]
    gzipped: bool = False

    @property
    def local(self) -> str:
        return self.origin + (".gz" if self.gzipped else "")


def hplt_files(root: Path) -> list[Slice]:
    """The HPLT files that have human labels (the others give no row to keep)."""
    files = []
    for path in sorted((root / "langid" / "hplt_v2_inspection").glob("*.tsv")):
        with path.open(newline="", encoding="utf-8") as handle:
            header, *rows = list(csv.reader(handle, delimiter="\t"))
        column = next(i for i, name in enumerate(header) if name.startswith("lang correct"))
        if any(row[column].strip() in ("0", "1") for row in rows):
            files.append(Slice(str(path.relative_to(root)), hplt, gzipped=True))
    return files


def plan(root: Path) -> list[Slice]:
    return [
        Slice("toxicity/jigsaw_toxic_comment_train_sample.csv", whole),
        Slice("toxicity/davidson_hate_offensive_labeled_data.csv", davidson),
        *hplt_files(root),
        Slice("quality/dclm_human_quality_disagreement.jsonl", whole),
        Slice("queries/mt_bench_questions.jsonl", whole),
        Slice("queries/nq_open_dev.jsonl", whole_gzipped, gzipped=True),
        Slice("queries/self_instruct_seed_tasks.jsonl", whole),
        Slice(
            "queries/self_instruct_user_oriented_instructions.jsonl", whole_gzipped, gzipped=True
        ),
        Slice("queries/vicuna_bench_questions.jsonl", whole),
        Slice("sources/dj_arxiv.jsonl", whole),
        Slice("sources/dj_stack_exchange.jsonl", first_lines(FIRST_ROWS)),
        Slice("sources/dj_the-pile-uspto-refined.jsonl", whole),
        Slice("sources/dj_the-pile-nih-refined.jsonl", whole),
        Slice("sources/dj_redpajama-cc-2023-06-refined.jsonl", whole),
        Slice("sources/gsm8k_test.jsonl", first_lines(FIRST_ROWS)),
        Slice("sources/books_tinyshakespeare.txt", first_lines(SHAKESPEARE_LINES)),
        Slice("sources/books_gutenberg_11_alice_in_wonderland.txt", whole),
        Slice("sources/books_gutenberg_11_alice_license.txt", whole),
        Slice("sources/legal_us_constitution.txt", whole),
        Slice("sources/wiki_en_rainbow_pdf_extract.txt", whole),
        Slice("web/dolma_ccnet_cc_en_head-0091.jsonl", whole),
        Slice("web/dolma_provided_documents_000.json.gz", whole),
    ]


def build(root: Path, out: Path) -> dict[str, int]:
    """Write every slice under ``out``; returns each local path's size in bytes."""
    sizes = {}
    for item in plan(root):
        data = item.cut(root, item.origin)
        target = out / item.local
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        sizes[item.local] = len(data)
    from build_topic_sets import write_sets  # the labelled topic sets (scripts/topic_labels/)

    sizes.update(write_sets(root, out))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data_root", nargs="?", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.data_root / "MANIFEST.tsv").is_file():
        print(f"error: {args.data_root} has no MANIFEST.tsv; pass shared/data", file=sys.stderr)
        return 2
    sizes = build(args.data_root, args.out)
    for name, size in sizes.items():
        print(f"{args.out / name}: {size:,} bytes")
    print(f"total: {sum(sizes.values()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
