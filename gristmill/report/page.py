"""The report as one self-contained HTML page: inline styles and SVG charts, no script at all.

Every string that comes from the data (document text, ids, URLs, drop reasons, programs) goes
through ``html.escape``; the page also carries a Content-Security-Policy that allows no
script, no network request and nothing but its own inline styles, so even a mistake here
could not make a document's ``<script>`` run or the page fetch anything.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from html import escape

from gristmill.report import charts
from gristmill.report.model import Diff, ProxData, ReasonGroup, RunData

POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
DIFF_LINES = 60

CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde1e8; --accent: #3b6ea8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #f6f7f9; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta, .note { color: var(--muted); }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; list-style: none; padding: 0; margin: 16px 0; }
.kpis li { background: white; border: 1px solid var(--line); border-radius: 6px;
           padding: 8px 14px; min-width: 140px; }
.kpis b { display: block; font-size: 18px; }
nav { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 8px 0 0; }
nav a { color: var(--accent); text-decoration: none; }
figure.chart { background: white; border: 1px solid var(--line); border-radius: 6px;
               margin: 12px 0; padding: 8px; }
figure.chart svg { display: block; width: 100%; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
table { border-collapse: collapse; background: white; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; vertical-align: top; }
th { background: #eef1f5; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
details { background: white; border: 1px solid var(--line); border-radius: 6px;
          margin: 6px 0; padding: 6px 10px; }
summary { cursor: pointer; }
pre { white-space: pre-wrap; word-break: break-word; font-size: 12px; max-height: 28em;
      overflow: auto; background: #fafbfc; border: 1px solid var(--line); padding: 8px; }
.diff .del { background: #fde8ea; color: #8a1c2b; display: block; }
.diff .add { background: #e6f4ea; color: #1e5b31; display: block; }
.diff .hunk { color: var(--muted); display: block; }
.diff .ctx { display: block; }
code { font-size: 12px; }
.evidence { color: var(--muted); font-size: 12px; }
.failed { color: #a4162a; }
"""


def _number(value: float | int | None) -> str:
    if value is None:
        return "-"
    return (
        f"{value:,.0f}" if isinstance(value, int) or float(value).is_integer() else f"{value:,.3g}"
    )


def _table(headings: list[str], rows: Iterable[list[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, svg: str, caption: str = "") -> str:
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart" data-chart="{escape(name)}">{svg}{caption_html}</figure>'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


# -- sections --------------------------------------------------------------------------------
def _header(data: RunData) -> str:
    first = data.funnel[0] if data.funnel else None
    read = first.docs_in if first else 0
    kept = data.funnel[-1].docs_out if data.funnel else data.docs_kept
    share = f" ({kept / read:.1%})" if read else ""
    tokens_first = first.tokens_in if first else None
    kpis = [
        ("documents read", f"{read:,}"),
        ("documents kept", f"{kept:,}{share}"),
        ("documents rejected", f"{data.rejected:,}"),
    ]
    if data.tokens_kept is not None:
        tokens = f"{data.tokens_kept:,}"
        if tokens_first:
            tokens += f" of {tokens_first:,}"
        kpis.append(("tokens kept", tokens))
    kpis.append(("tasks complete", f"{data.stats.tasks:,}"))
    if data.stats.unreadable:
        kpis.append(("unreadable rows", f"{data.stats.unreadable:,}"))
    if data.failures:
        kpis.append(("failures", f"{len(data.failures):,}"))
    items = "".join(f"<li>{escape(label)}<b>{escape(value)}</b></li>" for label, value in kpis)
    links = [
        ("funnel", "Funnel"),
        ("scores", "Scores"),
        ("age", "Data age"),
        ("mix", "Mix"),
        ("prox", "ProX"),
        ("dedup", "Dedup"),
        ("meco", "MeCo"),
        ("dropped", "What was removed"),
    ]
    nav = "".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in links)
    return (
        f"<header><h1>gristmill run report: {escape(data.name)}</h1>"
        f'<p class="meta">output <code>{escape(data.root)}</code>, {len(data.stages)} stages; '
        "made by <code>gristmill report</code> from <code>_run/stats.json</code>, the curated "
        "files and the rejects</p>"
        f'<ul class="kpis">{items}</ul><nav>{nav}</nav></header>'
    )


def _funnel(data: RunData) -> str:
    parts = ['<section id="funnel"><h2>Funnel</h2>']
    if not data.funnel:
        return parts[0] + _note("No stage ran.") + "</section>"
    parts.append(
        _figure(
            "funnel",
            charts.funnel(data.funnel),
            "Documents and tokens that went on after each stage (input = what the first "
            "stage read).",
        )
    )
    if data.tokens_note:
        parts.append(_note(data.tokens_note))
    by_label = {info.label: info for info in data.stages}
    rows = []
    for row in data.funnel:
        stats = by_label[row.label].stats
        reasons = ", ".join(
            f"{escape(reason)} {count:,}" for reason, count in stats.dropped.most_common(4)
        )
        more = len(stats.dropped) - 4
        if more > 0:
            reasons += f" (+{more} more)"
        kept = f"{row.docs_out / row.docs_in:.1%}" if row.docs_in else "-"
        rows.append(
            [
                escape(row.label),
                _number(row.docs_in),
                _number(row.docs_out),
                kept,
                _number(row.chars_out),
                _number(row.tokens_out),
                reasons,
                f"{stats.seconds:.1f}",
            ]
        )
    headings = ["stage", "docs in", "docs out", "kept", "chars out", "tokens out", "dropped by"]
    parts.append(_table([*headings, "s"], rows, {1, 2, 3, 4, 5, 7}))
    return "".join(parts) + "</section>"


def _scores(data: RunData) -> str:
    parts = ['<section id="scores"><h2>Scores</h2>']
    if not data.scores:
        parts.append(_note("No score column in this run."))
    for score in data.scores:
        name = f"score-{score.column}"
        markers = "; ".join(m.label for m in score.markers) or "no threshold or cut on it"
        parts.append(
            _figure(
                name,
                charts.histogram(score, name),
                f"Documents by {score.column} when scored: kept, and dropped by later stages; "
                f"lines: {markers}.",
            )
        )
    return "".join(parts) + "</section>"


def _age(data: RunData) -> str:
    parts = ['<section id="age"><h2>Data age</h2>']
    if data.years is None:
        parts.append(_note("No age stage in this run."))
    else:
        limits = "; ".join(m.label for m in data.years.markers) or "none"
        parts.append(
            _figure(
                "years",
                charts.years(data.years),
                "Crawl year of the documents that reached the age filter, and of those it kept "
                f"(missing: no date found). Limits: {limits}.",
            )
        )
    return "".join(parts) + "</section>"


def _mixes(data: RunData) -> str:
    parts = ['<section id="mix"><h2>Domain, source and language mix</h2>']
    if not data.rejected:
        parts.append(_note('No rejects were kept: "read" is the curated files only.'))
    for mix in data.mixes:
        name = f"mix-{mix.column}"
        parts.append(
            _figure(
                name,
                charts.mix(mix, name),
                f"{len(mix.before):,} {mix.title.lower()} among the documents read, "
                f"{len(mix.after):,} among those kept.",
            )
        )
    return "".join(parts) + "</section>"


def _diff(diff: Diff, opened: bool = False) -> str:
    lines = list(
        difflib.unified_diff(
            diff.before.splitlines(), diff.after.splitlines(), "before", "after", n=1, lineterm=""
        )
    )[2:]
    shown = []
    for line in lines[:DIFF_LINES]:
        kind = {"-": "del", "+": "add", "@": "hunk"}.get(line[:1], "ctx")
        shown.append(f'<span class="{kind}">{escape(line) or " "}</span>')
    if len(lines) > DIFF_LINES:
        shown.append(f'<span class="hunk">… {len(lines) - DIFF_LINES} more diff lines</span>')
    return (
        f"<details{' open' if opened else ''}><summary><code>{escape(diff.doc_id)}</code></summary>"
        f'<p class="evidence">program:</p><pre>{escape(diff.program)}</pre>'
        f'<pre class="diff">{"".join(shown)}</pre></details>'
    )


def _prox_stage(prox: ProxData) -> str:
    counters = ", ".join(f"{escape(k)} {v:,.0f}" for k, v in sorted(prox.stats.counters.items()))
    status = ", ".join(f"{escape(k)} {v:,}" for k, v in prox.status.most_common())
    rows = [
        ["documents refined (kept)", _number(prox.documents)],
        ["documents with a program", _number(prox.with_program)],
        ["line removals (remove_lines calls)", _number(prox.removals)],
        ["lines removed", _number(prox.lines_removed)],
        ["string normalisations", _number(prox.normalisations)],
        ["program errors", _number(prox.errors)],
    ]
    parts = [
        f"<h3>{escape(prox.label)}</h3>",
        _table(["figure", "value"], rows, {1}),
        f'<p class="evidence">status: {status or "-"}; counters: {counters or "-"}; programs in '
        f"<code>{escape(prox.program_column)}</code></p>",
    ]
    if prox.diffs:
        parts.append(f"<p>{len(prox.diffs)} edited documents, before and after:</p>")
        parts += [_diff(diff, opened=number == 0) for number, diff in enumerate(prox.diffs)]
    elif prox.note:
        parts.append(_note(f"No before/after diff: {prox.note}."))
    return "".join(parts)


def _prox(data: RunData) -> str:
    parts = ['<section id="prox"><h2>ProX refinement</h2>']
    if not data.prox:
        parts.append(_note("No ProX stage in this run."))
    parts += [_prox_stage(prox) for prox in data.prox]
    return "".join(parts) + "</section>"


def _dedup(data: RunData) -> str:
    parts = ['<section id="dedup"><h2>Deduplication</h2>']
    if not data.dedup:
        parts.append(_note("No dedup stage in this run."))
    for dedup in data.dedup:
        figures = ", ".join(f"{escape(k)} {v:,.0f}" for k, v in sorted(dedup.counters.items()))
        parts.append(f"<h3>{escape(dedup.label)}</h3><p>{figures or 'no figures'}</p>")
        if dedup.sizes:
            name = f"clusters-{dedup.label}"
            parts.append(
                _figure(
                    name,
                    charts.cluster_sizes(dedup.sizes, f"{dedup.label}: cluster sizes", name),
                    "Clusters of duplicates by their number of documents (one of each kept).",
                )
            )
        else:
            parts.append(_note("No duplicates found: no cluster to show."))
    return "".join(parts) + "</section>"


def _meco(data: RunData) -> str:
    parts = ['<section id="meco"><h2>MeCo phases</h2>']
    meco = data.meco
    if meco is None:
        return parts[0] + _note("No MeCo stage in this run.") + "</section>"
    summary = meco.decision.get("summary")
    if summary:
        parts.append(f"<p>{escape(str(summary))}</p>")
    if meco.docs:
        parts.append(
            _figure(
                "meco",
                charts.phases(meco.docs, meco.tokens),
                "The kept documents and their tokens in each training phase.",
            )
        )
    shown = {k: v for k, v in meco.decision.items() if k not in ("summary", "top_hosts")}
    rows = [[escape(k), escape(str(v))] for k, v in sorted(shown.items())]
    if rows:
        parts.append(_table(["decision", "value"], rows, set()))
    return "".join(parts) + "</section>"


def _reason(group: ReasonGroup) -> str:
    parts = [
        f"<h3>{escape(group.stage)} · {escape(group.reason or '(no reason)')} · "
        f"{group.count:,} documents</h3>"
    ]
    for sample in group.samples:
        evidence = "; ".join(f"{escape(k)} = {escape(v)}" for k, v in sample.evidence.items())
        where = " · ".join(escape(v) for v in (sample.source, sample.url) if v)
        more = sample.chars - len(sample.text)
        tail = escape(f"\n… ({more:,} more characters)") if more > 0 else ""
        parts.append(
            f"<details><summary><code>{escape(sample.doc_id)}</code> {where}"
            f'<span class="evidence">{" — " + evidence if evidence else ""}</span></summary>'
            f'<pre class="doc">{escape(sample.text)}{tail}</pre></details>'
        )
    return "".join(parts)


def _dropped(data: RunData) -> str:
    parts = ['<section id="dropped"><h2>What each stage removed</h2>']
    if not data.reasons:
        parts.append(_note("Nothing was dropped, or the run kept no rejects."))
    else:
        parts.append(
            _note(
                "A few documents per stage and reason, chosen by a stable hash of their id, "
                "with the columns that decided (scores, language, cluster, program)."
            )
        )
    parts += [_reason(group) for group in data.reasons]
    return "".join(parts) + "</section>"


def _failures(data: RunData) -> str:
    if not data.failures and not data.not_run:
        return ""
    rows = [
        [escape(str(f.get("task"))), escape(str(f.get("step"))), escape(str(f.get("error")))]
        for f in data.failures
    ]
    parts = ['<section id="failures"><h2 class="failed">Failures</h2>']
    if rows:
        parts.append(_table(["task", "step", "error"], rows, set()))
    parts += [_note(f"not run: {step}") for step in data.not_run]
    return "".join(parts) + "</section>"


def render(data: RunData) -> str:
    """The whole page."""
    body = "".join(
        [
            _header(data),
            "<main>",
            _failures(data),
            _funnel(data),
            _scores(data),
            _age(data),
            _mixes(data),
            _prox(data),
            _dedup(data),
            _meco(data),
            _dropped(data),
            "</main>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>gristmill report: {escape(data.name)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
