"""The Skill-It online mixture schedule as a trainer-independent state machine.

Skill-It (Chen et al., 2023, "Skill-it! A Data-Driven Skills Framework for Understanding and
Training Language Models") mixes training skills by online mirror descent on evaluation losses.
The pipeline, not the trainer, owns the schedule: the trainer only reports evaluation losses,
and the scheduler turns them into the next round's mixture over training skills. Everything
that decides a mixture lives in the state, so a resumed schedule emits bit-identical mixtures.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gristmill.errors import GristmillError
from gristmill.io.filesystem import write_bytes_atomically

WindowReduce = Literal["sum", "mean"]
#: ``auto`` resolves as the official trainer does: ``mean`` with a target mask (evaluation
#: skills a proper subset of the training skills), ``sum`` otherwise.
WindowReduceSetting = Literal["sum", "mean", "auto"]
#: What the window counts: evaluations (the official trainer) or rounds (one loss each).
WindowUnit = Literal["evaluations", "rounds"]
STATE_FORMAT = "gristmill.skillit_scheduler/1"
FloatArray = NDArray[np.float64]


class MixtureError(GristmillError, ValueError):
    """A schedule was asked for something it cannot give; the message says what to fix."""


@dataclass(frozen=True)
class Observation:
    """One evaluation's losses, in ``eval_skills`` order, taken during round ``round``.

    A round may hold several evaluations (the official trainer evaluates every
    ``max_steps / num_ckpts`` steps, whatever the round length); the first is the one at the
    round's start.
    """

    round: int
    losses: tuple[float, ...]
    step: int | None = None
    ckpt_id: str | None = None


def stable_softmax(logits: ArrayLike) -> FloatArray:
    """Softmax that survives eta=100 on perplexity-scale losses (the logits are shifted by
    their maximum, so large ones cannot overflow).

    ``-inf`` logits are legal (zero prior, exhausted skill) and get weight 0; ``+inf`` or NaN mean
    the inputs were unusable, which is reported instead of silently producing NaN weights.
    """
    z = np.asarray(logits, dtype=np.float64)
    if np.isnan(z).any() or np.isposinf(z).any():
        raise MixtureError(
            f"mixture logits are not finite: {z.tolist()}; lower eta or check losses"
        )
    if np.isneginf(z).all():
        raise MixtureError(
            "every skill has zero weight (zero prior or exhausted); nothing to sample"
        )
    weights = np.exp(z - z.max())
    return cast(FloatArray, weights / weights.sum())


def skill_names(skills: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(skills)
    if not names:
        raise MixtureError(f"{what} is empty")
    if any(not isinstance(s, str) or not s for s in names):
        raise MixtureError(f"{what} must be non-empty strings, got {list(names)!r}")
    dupes = sorted({s for s in names if names.count(s) > 1})
    if dupes:
        raise MixtureError(f"{what} has duplicates: {dupes}")
    return names


def graph_matrix(graph: ArrayLike, k: int, m: int) -> FloatArray:
    """Rows are training skills and columns evaluation skills: assert the shape, never guess.

    A square graph transposed by mistake would still fit, so the shape is all that can be
    checked; the names travel with the matrix (``graph.SkillsGraph``) for that reason.
    """
    matrix = np.array(graph, dtype=np.float64)
    if matrix.shape != (k, m):
        raise MixtureError(
            f"graph A has shape {matrix.shape}, expected (k={k}, m={m}): rows are training "
            "skills, columns are evaluation skills"
        )
    if not np.isfinite(matrix).all():
        raise MixtureError("graph A contains NaN or infinite entries")
    matrix.setflags(write=False)
    return matrix


def _prior_vector(
    prior: Mapping[str, float] | Sequence[float] | None, skills: tuple[str, ...]
) -> FloatArray:
    if prior is None:
        vector = np.full(len(skills), 1.0 / len(skills))
    elif isinstance(prior, Mapping):
        unknown = sorted(set(prior) - set(skills))
        if unknown:
            raise MixtureError(f"prior names unknown training skills: {unknown}")
        vector = np.array([float(prior.get(s, 0.0)) for s in skills])
    else:
        vector = np.array([float(p) for p in prior])
        if vector.shape != (len(skills),):
            raise MixtureError(f"prior has {vector.size} entries for {len(skills)} training skills")
    if not np.isfinite(vector).all() or (vector < 0).any() or vector.sum() <= 0:
        raise MixtureError(
            f"prior must be finite, non-negative and not all zero: {vector.tolist()}"
        )
    normalised = vector / vector.sum()
    normalised.setflags(write=False)
    return cast(FloatArray, normalised)


def resolve_window_reduce(
    setting: str, train_skills: Sequence[str], eval_skills: Sequence[str]
) -> WindowReduce:
    """``auto`` is the official choice: mean over the window with a target mask, else sum.

    The official trainer's target mask keeps some of the training skills as the skills
    evaluated; here that is evaluation skills forming a proper subset of the training skills.
    """
    if setting not in ("sum", "mean", "auto"):
        raise MixtureError(f"window_reduce must be 'sum', 'mean' or 'auto', got {setting!r}")
    if setting != "auto":
        return cast(WindowReduce, setting)
    evals, train = set(eval_skills), set(train_skills)
    return "mean" if evals < train else "sum"


def _loss_value(skill: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise MixtureError(f"loss for eval skill {skill!r} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise MixtureError(f"loss for eval skill {skill!r} is not finite: {number}")
    if number < 0:
        raise MixtureError(f"loss for eval skill {skill!r} is negative: {number}")
    return number


class SkillItScheduler:
    """Online mirror descent over training skills: p_{t+1} = softmax(log prior + eta*A*sum(L)).

    Rounds are numbered from 1. ``observe(t, L)`` records one evaluation taken during round t;
    the first of a round is the model at its start (checkpoint f_t), and a round may have more
    (the official trainer evaluates every ``max_steps / num_ckpts`` steps, 10 to 20 times per
    round in the released LEGO settings). With ``loss_lag=1`` (the paper and its code) p_{t+1}
    uses the evaluations of rounds up to t; with ``loss_lag=0`` it also waits for round t+1's.

    ``window_unit="evaluations"`` (the default, as the official trainer) makes the window the
    last ``window`` evaluations of those rounds, wherever they fall; ``"rounds"`` makes it the
    last ``window`` rounds with one evaluation each (the earlier gristmill behaviour; a second
    evaluation of a round is then an error). ``window_reduce="auto"`` averages the window when
    the evaluation skills are a proper subset of the training skills (the official target
    mask) and sums it otherwise, as the official trainer does.
    """

    def __init__(
        self,
        train_skills: Sequence[str],
        eval_skills: Sequence[str],
        graph: ArrayLike,
        *,
        eta: float = 0.5,
        window: int = 3,
        rounds: int = 1,
        prior: Mapping[str, float] | Sequence[float] | None = None,
        loss_lag: int = 1,
        window_reduce: WindowReduceSetting = "auto",
        window_unit: WindowUnit = "evaluations",
    ) -> None:
        self._train = skill_names(train_skills, "train_skills")
        self._eval = skill_names(eval_skills, "eval_skills")
        self._graph = graph_matrix(graph, len(self._train), len(self._eval))
        self._eta = self._check_eta(eta)
        self._window = self._check_positive_int(window, "window")
        self._rounds = self._check_positive_int(rounds, "rounds")
        self._prior = _prior_vector(prior, self._train)
        if loss_lag not in (0, 1):
            raise MixtureError(f"loss_lag must be 0 or 1, got {loss_lag!r}")
        self._lag = int(loss_lag)
        self._reduce = resolve_window_reduce(window_reduce, self._train, self._eval)
        if window_unit not in ("evaluations", "rounds"):
            raise MixtureError(
                f"window_unit must be 'evaluations' or 'rounds', got {window_unit!r}"
            )
        self._unit: WindowUnit = window_unit
        self._observations: list[Observation] = []
        self._exhausted: set[str] = set()
        self._mixtures: list[FloatArray] = [self._initial_vector()]

    @staticmethod
    def _check_eta(eta: float) -> float:
        if isinstance(eta, bool) or not math.isfinite(float(eta)):
            raise MixtureError(f"eta must be a finite number, got {eta!r}")
        return float(eta)

    @staticmethod
    def _check_positive_int(value: int, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise MixtureError(f"{name} must be an integer >= 1, got {value!r}")
        return int(value)

    # -- read-only views -------------------------------------------------------------------

    @property
    def train_skills(self) -> tuple[str, ...]:
        return self._train

    @property
    def eval_skills(self) -> tuple[str, ...]:
        return self._eval

    @property
    def graph(self) -> FloatArray:
        return self._graph

    @property
    def eta(self) -> float:
        return self._eta

    @property
    def window(self) -> int:
        return self._window

    @property
    def rounds(self) -> int:
        return self._rounds

    @property
    def loss_lag(self) -> int:
        return self._lag

    @property
    def window_reduce(self) -> WindowReduce:
        """The reduction in use (``auto`` already resolved)."""
        return self._reduce

    @property
    def window_unit(self) -> WindowUnit:
        return self._unit

    @property
    def prior(self) -> dict[str, float]:
        return dict(zip(self._train, self._prior.tolist(), strict=True))

    @property
    def current_round(self) -> int:
        """The round whose mixture was emitted last (1 right after construction)."""
        return len(self._mixtures)

    @property
    def last_observed_round(self) -> int:
        return self._observations[-1].round if self._observations else 0

    @property
    def observations(self) -> tuple[Observation, ...]:
        return tuple(self._observations)

    @property
    def exhausted(self) -> frozenset[str]:
        return frozenset(self._exhausted)

    def mixture(self, round_index: int) -> dict[str, float]:
        """A mixture already emitted: the trajectory is the main thing to look at when a run
        goes wrong."""
        if not 1 <= round_index <= len(self._mixtures):
            raise MixtureError(
                f"no mixture for round {round_index}; rounds 1..{len(self._mixtures)} exist"
            )
        return self._as_dict(self._mixtures[round_index - 1])

    def trajectory(self) -> list[dict[str, float]]:
        return [self._as_dict(p) for p in self._mixtures]

    def _as_dict(self, vector: FloatArray) -> dict[str, float]:
        return dict(zip(self._train, (float(x) for x in vector), strict=True))

    # -- the algorithm ---------------------------------------------------------------------

    def _log_prior(self) -> FloatArray:
        with np.errstate(divide="ignore"):
            logp = np.log(self._prior)
        for i, skill in enumerate(self._train):
            if skill in self._exhausted:
                logp[i] = -np.inf
        return cast(FloatArray, logp)

    def _initial_vector(self) -> FloatArray:
        """p_1 is the update with every loss equal to 1, i.e. softmax of eta times A's row sums."""
        return self._mixture_from(np.ones(len(self._eval)))

    def _mixture_from(self, window_losses: FloatArray) -> FloatArray:
        logits = self._log_prior() + self._eta * (self._graph @ window_losses)
        return stable_softmax(logits)

    def initial_mixture(self) -> dict[str, float]:
        """p_1 = softmax(log prior + eta * A @ 1); needs no feedback, so it is also static mode."""
        return self._as_dict(self._mixtures[0])

    def observe(
        self,
        round_index: int,
        losses: Mapping[str, object],
        *,
        step: int | None = None,
        ckpt_id: str | None = None,
    ) -> None:
        """Record one evaluation taken during round ``round_index``, validated so that one bad
        report cannot poison every later mixture.

        Evaluations come in training order: the same round again (another evaluation of it)
        or the next one. With ``window_unit="rounds"`` each round has exactly one.
        """
        last = self.last_observed_round
        allowed = (last + 1,) if self._unit == "rounds" or last == 0 else (last, last + 1)
        if isinstance(round_index, bool) or round_index not in allowed:
            rule = (
                "rounds are observed once each, in order, starting at 1"
                if self._unit == "rounds"
                else "evaluations come in training order: the current round again or the next"
            )
            raise MixtureError(
                f"observe() got round {round_index!r}, expected round "
                f"{' or '.join(map(str, allowed))}: {rule}"
            )
        if not isinstance(losses, Mapping):
            raise MixtureError(f"losses must map eval skill -> loss, got {type(losses).__name__}")
        missing = [s for s in self._eval if s not in losses]
        unknown = sorted(str(s) for s in losses if s not in self._eval)
        if missing or unknown:
            raise MixtureError(
                f"round {round_index} losses: missing eval skills {missing}, unknown {unknown}; "
                f"expected exactly {list(self._eval)}"
            )
        values = tuple(_loss_value(s, losses[s]) for s in self._eval)
        self._observations.append(Observation(int(round_index), values, step, ckpt_id))

    def newest_round(self, target_round: int) -> int:
        """The last round whose evaluations ``target_round``'s mixture needs (0: none)."""
        return 0 if target_round <= 1 else target_round - self._lag

    def window_evaluations(self, target_round: int) -> list[int]:
        """Indices (into :attr:`observations`) of the evaluations that decide
        ``target_round``'s mixture, among those observed so far (empty for round 1)."""
        newest = self.newest_round(target_round)
        if newest == 0:
            return []
        if self._unit == "rounds":
            first = newest - self._window + 1
            return [i for i, o in enumerate(self._observations) if first <= o.round <= newest]
        eligible = [i for i, o in enumerate(self._observations) if o.round <= newest]
        return eligible[-self._window :]

    def window_rounds(self, target_round: int) -> list[int]:
        """Rounds whose losses decide ``target_round``'s mixture (empty for round 1).

        Counting rounds, that is the last ``window`` rounds up to the newest needed; counting
        evaluations, the rounds the window's evaluations fall in (known once observed).
        """
        newest = self.newest_round(target_round)
        if newest == 0:
            return []
        if self._unit == "rounds":
            return list(range(max(1, newest - self._window + 1), newest + 1))
        rounds = {self._observations[i].round for i in self.window_evaluations(target_round)}
        return sorted(rounds) or [newest]

    def next_mixture(self) -> dict[str, float]:
        """Emit p_{t+1} and advance to round t+1; raises while the needed losses are missing."""
        target = self.current_round + 1
        if target > self._rounds:
            raise MixtureError(
                f"all {self._rounds} rounds have their mixture; there is no round {target}"
            )
        newest = self.newest_round(target)
        if newest > self.last_observed_round:
            raise MixtureError(
                f"the mixture of round {target} needs the losses of round {newest} "
                f"(loss_lag={self._lag}); observed up to round {self.last_observed_round}"
            )
        chosen = self.window_evaluations(target)
        stacked = np.array([self._observations[i].losses for i in chosen], dtype=np.float64)
        reduced = stacked.sum(axis=0) if self._reduce == "sum" else stacked.mean(axis=0)
        vector = self._mixture_from(reduced)
        self._mixtures.append(vector)
        return self._as_dict(vector)

    def mark_exhausted(self, skill: str) -> None:
        """Give a skill that has run out of data p = 0 from the next mixture on."""
        if skill not in self._train:
            raise MixtureError(f"unknown training skill {skill!r}")
        self._exhausted.add(skill)

    # -- exact save and restore ------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        """Everything besides history that decides a mixture; compared to catch config drift."""
        return {
            "train_skills": list(self._train),
            "eval_skills": list(self._eval),
            "graph": [[float(x) for x in row] for row in self._graph],
            "eta": self._eta,
            "window": self._window,
            "rounds": self._rounds,
            "prior": [float(x) for x in self._prior],
            "loss_lag": self._lag,
            "window_reduce": self._reduce,
            "window_unit": self._unit,
        }

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state; Python's JSON writes floats by repr, which round-trips exactly."""
        return {
            "format": STATE_FORMAT,
            "config": self.config_dict(),
            "observations": [
                {"round": o.round, "losses": list(o.losses), "step": o.step, "ckpt_id": o.ckpt_id}
                for o in self._observations
            ],
            "mixtures": [[float(x) for x in p] for p in self._mixtures],
            "exhausted": sorted(self._exhausted),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> SkillItScheduler:
        """Rebuild a schedule so that it continues exactly where the saved one stopped."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise MixtureError(
                f"not a scheduler state (format {found!r}, expected {STATE_FORMAT!r})"
            )
        try:
            return cls._restore(state)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MixtureError):
                raise
            raise MixtureError(f"scheduler state is malformed: {exc!r}") from exc

    @classmethod
    def _restore(cls, state: Mapping[str, Any]) -> SkillItScheduler:
        config = dict(state["config"])
        prior = config.pop("prior")
        scheduler = cls(**config, prior=[float(p) for p in prior])
        # The normalised prior is stored; renormalising it could move the last bit, so keep it.
        stored_prior = np.array(prior, dtype=np.float64)
        stored_prior.setflags(write=False)
        scheduler._prior = cast(FloatArray, stored_prior)
        for skill in state.get("exhausted", []):
            scheduler.mark_exhausted(skill)
        for item in state["observations"]:
            scheduler.observe(
                item["round"],
                dict(zip(scheduler._eval, item["losses"], strict=True)),
                step=item.get("step"),
                ckpt_id=item.get("ckpt_id"),
            )
        mixtures = [np.array(p, dtype=np.float64) for p in state["mixtures"]]
        if not mixtures or any(p.shape != (len(scheduler._train),) for p in mixtures):
            raise MixtureError("scheduler state has a malformed mixture history")
        scheduler._mixtures = mixtures
        return scheduler

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state atomically so a crash never leaves a half-written schedule behind."""
        write_bytes_atomically(os.fspath(path), json_bytes(self.state_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SkillItScheduler:
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MixtureError(f"{path}: cannot read scheduler state: {exc}") from exc
        return cls.from_state_dict(state)


def json_bytes(payload: object) -> bytes:
    """The JSON of every file the Skill-It loop writes (state, mixtures, graphs, manifests).

    Keys keep their order (the files are read by people and trainers), and NaN or infinity is
    an error rather than the non-standard ``NaN`` token that strict JSON readers reject.
    Write it with ``gristmill.io.filesystem.write_bytes_atomically``, so that a polling reader
    never sees half a file.
    """
    return (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode("utf-8")
