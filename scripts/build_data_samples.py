"""Build ``data_samples/``: small, real, varied Parquet shards for tests and demos.

The shards are cut from the read-only sample files in ``shared/data`` (see its
``SOURCES.md`` and ``MANIFEST.tsv``). Everything here is deterministic: the same
inputs give the same rows in the same order, so a rebuild can be compared with
the committed shards. Run::

    python scripts/build_data_samples.py [DATA_ROOT] [--out DIR]

``DATA_ROOT`` defaults to ``<repo>/../shared/data`` and ``--out`` to
``<repo>/data_samples``. The script also rewrites ``<out>/SOURCES.md``.

Labelled rows (toxicity, HPLT language/quality labels) are only partly used:
``is_sample_row`` decides, from a seeded hash of the document id, which rows go
into the samples; the others stay out so that they can serve as a held-out
evaluation set that never overlaps the training-side samples.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import itertools
import json
import random
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "data_samples"

SEED = "gristmill-data-samples-v1"
ROW_GROUP_SIZE = 500
# Fraction of a labelled source's rows that go into the samples; the rest is held out.
SAMPLE_FRACTIONS: dict[str, float] = {"jigsaw": 0.5, "davidson": 0.006, "hplt": 0.2}

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=True),
        pa.field("crawl_date", pa.timestamp("us", tz="UTC"), nullable=True),
        pa.field("dump", pa.string(), nullable=True),
    ]
)

DUMP_RE = re.compile(r"CC-MAIN-\d{4}-\d{2}")
SHARD_NAME_RE = re.compile(r"^[a-z]+-[a-z0-9]+-\d{4}\.parquet$")


@dataclass(frozen=True)
class Doc:
    """One output row; field names and order follow ``SCHEMA``."""

    id: str
    text: str
    source: str
    url: str | None = None
    crawl_date: datetime | None = None
    dump: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """A source: how to read it, where it goes, and what SOURCES.md says about it."""

    name: str
    shard: str
    files: tuple[str, ...]  # paths under the data root; glob patterns allowed
    reader: Callable[[Path], list[Doc]]
    licence: str
    taken: str
    derivation: str


# ---------------------------------------------------------------------------
# Held-out rule
# ---------------------------------------------------------------------------


def unit_hash(key: str) -> float:
    """Map a key to [0, 1) with a seeded hash, stable across Python versions and runs."""
    digest = hashlib.sha256(f"{SEED}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_sample_row(id: str) -> bool:
    """Say whether a document id belongs in data_samples (True) or the held-out set.

    The id's prefix before the first ``-`` names the source (``jigsaw-<id>``,
    ``davidson-<row>``, ``hplt-<lang>-<hash>``). Sources without labels are always
    sampled; labelled ones keep only a seeded-hash fraction, so the complement is
    a held-out evaluation set that can be re-derived from the origin files alone.
    """
    fraction = SAMPLE_FRACTIONS.get(id.split("-", 1)[0], 1.0)
    return unit_hash(id) < fraction


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    """Parse an ISO-8601 time (``Z`` or offset) into an aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def dump_from_path(path: str | None) -> str | None:
    """Extract the Common Crawl dump id (``CC-MAIN-YYYY-WW``) from a segment path."""
    match = DUMP_RE.search(path or "")
    return match.group(0) if match else None


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSON-lines file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Read a CSV/TSV with a header row; quoted multi-line cells are kept intact."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def read_text(path: Path) -> str:
    """Read a UTF-8 text file without a byte-order mark and with ``\\n`` line ends."""
    return path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")


def split_before(lines: list[str], starts: list[int]) -> list[str]:
    """Cut ``lines`` into pieces that begin at each index in ``starts``.

    Text before the first start is glued to the first piece, so that a book's
    front matter stays with its first chapter instead of becoming a stub document.
    """
    bounds = [0, *starts[1:], len(lines)]
    return ["\n".join(lines[a:b]).strip() for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------------
# Web sources
# ---------------------------------------------------------------------------


def read_c4(path: Path) -> list[Doc]:
    """C4 keeps url and crawl time; the file position gives a stable id."""
    return [
        Doc(f"c4-{i:06d}", row["text"], "c4", row["url"], parse_time(row["date"]))
        for i, row in enumerate(read_jsonl(path))
    ]


def read_ccnet(path: Path) -> list[Doc]:
    """cc_net rows in Dolma format; the content digest is a stable, unique id."""
    docs = []
    for row in read_jsonl(path):
        meta = row["metadata"]
        digest = meta["digest"].removeprefix("sha1:")
        docs.append(
            Doc(
                f"ccnet-{digest}",
                row["text"],
                "ccnet",
                meta.get("url") or row["id"],
                parse_time(meta.get("date_download")),
                dump_from_path(meta.get("cc_segment")),
            )
        )
    return docs


def read_ccnet_all(root: Path) -> list[Doc]:
    """The three cc_net files, which span dumps CC-MAIN-2020-16/24 and 2023-06."""
    names = (
        "web/dolma_ccnet_cc_en_head-0091.jsonl",
        "web/dolma_ccnet_cc_en_head-0174.jsonl",
        "web/dolma_provided_documents_000.json.gz",
    )
    return [doc for name in names for doc in read_ccnet(root / name)]


def text_only_jsonl(source: str, tag: str, rel: str, **extra: str) -> Callable[[Path], list[Doc]]:
    """Reader for data-juicer files that carry only ``text`` (plus fixed provenance)."""

    def read(root: Path) -> list[Doc]:
        rows = read_jsonl(root / rel)
        return [
            Doc(f"{source}-{tag}-{i:03d}", row["text"], source, **extra)
            for i, row in enumerate(rows)
        ]

    return read


def concat_readers(
    *readers: Callable[[Path], list[Doc]],
) -> Callable[[Path], list[Doc]]:
    """Join several readers into one source, in the given order."""
    return lambda root: [doc for reader in readers for doc in reader(root)]


@dataclass(frozen=True)
class WarcRecord:
    """A WARC record's named fields and its raw block."""

    headers: dict[str, str]
    block: bytes


def iter_warc(path: Path) -> Iterator[WarcRecord]:
    """Walk a (multi-member) gzipped WARC by Content-Length; no third-party reader needed."""
    data = gzip.decompress(path.read_bytes())
    pos = 0
    while True:
        while data.startswith(b"\r\n", pos):
            pos += 2
        if pos >= len(data):
            return
        head_end = data.index(b"\r\n\r\n", pos)
        lines = data[pos:head_end].decode("utf-8").split("\r\n")
        if not lines[0].startswith("WARC/"):
            raise ValueError(f"{path}: no WARC record at byte {pos}")
        pairs = (line.split(":", 1) for line in lines[1:])
        headers = {k.strip(): v.strip() for k, v in pairs}
        end = head_end + 4 + int(headers["Content-Length"])
        yield WarcRecord(headers, data[head_end + 4 : end])
        pos = end


def dechunk(body: bytes) -> bytes:
    """Undo HTTP chunked transfer coding, which wget stores as received."""
    out, pos = bytearray(), 0
    while pos < len(body):
        line_end = body.index(b"\r\n", pos)
        size = int(body[pos:line_end].split(b";")[0], 16)
        if size == 0:
            break
        out += body[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2
    return bytes(out)


def http_html(block: bytes) -> str | None:
    """Return the decoded HTML of a 200 text/html HTTP response, else None."""
    head, _, body = block.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip()
        for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
    }
    if " 200 " not in f"{lines[0]} " or "text/html" not in headers.get("content-type", ""):
        return None
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    charset = re.search(r"charset=([\w-]+)", headers.get("content-type", ""))
    return body.decode(charset.group(1) if charset else "utf-8", errors="replace")


class _TextExtractor(HTMLParser):
    """Naive page-to-text: every visible string, one block element per line.

    It keeps navigation, footers and menus on purpose: the samples should contain
    the boilerplate that gristmill's filters and refiners have to deal with.
    """

    SKIP = frozenset({"script", "style", "noscript", "template", "svg"})
    # Inline elements that browsers render apart (menu links, buttons): a space keeps words apart.
    SPACED = frozenset({"a", "button", "img", "input", "label", "option"})
    BLOCK = frozenset(
        {
            *("address", "article", "aside", "blockquote", "br", "dd", "div"),
            *("dl", "dt", "figcaption", "footer", "form", "h1", "h2", "h3", "h4"),
            *("h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre"),
            *("section", "table", "td", "th", "title", "tr", "ul"),
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        else:
            self._separate(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        else:
            self._separate(tag, opening=False)

    def _separate(self, tag: str, opening: bool) -> None:
        # Spacing only before an inline element avoids "link ," before punctuation.
        if tag in self.BLOCK:
            self.parts.append("\n")
        elif opening and tag in self.SPACED:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Extract visible text, collapsing whitespace within lines and dropping blank lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def record_uuid(headers: dict[str, str]) -> str:
    """The WARC-Record-ID without its ``<urn:uuid:...>`` wrapping, lower-cased."""
    return headers["WARC-Record-ID"].strip("<>").removeprefix("urn:uuid:").lower()


def read_wget_warcs(root: Path) -> list[Doc]:
    """HTML responses from dolma's wget WARCs, as page text with crawl time, no dump."""
    docs = []
    for name in (
        "web/dolma_wget_sample-0000.warc.gz",
        "web/dolma_wget_sample-0001.warc.gz",
    ):
        for record in iter_warc(root / name):
            html = (
                http_html(record.block) if record.headers.get("WARC-Type") == "response" else None
            )
            if html is None:
                continue
            url = record.headers["WARC-Target-URI"].strip("<>")
            date = parse_time(record.headers["WARC-Date"])
            docs.append(
                Doc(
                    f"wget-{record_uuid(record.headers)}",
                    html_to_text(html),
                    "wget",
                    url,
                    date,
                )
            )
    return docs


def read_cc_wet(root: Path) -> list[Doc]:
    """Common Crawl WET text records; the dump comes from the warcinfo ``isPartOf`` field."""
    dump = None
    docs = []
    for record in iter_warc(root / "web/cc_whirlwind_CC-MAIN-2024-22_whirlwind.warc.wet.gz"):
        kind = record.headers.get("WARC-Type")
        if kind == "warcinfo":
            dump = dump_from_path(record.block.decode("utf-8"))
        elif kind == "conversion":
            url = record.headers["WARC-Target-URI"]
            date = parse_time(record.headers["WARC-Date"])
            text = record.block.decode("utf-8")
            docs.append(
                Doc(
                    f"ccwet-{record_uuid(record.headers)}",
                    text,
                    "cc_wet",
                    url,
                    date,
                    dump,
                )
            )
    return docs


def read_dclm_html(root: Path) -> list[Doc]:
    """Raw Common Crawl / Wikipedia HTML pages without metadata: no url, date or dump."""
    paths = sorted((root / "web/html").glob("dclm_*.html"))
    return [
        Doc(
            f"dclmhtml-{p.stem.removeprefix('dclm_')}",
            html_to_text(read_text(p)),
            "dclm_html",
        )
        for p in paths
    ]


# ---------------------------------------------------------------------------
# Multilingual web (HPLT v2)
# ---------------------------------------------------------------------------


def read_hplt(root: Path) -> list[Doc]:
    """HPLT v2 inspection rows that pass ``is_sample_row``; text kept as shown (truncated halves)."""
    docs = []
    for path in sorted((root / "langid/hplt_v2_inspection").glob("*.tsv")):
        lang = path.stem.rsplit("_batch", 1)[0]
        for row in read_csv(path, delimiter="\t"):
            doc_id = f"hplt-{lang}-{row['id']}"
            if is_sample_row(doc_id):
                docs.append(Doc(doc_id, row["text_show"], "hplt"))
    return docs


# ---------------------------------------------------------------------------
# Books, reference and technical text
# ---------------------------------------------------------------------------


def read_alice(root: Path) -> list[Doc]:
    """Alice in Wonderland, one document per chapter.

    The Gutenberg header stays on chapter I and the end marker plus the licence
    footer (split off upstream into its own file) go on chapter XII: real books
    arrive with that boilerplate, and the pipeline should be tested on it.
    """
    lines = read_text(root / "sources/books_gutenberg_11_alice_in_wonderland.txt").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("CHAPTER ")]
    chapters = split_before(lines, starts)
    chapters[-1] += (
        "\n\n" + read_text(root / "sources/books_gutenberg_11_alice_license.txt").strip()
    )
    url = "https://www.gutenberg.org/ebooks/11"
    return [
        Doc(f"gutenberg-11-ch{i:02d}", text, "gutenberg", url) for i, text in enumerate(chapters, 1)
    ]


def read_shakespeare(root: Path) -> list[Doc]:
    """Tiny Shakespeare cut at speech boundaries into pieces of roughly 2,000-4,000 characters.

    A seeded RNG picks each piece's target length so sizes vary the way real
    documents do, while staying reproducible.
    """
    speeches = [
        s.strip()
        for s in read_text(root / "sources/books_tinyshakespeare.txt").split("\n\n")
        if s.strip()
    ]
    rng = random.Random(f"{SEED}:shakespeare")
    pieces: list[str] = []
    current: list[str] = []
    size, target = 0, rng.randint(2000, 4000)
    for speech in speeches:
        if current and size + len(speech) > target:
            pieces.append("\n\n".join(current))
            current, size, target = [], 0, rng.randint(2000, 4000)
        current.append(speech)
        size += len(speech) + 2
    if current:
        pieces.append("\n\n".join(current))
    return [Doc(f"shakespeare-{i:04d}", text, "shakespeare") for i, text in enumerate(pieces)]


def read_luxun(root: Path) -> list[Doc]:
    """Lu Xun's Call to Arms, one document per story (a title line above a dashed rule).

    The web-scrape page markers (``_分节阅读_N``) and the closing download notice
    are left in: they are the kind of noise a books-from-the-web source carries.
    """
    lines = read_text(root / "sources/books_zh_luxun_call_to_arms.txt").split("\n")
    rule = re.compile(r"^\s*-{10,}\s*$")
    starts = [
        i
        for i in range(len(lines) - 1)
        if rule.match(lines[i + 1]) and lines[i].strip() and not lines[i].strip().startswith("<!--")
    ]
    stories = split_before(lines, starts)
    return [Doc(f"luxun-nahan-{i:02d}", text, "luxun") for i, text in enumerate(stories, 1)]


def read_constitution(root: Path) -> list[Doc]:
    """The US Constitution: the preamble, then one document per Article."""
    lines = read_text(root / "sources/legal_us_constitution.txt").split("\n")
    articles = [i for i, line in enumerate(lines) if line.startswith("Article")]
    parts = split_before(lines, [0, *articles])  # a leading 0 keeps the preamble apart
    names = ["preamble"] + [f"article-{i}" for i in range(1, len(parts))]
    return [
        Doc(f"constitution-{n}", text, "constitution") for n, text in zip(names, parts, strict=True)
    ]


def read_wikitext(root: Path) -> list[Doc]:
    """WikiText-2 test split, one document per article.

    An article starts at a ``= Title =`` line that follows a blank line; the blank
    line rule skips a few formula lines inside articles that look like headings.
    """
    lines = read_text(root / "sources/wiki_wikitext-2_test.txt").split("\n")
    heading = re.compile(r"^ = [^=].* = $")
    starts = [
        i
        for i, line in enumerate(lines)
        if heading.match(line) and (i == 0 or not lines[i - 1].strip())
    ]
    articles = split_before(lines, starts)
    return [Doc(f"wikitext2-test-{i:03d}", text, "wikitext") for i, text in enumerate(articles)]


def read_rainbow(root: Path) -> list[Doc]:
    """The Wikipedia "Rainbow" article as printed to PDF: page headers and broken lines included."""
    text = read_text(root / "sources/wiki_en_rainbow_pdf_extract.txt").strip()
    return [
        Doc(
            "wikipedia-rainbow-pdf",
            text,
            "wikipedia",
            "https://en.wikipedia.org/wiki/Rainbow",
        )
    ]


def read_arxiv(root: Path) -> list[Doc]:
    """RedPajama arXiv LaTeX rows; the abs URL is kept, the arXiv timestamp is not a crawl date."""
    docs = []
    for i, row in enumerate(read_jsonl(root / "sources/dj_arxiv.jsonl")):
        arxiv_id = row["meta"]["arxiv_id"].replace("/", "_")
        docs.append(
            Doc(
                f"arxiv-{i:02d}-{arxiv_id}",
                row["text"],
                "arxiv",
                row["meta"].get("url"),
            )
        )
    return docs


# ---------------------------------------------------------------------------
# Toxicity (partly held out)
# ---------------------------------------------------------------------------


def read_jigsaw(root: Path) -> list[Doc]:
    """Jigsaw Wikipedia talk-page comments chosen by ``is_sample_row``; labels are dropped."""
    rows = read_csv(root / "toxicity/jigsaw_toxic_comment_train_sample.csv")
    docs = (Doc(f"jigsaw-{row['id']}", row["comment_text"], "jigsaw") for row in rows)
    return [doc for doc in docs if is_sample_row(doc.id)]


def read_davidson(root: Path) -> list[Doc]:
    """Davidson et al. tweets chosen by ``is_sample_row``; the id is the file's row index column."""
    rows = read_csv(root / "toxicity/davidson_hate_offensive_labeled_data.csv")
    docs = (Doc(f"davidson-{row['']}", row["tweet"], "davidson") for row in rows)
    return [doc for doc in docs if is_sample_row(doc.id)]


# ---------------------------------------------------------------------------
# The source table
# ---------------------------------------------------------------------------

TORU = "Common Crawl Terms of Use apply; page text stays with its authors"

SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        "c4",
        "web-c4",
        ("web/olmo_c4-en_sample_1000.json.gz",),
        lambda root: read_c4(root / "web/olmo_c4-en_sample_1000.json.gz"),
        f"OLMo repo Apache-2.0; C4 data ODC-BY 1.0; {TORU}",
        "all 1,000 English C4 documents",
        "`text` and `url` as given; `crawl_date` from `date`; no dump (C4 does not record it); "
        "id `c4-<row number>`.",
    ),
    SourceSpec(
        "ccnet",
        "web-ccnet",
        (
            "web/dolma_ccnet_cc_en_head-0091.jsonl",
            "web/dolma_ccnet_cc_en_head-0174.jsonl",
            "web/dolma_provided_documents_000.json.gz",
        ),
        read_ccnet_all,
        f"dolma repo Apache-2.0; {TORU}",
        "all 30 cc_net 'head' documents (dumps CC-MAIN-2020-16, 2020-24, 2023-06); the 2023 ones keep "
        "their navigation lines",
        "`text` as given; `url` from `metadata.url`; `crawl_date` from `metadata.date_download`; "
        "`dump` parsed from `metadata.cc_segment`; id `ccnet-<sha1 content digest>`.",
    ),
    SourceSpec(
        "redpajama_cc",
        "web-ccnet",
        ("sources/dj_redpajama-cc-2023-06-refined.jsonl",),
        text_only_jsonl(
            "redpajama_cc",
            "2023_06",
            "sources/dj_redpajama-cc-2023-06-refined.jsonl",
            dump="CC-MAIN-2023-06",
        ),
        f"data-juicer repo Apache-2.0; {TORU}",
        "all 10 RedPajama CommonCrawl documents from the 2023-06 snapshot",
        "`text` as given; `dump` = CC-MAIN-2023-06 (the snapshot named by the file) and no crawl date, so "
        "these are the rows with a dump but no date; id `redpajama_cc-2023_06-<row>`.",
    ),
    SourceSpec(
        "redpajama_c4",
        "web-ccnet",
        ("sources/dj_redpajama-c4-refined.jsonl",),
        text_only_jsonl("redpajama_c4", "dj", "sources/dj_redpajama-c4-refined.jsonl"),
        "data-juicer repo Apache-2.0; C4 data ODC-BY 1.0",
        "all 10 RedPajama C4 documents",
        "`text` as given, no url/date/dump; id `redpajama_c4-dj-<row>`.",
    ),
    SourceSpec(
        "wget",
        "web-html",
        ("web/dolma_wget_sample-0000.warc.gz", "web/dolma_wget_sample-0001.warc.gz"),
        read_wget_warcs,
        "dolma repo Apache-2.0; pages are the copyright of their authors",
        "all 37 HTML responses of two wget WARC files (academic homepages, blogs, allenai.org three times, "
        "commoncrawl.org, creativecommons.org), fetched 2024-04-25",
        "WARC records read with a small built-in reader (chunked bodies decoded); page text extracted with a "
        "naive HTML-to-text pass that keeps menus and footers; `url` from `WARC-Target-URI`; `crawl_date` "
        "from `WARC-Date`; no dump (not a Common Crawl crawl); id `wget-<WARC record uuid>`.",
    ),
    SourceSpec(
        "cc_wet",
        "web-html",
        ("web/cc_whirlwind_CC-MAIN-2024-22_whirlwind.warc.wet.gz",),
        read_cc_wet,
        f"whirlwind-python repo Apache-2.0; {TORU}",
        "the single WET text record (an Aragonese Wikipedia page)",
        "`text` is the WET payload; `url`, `crawl_date` from the record; `dump` from the warcinfo "
        "`isPartOf` field; id `ccwet-<WARC record uuid>`.",
    ),
    SourceSpec(
        "dclm_html",
        "web-html",
        ("web/html/dclm_*.html",),
        read_dclm_html,
        "dclm repo MIT; Common Crawl pages (their authors) and Wikipedia (CC-BY-SA)",
        "all 6 raw HTML pages (Chinese SEO spam, Russian news, a Swedish company page, Wikipedia 'Earth's crust')",
        "the same naive HTML-to-text pass as `wget`; no url, date or dump (the files carry none); "
        "id `dclmhtml-<file stem>`.",
    ),
    SourceSpec(
        "web_snippets",
        "web-html",
        ("web/dj_quality_classifier_demo_multilingual.jsonl",),
        text_only_jsonl("web_snippets", "dj", "web/dj_quality_classifier_demo_multilingual.jsonl"),
        "data-juicer repo Apache-2.0",
        "all 11 short, mostly low-quality web snippets (en, zh, es)",
        "`text` as given; id `web_snippets-dj-<row>`.",
    ),
    SourceSpec(
        "hplt",
        "multilingual-hplt",
        ("langid/hplt_v2_inspection/*.tsv",),
        read_hplt,
        "release2_inspection repo MIT; HPLT v2 packaging CC0; text stays with its authors",
        "the rows of all 38 inspection files (36 languages) that `is_sample_row` selects (about 20%); "
        "some rows are sexually explicit or machine-like, as in the origin",
        "`text` is `text_show` unchanged: the first 500 characters of each half of the document joined by "
        "`\\n..........\\n`; labels are dropped; no url/date/dump; id `hplt-<lang>_<Script>-<HPLT doc hash>`.",
    ),
    SourceSpec(
        "gutenberg",
        "books-mixed",
        (
            "sources/books_gutenberg_11_alice_in_wonderland.txt",
            "sources/books_gutenberg_11_alice_license.txt",
        ),
        read_alice,
        "public domain (Project Gutenberg #11); word_cloud repo MIT",
        "Alice's Adventures in Wonderland as 12 chapter documents",
        "split at `CHAPTER` lines; the Gutenberg header stays on chapter I and the end marker plus the licence "
        "footer file are appended to chapter XII; `url` = the book's Gutenberg page; id `gutenberg-11-chNN`.",
    ),
    SourceSpec(
        "shakespeare",
        "books-mixed",
        ("sources/books_tinyshakespeare.txt",),
        read_shakespeare,
        "public domain (Shakespeare); char-rnn repo MIT",
        "the whole Tiny Shakespeare text",
        "cut at blank lines (speech boundaries) into pieces of about 2,000-4,000 characters, target lengths "
        "drawn from a seeded RNG; id `shakespeare-NNNN`.",
    ),
    SourceSpec(
        "luxun",
        "books-mixed",
        ("sources/books_zh_luxun_call_to_arms.txt",),
        read_luxun,
        "public domain (Lu Xun, d. 1936); word_cloud repo MIT",
        "《呐喊》 (Call to Arms) as one document per story (preface + 14 stories), in Chinese",
        "split before each title line that sits above a dashed rule; page markers and the closing download "
        "notice of the scraped original stay in; id `luxun-nahan-NN`.",
    ),
    SourceSpec(
        "wikitext",
        "reference-mixed",
        ("sources/wiki_wikitext-2_test.txt",),
        read_wikitext,
        "WikiText CC-BY-SA 3.0; pytorch/examples repo BSD-3",
        "the WikiText-2 test split as one document per article",
        "split at top-level `= Title =` lines that follow a blank line; text stays tokenized (`<unk>`, ` @-@ `); "
        "id `wikitext2-test-NNN`.",
    ),
    SourceSpec(
        "wikipedia",
        "reference-mixed",
        ("sources/wiki_en_rainbow_pdf_extract.txt",),
        read_rainbow,
        "Wikipedia CC-BY-SA; word_cloud repo MIT",
        "the English 'Rainbow' article from a PDF printout, one document",
        "the file as is (page headers, broken lines); `url` = the article; no date (the 2019 print date is "
        "not a crawl date); id `wikipedia-rainbow-pdf`.",
    ),
    SourceSpec(
        "constitution",
        "reference-mixed",
        ("sources/legal_us_constitution.txt",),
        read_constitution,
        "public domain (US government work); word_cloud repo MIT",
        "the US Constitution as the preamble plus one document per Article (8 documents)",
        "split before lines starting with `Article`; id `constitution-preamble` / `constitution-article-N`.",
    ),
    SourceSpec(
        "uspto",
        "reference-mixed",
        ("sources/dj_the-pile-uspto-refined.jsonl",),
        text_only_jsonl("uspto", "pile", "sources/dj_the-pile-uspto-refined.jsonl"),
        "data-juicer repo Apache-2.0; USPTO text public domain",
        "all 10 Pile USPTO patent backgrounds",
        "`text` as given; id `uspto-pile-<row>`.",
    ),
    SourceSpec(
        "nih",
        "reference-mixed",
        ("sources/dj_the-pile-nih-refined.jsonl",),
        text_only_jsonl("nih", "pile", "sources/dj_the-pile-nih-refined.jsonl"),
        "data-juicer repo Apache-2.0; NIH ExPORTER public domain",
        "all 10 Pile NIH grant abstracts",
        "`text` as given; id `nih-pile-<row>`.",
    ),
    SourceSpec(
        "stackexchange",
        "technical-mixed",
        (
            "sources/dj_stack_exchange.jsonl",
            "sources/dj_redpajama-pile-stackexchange-refined.jsonl",
        ),
        concat_readers(
            text_only_jsonl("stackexchange", "dj", "sources/dj_stack_exchange.jsonl"),
            text_only_jsonl(
                "stackexchange",
                "pile",
                "sources/dj_redpajama-pile-stackexchange-refined.jsonl",
            ),
        ),
        "data-juicer repo Apache-2.0; StackExchange content CC-BY-SA",
        "all 70 RedPajama StackExchange threads (mostly Spanish, code-heavy) and all 10 Pile StackExchange threads",
        "`text` as given; id `stackexchange-dj-<row>` / `stackexchange-pile-<row>`.",
    ),
    SourceSpec(
        "arxiv",
        "technical-mixed",
        ("sources/dj_arxiv.jsonl",),
        read_arxiv,
        "data-juicer repo Apache-2.0; papers under their authors' arXiv licences (tests and demos only)",
        "all 11 RedPajama arXiv LaTeX rows (some are a bare `\\section{}` line)",
        "`text` as given; `url` from `meta.url`; no crawl date; id `arxiv-<row>-<arxiv id>`.",
    ),
    SourceSpec(
        "jigsaw",
        "toxic-mixed",
        ("toxicity/jigsaw_toxic_comment_train_sample.csv",),
        read_jigsaw,
        "detoxify repo Apache-2.0; Jigsaw labels CC0; comment text CC-BY-SA 3.0 (Wikipedia talk pages)",
        "the Jigsaw comments that `is_sample_row` selects (about 50%); the rest is held out",
        "`comment_text` as given, labels dropped; id `jigsaw-<Jigsaw id>`.",
    ),
    SourceSpec(
        "davidson",
        "toxic-mixed",
        ("toxicity/davidson_hate_offensive_labeled_data.csv",),
        read_davidson,
        "hate-speech-and-offensive-language repo MIT; tweets by their authors",
        "the tweets that `is_sample_row` selects (about 0.6%); the rest is held out. Contains slurs",
        "`tweet` as given (HTML entities such as `&amp;` included), labels dropped; id `davidson-<index column>`.",
    ),
)

SHARD_LIMITS: dict[str, int] = {"web-c4": 1000, "multilingual-hplt": 1000}


# ---------------------------------------------------------------------------
# Building and writing
# ---------------------------------------------------------------------------


def collect(root: Path) -> dict[str, list[tuple[SourceSpec, list[Doc]]]]:
    """Read every source, dropping blank documents, grouped by shard family in table order."""
    families: dict[str, list[tuple[SourceSpec, list[Doc]]]] = {}
    for spec in SOURCES:
        docs = [doc for doc in spec.reader(root) if doc.text.strip()]
        if not docs:
            raise ValueError(f"source {spec.name!r} produced no documents from {root}")
        families.setdefault(spec.shard, []).append((spec, docs))
    return families


def check_unique(docs: Iterable[Doc]) -> None:
    """Fail loudly on a duplicate id: the shards promise globally unique ids."""
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise ValueError(f"duplicate id {doc.id!r}")
        seen.add(doc.id)


def to_table(docs: list[Doc]) -> pa.Table:
    """Build a table with the explicit schema, so types never depend on inference."""
    columns = {name: [getattr(doc, name) for doc in docs] for name in SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def plan_files(
    families: dict[str, list[tuple[SourceSpec, list[Doc]]]],
) -> dict[str, list[Doc]]:
    """Assign documents to numbered files, ``<family>-NNNN.parquet``.

    A family over its row limit is cut into equal-sized files, so that readers see
    both several files per source and several row groups per file.
    """
    files: dict[str, list[Doc]] = {}
    for family, groups in families.items():
        docs = [doc for _, group in groups for doc in group]
        n_files = -(-len(docs) // SHARD_LIMITS.get(family, 1000))
        per_file = -(-len(docs) // n_files)
        for n in range(n_files):
            files[f"{family}-{n:04d}.parquet"] = docs[n * per_file : (n + 1) * per_file]
    return files


def write_shards(files: dict[str, list[Doc]], out: Path) -> None:
    """Write each file as zstd Parquet with ~500-row row groups, replacing stale shards."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.parquet"):
        if SHARD_NAME_RE.match(stale.name) and stale.name not in files:
            stale.unlink()
    for name, docs in files.items():
        pq.write_table(
            to_table(docs),
            out / name,
            compression="zstd",
            row_group_size=ROW_GROUP_SIZE,
        )


def read_manifest(root: Path) -> dict[str, tuple[str, str, str]]:
    """Map each local file to (origin repo, commit, origin path) from MANIFEST.tsv."""
    rows = read_csv(root / "MANIFEST.tsv", delimiter="\t")
    return {r["local_path"]: (r["origin_repo"], r["origin_commit"], r["origin_path"]) for r in rows}


def expand_files(spec: SourceSpec, root: Path) -> list[str]:
    """The local files a source reads, with glob patterns resolved in name order."""
    paths: list[str] = []
    for pattern in spec.files:
        if "*" in pattern:
            paths += sorted(p.relative_to(root).as_posix() for p in root.glob(pattern))
        else:
            paths.append(pattern)
    return paths


def origin_lines(paths: list[str], manifest: dict[str, tuple[str, str, str]]) -> list[str]:
    """Render origins grouped by repo@commit so that long file lists stay readable."""
    grouped: dict[str, list[str]] = {}
    for local in paths:
        repo, commit, origin = manifest[local]
        grouped.setdefault(f"{repo}@{commit}", []).append(origin)
    return [
        f"  - `{key}`: " + ", ".join(f"`{p}`" for p in origins) for key, origins in grouped.items()
    ]


def render_sources_md(
    families: dict[str, list[tuple[SourceSpec, list[Doc]]]],
    files: dict[str, list[Doc]],
    manifest: dict[str, tuple[str, str, str]],
    root: Path,
) -> str:
    """Describe every shard and source; regenerated on each build so counts never drift."""
    out = [
        "# data_samples: what is in it and where it came from",
        "",
        "Generated by `scripts/build_data_samples.py` from the read-only sample data in `shared/data`",
        "(see its `SOURCES.md` and `MANIFEST.tsv`). Do not edit by hand: rerun the script, which rewrites",
        "the shards and this file. The build is deterministic, and `tests/test_data_samples.py` checks that",
        "a rebuild gives the same tables.",
        "",
        "Columns (explicit schema): `id` string (unique across all shards), `text` string, `source` string,",
        "`url` string?, `crawl_date` timestamp[us, UTC]?, `dump` string? (`CC-MAIN-YYYY-WW`).",
        "Files are zstd Parquet with row groups of at most 500 rows.",
        "",
        "Licences differ per source (below). Some need attribution or share-alike (CC-BY-SA, ODC-BY); the",
        "Common Crawl derived text also falls under the Common Crawl Terms of Use. Some rows are toxic,",
        "hateful or sexually explicit on purpose: the samples exist to test filters.",
        "",
        "## Held-out rule for labelled data",
        "",
        "Labelled rows (Jigsaw, Davidson, HPLT) are only partly included. A row is in the samples when",
        "`is_sample_row(id)` in the build script is true:",
        "",
        "    u = int.from_bytes(sha256(f'" + SEED + ":{id}'.encode()).digest()[:8], 'big') / 2**64",
        "    in_sample = u < FRACTION[prefix of id before the first '-']",
        "",
        "with fractions "
        + ", ".join(f"`{k}` {v}" for k, v in SAMPLE_FRACTIONS.items())
        + " (other sources: 1).",
        "Ids are `jigsaw-<Jigsaw id>`, `davidson-<index column>`, `hplt-<lang>_<Script>-<HPLT id>`.",
        "Every origin row whose id fails the test is held out: use those, never these shards, to",
        "evaluate toxicity, language-ID or quality models. The DCLM human quality labels and the UDHR",
        "translations in `shared/data` are not used here at all, so they are entirely held out too.",
        "GSM8K and HumanEval are left out because benchmark test splits must stay out of training data.",
        "",
        "## Files",
        "",
        "| file | rows | sources |",
        "|---|---|---|",
    ]
    for name, docs in files.items():
        counts: dict[str, int] = {}
        for doc in docs:
            counts[doc.source] = counts.get(doc.source, 0) + 1
        out.append(
            f"| `{name}` | {len(docs)} | " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " |"
        )
    total = sum(len(d) for d in files.values())
    out += [f"| **total** | **{total}** | |", "", "## Sources", ""]
    for groups in families.values():
        for spec, docs in groups:
            out += [
                f"### `{spec.name}`: {len(docs)} document{'s' if len(docs) != 1 else ''}",
                "",
                "- origin:",
                *origin_lines(expand_files(spec, root), manifest),
                f"- licence: {spec.licence}",
                f"- taken: {spec.taken}",
                f"- derived: {spec.derivation}",
                "",
            ]
    return "\n".join(out)


def build(root: Path, out: Path) -> dict[str, list[Doc]]:
    """Read all sources, write the shards and SOURCES.md, and return what was written."""
    families = collect(root)
    files = plan_files(families)
    check_unique(doc for docs in files.values() for doc in docs)
    write_shards(files, out)
    text = render_sources_md(families, files, read_manifest(root), root)
    (out / "SOURCES.md").write_text(text, encoding="utf-8")
    return files


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """CLI: the data root is positional so the common call stays short."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data_root", nargs="?", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build and print one line per file, so a run shows what changed."""
    args = parse_args(argv)
    if not (args.data_root / "MANIFEST.tsv").is_file():
        print(
            f"error: {args.data_root} has no MANIFEST.tsv; pass the shared/data directory",
            file=sys.stderr,
        )
        return 2
    files = build(args.data_root, args.out)
    for name, docs in files.items():
        print(f"{args.out / name}: {len(docs)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
