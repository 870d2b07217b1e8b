"""Skills graph builders (Alg. 3 and Alg. 2 of the spec, B.2), provenance and the stable hash."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from gristmill.mixing import (
    MixtureError,
    SkillItScheduler,
    SkillsGraph,
    TrainingRun,
    from_edges,
    from_pair_runs,
    from_single_skill_runs,
    load_graph,
)

CHAIN_SKILLS = ["s1", "s2", "s3"]
CHAIN = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
# Pinned: manifests record this hash, so changing how it is computed must be a conscious act.
CHAIN_HASH = "7170e68aeb805013b492324f85744c15fe6e19e16396dcae62cc11554be65438"


def chain() -> SkillsGraph:
    return from_edges(CHAIN_SKILLS, [("s1", "s2"), ("s2", "s3")])


def test_edges_follow_the_synthetic_task_convention() -> None:
    graph = chain()
    np.testing.assert_array_equal(graph.matrix, CHAIN)
    assert graph.provenance["method"] == "edges"
    assert graph.hash == CHAIN_HASH
    with pytest.raises(MixtureError, match="unknown skill 's9'"):
        from_edges(CHAIN_SKILLS, [("s1", "s9")])


def test_hash_tracks_numbers_and_names_but_not_provenance() -> None:
    base = chain()
    same_numbers = SkillsGraph(base.train_skills, base.eval_skills, base.matrix, {"note": "other"})
    assert same_numbers.hash == base.hash
    nudged = base.matrix.copy()
    nudged[0, 1] = np.nextafter(0.5, 1.0)  # one ulp
    assert SkillsGraph(base.train_skills, base.eval_skills, nudged).hash != base.hash
    renamed = SkillsGraph(("a", "s2", "s3"), ("a", "s2", "s3"), base.matrix)
    assert renamed.hash != base.hash


def test_save_and_load_keep_matrix_bits_and_provenance(tmp_path) -> None:
    matrix = np.array([[0.1 + 0.2, -1e-17], [1 / 3, 2.0**-1074]])
    graph = SkillsGraph(("a", "b"), ("x", "y"), matrix, {"model": "gpt-neo-125m", "steps": 600})
    path = tmp_path / "graph.json"
    graph.save(path)
    loaded = SkillsGraph.load(path)
    assert loaded.matrix.tobytes() == matrix.tobytes()
    assert loaded.provenance == {"model": "gpt-neo-125m", "steps": 600}
    assert loaded.hash == graph.hash == json.loads(path.read_text())["hash"]


def test_hand_edited_graph_loads_with_a_warning(tmp_path, caplog) -> None:
    path = tmp_path / "graph.json"
    chain().save(path)
    data = json.loads(path.read_text())
    data["matrix"][0][1] = 0.4
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        loaded = SkillsGraph.load(path)
    assert loaded.weight("s1", "s2") == 0.4
    assert "stored hash differs" in caplog.text


def test_single_skill_runs_give_relative_drops_for_k_not_m() -> None:
    base = {"qa": 4.0, "math": 2.0, "prog": 5.0}
    runs = [
        TrainingRun(("code",), {"qa": 4.0, "math": 1.5, "prog": 3.0}),
        TrainingRun(("web",), {"qa": 3.0, "math": 2.2, "prog": 5.0}),
    ]
    graph = from_single_skill_runs(
        base, runs, train_skills=["web", "code"], provenance={"steps": 100}
    )
    assert graph.train_skills == ("web", "code") and graph.eval_skills == ("qa", "math", "prog")
    # (L_j(f) - L_j(after i)) / L_j(f); negatives (web makes math worse) are kept by default.
    np.testing.assert_allclose(graph.matrix, [[0.25, -0.1, 0.0], [0.0, 0.25, 0.4]])
    assert graph.provenance["method"] == "alg3_single_skill_runs"
    assert graph.provenance["steps"] == 100
    assert graph.provenance["runs"][0]["trained_on"] == ["web"]  # the raw inputs travel along
    raw = from_single_skill_runs(base, runs, relative=False, clip_negative=True)
    assert raw.train_skills == ("code", "web")  # sorted when no order is given
    np.testing.assert_allclose(raw.matrix, [[0.0, 0.5, 2.0], [1.0, 0.0, 0.0]])


def test_single_skill_runs_report_what_is_missing() -> None:
    base = {"x": 1.0, "y": 1.0}
    with pytest.raises(MixtureError, match=r"no single-skill run for training skills \['b'\]"):
        from_single_skill_runs(base, [TrainingRun(("a",), base)], train_skills=["a", "b"])
    with pytest.raises(MixtureError, match=r"no loss for eval skills \['y'\]"):
        from_single_skill_runs(base, [TrainingRun(("a",), {"x": 0.5})])
    with pytest.raises(MixtureError, match="two runs"):
        from_single_skill_runs(base, [TrainingRun(("a",), base), TrainingRun(("a",), base)])


def pair_runs() -> tuple[dict[str, float], list[TrainingRun]]:
    """Runs where s1 helps s2 and s2 helps s3, and nothing else helps."""
    base = {"s1": 2.0, "s2": 3.0, "s3": 4.0}
    alone = {"s1": 1.0, "s2": 2.0, "s3": 3.5}
    pairs = {
        ("s1", "s2"): {"s1": 1.2, "s2": 1.5},  # s2 drops 1.5 > 1.0 alone: edge s1 -> s2
        ("s1", "s3"): {"s1": 1.1, "s3": 3.6},
        ("s2", "s3"): {"s2": 2.1, "s3": 3.0},  # s3 drops 1.0 > 0.5 alone: edge s2 -> s3
    }
    runs = [TrainingRun((s,), {s: v}) for s, v in alone.items()]
    runs += [TrainingRun(pair, values) for pair, values in pairs.items()]
    return base, runs


def test_pair_runs_recover_the_chain_with_binary_weights() -> None:
    base, runs = pair_runs()
    graph = from_pair_runs(base, runs, provenance={"model": "tiny"})
    np.testing.assert_array_equal(graph.matrix, CHAIN)
    assert graph.hash == CHAIN_HASH
    assert graph.provenance["method"] == "alg2_pair_runs"
    assert graph.provenance["model"] == "tiny"


def test_pair_runs_with_delta_weights_and_missing_pair() -> None:
    base, runs = pair_runs()
    graph = from_pair_runs(base, runs, weighting="delta")
    np.testing.assert_allclose(graph.matrix, [[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.5]])
    with pytest.raises(MixtureError, match=r"needs a run trained on \['s1', 's3'\]"):
        from_pair_runs(base, [r for r in runs if r.trained_on != ("s1", "s3")])


def test_npy_graphs_need_names_and_configs_reorder_json_graphs(tmp_path) -> None:
    npy = tmp_path / "graph.npy"
    np.save(npy, np.array(CHAIN))
    with pytest.raises(MixtureError, match="no skill names"):
        load_graph(npy)
    loaded = load_graph(npy, CHAIN_SKILLS)
    assert loaded.hash == CHAIN_HASH and loaded.provenance["method"] == "npy"
    saved = tmp_path / "graph.json"
    chain().save(saved)
    reordered = load_graph(saved, ["s3", "s1", "s2"], ["s3", "s1", "s2"])
    assert reordered.weight("s1", "s2") == 0.5 and reordered.weight("s2", "s1") == 0.0
    assert reordered.matrix[1, 2] == 0.5  # row s1, column s2 in the new order
    with pytest.raises(MixtureError, match="do not match"):
        load_graph(saved, ["s1", "s2"], ["s1", "s2"])


def test_graph_from_runs_drives_the_scheduler() -> None:
    base, runs = pair_runs()
    graph = from_pair_runs(base, runs)
    scheduler = SkillItScheduler(graph.train_skills, graph.eval_skills, graph.matrix, eta=0.5)
    np.testing.assert_allclose(
        list(scheduler.initial_mixture().values()), [0.36, 0.36, 0.28], atol=1e-3
    )
