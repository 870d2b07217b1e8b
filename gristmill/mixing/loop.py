"""The Skill-It loop over files: config, schedule, mixtures, the trainer's losses, rounds.

Skill-It (Chen et al., 2023, "Skill-it! A Data-Driven Skills Framework for Understanding and
Training Language Models") alternates between training on a round's data and choosing the
next round's mixture from the model's evaluation losses. Here each side of that loop is a
short, restartable step over files in the config's ``output_dir``:

```
OUTPUT_DIR/scheduler_state.json         the schedule: config, losses observed, mixtures emitted
OUTPUT_DIR/round_NNNN/mixture.json      the round's mixture (written by init / next)
OUTPUT_DIR/round_NNNN/part-XXXXX.parquet  the round's data (written by sample)
OUTPUT_DIR/round_NNNN/manifest.json     written last: the round is complete
OUTPUT_DIR/round_NNNN/_run/             the sampling run's lock, markers and failures
OUTPUT_DIR/round_NNNN/eval_losses.json  written by the trainer at the start of round NNNN
```

The trainer needs no long-lived process on the pipeline side: ``gristmill mixture`` calls
these functions, one step per command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from rich.console import Console

from gristmill.errors import ConfigError, GristmillError, NotReadyError
from gristmill.executors.base import Executor
from gristmill.executors.config import ExecutorConfig
from gristmill.io.filesystem import expand_inputs, write_bytes_atomically
from gristmill.mixing.graph import (
    SkillsGraph,
    TrainingRun,
    from_pair_runs,
    from_single_skill_runs,
    graph_hash,
    load_graph,
)
from gristmill.mixing.sampler import round_dir, sample_round
from gristmill.mixing.scheduler import MixtureError, SkillItScheduler, json_bytes

M = TypeVar("M", bound=BaseModel)
STATE_NAME = "scheduler_state.json"
MIXTURE_NAME = "mixture.json"
LOSSES_NAME = "eval_losses.json"
PARQUET_SUFFIXES = (".parquet",)


class LossesNotWrittenError(MixtureError, NotReadyError):
    """The next mixture needs losses that the trainer has not written yet; try again later."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MixtureConfig(_Strict):
    """The mixture config file; relative paths are taken from the file's own directory."""

    train_skills: list[str] = Field(min_length=1, description="training skills (k), one pool each")
    eval_skills: list[str] | None = Field(
        None, description="evaluation skills (m); default: train_skills"
    )
    graph: Path = Field(
        description="skills graph: JSON from `gristmill mixture graph`, or a k x m .npy"
    )
    eta: float = Field(0.5, allow_inf_nan=False, description="step size; tune to the loss scale")
    window: PositiveInt = Field(
        3, description="how many evaluations (or rounds, see window_unit) the update uses"
    )
    window_unit: Literal["evaluations", "rounds"] = Field(
        "evaluations",
        description="evaluations: the last `window` evaluations, as the official trainer; "
        "rounds: the last `window` rounds, one evaluation each",
    )
    rounds: PositiveInt = Field(1, description="T; 1 is static mode (no feedback)")
    prior: dict[str, NonNegativeFloat] | None = Field(None, description="default uniform")
    loss_lag: Literal[0, 1] = Field(1, description="1: p_{t+1} uses losses at the start of round t")
    window_reduce: Literal["sum", "mean", "auto"] = Field(
        "auto",
        description="auto: mean when eval_skills are a proper subset of train_skills (the "
        "official target mask), else sum, as the official trainer",
    )
    graph_convention: Literal["as_is", "official"] = Field(
        "as_is",
        description="for a .npy graph: official turns off-diagonal 1s into 0.5 and, with a "
        "target mask, keeps the eval skills' columns of a k x k graph, as the official loader",
    )
    clip_negative: bool = Field(False, description="set negative graph edges to 0")
    samples_per_round: PositiveInt = Field(description="rows written per round")
    seed: int = Field(0, ge=0)
    output_dir: Path
    inputs: list[str] = Field(min_length=1, description="Parquet files, directories or globs")
    skill_column: str = "skill"
    shard_skills: dict[str, str] | None = Field(
        None, description="{path or glob: skill}, instead of a column"
    )
    rows_per_part: PositiveInt = 100_000
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig,
        description="what writes a round's parts (as a pipeline's executor: section); "
        "the sample command's --executor, --workers and --scheduler override it",
    )

    @model_validator(mode="after")
    def _skills_consistent(self) -> MixtureConfig:
        for name, skills in (
            ("train_skills", self.train_skills),
            ("eval_skills", self.eval_skills or []),
        ):
            dupes = sorted({s for s in skills if skills.count(s) > 1})
            if dupes:
                raise ValueError(f"{name} has duplicates: {dupes}")
        unknown = sorted(set(self.prior or {}) - set(self.train_skills))
        unknown += sorted(set((self.shard_skills or {}).values()) - set(self.train_skills))
        if unknown:
            raise ValueError(f"prior/shard_skills name skills that are not train_skills: {unknown}")
        return self

    @property
    def evals(self) -> list[str]:
        return self.eval_skills if self.eval_skills is not None else self.train_skills


class Evaluation(BaseModel):
    """One evaluation of the model during a round: its loss per evaluation skill."""

    model_config = ConfigDict(extra="allow")

    losses: dict[str, Any]
    global_step: int | None = None
    model_ckpt: str | None = None


class EvalLosses(BaseModel):
    """What a trainer writes to ``round_NNNN/eval_losses.json``: the model's loss on each
    evaluation skill, once (``losses``, at the start of round NNNN) or for every evaluation
    taken during the round (``evaluations``, in training order; the official trainer
    evaluates every ``max_steps / num_ckpts`` steps)."""

    model_config = ConfigDict(extra="allow")

    round: int
    losses: dict[str, Any] | None = None
    evaluations: list[Evaluation] | None = Field(default=None, min_length=1)
    global_step: int | None = None
    model_ckpt: str | None = None
    n_val_samples: int | dict[str, int] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> EvalLosses:
        if (self.losses is None) == (self.evaluations is None):
            raise ValueError("give either 'losses' (one evaluation) or 'evaluations' (a list)")
        return self

    def all_evaluations(self) -> list[Evaluation]:
        """The round's evaluations in training order, whichever form the file uses."""
        if self.evaluations is not None:
            return list(self.evaluations)
        assert self.losses is not None  # one of the two forms, checked above
        return [
            Evaluation(losses=self.losses, global_step=self.global_step, model_ckpt=self.model_ckpt)
        ]


class GraphRuns(_Strict):
    """Input of ``gristmill mixture graph``: losses of short runs from one base model."""

    method: Literal["single", "pairs"] = Field(
        "single", description="Alg. 3 (single) or Alg. 2 (pairs)"
    )
    base_losses: dict[str, float]
    runs: list[dict[str, Any]] = Field(
        min_length=1, description="[{trained_on: [skill, ...], losses: {...}}]"
    )
    train_skills: list[str] | None = None
    eval_skills: list[str] | None = None
    relative: bool = True
    clip_negative: bool = False
    weighting: Literal["binary", "delta"] = "binary"
    offdiag: float = 0.5
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="model, steps, seed, notes ..."
    )


# -- reading files -----------------------------------------------------------------------------


def read_mapping(path: Path, error: type[GristmillError] = MixtureError) -> dict[str, Any]:
    """A JSON (``.json``) or YAML file whose top level is a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return data


def validated(
    model: type[M], data: dict[str, Any], source: Path, error: type[GristmillError] = MixtureError
) -> M:
    """Every wrong field on one line, named, so a typo in a config is found at once."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc']) or '(top level)'}': {e['msg']}"
            for e in exc.errors()
        )
        raise error(f"{source}: {problems}") from None


def _from(base: Path, pattern: str) -> str:
    return pattern if "://" in pattern or Path(pattern).is_absolute() else str(base / pattern)


def load_config(path: Path) -> MixtureConfig:
    """A validated mixture config (a ``ConfigError`` on any problem, before anything is
    written), with its relative paths (graph, output_dir, inputs) taken from its directory."""
    config = validated(MixtureConfig, read_mapping(path, ConfigError), path, ConfigError)
    base = path.parent
    return config.model_copy(
        update={
            "graph": base / config.graph,
            "output_dir": base / config.output_dir,
            "inputs": [_from(base, pattern) for pattern in config.inputs],
        }
    )


def round_inputs(config: MixtureConfig) -> list[str]:
    """The Parquet files of the config's inputs (files, directories or globs), sorted.

    A directory stands for its ``.parquet`` files at any depth; names starting with ``_`` or
    ``.`` are bookkeeping, never data; and a sampled round is never an input, even when the
    output_dir lies under an input directory.
    """
    output = config.output_dir.resolve()
    found: set[str] = set()
    for pattern in config.inputs:
        matches = [
            item.url
            for item in expand_inputs([pattern], PARQUET_SUFFIXES)
            if "://" in item.url or not Path(item.url).resolve().is_relative_to(output)
        ]
        if not matches:
            raise ConfigError(f"input {pattern!r} matches no file outside the output_dir")
        found.update(matches)
    return sorted(found)


# -- the schedule ------------------------------------------------------------------------------


def scheduler_from_config(config: MixtureConfig) -> SkillItScheduler:
    """A fresh schedule; graph and config must agree on skills and shape (a config error)."""
    try:
        graph = load_graph(
            config.graph, config.train_skills, config.evals, convention=config.graph_convention
        )
        if config.clip_negative:
            graph = graph.clipped()
        return SkillItScheduler(
            config.train_skills,
            config.evals,
            graph.matrix,
            eta=config.eta,
            window=config.window,
            rounds=config.rounds,
            prior=config.prior,
            loss_lag=config.loss_lag,
            window_reduce=config.window_reduce,
            window_unit=config.window_unit,
        )
    except MixtureError as exc:
        raise ConfigError(f"graph {config.graph}: {exc}") from None


def load_scheduler(config: MixtureConfig) -> SkillItScheduler:
    """The saved schedule, refused if the config has changed since ``init`` (silent drift)."""
    state_path = config.output_dir / STATE_NAME
    if not state_path.exists():
        raise MixtureError(f"{state_path} does not exist; run `gristmill mixture init` first")
    scheduler = SkillItScheduler.load(state_path)
    fresh = scheduler_from_config(config)
    changed = sorted(k for k, v in fresh.config_dict().items() if scheduler.config_dict()[k] != v)
    if changed:
        raise MixtureError(
            f"the config changed since init ({', '.join(changed)}); restore it or start a new "
            "output_dir with `gristmill mixture init --force`"
        )
    return scheduler


def graph_hash_of(scheduler: SkillItScheduler) -> str:
    return graph_hash(scheduler.train_skills, scheduler.eval_skills, scheduler.graph)


def mixture_payload(scheduler: SkillItScheduler, round_index: int) -> dict[str, Any]:
    """``round_NNNN/mixture.json``: the round's mixture and what decided it."""
    return {
        "round": round_index,
        "mixture": scheduler.mixture(round_index),
        "window_rounds": scheduler.window_rounds(round_index),
        "graph_hash": graph_hash_of(scheduler),
        "eta": scheduler.eta,
        "window": scheduler.window,
        "window_reduce": scheduler.window_reduce,
        "window_unit": scheduler.window_unit,
        "window_evaluations": len(scheduler.window_evaluations(round_index)),
        "loss_lag": scheduler.loss_lag,
        "rounds": scheduler.rounds,
        "static": scheduler.rounds == 1,
    }


def publish(config: MixtureConfig, scheduler: SkillItScheduler, round_index: int) -> dict[str, Any]:
    """Mixture file first, state second: a crash in between only makes the step rerun."""
    payload = mixture_payload(scheduler, round_index)
    path = round_dir(config.output_dir, round_index) / MIXTURE_NAME
    write_bytes_atomically(os.fspath(path), json_bytes(payload))
    scheduler.save(config.output_dir / STATE_NAME)
    return payload


def read_losses(config: MixtureConfig, round_index: int) -> EvalLosses:
    """The trainer's losses at the start of a round; ``LossesNotWrittenError`` while not written."""
    path = round_dir(config.output_dir, round_index) / LOSSES_NAME
    if not path.exists():
        raise LossesNotWrittenError(
            f"{path} is not written yet (the trainer writes it at the start of round {round_index})"
        )
    losses = validated(EvalLosses, read_mapping(path), path)
    if losses.round != round_index:
        raise MixtureError(f"{path}: says round {losses.round}, expected {round_index}")
    return losses


def init_schedule(config: MixtureConfig, *, force: bool = False) -> dict[str, Any]:
    """Start a schedule: ``round_0001/mixture.json`` (p_1) and the state; the mixture."""
    state_path = config.output_dir / STATE_NAME
    if state_path.exists() and not force:
        raise MixtureError(f"{state_path} exists; pass --force to start the schedule again")
    return publish(config, scheduler_from_config(config), 1)


def advance_schedule(config: MixtureConfig) -> dict[str, Any]:
    """Observe the losses the next mixture needs, publish it; the next round's mixture.

    Raises ``LossesNotWrittenError`` while the trainer has not written them; nothing is recorded
    then, nor when a loss file is wrong, so the same call can simply be made again.
    """
    scheduler = load_scheduler(config)
    target = scheduler.current_round + 1
    if target > scheduler.rounds:
        mode = " (static mode: T = 1 needs no feedback)" if scheduler.rounds == 1 else ""
        raise MixtureError(f"all {scheduler.rounds} rounds already have a mixture{mode}")
    for r in range(scheduler.last_observed_round + 1, scheduler.newest_round(target) + 1):
        for evaluation in read_losses(config, r).all_evaluations():
            scheduler.observe(
                r, evaluation.losses, step=evaluation.global_step, ckpt_id=evaluation.model_ckpt
            )
    scheduler.next_mixture()
    return publish(config, scheduler, target)


def sample_scheduled_round(
    config: MixtureConfig,
    round_index: int | None = None,
    *,
    executor: Executor | None = None,
    overwrite: bool = False,
    progress: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Materialise a round of the schedule (default: the newest mixture); its manifest.

    ``executor`` writes the parts (default: this process); see ``sampler.sample_round`` for
    resuming, ``overwrite`` and failures.
    """
    scheduler = load_scheduler(config)
    target = round_index if round_index is not None else scheduler.current_round
    mixture = scheduler.mixture(target)
    return sample_round(
        config.output_dir,
        target,
        mixture,
        config.samples_per_round,
        round_inputs(config),
        seed=config.seed,
        skill_column=config.skill_column,
        shard_skills=config.shard_skills,
        rows_per_part=config.rows_per_part,
        executor=executor,
        graph_hash=graph_hash_of(scheduler),
        parameters={
            k: v
            for k, v in scheduler.config_dict().items()
            if k not in ("graph", "train_skills", "eval_skills")
        },
        overwrite=overwrite,
        progress=progress,
        console=console,
    )


# -- the skills graph ------------------------------------------------------------------------


def training_run(item: dict[str, Any], source: Path) -> TrainingRun:
    """One entry of a runs file's ``runs:`` list."""
    try:
        return TrainingRun(
            tuple(item["trained_on"]), {str(k): float(v) for k, v in item["losses"].items()}
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MixtureError(
            f"{source}: each run needs trained_on: [skills] and losses: {{skill: loss}} ({exc})"
        ) from None


def build_graph(runs_file: Path) -> SkillsGraph:
    """The skills graph A from a runs file (single-skill or pair runs), with provenance."""
    spec = validated(GraphRuns, read_mapping(runs_file, ConfigError), runs_file, ConfigError)
    training_runs = [training_run(item, runs_file) for item in spec.runs]
    provenance = {**spec.provenance, "runs_file": str(runs_file)}
    if spec.method == "single":
        return from_single_skill_runs(
            spec.base_losses,
            training_runs,
            train_skills=spec.train_skills,
            eval_skills=spec.eval_skills,
            relative=spec.relative,
            clip_negative=spec.clip_negative,
            provenance=provenance,
        )
    return from_pair_runs(
        spec.base_losses,
        training_runs,
        skills=spec.train_skills,
        weighting=spec.weighting,
        offdiag=spec.offdiag,
        provenance=provenance,
    )
