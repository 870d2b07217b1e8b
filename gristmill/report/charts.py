"""The report's charts: matplotlib figures rendered to inline SVG.

matplotlib draws every chart here, in this process, into static SVG markup that the page
embeds as it is: no JavaScript, no fonts or scripts fetched, nothing to execute when the page
opens, and the same bytes for the same run (dates and random ids are left out). Text stays
text (``svg.fonttype: none``), so the page is searchable and small. The ``Figure`` API is used
directly (no pyplot): no GUI backend, no global state shared between charts.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gristmill.report.model import FunnelRow, Marker, Mix, ScoreData, YearData

KEPT = "#3b6ea8"
DROPPED = ["#d1495b", "#edae49", "#66a182", "#8d6a9f", "#00798c", "#9e9e9e"]
BEFORE = "#b0b7c3"
AFTER = "#3b6ea8"
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "legend.fontsize": 8,
    "legend.frameon": False,
}
#: Histograms pool the dropping stages beyond this many into "other stages".
STAGES_SHOWN = 5


@contextmanager
def _style(name: str) -> Iterator[None]:
    settings: Any = {**STYLE, "svg.hashsalt": name}  # rc_context types its keys as literals
    with matplotlib.rc_context(settings):
        yield


def _svg(figure: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element whose ids are unique to this chart on the page."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{prefix}" ', 1)


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _markers(axes: Axes, markers: Sequence[Marker]) -> None:
    for marker in markers:
        dashed = marker.kind == "cut"
        axes.axvline(
            marker.value,
            color="#222222",
            linestyle="--" if dashed else "-",
            linewidth=1.2,
            label=marker.label,
        )


def funnel(rows: Sequence[FunnelRow], name: str = "funnel") -> str:
    """Documents (and tokens, when counted) kept after each stage, as horizontal bars."""
    with_tokens = all(row.tokens_out is not None for row in rows) and bool(rows)
    panels = 2 if with_tokens else 1
    with _style(name):
        figure = _figure(9.0, 0.5 + 0.26 * (len(rows) + 1))
        axes = figure.subplots(1, panels, sharey=True, squeeze=False)[0]
        labels = ["input", *(row.label for row in rows)]
        positions = np.arange(len(labels))
        series = [("documents", [rows[0].docs_in, *(r.docs_out for r in rows)])] if rows else []
        if with_tokens:
            first = int(rows[0].tokens_in or rows[0].tokens_out or 0)
            series.append(("tokens", [first, *(int(r.tokens_out or 0) for r in rows)]))
        for panel, (title, values) in zip(axes, series, strict=False):
            panel.barh(positions, values, color=KEPT, height=0.7)
            panel.set_title(f"{title} kept after each stage", loc="left")
            top = max(values) or 1
            for y, value in zip(positions, values, strict=True):
                share = f"{value / top:.0%}"
                panel.text(value, y, f" {value:,} ({share})", va="center", fontsize=7)
            panel.set_xlim(0, top * 1.45)
            panel.xaxis.set_visible(False)
            panel.spines["bottom"].set_visible(False)
        axes[0].set_yticks(positions, labels)
        axes[0].invert_yaxis()
        return _svg(figure, name)


def _range(values: np.ndarray) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def histogram(score: ScoreData, name: str) -> str:
    """A score's distribution: kept documents, and those each later stage dropped, stacked;
    the pipeline's thresholds (solid) and whole-run cuts (dashed) drawn on it. When most
    documents sit in a sliver of the range (toxicity near 0), a second panel zooms on the
    1st to 95th percentile."""
    ranked = sorted(score.dropped.items(), key=lambda item: -item[1].size)
    groups: list[tuple[str, np.ndarray]] = [("kept", score.kept)]
    groups += [(f"dropped by {label}", values) for label, values in ranked[:STAGES_SHOWN]]
    if len(ranked) > STAGES_SHOWN:
        rest = np.concatenate([values for _label, values in ranked[STAGES_SHOWN:]])
        groups.append(("dropped by other stages", rest))
    everything = np.concatenate([values for _label, values in groups])
    ranges = [_range(everything)]
    inner = np.percentile(everything, [1, 95])
    if inner[1] - inner[0] < 0.15 * (ranges[0][1] - ranges[0][0]) and inner[1] > inner[0]:
        margin = 0.05 * (inner[1] - inner[0])
        ranges.append((float(inner[0] - margin), float(inner[1] + margin)))
    colours = [KEPT, *DROPPED][: len(groups)]
    with _style(name):
        figure = _figure(9.0, 2.8)
        panels = figure.subplots(1, len(ranges), squeeze=False)[0]
        for number, (axes, (low, high)) in enumerate(zip(panels, ranges, strict=True)):
            inside = [values[(values >= low) & (values <= high)] for _label, values in groups]
            axes.hist(
                inside,
                bins=np.linspace(low, high, 41),
                stacked=True,
                color=colours,
                label=[f"{label} ({values.size:,})" for label, values in groups],
            )
            _markers(axes, [m for m in score.markers if low <= m.value <= high])
            zoomed = " (zoom: 1st to 95th percentile)" if number else ""
            axes.set_title(f"{score.column}{zoomed}", loc="left")
            axes.set_xlabel(score.column)
            if number == 0:
                axes.set_ylabel("documents")
        handles, labels = panels[0].get_legend_handles_labels()
        for axes in panels[1:]:
            more, names = axes.get_legend_handles_labels()
            for handle, label in zip(more, names, strict=True):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        panels[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _svg(figure, name)


def _year_axis(counts: Counter[str]) -> list[str]:
    """Every year from the first to the last seen (gaps shown as such), then the rest."""
    numeric = sorted(int(key) for key in counts if key.lstrip("-").isdigit())
    years = [str(y) for y in range(numeric[0], numeric[-1] + 1)] if numeric else []
    return years + sorted(key for key in counts if not key.lstrip("-").isdigit())


def years(data: YearData, name: str = "years") -> str:
    """Documents per crawl year, entering the age filter and kept by it; its date limits drawn
    where they fall inside the years shown."""
    keys = _year_axis(data.before + (data.after or Counter()))
    positions = np.arange(len(keys))
    numeric = [int(k) for k in keys if k.lstrip("-").isdigit()]
    with _style(name):
        figure = _figure(9.0, 2.6)
        axes = figure.subplots()
        paired = data.after is not None
        width = 0.4 if paired else 0.8
        axes.bar(
            positions - (width / 2 if paired else 0),
            [data.before.get(k, 0) for k in keys],
            width=width,
            color=BEFORE,
            label="before the age filter",
        )
        if data.after is not None:
            axes.bar(
                positions + width / 2,
                [data.after.get(k, 0) for k in keys],
                width=width,
                color=AFTER,
                label="kept by it",
            )
        for marker in data.markers:
            if numeric and numeric[0] <= marker.value <= numeric[-1] + 1:
                x = marker.value - numeric[0] - 0.5
                axes.axvline(x, color="#222222", linewidth=1.2, label=marker.label)
        axes.set_xticks(positions, keys, rotation=45 if len(keys) > 12 else 0)
        axes.set_ylabel("documents")
        axes.set_title("crawl year", loc="left")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _svg(figure, name)


def _top(mix: Mix, top: int) -> list[str]:
    keys = [key for key, _count in mix.before.most_common(top)]
    for key, _count in mix.after.most_common(top):
        if key not in keys and len(keys) < top + 3:
            keys.append(key)
    return keys


def mix(data: Mix, name: str, top: int = 12) -> str:
    """Shares of the largest categories, among every document read and among those kept."""
    keys = _top(data, top)
    before_total = sum(data.before.values()) or 1
    after_total = sum(data.after.values()) or 1
    other_before = 1 - sum(data.before.get(k, 0) for k in keys) / before_total
    other_after = 1 - sum(data.after.get(k, 0) for k in keys) / after_total
    labels = [*keys, "other"] if other_before > 1e-9 or other_after > 1e-9 else keys
    before = [data.before.get(k, 0) / before_total for k in keys]
    after = [data.after.get(k, 0) / after_total for k in keys]
    if len(labels) > len(keys):
        before.append(max(other_before, 0.0))
        after.append(max(other_after, 0.0))
    positions = np.arange(len(labels))
    with _style(name):
        figure = _figure(9.0, 0.6 + 0.3 * len(labels))
        axes = figure.subplots()
        axes.barh(positions - 0.2, before, height=0.4, color=BEFORE, label="read")
        axes.barh(positions + 0.2, after, height=0.4, color=AFTER, label="kept")
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        axes.set_title(f"{data.title}: share of documents", loc="left")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _svg(figure, name)


def cluster_sizes(sizes: dict[int, int], title: str, name: str) -> str:
    """How many duplicate clusters of each size (log scale: most clusters are pairs)."""
    keys = sorted(sizes)
    with _style(name):
        figure = _figure(9.0, 2.4)
        axes = figure.subplots()
        axes.bar([str(k) for k in keys], [sizes[k] for k in keys], color=KEPT)
        axes.set_yscale("log")
        axes.set_xlabel("documents in the cluster")
        axes.set_ylabel("clusters")
        axes.set_title(title, loc="left")
        return _svg(figure, name)


def phases(docs: Counter[str], tokens: Counter[str], name: str = "meco") -> str:
    """MeCo's split: documents and tokens in each training phase."""
    keys = sorted(set(docs) | set(tokens))
    series = [("documents", docs)] + ([("tokens", tokens)] if sum(tokens.values()) else [])
    with _style(name):
        figure = _figure(9.0, 0.8 + 0.5 * len(series))
        axes = figure.subplots()
        for row, (_label, counts) in enumerate(series):
            total = sum(counts.values()) or 1
            left = 0.0
            for index, key in enumerate(keys):
                share = counts.get(key, 0) / total
                axes.barh(row, share, left=left, color=[AFTER, DROPPED[1], BEFORE][index % 3])
                if share > 0.04:
                    axes.text(
                        left + share / 2,
                        row,
                        f"{key} {counts.get(key, 0):,} ({share:.1%})",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if index == 0 else "black",
                    )
                left += share
        axes.set_yticks(range(len(series)), [label for label, _counts in series])
        axes.invert_yaxis()
        axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        axes.set_xlim(0, 1)
        axes.set_title("MeCo phases", loc="left")
        return _svg(figure, name)
