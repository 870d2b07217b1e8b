"""Domain tagger throughput against the per-row baseline, as a ratio.

The baseline is what a per-document pipeline does: ``tldextract`` called on every URL (with the
same offline extractor) after ``urllib.parse.urlsplit``. The stage cuts hosts out with one
vectorised regex and calls tldextract once per unique host. The sample URLs are repeated so
that hosts repeat, as they do in a crawl (``--repeat``); the agreement of the two is printed.

    python benchmarks/taggers_domain.py --repeat 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.stages.taggers.domain import offline_extractor, tag_domains

REPO = Path(__file__).resolve().parents[1]


def per_row(urls: list[str | None]) -> list[str | None]:
    """urllib + tldextract on every URL, in a Python loop."""
    extractor = offline_extractor()
    out: list[str | None] = []
    for url in urls:
        host = urlsplit(url).hostname if url and "://" in url else None
        out.append(extractor(host).top_domain_under_public_suffix or None if host else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=50, help="copies of the sample URLs")
    args = parser.parse_args()
    tables = [
        pq.read_table(p, columns=["url"]) for p in sorted((REPO / "data_samples").glob("*.parquet"))
    ]
    urls = pa.concat_tables(tables).column("url").to_pylist() * args.repeat
    offline_extractor()  # load the suffix list outside the timings

    started = time.perf_counter()
    tagged = tag_domains(pa.array(urls, pa.string()))
    stage_s = time.perf_counter() - started

    started = time.perf_counter()
    baseline = per_row(urls)
    baseline_s = time.perf_counter() - started

    ours = tagged.column("url_registered_domain").to_pylist()
    agree = sum(a == b for a, b in zip(ours, baseline, strict=True)) / len(urls)
    print(f"{len(urls)} URLs, {len(set(urls))} distinct; registered domains agree on {agree:.2%}")
    print(f"stage (unique hosts): {len(urls) / stage_s:,.0f} URLs/s")
    print(f"per-row tldextract:   {len(urls) / baseline_s:,.0f} URLs/s")
    print(f"ratio stage/per-row:  {baseline_s / stage_s:.1f}x")


if __name__ == "__main__":
    main()
