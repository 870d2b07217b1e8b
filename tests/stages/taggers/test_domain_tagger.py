"""URL host / registered domain / suffix on the real sample URLs, offline, and on junk."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from support.data import sample_table

from gristmill import Pipeline
from gristmill.stages.taggers.domain import DomainTagger, offline_extractor, tag_domains


def test_sample_urls_get_hosts_and_domains() -> None:
    rows = sample_table()
    stage = DomainTagger()
    stage.setup()
    out, _ = Pipeline([stage]).apply(rows)
    with_url = out.filter(
        pc.and_(pc.is_valid(out.column("url")), pc.not_equal(out.column("url"), ""))
    )
    assert with_url.num_rows > 1000
    hosts = with_url.column("url_host").to_pylist()
    assert sum(h is not None for h in hosts) / len(hosts) > 0.99
    for row in with_url.to_pylist()[:200]:
        if row["url_host"] is None:
            continue
        assert row["url"].lower().split("://", 1)[1].startswith(row["url_host"])
        if row["url_registered_domain"]:
            assert row["url_host"].split(":")[0].endswith(row["url_registered_domain"])
            assert row["url_registered_domain"].endswith("." + row["url_suffix"])
    assert out.column("text").equals(rows.column("text"))


def test_golden_hosts() -> None:
    urls = pa.array(
        [
            "https://en.wikipedia.org/wiki/Bill_Gates",
            "http://www.theguardian.com",
            "https://user:secret@News.BBC.co.uk:8080/a?b#c",
            "http://192.168.0.1:80/admin",
            "https://example.com:?q=1",
            "http://[2001:db8::1]:8443/x",
        ]
    )
    got = tag_domains(urls).to_pylist()
    assert [r["url_host"] for r in got] == [
        "en.wikipedia.org",
        "www.theguardian.com",
        "news.bbc.co.uk",  # the port is a server detail, not the site's name
        "192.168.0.1",
        "example.com",
        "[2001:db8::1]",
    ]
    assert [r["url_registered_domain"] for r in got] == [
        "wikipedia.org",
        "theguardian.com",
        "bbc.co.uk",
        None,
        "example.com",
        None,
    ]
    assert [r["url_suffix"] for r in got] == ["org", "com", "co.uk", None, "com", None]


def test_missing_and_malformed_urls_give_nulls() -> None:
    urls = pa.array(
        [
            None,
            "",
            "   ",
            "no scheme here",
            "http://",
            "https://bad host/x",
            "x" * 10_000_000,
            "\x00\xff garbage",
        ]
    )
    got = tag_domains(urls)
    for name in got.column_names:
        assert got.column(name).null_count == len(urls)
    null_column = pa.table({"id": ["a"], "text": ["t"], "url": pa.nulls(1, pa.string())})
    assert DomainTagger().process(null_column).column("url_host").null_count == 1


def test_tldextract_never_fetches() -> None:
    extractor = offline_extractor()
    assert tuple(extractor.suffix_list_urls) == ()
    assert extractor("forums.news.cnn.com").suffix == "com"
