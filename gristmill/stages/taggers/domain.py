"""URL → host, registered domain and public suffix.

The host is the metadata MeCo prepends to documents (Gao et al., 2025, "Metadata Conditioning
Accelerates Language Model Pre-training"); a missing or invalid URL gives nulls, never an error.

Hosts repeat a lot in a crawl (one site, many pages), so the host is cut out of every URL with
one vectorised regex, and tldextract — a per-string Python call — runs once per *unique* host.
tldextract is built from its bundled public-suffix snapshot with fetching switched off, so a
run never touches the network and two machines always agree on the suffix list.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl
import pyarrow as pa
import tldextract
from pydantic import Field

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams

URL_HOST = "url_host"
URL_REGISTERED_DOMAIN = "url_registered_domain"
URL_SUFFIX = "url_suffix"

# MeCo's short URL: drop the scheme, keep what precedes the first "/". We also end the host at
# "?" or "#" (they cannot belong to an authority), drop user info (credentials must not end up
# in a training prefix) and the port (a server detail, not part of the site's name: MeCo's
# prefixes are "URL: en.wikipedia.org"), and refuse whitespace, so junk gives null rather than
# a fake host.
_SCHEME = r"^\s*[A-Za-z][A-Za-z0-9+.\-]*://"
_AUTHORITY = r"^([^/?#]*)"
_USERINFO = r"^.*@"
_PORT = r":[0-9]*$"
_VALID_HOST = r"^[^\s/?#@:][^\s/?#@]*$"


@lru_cache(maxsize=1)
def offline_extractor() -> tldextract.TLDExtract:
    """tldextract on its bundled snapshot: no suffix-list URLs to fetch, no cache to write."""
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def hosts_of(urls: pa.Array | pa.ChunkedArray, *, lowercase: bool = True) -> pa.Array:
    """MeCo's host of every URL (``www.`` kept, the port dropped); null where there is none.

    Only URLs with a scheme count: a bare string has no reliable host boundary.
    """
    series = pl.Series("url", urls).cast(pl.String)
    authority = series.str.replace(_SCHEME, "").str.extract(_AUTHORITY, 1)
    authority = authority.str.replace(_USERINFO, "").str.replace(_PORT, "")
    if lowercase:
        authority = authority.str.to_lowercase()
    valid = authority.str.contains(_VALID_HOST) & series.str.contains("://")
    hosts = pl.select(pl.when(valid).then(authority).otherwise(None).alias("host")).to_series()
    return hosts.to_arrow().cast(pa.string())


def bare_host(authority: str) -> str:
    """The host alone, without its port (IPv6 brackets kept whole)."""
    host = authority
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


def split_domain(authority: str) -> tuple[str | None, str | None]:
    """(registered domain, public suffix) of one host; None where the PSL gives none (IPs)."""
    parts = offline_extractor()(bare_host(authority))
    registered = parts.top_domain_under_public_suffix or None
    return registered, parts.suffix or None


def tag_domains(urls: pa.Array | pa.ChunkedArray, *, lowercase: bool = True) -> pa.Table:
    """The three domain columns for a column of URLs, tldextract called once per unique host."""
    hosts = hosts_of(urls, lowercase=lowercase)
    unique = [h for h in pl.Series(hosts).unique().to_list() if h is not None]
    split = [split_domain(h) for h in unique]
    lookup = pl.DataFrame(
        {
            "host": pl.Series(unique, dtype=pl.String),
            URL_REGISTERED_DOMAIN: pl.Series([s[0] for s in split], dtype=pl.String),
            URL_SUFFIX: pl.Series([s[1] for s in split], dtype=pl.String),
        }
    )
    frame = pl.DataFrame({"host": pl.Series(hosts)}).join(
        lookup, on="host", how="left", maintain_order="left"
    )
    return pa.table(
        {
            URL_HOST: hosts,
            URL_REGISTERED_DOMAIN: frame[URL_REGISTERED_DOMAIN].to_arrow().cast(pa.string()),
            URL_SUFFIX: frame[URL_SUFFIX].to_arrow().cast(pa.string()),
        }
    )


class DomainParams(StageParams):
    url_column: str = Field(columns.URL, description="column holding the full URL")
    lowercase: bool = Field(
        True, description="lowercase the host (hosts are case-insensitive; MeCo keeps case)"
    )


@register_stage
class DomainTagger(Stage):
    """URL host (MeCo's: www. kept, port dropped), registered domain and public suffix.

    A missing or malformed URL gives nulls in all three columns, never a failed task.
    """

    name = "domain"
    Params = DomainParams
    params: DomainParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.params.url_column,)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return tuple(
            pa.field(n, pa.string()) for n in (URL_HOST, URL_REGISTERED_DOMAIN, URL_SUFFIX)
        )

    def setup(self) -> None:
        # One URL through the whole path loads the suffix list and compiles the patterns
        # (~0.1 s), so that the first batch is not charged for them.
        tag_domains(pa.array(["https://www.example.co.uk/"]), lowercase=self.params.lowercase)

    def process(self, batch: pa.Table) -> pa.Table:
        urls = batch.column(self.params.url_column)
        if not (pa.types.is_string(urls.type) or pa.types.is_large_string(urls.type)):
            urls = pa.nulls(batch.num_rows, pa.string()) if pa.types.is_null(urls.type) else urls
        tagged = tag_domains(urls, lowercase=self.params.lowercase)
        self.stats.count("urls_without_host", tagged.column(URL_HOST).null_count)
        for name in tagged.column_names:
            batch = _set_column(batch, name, tagged.column(name))
        return batch


def _set_column(batch: pa.Table, name: str, values: pa.ChunkedArray | pa.Array) -> pa.Table:
    """Add a column, or replace it when an earlier run of the stage left one behind."""
    if name in batch.column_names:
        return batch.set_column(batch.column_names.index(name), name, values)
    return batch.append_column(name, values)
