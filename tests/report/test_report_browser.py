"""The run report of the default pipeline, opened in headless Chromium.

One real ``gristmill run pipelines/default.yaml -q --report`` (a few documents per task, plus
a JSON Lines file holding a document and an unreadable line that both contain ``<script>``)
feeds every test here: quiet means nothing on stderr, every reject file has one schema, and
the page draws every chart, logs no console error, makes no network request and shows the
``<script>`` as text. The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven
over the DevTools protocol; its screenshot is saved and named in the test output.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "<script>window.__pwned = 1</script>"
#: The charts the default pipeline's report must draw.
CHARTS = {
    "funnel",
    "score-language_score",
    "score-quality_score",
    "score-toxicity_score",
    "years",
    "mix-source",
    "mix-language",
    "mix-url_registered_domain",
    "meco",
}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("report")
    extra = directory / "extra.jsonl"
    good = {
        "id": "script-in-text",
        "text": f"A page that quotes {SCRIPT} in its text.",
        "source": "test",
        "url": "https://example.com/script",
    }
    extra.write_text(
        json.dumps(good) + "\n" + '{"id": "broken", "text": "' + SCRIPT + '"\n', encoding="utf-8"
    )
    output = directory / "out"
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gristmill",
            "run",
            "pipelines/default.yaml",
            "--input",
            "data_samples/*.parquet",
            "--input",
            str(extra),
            "--limit",
            "8",
            "--output",
            str(output),
            "--report",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "PYTHONWARNINGS")},
    )
    return {
        "done": done,
        "output": output,
        "seconds": time.perf_counter() - started,
        "report": output / "_run" / "report.html",
    }


def test_a_quiet_run_prints_nothing_on_stderr_and_the_report_path_on_stdout(default_run):
    done = default_run["done"]
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip() == str(default_run["report"])
    assert default_run["report"].is_file()


def test_every_reject_file_of_a_run_has_one_schema(default_run):
    """Every pass's rejects have the whole pipeline's columns: one schema for inputs alike (the
    samples), and the pipeline's own columns for any input (the JSON Lines file has fewer)."""
    files = sorted((default_run["output"] / "_rejects").rglob("*.parquet"))
    assert any("pass-01" in str(f) for f in files) and any("pass-04" in str(f) for f in files)
    schemas = {str(f.relative_to(default_run["output"])): pq.read_schema(f) for f in files}
    samples = {name: s for name, s in schemas.items() if not name.endswith("extra.parquet")}
    first = next(iter(samples.values()))
    for name, schema in samples.items():
        assert schema.equals(first, check_metadata=False), name
    output = pq.read_schema(default_run["output"] / "web-c4-0000.parquet")
    assert first.names == [*output.names, "drop_stage", "drop_reason"]
    extra = schemas["_rejects/pass-01/extra.parquet"]
    assert set(extra.names) == set(first.names) - {"crawl_date", "dump"}
    stages = set()
    for f in files:
        stages.update(pq.read_table(f, columns=["drop_stage"]).column(0).to_pylist())
    stats = json.loads((default_run["output"] / "_run" / "stats.json").read_text())
    assert stages - {"00_input"} <= set(stats["stages"])
    assert "00_input" in stages  # the unreadable line


def test_the_report_escapes_document_text(default_run):
    page = default_run["report"].read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for chart in CHARTS:
        assert f'data-chart="{chart}"' in page


# -- the browser --------------------------------------------------------------------------------
class DevTools:
    """The smallest DevTools-protocol client: commands in order, events kept as they come."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self._next = 0

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str, seconds: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(json.loads(self.socket.recv()))
        raise AssertionError(f"no {method} within {seconds}s")

    def close(self) -> None:
        self.socket.close()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    binary = _chromium()
    if binary is None:
        pytest.skip(
            "Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)"
        )
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            url = found.group(1) if found else None
        assert url, "chromium did not open its DevTools endpoint"
        client = DevTools(url)
        try:
            yield client
        finally:
            client.close()
    finally:
        process.kill()
        process.wait(timeout=30)


def test_the_report_draws_every_chart_offline_without_errors(
    default_run, browser: DevTools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    report_url = default_run["report"].resolve().as_uri()
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=1280,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.events.clear()
    browser.send("Page.navigate", session, url=report_url)
    browser.wait_for("Page.loadEventFired")

    def evaluate(expression: str) -> Any:
        result = browser.send(
            "Runtime.evaluate", session, expression=expression, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    charts = evaluate(
        """Array.from(document.querySelectorAll('figure.chart')).map(figure => {
             const drawn = figure.querySelector('svg, canvas');
             const box = drawn ? drawn.getBoundingClientRect() : {width: 0, height: 0};
             return {name: figure.dataset.chart, kind: drawn ? drawn.tagName : null,
                     width: box.width, height: box.height,
                     marks: drawn ? drawn.querySelectorAll('path, rect, line, use').length : 0};
           })"""
    )
    names = {chart["name"] for chart in charts}
    assert names >= CHARTS, f"missing charts: {CHARTS - names}"
    for chart in charts:
        assert chart["kind"] in ("svg", "CANVAS"), chart
        assert chart["width"] > 200 and chart["height"] > 50, chart
        assert chart["marks"] >= 10, chart

    evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    assert evaluate("document.scripts.length") == 0
    assert evaluate("typeof window.__pwned") == "undefined"
    assert SCRIPT in evaluate("document.body.innerText")

    height = evaluate("Math.ceil(document.documentElement.scrollHeight)")
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=1280,
        height=min(int(height), 16000),
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = browser.send("Page.captureScreenshot", session, format="png")
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    with capsys.disabled():
        print(f"\nreport screenshot: {screenshot}  (the page: {default_run['report']})")

    errors = [
        e
        for e in browser.events
        if (e.get("method") == "Runtime.exceptionThrown")
        or (
            e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "assert")
        )
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    assert errors == [], errors
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests and all(url == report_url for url in requests), requests
