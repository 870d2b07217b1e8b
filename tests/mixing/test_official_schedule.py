"""The Skill-It schedule equals the official trainer's, with several evaluations per round.

The official online trainer (HazyResearch/skill-it, ``trainer/mw_trainer.py``) evaluates every
``ckpt_steps = max_steps / num_ckpts`` steps, appends each evaluation's losses to one list,
and at the end of every round of ``update_steps`` steps sets the mixture from the last
``mw_window`` entries of that list: summed, or averaged when a target mask is set. Its graph
loader turns off-diagonal 1s into 0.5 and keeps the target skills' columns. That rule is
written out below (:func:`official_schedule`) and run on the released LEGO and addition
settings; gristmill's scheduler, fed the same evaluations round by round through its public
API and the same graph through ``load_graph(convention="official")``, must agree to 1e-12.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from gristmill.cli.mixture import mixture_app
from gristmill.mixing import SkillItScheduler
from gristmill.mixing.graph import load_graph


def official_schedule(
    graph_flat: list[int],
    k: int,
    *,
    eta: float,
    window: int,
    max_steps: int,
    update_steps: int,
    num_ckpts: int,
    target_mask: list[int] | None,
    losses_at: dict[int, np.ndarray],
) -> list[np.ndarray]:
    """The official online update, step by step: the mixture of every round."""
    graph = np.array(graph_flat, dtype=float).reshape(k, k)
    for i in range(k):
        for j in range(k):
            if i != j and graph[i, j] == 1:
                graph[i, j] = 0.5
    targets = None if target_mask is None else np.flatnonzero(np.array(target_mask) == 1)
    if targets is not None:
        graph = graph[:, targets]
    prior = np.ones(k)
    loss_init = np.ones(len(targets)) if targets is not None else prior
    weights = prior * np.exp(eta * graph.dot(loss_init))
    mixtures = [weights / weights.sum()]
    ckpt_steps = max_steps // num_ckpts
    all_losses: list[np.ndarray] = []
    counter = 0
    while True:
        for _ in range(update_steps):
            if counter % ckpt_steps == 0:
                full = losses_at[counter]
                all_losses.append(full if targets is None else full[targets])
            counter += 1
        if counter == max_steps:
            break
        recent = np.array(all_losses[max(0, len(all_losses) - window) :])
        reduced = recent.mean(axis=0) if targets is not None else recent.sum(axis=0)
        weights = prior * np.exp(eta * graph.dot(reduced))
        mixtures.append(weights / weights.sum())
    return mixtures


def loss_curves(k: int, max_steps: int, ckpt_steps: int, seed: int) -> dict[int, np.ndarray]:
    """Per-skill validation losses that fall at different speeds, with evaluation noise."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(2.0, 4.0, k)
    rate = rng.uniform(0.5, 4.0, k)
    return {
        c: start * np.exp(-rate * c / max_steps) + 0.3 + rng.normal(0.0, 0.03, k)
        for c in range(0, max_steps, ckpt_steps)
    }


# The released scripts' settings (scripts/lego/{pt,ft}/skillit.sh, scripts/addition/pt/skillit.sh).
LEGO_PT = {
    "k": 5, "eta": 0.5, "window": 3, "max_steps": 6000, "update_steps": 1000, "num_ckpts": 120,
    "target_mask": None, "graph_flat": [1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0,
                                        0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
}  # fmt: skip
LEGO_FT = {
    "k": 3, "eta": 0.5, "window": 3, "max_steps": 6000, "update_steps": 500, "num_ckpts": 120,
    "target_mask": [0, 0, 1], "graph_flat": [1, 0, 0, 1, 1, 1, 0, 0, 1],
}  # fmt: skip
ADDITION_PT = {
    "k": 3, "eta": 0.1, "window": 3, "max_steps": 6000, "update_steps": 1200, "num_ckpts": 120,
    "target_mask": None, "graph_flat": [1, 0, 0, 1, 1, 0, 0, 0, 1],
}  # fmt: skip


def gristmill_schedule(
    setting: dict, losses_at: dict[int, np.ndarray], tmp_path: Path, **options: object
) -> list[np.ndarray]:
    """gristmill's scheduler on the same evaluations, each tagged with the round it fell in."""
    k = setting["k"]
    skills = [f"s{i}" for i in range(k)]
    mask = setting["target_mask"]
    evals = skills if mask is None else [s for s, m in zip(skills, mask, strict=True) if m]
    path = tmp_path / "graph.npy"
    np.save(path, np.array(setting["graph_flat"]).reshape(k, k))
    graph = load_graph(path, skills, evals, convention="official")
    rounds = setting["max_steps"] // setting["update_steps"]
    scheduler = SkillItScheduler(
        skills, evals, graph.matrix, eta=setting["eta"], window=setting["window"],
        rounds=rounds, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    ckpt_steps = setting["max_steps"] // setting["num_ckpts"]
    mixtures = [np.array(list(scheduler.initial_mixture().values()))]
    for r in range(1, rounds + 1):
        first = (r - 1) * setting["update_steps"]
        for counter in range(first, first + setting["update_steps"]):
            if counter % ckpt_steps == 0:
                values = losses_at[counter]
                idx = [skills.index(s) for s in evals]
                scheduler.observe(r, dict(zip(evals, values[idx].tolist(), strict=True)))
        if r < rounds:
            mixtures.append(np.array(list(scheduler.next_mixture().values())))
    return mixtures


@pytest.mark.parametrize(
    ("setting", "evaluations_per_round"),
    [(LEGO_PT, 20), (LEGO_FT, 10), (ADDITION_PT, 24)],
    ids=["lego-pt", "lego-ft", "addition-pt"],
)
def test_official_schedule_with_several_evaluations_per_round(
    setting: dict, evaluations_per_round: int, tmp_path: Path
) -> None:
    ckpt_steps = setting["max_steps"] // setting["num_ckpts"]
    assert setting["update_steps"] // ckpt_steps == evaluations_per_round
    for seed in range(3):
        losses_at = loss_curves(setting["k"], setting["max_steps"], ckpt_steps, seed)
        params = {key: setting[key] for key in setting if key != "k"}
        official = official_schedule(k=setting["k"], losses_at=losses_at, **params)
        ours = gristmill_schedule(setting, losses_at, tmp_path)
        assert len(ours) == len(official) == setting["max_steps"] // setting["update_steps"]
        np.testing.assert_allclose(np.array(ours), np.array(official), rtol=0, atol=1e-12)


def test_counting_rounds_instead_departs_from_the_official_schedule(tmp_path: Path) -> None:
    """The round-based window (kept as an option) gives a different LEGO-pt schedule: how far
    it departs is the point of counting evaluations by default."""
    ckpt_steps = LEGO_PT["max_steps"] // LEGO_PT["num_ckpts"]
    losses_at = loss_curves(5, 6000, ckpt_steps, 0)
    params = {key: LEGO_PT[key] for key in LEGO_PT if key != "k"}
    official = np.array(official_schedule(k=5, losses_at=losses_at, **params))
    first_only = {c: v for c, v in losses_at.items() if c % LEGO_PT["update_steps"] == 0}
    once_a_round = {**LEGO_PT, "num_ckpts": 6}  # what a round-based window sees
    by_round = gristmill_schedule(once_a_round, first_only, tmp_path, window_unit="rounds")
    assert np.abs(np.array(by_round) - official).max() > 0.01


def test_one_evaluation_per_round_is_the_same_in_both_units(tmp_path: Path) -> None:
    setting = {**LEGO_PT, "num_ckpts": 6}  # one evaluation per 1000-step round
    losses_at = loss_curves(5, 6000, 1000, 1)
    params = {key: setting[key] for key in setting if key != "k"}
    official = np.array(official_schedule(k=5, losses_at=losses_at, **params))
    for unit in ("evaluations", "rounds"):
        ours = np.array(gristmill_schedule(setting, losses_at, tmp_path, window_unit=unit))
        np.testing.assert_allclose(ours, official, rtol=0, atol=1e-12)


def test_window_reduce_auto_follows_the_target_mask() -> None:
    full = SkillItScheduler(["a", "b"], ["a", "b"], np.eye(2))
    masked = SkillItScheduler(["a", "b"], ["b"], [[0.5], [1.0]])
    other = SkillItScheduler(["a", "b"], ["x"], [[0.5], [1.0]])
    assert (full.window_reduce, masked.window_reduce, other.window_reduce) == ("sum", "mean", "sum")


def test_official_graph_convention(tmp_path: Path) -> None:
    path = tmp_path / "g.npy"
    np.save(path, np.array([[1, 0, 0], [1, 1, 1], [0, 0, 1]]))
    as_is = load_graph(path, ["a", "b", "c"]).matrix
    official = load_graph(path, ["a", "b", "c"], convention="official").matrix
    masked = load_graph(path, ["a", "b", "c"], ["c"], convention="official").matrix
    assert as_is.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 1]]
    assert official.tolist() == [[1, 0, 0], [0.5, 1, 0.5], [0, 0, 1]]
    assert masked.tolist() == [[0.0], [0.5], [1.0]]


def test_the_loop_reads_several_evaluations_per_round(tmp_path: Path) -> None:
    """``gristmill mixture next`` with the trainer's ``evaluations`` list gives the official
    LEGO-ft mixtures (target mask, mean window, official graph convention)."""
    setting = LEGO_FT
    skills = ["s0", "s1", "s2"]
    np.save(tmp_path / "graph.npy", np.array(setting["graph_flat"]).reshape(3, 3))
    data = tmp_path / "data"
    data.mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"{s}-{n}" for s in skills for n in range(10)]
    pq.write_table(
        pa.table({"id": ids, "text": ids, "skill": [i.split("-")[0] for i in ids]}),
        data / "pool.parquet",
    )
    config = {
        "train_skills": skills, "eval_skills": ["s2"], "graph": "graph.npy",
        "graph_convention": "official", "eta": 0.5, "window": 3, "rounds": 12,
        "samples_per_round": 10, "inputs": ["data"], "output_dir": "out",
    }  # fmt: skip
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(config))
    runner = CliRunner()
    assert runner.invoke(mixture_app, ["init", str(tmp_path / "mix.yaml")]).exit_code == 0
    ckpt_steps = 50
    losses_at = loss_curves(3, 6000, ckpt_steps, 2)
    params = {key: setting[key] for key in setting if key != "k"}
    official = official_schedule(k=3, losses_at=losses_at, **params)
    for r in range(1, 12):
        steps = range((r - 1) * 500, r * 500, ckpt_steps)
        payload = {
            "round": r,
            "evaluations": [
                {"global_step": c, "losses": {"s2": float(losses_at[c][2])}} for c in steps
            ],
        }
        round_dir = tmp_path / "out" / f"round_{r:04d}"
        round_dir.mkdir(parents=True, exist_ok=True)
        (round_dir / "eval_losses.json").write_text(json.dumps(payload))
        result = runner.invoke(mixture_app, ["next", str(tmp_path / "mix.yaml")])
        assert result.exit_code == 0, result.output
        written = json.loads((tmp_path / "out" / f"round_{r + 1:04d}" / "mixture.json").read_text())
        assert written["window_reduce"] == "mean" and written["window_evaluations"] == 3
        got = [written["mixture"][s] for s in skills]
        np.testing.assert_allclose(got, official[r], rtol=0, atol=1e-12)
