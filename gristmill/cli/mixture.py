"""``gristmill mixture``: drive a Skill-It schedule from the shell, one round at a time.

Every command is a short, restartable step over files in ``output_dir`` (state, mixtures,
manifests, the trainer's ``eval_losses.json``), so a trainer or a cron-like loop can call them
without a long-lived process; docs/skillit.md shows the loop.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
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

from gristmill.errors import ConfigError, GristmillError
from gristmill.mixing.graph import (
    TrainingRun,
    from_pair_runs,
    from_single_skill_runs,
    graph_hash,
    load_graph,
)
from gristmill.mixing.sampler import round_dir, sample_round
from gristmill.mixing.scheduler import MixtureError, SkillItScheduler, write_json_atomically

M = TypeVar("M", bound=BaseModel)
STATE_NAME = "scheduler_state.json"
MIXTURE_NAME = "mixture.json"
LOSSES_NAME = "eval_losses.json"
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_WAITING = 75  # EX_TEMPFAIL: the trainer has not written the losses yet; try again later

mixture_app = typer.Typer(
    help="Skill-It data mixing: init a schedule, compute the next mixture, sample a round.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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
    window: PositiveInt = Field(3, description="how many rounds of losses the update sums")
    rounds: PositiveInt = Field(1, description="T; 1 is static mode (no feedback)")
    prior: dict[str, NonNegativeFloat] | None = Field(None, description="default uniform")
    loss_lag: Literal[0, 1] = Field(1, description="1: p_{t+1} uses losses at the start of round t")
    window_reduce: Literal["sum", "mean"] = "sum"
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


class EvalLosses(BaseModel):
    """What a trainer writes to ``round_NNNN/eval_losses.json`` (spec B.9 feedback contract)."""

    model_config = ConfigDict(extra="allow")

    round: int
    losses: dict[str, Any]
    global_step: int | None = None
    model_ckpt: str | None = None
    n_val_samples: int | dict[str, int] | None = None


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


# -- small helpers ----------------------------------------------------------------------------


class _WaitingError(GristmillError):
    """The next step needs a file the trainer has not written yet."""


@contextmanager
def _reported() -> Iterator[None]:
    """One clear line on stderr and a meaningful exit code instead of a traceback."""
    try:
        yield
    except _WaitingError as exc:
        typer.echo(f"waiting: {exc}", err=True)
        raise typer.Exit(EXIT_WAITING) from None
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except GristmillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


def _read_mapping(path: Path, error: type[GristmillError] = MixtureError) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return data


def _validated(
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


def load_config(path: Path) -> MixtureConfig:
    """Validate a mixture config (exit code 2 on any problem, before anything is written)."""
    config = _validated(MixtureConfig, _read_mapping(path, ConfigError), path, ConfigError)
    base = path.parent
    return config.model_copy(
        update={"graph": base / config.graph, "output_dir": base / config.output_dir}
    )


def _expand_inputs(config: MixtureConfig, base: Path) -> list[str]:
    """Files for each input pattern; a sampled round under an input directory is never an input."""
    output = config.output_dir.resolve()
    found: set[str] = set()
    for pattern in config.inputs:
        full = Path(pattern) if Path(pattern).is_absolute() else base / pattern
        if any(c in pattern for c in "*?["):
            matches = [Path(p) for p in glob.glob(str(full), recursive=True)]
        elif full.is_dir():
            matches = list(full.rglob("*.parquet"))
        else:
            matches = [full] if full.exists() else []
        matches = [m for m in matches if m.is_file() and not m.name.startswith((".", "_"))]
        matches = [m for m in matches if not m.resolve().is_relative_to(output)]
        if not matches:
            raise MixtureError(f"input {pattern!r} matches no file")
        found.update(str(m) for m in matches)
    return sorted(found)


def _scheduler_from_config(config: MixtureConfig) -> SkillItScheduler:
    """Graph and config must agree on skills and shape: a mismatch is a config error."""
    try:
        graph = load_graph(config.graph, config.train_skills, config.evals)
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
        )
    except MixtureError as exc:
        raise ConfigError(f"graph {config.graph}: {exc}") from None


def _load_scheduler(config: MixtureConfig) -> SkillItScheduler:
    """The saved schedule, refused if the config has changed since ``init`` (silent drift)."""
    state_path = config.output_dir / STATE_NAME
    if not state_path.exists():
        raise MixtureError(f"{state_path} does not exist; run `gristmill mixture init` first")
    scheduler = SkillItScheduler.load(state_path)
    fresh = _scheduler_from_config(config)
    changed = sorted(k for k, v in fresh.config_dict().items() if scheduler.config_dict()[k] != v)
    if changed:
        raise MixtureError(
            f"the config changed since init ({', '.join(changed)}); restore it or start a new "
            "output_dir with `gristmill mixture init --force`"
        )
    return scheduler


def _graph_hash_of(scheduler: SkillItScheduler) -> str:
    return graph_hash(scheduler.train_skills, scheduler.eval_skills, scheduler.graph)


def _mixture_payload(scheduler: SkillItScheduler, round_index: int) -> dict[str, Any]:
    return {
        "round": round_index,
        "mixture": scheduler.mixture(round_index),
        "window_rounds": scheduler.window_rounds(round_index),
        "graph_hash": _graph_hash_of(scheduler),
        "eta": scheduler.eta,
        "window": scheduler.window,
        "window_reduce": scheduler.window_reduce,
        "loss_lag": scheduler.loss_lag,
        "rounds": scheduler.rounds,
        "static": scheduler.rounds == 1,
    }


def _publish(config: MixtureConfig, scheduler: SkillItScheduler, round_index: int) -> None:
    """Mixture file first, state second: a crash in between only makes the step rerun."""
    payload = _mixture_payload(scheduler, round_index)
    write_json_atomically(round_dir(config.output_dir, round_index) / MIXTURE_NAME, payload)
    scheduler.save(config.output_dir / STATE_NAME)
    typer.echo(json.dumps(payload, indent=2))


def _read_losses(config: MixtureConfig, round_index: int) -> EvalLosses:
    path = round_dir(config.output_dir, round_index) / LOSSES_NAME
    if not path.exists():
        raise _WaitingError(
            f"{path} is not written yet (the trainer writes it at the start of round {round_index})"
        )
    losses = _validated(EvalLosses, _read_mapping(path), path)
    if losses.round != round_index:
        raise MixtureError(f"{path}: says round {losses.round}, expected {round_index}")
    return losses


# -- commands ---------------------------------------------------------------------------------

ConfigArg = Annotated[
    Path, typer.Argument(help="mixture config (YAML or JSON)", exists=True, dir_okay=False)
]


@mixture_app.command()
def init(
    config: ConfigArg,
    force: Annotated[bool, typer.Option(help="replace an existing schedule in output_dir")] = False,
) -> None:
    """Start a schedule: write round_0001/mixture.json (p_1; the only one in static mode)."""
    with _reported():
        settings = load_config(config)
        state_path = settings.output_dir / STATE_NAME
        if state_path.exists() and not force:
            raise MixtureError(f"{state_path} exists; pass --force to start the schedule again")
        scheduler = _scheduler_from_config(settings)
        _publish(settings, scheduler, 1)


@mixture_app.command("next")
def next_mixture(config: ConfigArg) -> None:
    """Read the trainer's eval_losses.json, write and print the next round's mixture.

    Exits with 75 while the needed eval_losses.json is not there yet, so a loop can poll.
    """
    with _reported():
        settings = load_config(config)
        scheduler = _load_scheduler(settings)
        target = scheduler.current_round + 1
        if target > scheduler.rounds:
            mode = " (static mode: T = 1 needs no feedback)" if scheduler.rounds == 1 else ""
            raise MixtureError(f"all {scheduler.rounds} rounds already have a mixture{mode}")
        for r in range(scheduler.last_observed_round + 1, scheduler.window_rounds(target)[-1] + 1):
            reported = _read_losses(settings, r)
            scheduler.observe(
                r, reported.losses, step=reported.global_step, ckpt_id=reported.model_ckpt
            )
        scheduler.next_mixture()
        _publish(settings, scheduler, target)


@mixture_app.command()
def sample(
    config: ConfigArg,
    round_index: Annotated[
        int | None,
        typer.Option("--round", min=1, help="round to materialise; default: the latest mixture"),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="processes writing parts; output is identical")
    ] = 1,
    overwrite: Annotated[
        bool, typer.Option(help="resample a round that already has a manifest")
    ] = False,
) -> None:
    """Materialise a round: round_NNNN/part-XXXXX.parquet plus manifest.json."""
    with _reported():
        settings = load_config(config)
        scheduler = _load_scheduler(settings)
        target = round_index if round_index is not None else scheduler.current_round
        manifest = sample_round(
            settings.output_dir,
            target,
            scheduler.mixture(target),
            settings.samples_per_round,
            _expand_inputs(settings, config.parent),
            seed=settings.seed,
            skill_column=settings.skill_column,
            shard_skills=settings.shard_skills,
            rows_per_part=settings.rows_per_part,
            workers=workers,
            graph_hash=_graph_hash_of(scheduler),
            parameters={
                k: v
                for k, v in scheduler.config_dict().items()
                if k not in ("graph", "train_skills", "eval_skills")
            },
            overwrite=overwrite,
        )
        summary = {k: manifest[k] for k in ("round", "counts", "repeats")}
        summary["parts"] = len(manifest["parts"])
        summary["directory"] = str(round_dir(settings.output_dir, target))
        typer.echo(json.dumps(summary, indent=2))


@mixture_app.command()
def graph(
    runs: Annotated[
        Path,
        typer.Argument(help="losses of the short runs (YAML or JSON)", exists=True, dir_okay=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the graph JSON")],
) -> None:
    """Build the skills graph A from single-skill (Alg. 3) or pair (Alg. 2) runs + provenance."""
    with _reported():
        spec = _validated(GraphRuns, _read_mapping(runs, ConfigError), runs, ConfigError)
        training_runs = [_training_run(item, runs) for item in spec.runs]
        provenance = {**spec.provenance, "runs_file": str(runs)}
        if spec.method == "single":
            built = from_single_skill_runs(
                spec.base_losses,
                training_runs,
                train_skills=spec.train_skills,
                eval_skills=spec.eval_skills,
                relative=spec.relative,
                clip_negative=spec.clip_negative,
                provenance=provenance,
            )
        else:
            built = from_pair_runs(
                spec.base_losses,
                training_runs,
                skills=spec.train_skills,
                weighting=spec.weighting,
                offdiag=spec.offdiag,
                provenance=provenance,
            )
        built.save(out)
        typer.echo(
            json.dumps({"graph": str(out), "hash": built.hash, "shape": list(built.matrix.shape)})
        )


def _training_run(item: dict[str, Any], source: Path) -> TrainingRun:
    try:
        return TrainingRun(
            tuple(item["trained_on"]), {str(k): float(v) for k, v in item["losses"].items()}
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MixtureError(
            f"{source}: each run needs trained_on: [skills] and losses: {{skill: loss}} ({exc})"
        ) from None
