"""MeCo metadata conditioning (Gao et al., 2025): a prefix per document and a training phase.

The stage never edits ``text``: it adds ``meco_value`` and ``meco_prefix`` (by default
``URL: <host>\\n\\n``), and a ``phase`` that puts each document in the conditioning set or in
the disjoint cooldown set (trained last, without prefix). The exporter (``gristmill export``)
tokenises prefix and text apart and masks the prefix out of the loss.

The cooldown set is chosen by a seeded hash of the id; which hash values go to the cooldown
is decided from the whole run (see ``meco_plan``) so that the cooldown holds the target share
of *tokens*: by the stage's corpus-wide phase (the default), or from a plan file made by
``gristmill meco plan``. With ``cooldown_split: hash`` the cut is the
fraction itself, one pass only: right on average, but a few long documents can move the
realised share by a percent or more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from gristmill.core import columns
from gristmill.core.phase import PhaseResult
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.errors import ConfigError
from gristmill.stages.taggers.domain import (
    URL_HOST,
    URL_REGISTERED_DOMAIN,
    URL_SUFFIX,
    hosts_of,
    tag_domains,
)
from gristmill.stages.taggers.meco_plan import (
    MecoPhase,
    MecoPlan,
    cut_for_fraction,
    phase_bins,
    plan_decision,
)

MECO_VALUE = "meco_value"
MECO_PREFIX = "meco_prefix"
PHASE = "phase"
CONDITIONING = "conditioning"
COOLDOWN = "cooldown"
TOPIC = "topic"
UNKNOWN = "unknown"

MetadataType = Literal[
    "url_host", "full_url", "registered_domain", "url_suffix", "hashed", "topk", "topic", "fixed"
]
_SCHEME = r"^\s*[A-Za-z][A-Za-z0-9+.\-]*://"


class MecoParams(StageParams):
    metadata_type: MetadataType = Field(
        "url_host",
        description="url_host (MeCo default) | full_url | registered_domain | url_suffix | "
        "hashed | topk | topic | fixed",
    )
    name: str | None = Field(
        None, description="metadata name in the prefix; default URL, or Topic for topics"
    )
    template: str = Field(
        "{name}: {value}\n\n", description="prefix template; {name} and {value} are replaced"
    )
    cooldown_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of tokens in the cooldown set (MeCo: 0.1)"
    )
    seed: int = Field(0, description="seed of the id hash that assigns the phase")
    cooldown_split: Literal["exact", "hash"] = Field(
        "exact",
        description="exact: token share measured over the whole run (a whole-run phase or "
        "a plan); hash: one pass, the share is right on average only",
    )
    plan: str | None = Field(
        None,
        description="MeCo plan JSON from `gristmill meco plan` (instead of the whole-run phase)",
    )
    token_column: str | None = Field(
        None,
        description="column of token counts to measure the share with (e.g. token_count "
        "from a tokens stage); default: tokenise the text with `tokenizer`",
    )
    tokenizer: str | None = Field(
        None, description="tokenizer.json for the share when there is no token column"
    )
    hash_salt: str = Field("gristmill-meco", description="key of the hash for metadata_type hashed")
    topk_fraction: float = Field(
        0.002,
        gt=0.0,
        le=1.0,
        description="topk: share of most frequent hosts kept (counts from the whole run or plan)",
    )
    fixed_value: str = Field("www.example.com", description="value for metadata_type fixed")
    on_missing: Literal["no_prefix", "unknown"] = Field(
        "no_prefix", description="no metadata: train the document plain, or use 'unknown'"
    )
    host_case: Literal["lower", "as_written"] = Field(
        "lower",
        description="lower: one prefix per host whatever its case (hosts are case-insensitive); "
        "as_written: the host's case as in the URL, as MeCo's --use_short_url",
    )

    @model_validator(mode="after")
    def _check(self) -> MecoParams:
        if "{value}" not in self.template:
            raise ValueError("template must contain {value}")
        return self

    @property
    def metadata_name(self) -> str:
        if self.name is not None:
            return self.name
        return "Topic" if self.metadata_type == "topic" else "URL"


def render_prefixes(values: pa.Array, name: str, template: str) -> pa.Array:
    """The prefix of every value, null where the value is null; no ``str.format`` so that
    braces in a value are kept as they are."""
    before, _, after = template.replace("{name}", name).partition("{value}")
    return pc.binary_join_element_wise(
        pa.scalar(before), values.cast(pa.string()), pa.scalar(after), ""
    )


def hashed_value(value: str, salt: str) -> str:
    """A stable random-looking 12-character id per value (MeCo's hashed-domain ablation)."""
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:12].lower()


@register_stage
class MecoConditioner(Stage):
    """MeCo: `URL: <host>\\n\\n`-style prefix column and a token-share cooldown phase split.

    Adds meco_value, meco_prefix (null for cooldown rows and missing metadata) and phase
    (conditioning | cooldown); text is left unchanged.
    """

    name = "meco"
    Params = MecoParams
    params: MecoParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        kind = self.params.metadata_type
        needed = [columns.ID]
        if kind == "topic":
            needed.append(TOPIC)
        elif kind != "fixed":
            needed.append(columns.URL)
        if self.corpus_phase() is not None and self.params.cooldown_split == "exact":
            needed.append(self.params.token_column or columns.TEXT)
        return tuple(needed)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (
            pa.field(MECO_VALUE, pa.string()),
            pa.field(MECO_PREFIX, pa.string()),
            pa.field(PHASE, pa.string()),
        )

    def spec(self) -> dict[str, Any]:
        """The plan's content decides the output, so its digest joins the run's fingerprint."""
        spec = super().spec()
        if self.params.plan is not None:
            path = Path(self.params.plan)
            if path.exists():
                spec["plan_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return spec

    # -- the whole-run plan (a corpus-wide phase, see meco_plan) ------------------------------
    def corpus_phase(self) -> MecoPhase | None:
        exact = self.params.cooldown_split == "exact" and self.params.cooldown_fraction > 0
        if self.params.plan is None and (exact or self.params.metadata_type == "topk"):
            return MecoPhase(self.params)
        return None

    def use_phase_result(self, result: PhaseResult) -> None:
        self._decided = dict(result.decision)

    def _decision(self) -> dict[str, Any] | None:
        """The run's plan: from the whole-run phase, or the plan file, or none."""
        decided: dict[str, Any] | None = getattr(self, "_decided", None)
        if decided is not None or self.params.plan is None:
            return decided
        plan = MecoPlan.load(self.params.plan)
        if (plan.seed, plan.cooldown_fraction) != (self.params.seed, self.params.cooldown_fraction):
            raise ConfigError(
                f"{self.params.plan}: the plan was made with seed {plan.seed} and "
                f"cooldown_fraction {plan.cooldown_fraction}, but the meco stage has seed "
                f"{self.params.seed} and cooldown_fraction {self.params.cooldown_fraction}"
            )
        return plan_decision(plan, self.params.topk_fraction)

    def setup(self) -> None:
        decision = self._decision()
        exact = decision is not None and self.params.cooldown_split == "exact"
        self._cut = (
            int(decision["cooldown_bins"])  # type: ignore[index]
            if exact
            else cut_for_fraction(self.params.cooldown_fraction)
        )
        self._top_hosts: set[str] = set()
        if self.params.metadata_type == "topk":
            if decision is None:
                raise ConfigError(
                    "meco: metadata_type topk needs the host counts of the whole run "
                    "(run it in a pipeline, or give plan:)"
                )
            self._top_hosts = set(decision["top_hosts"])

    # -- metadata values -------------------------------------------------------------------
    def _hosts(self, batch: pa.Table) -> pa.Array:
        """Lowercased hosts: what decides grouping (top-k counts, null checks)."""
        if URL_HOST in batch.column_names:
            return batch.column(URL_HOST).combine_chunks().cast(pa.string())
        return hosts_of(batch.column(columns.URL))

    def _written_hosts(self, batch: pa.Table, hosts: pa.Array) -> pa.Array:
        """The hosts a prefix shows: lowercased by default, or as the URL writes them.

        Lowercase is the default because a host names one source whatever its case
        (``EN.Wikipedia.org`` is ``en.wikipedia.org``), and MeCo's gain comes from grouping
        documents by source; MeCo's own code keeps the case, which ``host_case: as_written``
        reproduces.
        """
        if self.params.host_case == "lower":
            return hosts
        return hosts_of(batch.column(columns.URL), lowercase=False)

    def values(self, batch: pa.Table) -> pa.Array:
        """The metadata value of every row (null where there is none)."""
        kind = self.params.metadata_type
        if kind == "fixed":
            return pa.repeat(pa.scalar(self.params.fixed_value), batch.num_rows)
        if kind == "topic":
            return batch.column(TOPIC).combine_chunks().cast(pa.string())
        if kind in ("registered_domain", "url_suffix"):
            column = URL_REGISTERED_DOMAIN if kind == "registered_domain" else URL_SUFFIX
            if column in batch.column_names:
                return batch.column(column).combine_chunks().cast(pa.string())
            return tag_domains(batch.column(columns.URL)).column(column).combine_chunks()
        hosts = self._hosts(batch)
        written = self._written_hosts(batch, hosts)
        if kind == "url_host":
            return written
        if kind == "full_url":
            urls = pl.Series(batch.column(columns.URL).combine_chunks()).cast(pl.String)
            stripped = urls.str.replace(_SCHEME, "").str.strip_chars()
            full = pl.select(
                pl.when(pl.Series(hosts).is_not_null()).then(stripped).otherwise(None)
            ).to_series()
            return full.to_arrow().cast(pa.string())
        if kind == "topk":
            top = pa.array(sorted(self._top_hosts), pa.string())
            kept = pc.if_else(pc.is_in(hosts, value_set=top), written, pa.scalar(UNKNOWN))
            return pc.if_else(pc.is_null(hosts), pa.scalar(None, pa.string()), kept)
        series = pl.Series("host", written)
        # hashed: one HMAC per unique host, mapped back with a join
        unique = [h for h in series.unique().to_list() if h is not None]
        lookup = pl.DataFrame(
            {
                "host": pl.Series(unique, dtype=pl.String),
                "value": pl.Series(
                    [hashed_value(h, self.params.hash_salt) for h in unique], dtype=pl.String
                ),
            }
        )
        joined = pl.DataFrame({"host": series}).join(
            lookup, on="host", how="left", maintain_order="left"
        )
        return joined["value"].to_arrow().cast(pa.string())

    # -- the stage ---------------------------------------------------------------------------
    def phases(self, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        cooldown = phase_bins(ids, self.params.seed) < self._cut
        return pa.array(np.where(cooldown, COOLDOWN, CONDITIONING), pa.string())

    def process(self, batch: pa.Table) -> pa.Table:
        if not hasattr(self, "_cut"):
            self.setup()
        values = self.values(batch)
        # an empty string is no metadata either: "URL: \n\n" would teach the model nothing
        values = pc.if_else(
            pc.equal(pc.utf8_length(values), 0), pa.scalar(None, pa.string()), values
        )
        if self.params.on_missing == "unknown":
            values = pc.fill_null(values, UNKNOWN)
        phase = self.phases(batch.column(columns.ID))
        prefixes = render_prefixes(values, self.params.metadata_name, self.params.template)
        prefixes = pc.if_else(pc.equal(phase, COOLDOWN), pa.scalar(None, pa.string()), prefixes)
        self.stats.count_values("phase", phase.to_pylist())
        self.stats.count("without_prefix", prefixes.null_count)
        for name, column in ((MECO_VALUE, values), (MECO_PREFIX, prefixes), (PHASE, phase)):
            batch = columns.with_column(batch, name, column)
        return batch
