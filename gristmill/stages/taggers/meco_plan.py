"""The MeCo run plan: what the per-document ``meco`` stage needs to know about the whole run.

Two decisions need the whole run, not one batch:

* which documents form the cooldown set, so that it holds a *token* share of the run (not a
  document share: one long book outweighs a thousand tweets);
* which hosts are the most frequent ones, for the ``topk`` metadata ablation.

Each document gets a seeded 64-bit hash of its id; its top ``HASH_BITS`` bits name one of
65,536 bins, and a summary sums the document tokens per bin (and counts hosts). A document is
in the cooldown set when its bin is below a cut ``k``, the bin edge whose cumulative token
share is nearest the target. The decision is then a function of the id alone, so it does not
depend on batches, shards or worker counts, and summaries merge by addition. On a small run
most documents have a bin of their own, so the share is as exact as whole documents allow; on
a large run the error is about one bin's tokens, 1/65,536 of the run.

The summary is computed either by the stage's corpus-wide phase (``MecoPhase``, run by the run
driver before the stage's pass) or ahead of time by ``gristmill meco plan``, which saves it as
a plan file that several runs can share.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from gristmill.core import columns
from gristmill.core.phase import SummaryPhase
from gristmill.errors import ConfigError
from gristmill.stages.filters.id_hash import id_hashes, salt_for
from gristmill.stages.taggers.domain import URL_HOST, hosts_of
from gristmill.stages.taggers.tokens import TOKEN_COUNT, count_tokens, load_tokenizer

HASH_BITS = 16
BINS = 1 << HASH_BITS
PLAN_VERSION = 1


def phase_bins(ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """The hash bin of every id (vectorised, stable across processes and versions)."""
    hashes = id_hashes(ids, salt_for("meco.phase", seed))
    return (hashes >> np.uint64(64 - HASH_BITS)).astype(np.int64)


def cut_for_fraction(fraction: float) -> int:
    """The cut without run statistics: a hash share equal to the fraction, so the *expected*
    token share is the target (the hash ignores length) but the realised one may be off."""
    return round(fraction * BINS)


def document_tokens(batch: pa.Table, token_column: str | None, tokenizer: str | None) -> np.ndarray:
    """Tokens per document: the given column, else the text through the tokenizer."""
    if token_column is not None:
        tokens = batch.column(token_column)
    elif TOKEN_COUNT in batch.column_names:
        tokens = batch.column(TOKEN_COUNT)
    else:
        tokens = count_tokens(load_tokenizer(tokenizer), batch.column(columns.TEXT))
    values = tokens.to_numpy(zero_copy_only=False).astype(np.float64)
    return np.nan_to_num(values).astype(np.int64)


def summarise(
    batch: pa.Table,
    *,
    seed: int,
    token_column: str | None = None,
    tokenizer: str | None = None,
    count_hosts: bool = True,
    with_tokens: bool = True,
) -> dict[str, Any]:
    """A JSON-able, mergeable summary of one batch: tokens and docs per bin, hosts.

    ``with_tokens=False`` skips the tokenizer when only the hosts are wanted (topk ablation
    with a one-pass hash split).
    """
    summary: dict[str, Any] = {"seed": seed, "bins": {}, "hosts": {}}
    if batch.num_rows == 0:
        return summary
    bins = phase_bins(batch.column(columns.ID), seed)
    if with_tokens:
        tokens = document_tokens(batch, token_column, tokenizer)
    else:
        tokens = np.zeros(batch.num_rows, dtype=np.int64)
    frame = (
        pl.DataFrame({"bin": bins, "tokens": tokens})
        .group_by("bin")
        .agg(pl.col("tokens").sum(), pl.len().alias("docs"))
    )
    summary["bins"] = {
        str(b): [int(t), int(d)]
        for b, t, d in zip(frame["bin"], frame["tokens"], frame["docs"], strict=True)
    }
    if count_hosts:
        if URL_HOST in batch.column_names:
            hosts = batch.column(URL_HOST)
        elif columns.URL in batch.column_names:
            hosts = hosts_of(batch.column(columns.URL))
        else:
            return summary
        counted = pl.Series("host", hosts).drop_nulls().value_counts()
        summary["hosts"] = dict(
            zip(counted["host"].to_list(), counted["count"].to_list(), strict=True)
        )
    return summary


def merge_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Add summaries up (order-independent)."""
    bins: dict[str, list[int]] = {}
    hosts: Counter[str] = Counter()
    seed = None
    for summary in summaries:
        if seed is not None and summary["seed"] != seed:
            raise ConfigError(f"MeCo summaries with different seeds ({seed}, {summary['seed']})")
        seed = summary["seed"]
        for key, (tokens, docs) in summary["bins"].items():
            total = bins.setdefault(key, [0, 0])
            total[0] += tokens
            total[1] += docs
        hosts.update(summary["hosts"])
    return {
        "seed": 0 if seed is None else seed,
        "bins": dict(sorted(bins.items(), key=lambda item: int(item[0]))),
        "hosts": dict(sorted(hosts.items())),
    }


@dataclass
class MecoPlan:
    """The decision taken from a run's summary; saved as JSON by ``gristmill meco plan``."""

    seed: int
    cooldown_fraction: float
    cooldown_bins: int
    tokens_total: int
    tokens_cooldown: int
    docs_total: int
    docs_cooldown: int
    host_counts: dict[str, int] = field(default_factory=dict)
    version: int = PLAN_VERSION

    @classmethod
    def from_summary(cls, summary: dict[str, Any], cooldown_fraction: float) -> MecoPlan:
        tokens = np.zeros(BINS, dtype=np.int64)
        docs = np.zeros(BINS, dtype=np.int64)
        for key, (bin_tokens, bin_docs) in summary["bins"].items():
            tokens[int(key)] = bin_tokens
            docs[int(key)] = bin_docs
        cumulative = np.concatenate([[0], np.cumsum(tokens)])
        total = int(cumulative[-1])
        if total:
            cut = int(np.argmin(np.abs(cumulative / total - cooldown_fraction)))
        else:
            cut = cut_for_fraction(cooldown_fraction)
        return cls(
            seed=int(summary["seed"]),
            cooldown_fraction=cooldown_fraction,
            cooldown_bins=cut,
            tokens_total=total,
            tokens_cooldown=int(cumulative[cut]),
            docs_total=int(docs.sum()),
            docs_cooldown=int(docs[:cut].sum()),
            host_counts=dict(summary["hosts"]),
        )

    @property
    def cooldown_share(self) -> float:
        return self.tokens_cooldown / self.tokens_total if self.tokens_total else 0.0

    def top_hosts(self, fraction: float) -> set[str]:
        """The most frequent ``fraction`` of hosts (at least one), ties broken by name."""
        ranked = sorted(self.host_counts.items(), key=lambda item: (-item[1], item[0]))
        keep = max(1, round(fraction * len(ranked))) if ranked else 0
        return {host for host, _ in ranked[:keep]}

    def describe(self) -> dict[str, Any]:
        """The decision without the host table (for run records and logs)."""
        data = asdict(self)
        data.pop("host_counts")
        data["hosts"] = len(self.host_counts)
        data["cooldown_share"] = round(self.cooldown_share, 6)
        return data

    def save(self, path: str | Path) -> None:
        data = asdict(self)
        data["cooldown_share"] = round(self.cooldown_share, 6)
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> MecoPlan:
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path}: cannot read the MeCo plan ({error})") from None
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
            raise ConfigError(f"{path}: not a MeCo plan of version {PLAN_VERSION}")
        data.pop("cooldown_share", None)
        try:
            return cls(**data)
        except TypeError as error:
            raise ConfigError(f"{path}: not a MeCo plan ({error})") from None


def plan_from_tables(
    tables: Iterable[pa.Table],
    *,
    seed: int = 0,
    cooldown_fraction: float = 0.1,
    tokenizer: str | None = None,
    token_column: str | None = None,
) -> MecoPlan:
    summaries = [
        summarise(t, seed=seed, token_column=token_column, tokenizer=tokenizer) for t in tables
    ]
    return MecoPlan.from_summary(merge_summaries(summaries), cooldown_fraction)


def plan_decision(plan: MecoPlan, topk_fraction: float) -> dict[str, Any]:
    """What the stage needs of a plan: the cut, and the top hosts for the topk ablation."""
    return {**plan.describe(), "top_hosts": sorted(plan.top_hosts(topk_fraction))}


class MecoPhase(SummaryPhase):
    """The whole run's tokens per id-hash bin (and host counts): the plan, as a decision."""

    def __init__(self, params: Any) -> None:
        self.params = params
        needed = [columns.ID]
        if params.metadata_type == "topk":
            needed += [columns.URL, URL_HOST]
        if params.cooldown_split == "exact":
            # a token column when there is one (the text is tokenised only without it)
            needed += [params.token_column] if params.token_column else [TOKEN_COUNT, columns.TEXT]
        self.columns = tuple(needed)

    def summarise(self, batch: pa.Table) -> dict[str, Any]:
        return summarise(
            batch,
            seed=self.params.seed,
            token_column=self.params.token_column,
            tokenizer=self.params.tokenizer,
            count_hosts=self.params.metadata_type == "topk",
            with_tokens=self.params.cooldown_split == "exact",
        )

    def merge(self, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        return merge_summaries(summaries)

    def decide(self, summary: dict[str, Any]) -> dict[str, Any]:
        plan = MecoPlan.from_summary(summary, self.params.cooldown_fraction)
        text = (
            f"cooldown: {plan.docs_cooldown:,} of {plan.docs_total:,} documents, "
            f"{plan.cooldown_share:.1%} of the tokens (target {plan.cooldown_fraction:.0%})"
        )
        return {**plan_decision(plan, self.params.topk_fraction), "summary": text}
