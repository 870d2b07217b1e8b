"""YAML pipelines: parsed with ``safe_load``, validated by the stages' own pydantic models.

Errors name the file, the line, the stage and the parameter, so that a typo in a 40-stage
pipeline is found in seconds. A pipeline file looks like::

    name: default
    input:  {paths: [data_samples/*.parquet]}
    output: {path: output/default}
    executor: {type: local, workers: 2}
    stages:
      - language: {threshold: 0.65}
      - gopher_quality            # a bare name takes the defaults
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)

from gristmill.core import columns as cols
from gristmill.core.pipeline import Pipeline
from gristmill.core.registry import get_stage_class
from gristmill.core.stage import Stage, describe_validation_error
from gristmill.errors import ConfigError
from gristmill.io.base import Reader
from gristmill.io.jsonl import JSONL_SUFFIXES, JsonlReader
from gristmill.io.parquet import ParquetReader, ParquetWriter


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputConfig(_Section):
    paths: list[str] = Field(description="files, directories, globs or fsspec URLs")
    format: Literal["auto", "parquet", "jsonl"] = "auto"
    columns: list[str] | None = Field(None, description="read only these (id and text always)")
    batch_size: PositiveInt = Field(2048, description="documents per batch handed to the stages")
    task_size_mb: PositiveFloat = Field(512, description="split larger Parquet files by row group")
    id_column: str = cols.ID
    text_column: str = cols.TEXT

    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        first = self.paths[0] if self.paths else ""
        return "jsonl" if any(s in first for s in JSONL_SUFFIXES) else "parquet"

    def build(self) -> Reader:
        if self.resolved_format() == "jsonl":
            return JsonlReader(
                self.paths,
                columns=self.columns,
                batch_size=self.batch_size,
                id_column=self.id_column,
                text_column=self.text_column,
            )
        return ParquetReader(
            self.paths,
            columns=self.columns,
            batch_size=self.batch_size,
            task_size_mb=self.task_size_mb,
            id_column=self.id_column,
            text_column=self.text_column,
        )


class OutputConfig(_Section):
    path: str
    rejects: bool = Field(True, description="keep dropped rows, with their reason, in _rejects/")
    compression: Literal["zstd", "snappy", "gzip", "lz4", "none"] = "zstd"
    row_group_rows: PositiveInt = 20_000

    def build(self) -> ParquetWriter:
        return ParquetWriter(
            self.path, compression=self.compression, row_group_rows=self.row_group_rows
        )


class SlurmConfig(_Section):
    """A ``dask_jobqueue.SLURMCluster``: each Slurm job runs ``processes`` one-thread workers."""

    queue: str | None = Field(default=None, description="Slurm partition (-p)")
    account: str | None = Field(default=None, description="Slurm account (-A)")
    cores: PositiveInt = Field(default=1, description="cores per job")
    processes: PositiveInt | None = Field(
        default=None,
        description="worker processes per job (default: one per core, one thread each)",
    )
    memory: str = Field(default="4GB", description="memory per job, e.g. 16GB")
    walltime: str = Field(default="01:00:00", description="time limit per job")
    gpus_per_job: NonNegativeInt = Field(
        default=0, description="GPUs per job: adds --gres=gpu:N and a GPU worker resource"
    )
    job_directives: list[str] = Field(
        default_factory=list, description="extra #SBATCH options, e.g. ['--qos=high']"
    )
    job_script_prologue: list[str] = Field(
        default_factory=list, description="shell lines run before the worker starts"
    )
    jobs: PositiveInt = Field(default=1, description="jobs to start when not adaptive")
    minimum_jobs: NonNegativeInt | None = Field(
        default=None,
        description="adaptive scaling: fewest jobs (set this or maximum_jobs to adapt)",
    )
    maximum_jobs: PositiveInt | None = Field(
        default=None, description="adaptive scaling: most jobs"
    )
    scheduler_host: str | None = Field(
        default=None,
        description="address the scheduler listens on, reachable from the compute nodes",
    )
    interface: str | None = Field(default=None, description="network interface of the workers")
    log_directory: str | None = Field(default=None, description="where Slurm writes the job logs")
    local_directory: str | None = Field(default=None, description="workers' scratch directory")

    @property
    def adaptive(self) -> bool:
        return self.minimum_jobs is not None or self.maximum_jobs is not None


class DaskConfig(_Section):
    """Where the Dask executor finds its workers; ``cluster`` defaults from what is set."""

    cluster: Literal["local", "scheduler", "slurm"] | None = Field(
        default=None, description="local (LocalCluster), scheduler (an existing one) or slurm"
    )
    scheduler: str | None = Field(default=None, description="address of an existing scheduler")
    slurm: SlurmConfig | None = None
    retries: NonNegativeInt = Field(
        default=1, description="times a task may lose its worker (killed, out of memory) and rerun"
    )
    connect_timeout: PositiveFloat = Field(
        default=30, description="seconds to wait for an existing scheduler"
    )
    dashboard_address: str = Field(default=":8787", description="dashboard of a cluster we start")
    gpus_per_worker: NonNegativeFloat = Field(
        default=0, description="GPU resource each LocalCluster worker advertises"
    )
    memory_limit: str | None = Field(
        default="auto",
        description="memory limit per LocalCluster worker (the nanny restarts it above)",
    )

    def resolved_cluster(self) -> Literal["local", "scheduler", "slurm"]:
        if self.cluster is not None:
            return self.cluster
        if self.scheduler:
            return "scheduler"
        return "slurm" if self.slurm is not None else "local"


class ExecutorConfig(_Section):
    type: Literal["local", "dask"] = "local"
    workers: PositiveInt = 1
    dask: DaskConfig = Field(default_factory=DaskConfig)


@dataclass
class StageEntry:
    name: str
    params: dict[str, Any]
    line: int | None = None
    param_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineConfig:
    """A parsed, not yet built, pipeline file."""

    source: str
    name: str
    input: InputConfig
    output: OutputConfig
    executor: ExecutorConfig
    stages: list[StageEntry]
    description: str = ""

    def build_stages(self) -> list[Stage]:
        return [build_stage(entry, self.source) for entry in self.stages]

    def build(self) -> Pipeline:
        return Pipeline(
            self.build_stages(),
            reader=self.input.build(),
            writer=self.output.build(),
            rejects=self.output.rejects,
            name=self.name,
        )


def _where(source: str, line: int | None) -> str:
    return f"{source} line {line}" if line else source


def build_stage(entry: StageEntry, source: str = "<pipeline>") -> Stage:
    """Look the stage up and validate its parameters, with errors pointing at the YAML line."""
    try:
        cls = get_stage_class(entry.name)
    except ConfigError as error:
        raise ConfigError(f"{_where(source, entry.line)}: {error}") from None
    try:
        params = cls.Params.model_validate(entry.params)
    except ValidationError as error:
        first = error.errors()[0]["loc"]
        line = entry.param_lines.get(str(first[0]), entry.line) if first else entry.line
        raise ConfigError(
            f"{_where(source, line)}: {describe_validation_error(entry.name, error)}"
        ) from None
    return cls(params)


# -- parsing ---------------------------------------------------------------------------------
def _key_lines(node: yaml.Node | None) -> dict[str, tuple[int, yaml.Node]]:
    """For a mapping node: each key's 1-based line and its value node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k.start_mark.line + 1, v) for k, v in node.value}


def _stage_entries(raw: Any, node: yaml.Node | None, source: str) -> list[StageEntry]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'stages' must be a list")
    items = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(raw)
    entries = []
    for item, item_node in zip(raw, items, strict=True):
        line = item_node.start_mark.line + 1 if item_node is not None else None
        if isinstance(item, str):
            entries.append(StageEntry(item, {}, line))
            continue
        if not (isinstance(item, dict) and len(item) == 1):
            raise ConfigError(
                f"{_where(source, line)}: a stage is a name, or a mapping of one name to its "
                "parameters (`- language: {threshold: 0.65}`)"
            )
        name, params = next(iter(item.items()))
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError(
                f"{_where(source, line)}: the parameters of stage '{name}' must be a mapping"
            )
        value_node = _key_lines(item_node).get(str(name), (line, None))[1]
        param_lines = {k: v[0] for k, v in _key_lines(value_node).items()}
        entries.append(StageEntry(str(name), params, line, param_lines))
    return entries


def _section(model: type[_Section], raw: Any, name: str, source: str, line: int | None) -> Any:
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{_where(source, line)}: section '{name}': {problems}") from None


def parse_pipeline(text: str, source: str = "<pipeline>") -> PipelineConfig:
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a pipeline file is a mapping with input, output and stages")
    known = {"name", "description", "input", "output", "executor", "stages"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(map(repr, unknown))}")
    lines = _key_lines(root)
    for required in ("input", "output"):
        if required not in raw:
            raise ConfigError(f"{source}: the '{required}' section is missing")
    raw_input = raw["input"]
    if isinstance(raw_input, dict) and isinstance(raw_input.get("paths"), str):
        raw_input = {**raw_input, "paths": [raw_input["paths"]]}
    return PipelineConfig(
        source=source,
        name=str(raw.get("name") or Path(source).stem),
        description=str(raw.get("description") or ""),
        input=_section(InputConfig, raw_input, "input", source, lines.get("input", (None,))[0]),
        output=_section(
            OutputConfig, raw["output"], "output", source, lines.get("output", (None,))[0]
        ),
        executor=_section(
            ExecutorConfig,
            raw.get("executor"),
            "executor",
            source,
            lines.get("executor", (None,))[0],
        ),
        stages=_stage_entries(raw.get("stages"), lines.get("stages", (None, None))[1], source),
    )


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline file (stages included) without running anything."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    config = parse_pipeline(text, str(path))
    config.build_stages()
    return config
