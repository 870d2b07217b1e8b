"""The run report: one self-contained HTML page of a run's curation, from its output directory.

``write_report(OUTPUT)`` (and ``gristmill report OUTPUT``, ``gristmill run --report``) reads
``OUTPUT/_run/stats.json``, the curated files and the rejects, and writes
``OUTPUT/_run/report.html``: the funnel (documents and tokens after each stage), every score's
histogram with the thresholds and cuts applied to it, crawl years before and after the age
filter, the source, language and domain mix before and after, ProX's edits with a few
before/after diffs, dedup cluster sizes, MeCo's phases, and a few documents per drop reason.

The charts are drawn by matplotlib into inline SVG (``report.charts`` says why); the page holds
no script and loads nothing, and every document's text is escaped.
"""

from __future__ import annotations

from gristmill.io.filesystem import join, write_bytes_atomically

REPORT_NAME = "report.html"


def default_path(output: str) -> str:
    return join(output.rstrip("/"), "_run", REPORT_NAME)


def write_report(output: str, path: str | None = None, *, samples: int = 3) -> str:
    """Write the report of the run in ``output``; return where it went."""
    from gristmill.report.gather import gather
    from gristmill.report.page import render

    target = path or default_path(output)
    page = render(gather(output, samples=samples))
    write_bytes_atomically(target, page.encode("utf-8"))
    return target


__all__ = ["REPORT_NAME", "default_path", "write_report"]
