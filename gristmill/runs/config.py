"""Pipeline files: YAML read with ``safe_load``, every section validated by its own model.

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

from dataclasses import dataclass
from pathlib import Path

from gristmill.core.config import (
    StageEntry,
    build_stages,
    key_lines,
    parse_yaml,
    stage_entries,
    validate_section,
)
from gristmill.core.stage import Stage
from gristmill.errors import ConfigError
from gristmill.executors.config import ExecutorConfig
from gristmill.io.config import InputConfig, OutputConfig
from gristmill.runs.pipeline import Pipeline

SECTIONS = ("name", "description", "input", "output", "executor", "stages")


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
        return build_stages(self.stages, self.source)

    def build(self) -> Pipeline:
        return Pipeline(
            self.build_stages(),
            reader=self.input.build(),
            writer=self.output.build(),
            rejects=self.output.rejects,
            name=self.name,
        )


def parse_pipeline(text: str, source: str = "<pipeline>") -> PipelineConfig:
    raw, root = parse_yaml(text, source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a pipeline file is a mapping with input, output and stages")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(map(repr, unknown))}")
    lines = key_lines(root)
    for required in ("input", "output"):
        if required not in raw:
            raise ConfigError(f"{source}: the '{required}' section is missing")
    raw_input = raw["input"]
    if isinstance(raw_input, dict) and isinstance(raw_input.get("paths"), str):
        raw_input = {**raw_input, "paths": [raw_input["paths"]]}

    def line(name: str) -> int | None:
        return lines.get(name, (None,))[0]

    return PipelineConfig(
        source=source,
        name=str(raw.get("name") or Path(source).stem),
        description=str(raw.get("description") or ""),
        input=validate_section(InputConfig, raw_input, "input", source, line("input")),
        output=validate_section(OutputConfig, raw["output"], "output", source, line("output")),
        executor=validate_section(
            ExecutorConfig, raw.get("executor"), "executor", source, line("executor")
        ),
        stages=stage_entries(raw.get("stages"), lines.get("stages", (None, None))[1], source),
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
