"""`gristmill mixture` end to end: graph -> init -> sample -> (trainer writes losses) -> next,
with a worked example of the Skill-It update driven through files, and every failure mode a
loop hits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from support.processes import kill_when
from typer.testing import CliRunner

from gristmill.cli.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_WAITING
from gristmill.cli.mixture import mixture_app

SKILLS = ["s1", "s2", "s3"]
#: The worked example: Skill-It's online update (Chen et al., 2023, Alg. 1) on the chain graph
#: s1 -> s2 -> s3 (diagonal 1, edges 0.5), eta 0.5, window 3. The losses at the start of each
#: round, and the mixtures p_1 (initial) to p_6 that they give, computed by hand.
LOSSES_CHAIN = [[2.0, 3.0, 4.0], [1.0, 2.5, 3.8], [0.4, 1.6, 3.5], [0.2, 0.9, 2.6], [0.1, 0.5, 1.4]]
EXPECTED_CHAIN = [
    [0.360, 0.360, 0.280],
    [0.227, 0.481, 0.292],
    [0.100, 0.621, 0.279],
    [0.036, 0.650, 0.315],
    [0.026, 0.493, 0.481],
    [0.040, 0.391, 0.569],
]
runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(mixture_app, [str(a) for a in args])


def chain_runs_file(directory: Path) -> Path:
    """Pair runs (Skill-It, Chen et al., 2023, Alg. 2) in which s1 helps s2 and s2 helps s3."""
    alone = {"s1": 1.0, "s2": 2.0, "s3": 3.5}
    pairs = {("s1", "s2"): {"s1": 1.2, "s2": 1.5}, ("s1", "s3"): {"s1": 1.1, "s3": 3.6},
             ("s2", "s3"): {"s2": 2.1, "s3": 3.0}}  # fmt: skip
    runs = [{"trained_on": [s], "losses": {s: v}} for s, v in alone.items()]
    runs += [{"trained_on": list(p), "losses": v} for p, v in pairs.items()]
    spec = {
        "method": "pairs",
        "base_losses": {"s1": 2.0, "s2": 3.0, "s3": 4.0},
        "runs": runs,
        "provenance": {"model": "toy", "steps": 6000, "seed": 0},
    }
    path = directory / "runs.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def write_pool(directory: Path, per_skill: int = 20) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, skill in enumerate(SKILLS):
        ids = [f"{skill}-{n}" for n in range(per_skill)]
        table = pa.table(
            {"id": ids, "text": [f"text {x}" for x in ids], "skill": [skill] * per_skill}
        )
        pq.write_table(table, directory / f"pool-{i}.parquet")


def make_project(tmp_path: Path, **overrides: object) -> Path:
    """A config next to its graph and data; output_dir sits inside the input directory on
    purpose, to check that sampled rounds are never read back as inputs."""
    result = invoke("graph", chain_runs_file(tmp_path), "--out", tmp_path / "graph.json")
    assert result.exit_code == 0, result.output
    write_pool(tmp_path / "data")
    config = {
        "train_skills": SKILLS,
        "graph": "graph.json",
        "eta": 0.5,
        "window": 3,
        "rounds": 6,
        "samples_per_round": 30,
        "seed": 11,
        "inputs": ["data"],
        "output_dir": "data/rounds",
        "rows_per_part": 8,
        **overrides,
    }
    path = tmp_path / "mixture.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_losses(output: Path, round_index: int, values: list[float] | dict) -> Path:
    losses = values if isinstance(values, dict) else dict(zip(SKILLS, values, strict=True))
    path = output / f"round_{round_index:04d}" / "eval_losses.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "round": round_index,
        "global_step": 100 * (round_index - 1),
        "model_ckpt": f"ckpt-{round_index}",
        "losses": losses,
        "n_val_samples": 50,
    }
    path.write_text(json.dumps(payload))
    return path


def mixture_of(output: Path, round_index: int) -> list[float]:
    data = json.loads((output / f"round_{round_index:04d}" / "mixture.json").read_text())
    assert data["round"] == round_index
    return [data["mixture"][s] for s in SKILLS]


def test_graph_command_saves_the_graph_with_provenance(tmp_path: Path) -> None:
    result = invoke("graph", chain_runs_file(tmp_path), "-o", tmp_path / "g.json")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["matrix"] == [[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    assert saved["provenance"]["model"] == "toy" and saved["provenance"]["steps"] == 6000
    assert saved["provenance"]["method"] == "alg2_pair_runs"
    assert json.loads(result.stdout)["hash"] == saved["hash"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"method": "triples", "base_losses": {}, "runs": []}))
    result = invoke("graph", bad, "-o", tmp_path / "x.json")
    assert result.exit_code == EXIT_CONFIG
    assert "'method'" in result.stderr and "'runs'" in result.stderr


def test_the_trainer_loop_reproduces_the_worked_example(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    output = tmp_path / "data" / "rounds"
    result = invoke("init", config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mixture"]["s1"] == pytest.approx(0.360, abs=1e-3)
    seen_ids: dict[str, list[str]] = {s: [] for s in SKILLS}
    for round_index in range(1, 7):
        # pipeline: materialise the round whose mixture exists
        result = invoke("sample", config)
        assert result.exit_code == 0, result.output
        manifest = json.loads((output / f"round_{round_index:04d}" / "manifest.json").read_text())
        table = pa.concat_tables(
            pq.read_table(output / f"round_{round_index:04d}" / p["path"])
            for p in manifest["parts"]
        )
        assert Counter(table.column("skill").to_pylist()) == Counter(
            {s: c for s, c in manifest["counts"].items() if c}
        )
        for skill, row_id in zip(
            table.column("skill").to_pylist(), table.column("id").to_pylist(), strict=True
        ):
            seen_ids[skill].append(row_id)
        np.testing.assert_allclose(mixture_of(output, round_index), EXPECTED_CHAIN[round_index - 1],
                                   atol=1e-3)  # fmt: skip
        if round_index == 6:
            break
        # trainer: evaluate the model at the start of the round, then train on it;
        # with the one-round lag the pipeline can already prepare the next round
        write_losses(output, round_index, LOSSES_CHAIN[round_index - 1])
        result = invoke("next", config)
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        assert printed["round"] == round_index + 1
        assert printed["window_rounds"] == list(range(max(1, round_index - 2), round_index + 1))
    # 6 rounds x 30 rows over 3 pools of 20: s2 is drawn past its pool and the manifests say so
    paths = [output / f"round_{r:04d}" / "manifest.json" for r in range(1, 7)]
    manifests = [json.loads(p.read_text()) for p in paths]
    repeats = {s: sum(m["pools"][s]["repeats"] for m in manifests) for s in SKILLS}
    for skill in SKILLS:
        drawn = Counter(seen_ids[skill])
        assert repeats[skill] == max(0, drawn.total() - 20)
        # whole passes over the pool, then part of one: no row is used twice more than another
        uses = [drawn[f"{skill}-{n}"] for n in range(20)]
        assert max(uses) - min(uses) <= 1
    assert repeats["s2"] > 20  # s2 went round its pool more than once
    result = invoke("next", config)
    assert result.exit_code == EXIT_FAILED and "all 6 rounds" in result.stderr
    state = json.loads((output / "scheduler_state.json").read_text())
    assert [o["ckpt_id"] for o in state["observations"]] == [f"ckpt-{r}" for r in range(1, 6)]


def test_next_waits_for_the_trainer_and_rejects_bad_loss_files(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    output = tmp_path / "data" / "rounds"
    assert invoke("init", config).exit_code == 0
    result = invoke("next", config)
    assert result.exit_code == EXIT_WAITING
    assert "round_0001/eval_losses.json is not written yet" in result.stderr
    cases = [
        ({"s1": 1.0, "s2": 2.0}, "missing eval skills ['s3']"),
        ({"s1": 1.0, "s2": -2.0, "s3": 1.0}, "'s2' is negative"),
        ({"s1": 1.0, "s2": "NaN", "s3": 1.0}, "'s2' is not a number"),
    ]
    for losses, message in cases:
        write_losses(output, 1, losses)
        result = invoke("next", config)
        assert result.exit_code == EXIT_FAILED, result.output
        assert message in result.stderr
    nan_file = write_losses(output, 1, [1.0, 2.0, 3.0])
    nan_file.write_text(nan_file.read_text().replace("2.0", "NaN"))
    result = invoke("next", config)
    assert result.exit_code == EXIT_FAILED and "'s2' is not finite" in result.stderr
    wrong_round = write_losses(output, 1, [1.0, 2.0, 3.0])
    wrong_round.write_text(wrong_round.read_text().replace('"round": 1', '"round": 7'))
    result = invoke("next", config)
    assert result.exit_code == EXIT_FAILED and "says round 7, expected 1" in result.stderr
    # nothing was recorded by the failures: a good file now gives p_2 of the worked example
    write_losses(output, 1, LOSSES_CHAIN[0])
    assert invoke("next", config).exit_code == 0
    np.testing.assert_allclose(mixture_of(output, 2), EXPECTED_CHAIN[1], atol=1e-3)


def test_config_errors_are_named_and_exit_2(tmp_path: Path) -> None:
    config = make_project(tmp_path, eta="fast", windw=3)
    result = invoke("init", config)
    assert result.exit_code == EXIT_CONFIG
    assert "'eta'" in result.stderr and "'windw'" in result.stderr
    config = make_project(tmp_path, train_skills=["s1", "s2"])
    result = invoke("init", config)
    assert result.exit_code == EXIT_CONFIG and "do not match the configured" in result.stderr
    config = make_project(tmp_path, prior={"s9": 1.0})
    result = invoke("init", config)
    assert result.exit_code == EXIT_CONFIG and "s9" in result.stderr


def test_init_refuses_to_clobber_and_next_refuses_config_drift(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    assert invoke("init", config).exit_code == 0
    result = invoke("init", config)
    assert result.exit_code == EXIT_FAILED and "--force" in result.stderr
    assert invoke("init", config, "--force").exit_code == 0
    make_project(tmp_path, eta=0.7)  # someone edits the config mid-schedule
    write_losses(tmp_path / "data" / "rounds", 1, LOSSES_CHAIN[0])
    result = invoke("next", config)
    assert result.exit_code == EXIT_FAILED and "config changed since init (eta)" in result.stderr


def test_static_mode_gives_per_source_weights_without_feedback(tmp_path: Path) -> None:
    write_pool(tmp_path / "unused")
    sources = tmp_path / "sources"
    for source, rows in (("books", 40), ("code", 40)):
        (sources / source).mkdir(parents=True)
        pq.write_table(pa.table({"text": [f"{source} {n}" for n in range(rows)]}),
                       sources / source / "part-0.parquet")  # fmt: skip
    graph = {"format": "gristmill.skills_graph/1", "train_skills": ["books", "code"],
             "eval_skills": ["ppl"], "matrix": [[0.30], [0.31]], "provenance": {}}  # fmt: skip
    (tmp_path / "graph.json").write_text(json.dumps(graph))
    config = tmp_path / "static.json"
    config.write_text(json.dumps({
        "train_skills": ["books", "code"], "eval_skills": ["ppl"], "graph": "graph.json",
        "eta": 100, "rounds": 1, "samples_per_round": 50, "output_dir": "out",
        "inputs": ["sources/*/*.parquet"],
        "shard_skills": {"books/*.parquet": "books", "code/*.parquet": "code"},
    }))  # fmt: skip
    result = invoke("init", config)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["static"] is True
    # softmax(100 * [0.30, 0.31]) = 1 / (1 + e) for books
    assert printed["mixture"]["books"] == pytest.approx(1 / (1 + np.e), abs=1e-9)
    result = invoke("sample", config, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"books": 13, "code": 37}
    result = invoke("next", config)
    assert result.exit_code == EXIT_FAILED and "static mode" in result.stderr


def test_sample_needs_an_existing_mixture(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    result = invoke("sample", config)
    assert result.exit_code == EXIT_FAILED and "run `gristmill mixture init` first" in result.stderr
    assert invoke("init", config).exit_code == 0
    result = invoke("sample", config, "--round", "2")
    assert result.exit_code == EXIT_FAILED and "no mixture for round 2" in result.stderr


# -- sampling on the run driver: executors, resume after a kill --------------------------------

REPO = Path(__file__).resolve().parents[2]


def round_files(output: Path, round_index: int) -> dict[str, bytes]:
    """What a trainer reads of a round: its parts and manifest."""
    directory = output / f"round_{round_index:04d}"
    paths = [*directory.glob("part-*.parquet"), directory / "manifest.json"]
    return {p.name: p.read_bytes() for p in sorted(paths)}


def second_output(config: Path, name: str) -> Path:
    """The same project (graph, inputs, settings) with its rounds in another output_dir."""
    settings = yaml.safe_load(config.read_text())
    other = config.with_name(f"{name}.yaml")
    other.write_text(yaml.safe_dump({**settings, "output_dir": name}))
    return other


def test_sample_on_dask_gives_the_local_round_and_says_where_it_is(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    config = make_project(tmp_path, executor={"dask": {"dashboard_address": ":0"}})
    local = second_output(config, "local")
    for project in (config, local):
        assert invoke("init", project).exit_code == 0
    # first: the dask round lands in data/, which is the local project's input directory
    assert invoke("sample", local, "--quiet").exit_code == 0
    result = invoke("sample", config, "--executor", "dask", "--workers", "2")
    assert result.exit_code == 0, result.output
    directory = tmp_path / "data" / "rounds" / "round_0001"
    assert json.loads(result.stdout)["directory"] == str(directory)
    assert "dask dashboard: http" in result.stderr  # the parts went through the cluster
    assert f"round 1: {directory}" in result.stderr
    files = round_files(tmp_path / "data" / "rounds", 1)
    assert files == round_files(tmp_path / "local", 1) and len(files) == 5  # 4 parts
    result = invoke("sample", config, "--executor", "spark")
    assert result.exit_code == EXIT_CONFIG and "unknown executor 'spark'" in result.stderr


def _done(markers: Path) -> dict[str, int]:
    """The parts' completion markers, by name, with their modification times."""
    if not markers.exists():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in markers.glob("part-*.json")}


def test_a_killed_sample_resumes_and_gives_the_uninterrupted_round(tmp_path: Path) -> None:
    """A real `gristmill mixture sample`, killed with SIGKILL while it writes parts (one row
    each, so that there are many), then run again: only the missing parts are written."""
    total = 600
    config = make_project(tmp_path, samples_per_round=total, rows_per_part=1)
    write_pool(tmp_path / "data", per_skill=total // 2)  # no repeats
    reference = second_output(config, "reference")
    for project in (config, reference):
        assert invoke("init", project).exit_code == 0
    assert invoke("sample", reference, "--quiet").exit_code == 0

    command = [sys.executable, "-m", "gristmill", "mixture", "sample", str(config)]
    directory = tmp_path / "data" / "rounds" / "round_0001"
    markers = directory / "_run" / "markers" / "parts"
    process = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    kill_when(process, lambda: len(_done(markers)) >= 40)
    before = _done(markers)
    assert 40 <= len(before) < total, "the sample should have been killed part-way"
    assert not (directory / "manifest.json").exists()
    parts = [directory / f"{Path(name).stem}.parquet" for name in before]
    kept = {part.name: part.stat() for part in parts}

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total - len(before)} parts written, {len(before)} already there" in rerun.stderr
    assert "died without finishing" in rerun.stderr  # the dead run's lock was taken over
    assert round_files(tmp_path / "data" / "rounds", 1) == round_files(tmp_path / "reference", 1)
    after = _done(markers)
    assert len(after) == total and all(after[n] == t for n, t in before.items())
    for name, stat in kept.items():  # the parts written before the kill were not rewritten
        now = (directory / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert not [p for p in directory.rglob(".tmp-*")]
    assert json.loads(rerun.stdout)["parts"] == total


def test_the_files_shown_in_the_docs_work(tmp_path: Path) -> None:
    """docs/skillit.md's runs.yaml gives a graph, and its config starts a schedule on it."""
    text = (REPO / "docs" / "skillit.md").read_text(encoding="utf-8")
    runs_file = re.search(r"```yaml\n(# runs\.yaml.*?)```", text, re.DOTALL)
    config_file = re.search(r"```yaml\n(train_skills:.*?)```", text, re.DOTALL)
    assert runs_file is not None and config_file is not None
    runs = tmp_path / "runs.yaml"
    runs.write_text(runs_file.group(1))
    result = invoke("graph", runs, "--out", tmp_path / "graph.json")
    assert result.exit_code == 0, result.output
    graph = json.loads((tmp_path / "graph.json").read_text())
    assert graph["train_skills"] == ["arxiv", "books", "c4", "github"]
    assert graph["eval_skills"] == ["arc_easy", "hellaswag", "lambada"]
    config = tmp_path / "mix.yaml"
    config.write_text(config_file.group(1))
    result = invoke("init", config)
    assert result.exit_code == 0, result.output
    assert sum(json.loads(result.stdout)["mixture"].values()) == pytest.approx(1.0)
