"""The Skill-It skills graph A (k training skills x m evaluation skills) and how it was made.

The official code of Skill-It (Chen et al., 2023, "Skill-it! A Data-Driven Skills Framework for
Understanding and Training Language Models") ships no graph-learning code and keeps A as a
bare ``.npy``, so nobody can tell later which runs, steps or convention produced a mixture.
Here A always travels with its skill names and provenance, and a content hash that each
round's manifest records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from gristmill.io.filesystem import write_bytes_atomically
from gristmill.mixing.scheduler import (
    FloatArray,
    MixtureError,
    graph_matrix,
    json_bytes,
    skill_names,
)

GRAPH_FORMAT = "gristmill.skills_graph/1"
PairWeighting = Literal["binary", "delta"]
log = logging.getLogger(__name__)


def graph_hash(train_skills: Sequence[str], eval_skills: Sequence[str], matrix: ArrayLike) -> str:
    """SHA-256 over skill names and A's exact bits (float.hex); provenance is left out on purpose.

    Two graphs that produce the same mixtures share a hash even if their notes differ.
    """
    values = np.asarray(matrix, dtype=np.float64)
    canonical = {
        "train_skills": list(train_skills),
        "eval_skills": list(eval_skills),
        "matrix": [[float(x).hex() for x in row] for row in values],
    }
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class SkillsGraph:
    """A with rows = training skills, columns = evaluation skills, plus provenance."""

    train_skills: tuple[str, ...]
    eval_skills: tuple[str, ...]
    matrix: FloatArray
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        train = skill_names(self.train_skills, "train_skills")
        evals = skill_names(self.eval_skills, "eval_skills")
        object.__setattr__(self, "train_skills", train)
        object.__setattr__(self, "eval_skills", evals)
        object.__setattr__(self, "matrix", graph_matrix(self.matrix, len(train), len(evals)))
        object.__setattr__(self, "provenance", dict(self.provenance))

    @property
    def hash(self) -> str:
        return graph_hash(self.train_skills, self.eval_skills, self.matrix)

    def weight(self, train_skill: str, eval_skill: str) -> float:
        return float(
            self.matrix[self.train_skills.index(train_skill), self.eval_skills.index(eval_skill)]
        )

    def reordered(self, train_skills: Sequence[str], eval_skills: Sequence[str]) -> SkillsGraph:
        """The same graph in a config's skill order; a different skill *set* is an error."""
        for have, want, what in (
            (self.train_skills, train_skills, "training"),
            (self.eval_skills, eval_skills, "evaluation"),
        ):
            if set(have) != set(want) or len(want) != len(have):
                raise MixtureError(
                    f"graph {what} skills {sorted(have)} do not match the configured {sorted(want)}"
                )
        rows = [self.train_skills.index(s) for s in train_skills]
        cols = [self.eval_skills.index(s) for s in eval_skills]
        return SkillsGraph(
            tuple(train_skills),
            tuple(eval_skills),
            self.matrix[np.ix_(rows, cols)],
            self.provenance,
        )

    def clipped(self) -> SkillsGraph:
        """Negative edges set to 0; off by default because the paper's code keeps them."""
        provenance = {**self.provenance, "clip_negative": True}
        return SkillsGraph(
            self.train_skills, self.eval_skills, np.maximum(self.matrix, 0.0), provenance
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": GRAPH_FORMAT,
            "train_skills": list(self.train_skills),
            "eval_skills": list(self.eval_skills),
            "matrix": [[float(x) for x in row] for row in self.matrix],
            "hash": self.hash,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "graph") -> SkillsGraph:
        if not isinstance(data, Mapping) or data.get("format") != GRAPH_FORMAT:
            raise MixtureError(f"{source}: not a skills graph (expected format {GRAPH_FORMAT!r})")
        try:
            graph = cls(
                tuple(data["train_skills"]),
                tuple(data["eval_skills"]),
                np.array(data["matrix"], dtype=np.float64),
                data.get("provenance", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MixtureError(f"{source}: malformed skills graph: {exc}") from exc
        stored = data.get("hash")
        if stored is not None and stored != graph.hash:
            log.warning(
                "%s: stored hash differs from its contents (edited by hand?); using %s",
                source,
                graph.hash,
            )
        return graph

    def save(self, path: str | os.PathLike[str]) -> None:
        write_bytes_atomically(os.fspath(path), json_bytes(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SkillsGraph:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MixtureError(f"{path}: cannot read skills graph: {exc}") from exc
        return cls.from_dict(data, source=str(path))


def official_npy_matrix(
    matrix: np.ndarray, train_skills: Sequence[str], eval_skills: Sequence[str]
) -> np.ndarray:
    """What the official trainer makes of a ``.npy`` (or ``--graph``) matrix.

    Its loader turns every off-diagonal entry equal to 1 into 0.5 (the synthetic-task
    convention, applied to every file it loads) and, with a target mask, keeps the columns
    of the target skills only. Here the target mask is ``eval_skills`` being a proper subset
    of ``train_skills``: a ``k x k`` matrix keeps the columns of the evaluation skills, in
    their order. Any other shape is left for the shape check.
    """
    out = np.array(matrix, dtype=np.float64)
    if out.ndim == 2:
        rows, cols = np.indices(out.shape)
        out[(rows != cols) & (out == 1.0)] = 0.5
    k = len(train_skills)
    if out.shape == (k, k) and set(eval_skills) < set(train_skills):
        out = out[:, [list(train_skills).index(s) for s in eval_skills]]
    return out


def load_graph(
    path: str | os.PathLike[str],
    train_skills: Sequence[str] | None = None,
    eval_skills: Sequence[str] | None = None,
    *,
    convention: Literal["as_is", "official"] = "as_is",
) -> SkillsGraph:
    """Our JSON graphs, or a bare ``.npy`` from the official code when the skill names are given.

    ``.npy`` files are read with ``allow_pickle=False``: a graph is numbers, never objects.
    ``convention="official"`` reads a ``.npy`` as the official trainer does
    (:func:`official_npy_matrix`); JSON graphs carry their own convention and ignore it.
    """
    path = Path(path)
    if path.suffix != ".npy":
        graph = SkillsGraph.load(path)
        if train_skills is None and eval_skills is None:
            return graph
        return graph.reordered(train_skills or graph.train_skills, eval_skills or graph.eval_skills)
    if train_skills is None:
        raise MixtureError(
            f"{path}: a .npy graph has no skill names; give train_skills (and eval_skills)"
        )
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise MixtureError(f"{path}: cannot read .npy graph: {exc}") from exc
    evals = eval_skills if eval_skills is not None else train_skills
    if convention == "official":
        matrix = official_npy_matrix(matrix, train_skills, evals)
    elif convention != "as_is":
        raise MixtureError(f"graph convention must be 'as_is' or 'official', got {convention!r}")
    meta = {"method": "npy", "source": str(path), "convention": convention}
    return SkillsGraph(tuple(train_skills), tuple(evals), matrix, meta)


def from_edges(
    skills: Sequence[str],
    edges: Iterable[tuple[str, str]],
    *,
    offdiag: float = 0.5,
    diagonal: float = 1.0,
    provenance: Mapping[str, Any] | None = None,
) -> SkillsGraph:
    """The synthetic-task convention (LEGO, addition): 1 on the diagonal, 0.5 per edge i -> j."""
    names = skill_names(skills, "skills")
    matrix = np.eye(len(names)) * diagonal
    for source, target in edges:
        for skill in (source, target):
            if skill not in names:
                raise MixtureError(f"edge ({source!r}, {target!r}) names unknown skill {skill!r}")
        if source != target:
            matrix[names.index(source), names.index(target)] = offdiag
    meta = {"method": "edges", "offdiag": offdiag, "diagonal": diagonal, **(provenance or {})}
    return SkillsGraph(names, names, matrix, meta)


@dataclass(frozen=True)
class TrainingRun:
    """One short run from the base model on one skill (Alg. 3) or a pair (Alg. 2)."""

    trained_on: tuple[str, ...]
    losses: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"trained_on": list(self.trained_on), "losses": dict(self.losses)}


def _checked_losses(
    losses: Mapping[str, float], eval_skills: Sequence[str], what: str
) -> FloatArray:
    missing = [s for s in eval_skills if s not in losses]
    if missing:
        raise MixtureError(f"{what} has no loss for eval skills {missing}")
    values = np.array([float(losses[s]) for s in eval_skills])
    if not np.isfinite(values).all() or (values < 0).any():
        raise MixtureError(f"{what} has non-finite or negative losses: {values.tolist()}")
    return values


def _runs_by_skills(runs: Iterable[TrainingRun]) -> dict[tuple[str, ...], TrainingRun]:
    found: dict[tuple[str, ...], TrainingRun] = {}
    for run in runs:
        key = tuple(sorted(run.trained_on))
        if key in found:
            raise MixtureError(f"two runs trained on {list(key)}; keep one (or average them first)")
        found[key] = run
    return found


def from_single_skill_runs(
    base_losses: Mapping[str, float],
    runs: Iterable[TrainingRun],
    *,
    train_skills: Sequence[str] | None = None,
    eval_skills: Sequence[str] | None = None,
    relative: bool = True,
    clip_negative: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> SkillsGraph:
    """Alg. 3: A_ij = L_j(f) - L_j(f after training on i), divided by L_j(f) when ``relative``.

    Relative drops (the Aioli form) are scale-free, so eta carries over between loss scales.
    Works for disjoint training and evaluation skills, which Alg. 2 cannot do.
    """
    evals = skill_names(eval_skills or list(base_losses), "eval_skills")
    base = _checked_losses(base_losses, evals, "base_losses")
    if relative and (base <= 0).any():
        raise MixtureError("relative drops need positive base losses")
    singles = {key[0]: run for key, run in _runs_by_skills(runs).items() if len(key) == 1}
    trains = skill_names(train_skills or sorted(singles), "train_skills")
    missing = [s for s in trains if s not in singles]
    if missing:
        raise MixtureError(f"no single-skill run for training skills {missing}")
    rows = [base - _checked_losses(singles[s].losses, evals, f"run on {s!r}") for s in trains]
    matrix = np.array(rows) / base if relative else np.array(rows)
    if clip_negative:
        matrix = np.maximum(matrix, 0.0)
    meta = {
        "method": "alg3_single_skill_runs",
        "relative": relative,
        "clip_negative": clip_negative,
        **(provenance or {}),
        "base_losses": {s: float(v) for s, v in zip(evals, base, strict=True)},
        "runs": [singles[s].to_dict() for s in trains],
    }
    return SkillsGraph(trains, evals, matrix, meta)


def from_pair_runs(
    base_losses: Mapping[str, float],
    runs: Iterable[TrainingRun],
    *,
    skills: Sequence[str] | None = None,
    weighting: PairWeighting = "binary",
    offdiag: float = 0.5,
    provenance: Mapping[str, Any] | None = None,
) -> SkillsGraph:
    """Alg. 2: edge i -> j when training on i and j together lowers j's loss more than j alone.

    ``binary`` gives the code's convention (diagonal 1, edges ``offdiag``). ``delta`` weights an
    edge by the extra drop delta_j^ij - delta_j^j and puts delta_j^j on the diagonal [inferred].
    """
    if weighting not in ("binary", "delta"):
        raise MixtureError(f"weighting must be 'binary' or 'delta', got {weighting!r}")
    names = skill_names(skills or list(base_losses), "skills")
    base = _checked_losses(base_losses, names, "base_losses")
    by_key = _runs_by_skills(runs)
    matrix = np.zeros((len(names), len(names)))
    for j, target in enumerate(names):
        alone = _pair_run(by_key, (target,))
        own_drop = base[j] - _checked_losses(alone.losses, [target], f"run on {target!r}")[0]
        matrix[j, j] = 1.0 if weighting == "binary" else own_drop
        for i, source in enumerate(names):
            if i == j:
                continue
            pair = _pair_run(by_key, (source, target))
            pair_drop = (
                base[j] - _checked_losses(pair.losses, [target], f"run on {[source, target]}")[0]
            )
            if pair_drop > own_drop:
                matrix[i, j] = offdiag if weighting == "binary" else pair_drop - own_drop
    meta = {
        "method": "alg2_pair_runs",
        "weighting": weighting,
        **({"offdiag": offdiag} if weighting == "binary" else {}),
        **(provenance or {}),
        "base_losses": {s: float(v) for s, v in zip(names, base, strict=True)},
        "runs": [run.to_dict() for _, run in sorted(by_key.items())],
    }
    return SkillsGraph(names, names, matrix, meta)


def _pair_run(
    by_key: Mapping[tuple[str, ...], TrainingRun], trained_on: tuple[str, ...]
) -> TrainingRun:
    key = tuple(sorted(trained_on))
    if key not in by_key:
        raise MixtureError(f"Alg. 2 needs a run trained on {list(key)}, and there is none")
    return by_key[key]
