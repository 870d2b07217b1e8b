"""SkillItScheduler against the spec's worked example (B.6), hand-computed cases, and a
simulated training loop; plus input validation and exact save/restore."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.mixing import (
    MixtureError,
    SkillItScheduler,
    largest_remainder_counts,
    stable_softmax,
)

SKILLS = ["s1", "s2", "s3"]
CHAIN = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]  # 1 -> 2 -> 3, code convention
LOSSES_B6 = [
    [2.0, 3.0, 4.0],
    [1.0, 2.5, 3.8],
    [0.4, 1.6, 3.5],
    [0.2, 0.9, 2.6],
    [0.1, 0.5, 1.4],
]
EXPECTED_B6 = [
    [0.360, 0.360, 0.280],
    [0.227, 0.481, 0.292],
    [0.100, 0.621, 0.279],
    [0.036, 0.650, 0.315],
    [0.026, 0.493, 0.481],
    [0.040, 0.391, 0.569],
]


def chain_scheduler(**overrides: object) -> SkillItScheduler:
    options: dict[str, object] = {"eta": 0.5, "window": 3, "rounds": 6, **overrides}
    return SkillItScheduler(SKILLS, SKILLS, CHAIN, **options)  # type: ignore[arg-type]


def as_list(mixture: dict[str, float]) -> list[float]:
    return list(mixture.values())


def losses(values: list[float], skills: list[str] = SKILLS) -> dict[str, float]:
    return dict(zip(skills, values, strict=True))


def test_worked_example_b6_reproduced_to_1e3() -> None:
    scheduler = chain_scheduler()
    got = [as_list(scheduler.initial_mixture())]
    for round_index, values in enumerate(LOSSES_B6, start=1):
        scheduler.observe(round_index, losses(values))
        got.append(as_list(scheduler.next_mixture()))
    np.testing.assert_allclose(got, EXPECTED_B6, atol=1e-3)
    assert scheduler.current_round == 6
    assert scheduler.window_rounds(6) == [3, 4, 5]  # round 1 and 2 have left the window


def test_rectangular_graph_k2_m3_matches_hand_computation() -> None:
    # k = 2 training skills, m = 3 evaluation skills (the out-of-domain setting).
    graph = [[0.2, 0.1, 0.0], [0.0, 0.3, 0.4]]
    scheduler = SkillItScheduler(["web", "code"], ["qa", "math", "prog"], graph, eta=1.0, rounds=3)
    # p_1 = softmax(eta * row sums) = softmax([0.3, 0.7])
    assert scheduler.initial_mixture()["web"] == pytest.approx(1 / (1 + math.exp(0.4)), abs=1e-12)
    scheduler.observe(1, {"qa": 1.0, "math": 2.0, "prog": 3.0})
    # A @ L = [0.2 + 0.2, 0.6 + 1.2] = [0.4, 1.8]
    p2 = scheduler.next_mixture()
    assert p2["web"] == pytest.approx(1 / (1 + math.exp(1.4)), abs=1e-12)
    assert p2["code"] == pytest.approx(1 / (1 + math.exp(-1.4)), abs=1e-12)
    assert list(p2) == ["web", "code"]


def test_graph_shape_is_asserted_not_guessed() -> None:
    transposed = np.array([[0.2, 0.1, 0.0], [0.0, 0.3, 0.4]]).T  # 3 x 2, wrong way round
    with pytest.raises(MixtureError, match=r"shape \(3, 2\), expected \(k=2, m=3\)"):
        SkillItScheduler(["web", "code"], ["qa", "math", "prog"], transposed)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"s1": 1.0, "s2": 2.0}, r"missing eval skills \['s3'\]"),
        ({"s1": 1.0, "s2": 2.0, "s3": 3.0, "s4": 1.0}, r"unknown \['s4'\]"),
        ({"s1": 1.0, "s2": float("nan"), "s3": 3.0}, "'s2' is not finite"),
        ({"s1": 1.0, "s2": 2.0, "s3": float("inf")}, "'s3' is not finite"),
        ({"s1": -0.1, "s2": 2.0, "s3": 3.0}, "'s1' is negative"),
        ({"s1": "1.0", "s2": 2.0, "s3": 3.0}, "'s1' is not a number"),
        ({"s1": True, "s2": 2.0, "s3": 3.0}, "'s1' is not a number"),
    ],
)
def test_observe_rejects_bad_losses_clearly(bad: dict[str, object], message: str) -> None:
    scheduler = chain_scheduler()
    with pytest.raises(MixtureError, match=message):
        scheduler.observe(1, bad)
    assert scheduler.last_observed_round == 0  # nothing half-recorded


def test_observe_wants_rounds_in_order() -> None:
    """Counting rounds, each round is observed once; counting evaluations (the default, as
    the official trainer), a round may be evaluated again, but never an earlier one."""
    scheduler = chain_scheduler(window_unit="rounds")
    with pytest.raises(MixtureError, match="expected round 1"):
        scheduler.observe(2, losses([1, 1, 1]))
    scheduler.observe(1, losses([1, 1, 1]))
    with pytest.raises(MixtureError, match="expected round 2"):
        scheduler.observe(1, losses([1, 1, 1]))
    evaluations = chain_scheduler()
    with pytest.raises(MixtureError, match="expected round 1"):
        evaluations.observe(2, losses([1, 1, 1]))
    evaluations.observe(1, losses([1, 1, 1]))
    evaluations.observe(1, losses([1, 1, 1]))
    evaluations.observe(2, losses([1, 1, 1]))
    with pytest.raises(MixtureError, match="expected round 2 or 3"):
        evaluations.observe(1, losses([1, 1, 1]))


def test_next_mixture_waits_for_losses_and_stops_after_t_rounds() -> None:
    scheduler = chain_scheduler(rounds=2)
    with pytest.raises(MixtureError, match="needs the losses of round 1"):
        scheduler.next_mixture()
    scheduler.observe(1, losses([1, 2, 3]))
    scheduler.next_mixture()
    with pytest.raises(MixtureError, match="all 2 rounds"):
        scheduler.next_mixture()


def test_loss_lag_zero_uses_the_end_of_round_losses() -> None:
    lag0 = chain_scheduler(loss_lag=0)
    lag0.observe(1, losses(LOSSES_B6[0]))
    with pytest.raises(MixtureError, match="needs the losses of round 2"):
        lag0.next_mixture()
    lag0.observe(2, losses(LOSSES_B6[1]))
    # p_2 under lag 0 uses rounds {1, 2}: the same window as p_3 under lag 1.
    np.testing.assert_allclose(as_list(lag0.next_mixture()), EXPECTED_B6[2], atol=1e-3)


def test_mean_window_is_sum_with_eta_over_window_length() -> None:
    mean = chain_scheduler(window_reduce="mean")
    summed = chain_scheduler(eta=0.25)
    for scheduler in (mean, summed):
        scheduler.observe(1, losses(LOSSES_B6[0]))
        scheduler.next_mixture()
        scheduler.observe(2, losses(LOSSES_B6[1]))
    np.testing.assert_allclose(as_list(mean.next_mixture()), as_list(summed.next_mixture()))


def test_prior_multiplies_weights_and_zero_prior_excludes_a_skill() -> None:
    uniform = chain_scheduler().initial_mixture()
    weighted = chain_scheduler(prior={"s1": 2.0, "s2": 1.0, "s3": 1.0}).initial_mixture()
    ratio_uniform = uniform["s1"] / uniform["s2"]
    assert weighted["s1"] / weighted["s2"] == pytest.approx(2 * ratio_uniform)
    excluded = chain_scheduler(prior={"s1": 0.0, "s2": 1.0, "s3": 1.0}).initial_mixture()
    assert excluded["s1"] == 0.0
    assert sum(excluded.values()) == pytest.approx(1.0)


def test_exhausted_skill_gets_zero_and_the_rest_renormalise() -> None:
    scheduler = chain_scheduler()
    scheduler.observe(1, losses(LOSSES_B6[0]))
    scheduler.mark_exhausted("s2")
    p2 = scheduler.next_mixture()
    assert p2["s2"] == 0.0
    # The others keep their relative weights from the B.6 row: 0.227 : 0.292.
    assert p2["s1"] / p2["s3"] == pytest.approx(0.227 / 0.292, rel=5e-3)
    assert sum(p2.values()) == pytest.approx(1.0)


def test_softmax_is_safe_at_eta_100_with_perplexity_scale_losses() -> None:
    scheduler = SkillItScheduler(["a", "b"], ["x"], [[1.0], [0.99]], eta=100.0, rounds=2)
    scheduler.observe(1, {"x": 1000.0})  # naive exp(100 * 1000) overflows to inf
    mixture = scheduler.next_mixture()
    assert all(math.isfinite(v) for v in mixture.values())
    assert mixture["a"] == pytest.approx(1.0) and mixture["b"] < 1e-300
    with pytest.raises(MixtureError, match="not finite"):
        stable_softmax([float("nan"), 0.0])


def test_static_mode_reproduces_the_redpajama_mixture_from_row_sum_gaps() -> None:
    # Spec B.5: with eta = 100 and T = 1 only the row-sum gaps matter.
    gaps = {"ArXiv": 0.0114, "Books": 0.0, "C4": 0.0226, "CommonCrawl": 0.0052,
            "GitHub": 0.0146, "StackExchange": 0.0071, "Wikipedia": 0.0010}  # fmt: skip
    published = {"ArXiv": 0.1370, "Books": 0.0437, "C4": 0.4195, "CommonCrawl": 0.0732,
                 "GitHub": 0.189, "StackExchange": 0.0892, "Wikipedia": 0.0484}  # fmt: skip
    graph = [[0.3 + gaps[s]] for s in gaps]
    scheduler = SkillItScheduler(list(gaps), ["perplexity"], graph, eta=100.0, rounds=1)
    mixture = scheduler.initial_mixture()
    for skill, weight in published.items():
        assert mixture[skill] == pytest.approx(weight, abs=1e-3)
    with pytest.raises(MixtureError, match="all 1 rounds"):
        scheduler.next_mixture()


def test_state_round_trips_through_json_and_continues_identically(tmp_path) -> None:
    scheduler = chain_scheduler(prior=[1.0, 3.0, 7.0])
    scheduler.observe(1, losses(LOSSES_B6[0]))
    scheduler.next_mixture()
    scheduler.observe(2, losses(LOSSES_B6[1]), step=100, ckpt_id="ckpt-100")
    scheduler.mark_exhausted("s1")
    path = tmp_path / "state.json"
    scheduler.save(path)
    restored = SkillItScheduler.load(path)
    assert restored.state_dict() == scheduler.state_dict()
    assert restored.observations[1].ckpt_id == "ckpt-100"
    for round_index in (3, 4, 5):
        assert restored.next_mixture() == scheduler.next_mixture()
        values = LOSSES_B6[round_index - 1]
        restored.observe(round_index, losses(values))
        scheduler.observe(round_index, losses(values))


finite_losses = st.lists(
    st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_subnormal=True), min_size=3, max_size=3),
    min_size=1,
    max_size=7,
)


@settings(max_examples=60, deadline=None)
@given(history=finite_losses, eta=st.floats(1e-6, 5.0), cut=st.integers(0, 7))
def test_resume_at_any_point_gives_bit_identical_mixtures(
    history: list[list[float]], eta: float, cut: int
) -> None:
    def drive(scheduler: SkillItScheduler, rounds: range) -> list[dict[str, float]]:
        out = []
        for round_index in rounds:
            scheduler.observe(round_index, losses(history[round_index - 1]))
            out.append(scheduler.next_mixture())
        return out

    rounds = len(history) + 1
    whole = chain_scheduler(eta=eta, rounds=rounds)
    expected = drive(whole, range(1, rounds))
    first = chain_scheduler(eta=eta, rounds=rounds)
    cut = min(cut, len(history))
    head = drive(first, range(1, cut + 1))
    text = json.dumps(first.state_dict())
    resumed = SkillItScheduler.from_state_dict(json.loads(text))
    assert resumed.observations == first.observations
    tail = drive(resumed, range(cut + 1, rounds))
    assert head + tail == expected  # exact float equality, not approx
    assert resumed.state_dict() == whole.state_dict()


def test_awkward_floats_survive_save_and_load_bit_for_bit(tmp_path) -> None:
    awkward = [0.1 + 0.2, 1 / 3, 2.0**-1074]  # not short decimals; the last is subnormal
    scheduler = SkillItScheduler(SKILLS, SKILLS, [[1 / 3, 0.1, 0.0]] * 3, eta=0.7, rounds=3)
    scheduler.observe(1, losses(awkward))
    scheduler.next_mixture()
    scheduler.save(tmp_path / "state.json")
    restored = SkillItScheduler.load(tmp_path / "state.json")
    assert restored.observations[0].losses == tuple(awkward)
    assert restored.graph.tobytes() == scheduler.graph.tobytes()
    assert restored.trajectory() == scheduler.trajectory()


def test_malformed_state_is_reported() -> None:
    with pytest.raises(MixtureError, match="not a scheduler state"):
        SkillItScheduler.from_state_dict({"format": "something else"})
    state = chain_scheduler().state_dict()
    del state["config"]["eta"]
    state["config"]["etaa"] = 0.5
    with pytest.raises(MixtureError, match="malformed"):
        SkillItScheduler.from_state_dict(state)


def simulate(rates: list[float], *, skillit: bool, rounds: int = 10) -> tuple[list, np.ndarray]:
    """A toy trainer: each skill's loss falls with the share of rows that teach it.

    Rows of skill i teach skill j with strength CHAIN[i][j] (the graph is the truth here), and
    skill 3 learns slowest. Shares come from the same largest-remainder counts the sampler uses.
    """
    graph = np.array(CHAIN)
    scheduler = chain_scheduler(rounds=rounds)
    current = np.array([2.0, 3.0, 4.0])
    mixture = np.array(as_list(scheduler.initial_mixture()))
    trajectory = []
    for round_index in range(1, rounds + 1):
        if not skillit:
            mixture = np.full(3, 1 / 3)
        trajectory.append(mixture)
        scheduler.observe(round_index, losses(current.tolist()))
        shares = np.array(largest_remainder_counts(mixture.tolist(), 1000)) / 1000
        current = current * np.exp(-np.array(rates) * (graph.T @ shares))
        if round_index < rounds:
            mixture = np.array(as_list(scheduler.next_mixture()))
    return trajectory, current


def test_simulated_training_moves_weight_to_prerequisite_then_slowest_skill() -> None:
    rates = [1.5, 1.0, 0.5]
    trajectory, final = simulate(rates, skillit=True)
    leaders = [int(np.argmax(p)) for p in trajectory[1:]]
    first_s2 = leaders.index(1)
    first_s3 = leaders.index(2)
    assert first_s2 == 0, "the prerequisite s2 should lead right after the first feedback"
    assert first_s3 > first_s2, "the slowest skill s3 should take over only later"
    assert all(leader == 2 for leader in leaders[first_s3 : first_s3 + 3])
    assert trajectory[2][1] > trajectory[0][1]  # s2 keeps gaining at first
    # s1 (learned first, prerequisite of nothing new) is starved while s2 and s3 compete.
    assert all(p[0] == min(p) for p in trajectory[1:5])
    _, uniform_final = simulate(rates, skillit=False)
    assert final[2] < uniform_final[2]  # the hardest skill ends better off than with uniform
    assert final.mean() < uniform_final.mean()
