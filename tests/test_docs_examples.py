"""The examples of README.md and docs/ work as written, in a fresh directory beside the sample
data: each Python block runs as a script, the YAML pipeline validates and runs, the Skill-It
files and shell driver of docs/skillit.md run for two rounds, the rule programmer of
docs/prox.md runs (its vLLM entry, which needs a GPU and the released weights, is built and
validated), and the README's shell commands are the ones CI runs (``-m slow``: the quick
start's ``gristmill run pipelines/default.yaml`` itself). Not run: docs/prox.md's download of
the released weights (network) and its ``gristmill run pipelines/prox_vllm.yaml`` (a GPU)."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table

REPO = Path(__file__).resolve().parents[1]


def blocks(document: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", document.read_text(encoding="utf-8"), re.S)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A user's directory: the sample data (and pipelines) where the examples expect them."""
    (tmp_path / "data_samples").symlink_to(REPO / "data_samples")
    (tmp_path / "pipelines").symlink_to(REPO / "pipelines")
    return tmp_path


def run_script(code: str, directory: Path) -> subprocess.CompletedProcess[str]:
    script = directory / "example.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_the_readme_python_examples_run_verbatim_as_scripts(workdir: Path):
    examples = blocks(REPO / "README.md", "python")
    assert len(examples) >= 2
    for code in examples:
        result = run_script(code, workdir)
        assert result.returncode == 0, result.stderr
    written = read_output(workdir / "output" / "example-python")
    assert 0 < written.num_rows < sample_table().num_rows  # Gopher quality dropped some
    assert "keep_language_filter" in written.column_names
    # The datatrove section: gristmill taggers inside datatrove's executor, as metadata.
    tagged = []
    for path in (workdir / "output" / "datatrove-tagged").glob("*.jsonl.gz"):
        with gzip.open(path, "rt") as handle:
            tagged += [json.loads(line) for line in handle]
    web = sum(pq.read_metadata(p).num_rows for p in (REPO / "data_samples").glob("web-*"))
    assert len(tagged) == web
    assert all({"url_host", "language", "language_score"} <= set(r["metadata"]) for r in tagged)


def test_the_readme_pipeline_file_validates_and_runs(workdir: Path):
    (yaml,) = [b for b in blocks(REPO / "README.md", "yaml") if "name: example" in b]
    path = workdir / "example.yaml"
    path.write_text(yaml, encoding="utf-8")
    for command in (["validate", str(path)], ["run", str(path), "--limit", "20", "-q"]):
        result = subprocess.run(
            [sys.executable, "-m", "gristmill", *command],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
    assert len(list((workdir / "output" / "example").glob("*.parquet"))) == 9


def test_the_corpus_wide_stage_of_docs_runs_md_counts_repeated_texts(workdir: Path):
    (stage,) = blocks(REPO / "docs" / "runs.md", "python")
    (workdir / "text_count_stage.py").write_text(stage, encoding="utf-8")
    main = (
        "from gristmill import Pipeline\n"
        "from gristmill.io import ParquetReader, ParquetWriter\n"
        "from text_count_stage import TextCount\n"
        'if __name__ == "__main__":\n'
        "    report = Pipeline([TextCount()], reader=ParquetReader('data_samples'),\n"
        "                      writer=ParquetWriter('output/counted')).run(workers=2)\n"
        "    assert report.ok, report.failures\n"
    )
    result = run_script(main, workdir)
    assert result.returncode == 0, result.stderr
    written = read_output(workdir / "output" / "counted")
    expected = pc.value_counts(sample_table().column("text")).to_pylist()
    counts = {row["values"]: row["counts"] for row in expected}
    texts = written.column("text").to_pylist()
    assert written.column("text_count").to_pylist() == [counts[t] for t in texts]
    assert max(counts.values()) > 1
    assert pq.read_metadata(next((workdir / "output" / "counted").glob("*.parquet"))).num_rows


def _gristmill_on_path() -> dict[str, str]:
    """The environment of a shell in this virtualenv: ``gristmill`` is on its PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_the_skillit_files_and_driver_of_docs_skillit_md_run_as_written(tmp_path: Path):
    """runs.yaml → graph.json (the command of the table), the config, the trainer's loss file
    for round 1 and the shell driver, for two rounds, all verbatim from docs/skillit.md."""
    doc = REPO / "docs" / "skillit.md"
    (runs,) = [b for b in blocks(doc, "yaml") if b.startswith("# runs.yaml")]
    (config,) = [b for b in blocks(doc, "yaml") if b.startswith("train_skills:")]
    # Two loss files are shown: one evaluation per round (used here) and several per round.
    (losses,) = [b for b in blocks(doc, "json") if '"model_ckpt"' in b]
    (several,) = [b for b in blocks(doc, "json") if '"evaluations"' in b]
    assert len(json.loads(several)["evaluations"]) == 2
    (driver,) = blocks(doc, "bash")
    (tmp_path / "runs.yaml").write_text(runs, encoding="utf-8")
    (tmp_path / "mix.yaml").write_text(config, encoding="utf-8")
    # The training data: real sample text (a line of each document), a skill per row.
    table = sample_table()
    skill_of = {"arxiv": "arxiv", "gutenberg": "books", "c4": "c4", "stackexchange": "github"}
    rows = [
        {"text": text.split("\n", 1)[0][:120], "skill": skill_of[source]}
        for text, source in zip(
            table.column("text").to_pylist(), table.column("source").to_pylist(), strict=True
        )
        if source in skill_of and text
    ]
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data" / "part-0.parquet")
    # The trainer has evaluated the base model at the start of round 1.
    round_1 = tmp_path / "runs" / "skillit" / "round_0001"
    round_1.mkdir(parents=True)
    (round_1 / "eval_losses.json").write_text(losses, encoding="utf-8")

    def shell(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            env={**_gristmill_on_path(), "T": "2"},
        )

    graph = shell("gristmill mixture graph runs.yaml -o graph.json")
    assert graph.returncode == 0, graph.stderr
    result = shell(driver)
    assert result.returncode == 0, result.stderr
    for index in (1, 2):
        directory = tmp_path / "runs" / "skillit" / f"round_{index:04d}"
        assert json.loads((directory / "manifest.json").read_text())["round"] == index
        parts = sorted(directory.glob("part-*.parquet"))
        assert sum(pq.read_metadata(p).num_rows for p in parts) == 200_000
    assert (tmp_path / "runs" / "skillit" / "round_0002" / "mixture.json").is_file()


def test_the_rule_programmer_of_docs_prox_md_runs_as_written(workdir: Path):
    doc = REPO / "docs" / "prox.md"
    rule, vllm = blocks(doc, "yaml")
    pipeline = (
        "name: prox_rule\n"
        "input: {paths: [data_samples/web-ccnet-0000.parquet]}\n"
        "output: {path: output/prox_rule}\n" + rule
    )
    (workdir / "prox_rule.yaml").write_text(pipeline, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gristmill", "run", "prox_rule.yaml", "-q"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    written = read_output(workdir / "output" / "prox_rule")
    assert "prox_chunk_program" in written.column_names
    assert set(written.column("prox_status").to_pylist()) >= {"edited"}
    # The vLLM entry (a GPU and the released weights run it): its parameters are valid.
    from gristmill.runs.config import parse_pipeline

    config = parse_pipeline(
        "input: {paths: [data_samples]}\noutput: {path: out}\nstages:\n" + vllm, "docs/prox.md"
    )
    (stage,) = config.build_stages()
    assert stage.name == "prox_doc"


def test_the_readme_commands_are_the_ones_ci_runs():
    """The README's install and test commands are run, verbatim, by .ci/run (the CI job)."""
    readme = REPO / "README.md"
    install, test = blocks(readme, "bash")[:2]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv .venv" in install and "bash scripts/install.sh" in install
    for command in ("python3 -m venv .venv", ". .venv/bin/activate", "bash scripts/install.sh"):
        assert command in ci
    assert test.strip() == "python -m pytest"
    assert "python -m pytest" in ci


@pytest.mark.slow
def test_the_readme_quick_start_runs_the_default_pipeline(workdir: Path):
    """``gristmill run pipelines/default.yaml``, verbatim, writes what the README says."""
    readme = REPO / "README.md"
    (install,) = [b for b in blocks(readme, "bash") if "gristmill run" in b]
    command = install.strip().splitlines()[-1]
    assert command == "gristmill run pipelines/default.yaml"
    result = subprocess.run(
        ["bash", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=900,
        env=_gristmill_on_path(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = workdir / "output" / "default"
    assert read_output(output).num_rows > 0
    assert list((output / "_rejects").rglob("*.parquet"))
    assert (output / "_run" / "stats.json").is_file()


def test_the_readme_datatrove_stages_run_with_metadata_both_ways(monkeypatch: pytest.MonkeyPatch):
    from tokenizers import Tokenizer

    from gristmill.core.chain import StageChain
    from gristmill.runs.config import parse_pipeline

    (stages,) = [b for b in blocks(REPO / "README.md", "yaml") if "URLFilter" in b]
    monkeypatch.chdir(REPO)  # the tokenizer path is the repository's
    config = parse_pipeline(
        "input: {paths: [data_samples/web-c4-0000.parquet]}\noutput: {path: out}\n" + stages
    )
    chain = StageChain(config.build_stages())
    table = pq.read_table(REPO / "data_samples" / "web-c4-0000.parquet")
    assert chain.validate(table.schema).field("token_count").type == pa.int64()
    chain.setup()
    out, rejected = chain.apply(table)
    assert [r.table.num_rows for r in rejected] and out.num_rows < table.num_rows
    tokenizer = Tokenizer.from_file("gristmill/models/bpe_8k/tokenizer.json")
    counts = [len(e.ids) for e in tokenizer.encode_batch(out.column("text").to_pylist())]
    assert out.column("token_count").to_pylist() == counts


def test_the_readme_export_command_runs_as_written(workdir: Path):
    (command,) = [b for b in blocks(REPO / "README.md", "bash") if "gristmill export" in b]
    curated = workdir / "output" / "default"  # what the quick start's run leaves there
    curated.mkdir(parents=True)
    rows = sample_table()
    pq.write_table(rows.filter(pc.is_valid(rows.column("url"))).slice(0, 60), curated / "a.parquet")
    result = subprocess.run(
        ["bash", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=600,
        env=_gristmill_on_path(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    meta = json.loads((workdir / "export" / "default" / "meta.json").read_text())
    assert meta["seq_len"] == 2048 and meta["tokenizer"].endswith("bpe_8k/tokenizer.json")
    assert (meta["bos_id"], meta["eos_id"]) == (0, 1)
