"""YAML helpers for pipeline files: stage entries parsed with ``safe_load`` and built through
the registry, errors naming the file, the line, the stage and the parameter.

A stage entry is a bare name (``- gopher_quality``, the defaults) or a mapping of one name to
its parameters (``- language: {threshold: 0.65}``). The rest of a pipeline file (input, output,
executor) belongs to the layers that run it (``gristmill.runs.config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gristmill.core.registry import get_stage_class
from gristmill.core.stage import Stage, describe_validation_error
from gristmill.errors import ConfigError


@dataclass
class StageEntry:
    name: str
    params: dict[str, Any]
    line: int | None = None
    param_lines: dict[str, int] = field(default_factory=dict)


def where(source: str, line: int | None) -> str:
    return f"{source} line {line}" if line else source


def build_stage(entry: StageEntry, source: str = "<pipeline>") -> Stage:
    """Look the stage up and validate its parameters, with errors pointing at the YAML line."""
    try:
        cls = get_stage_class(entry.name)
    except ConfigError as error:
        raise ConfigError(f"{where(source, entry.line)}: {error}") from None
    try:
        params = cls.Params.model_validate(entry.params)
    except ValidationError as error:
        first = error.errors()[0]["loc"]
        line = entry.param_lines.get(str(first[0]), entry.line) if first else entry.line
        raise ConfigError(
            f"{where(source, line)}: {describe_validation_error(entry.name, error)}"
        ) from None
    return cls(params)


# -- parsing ---------------------------------------------------------------------------------
def key_lines(node: yaml.Node | None) -> dict[str, tuple[int, yaml.Node]]:
    """For a mapping node: each key's 1-based line and its value node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k.start_mark.line + 1, v) for k, v in node.value}


def stage_entries(raw: Any, node: yaml.Node | None, source: str) -> list[StageEntry]:
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
                f"{where(source, line)}: a stage is a name, or a mapping of one name to its "
                "parameters (`- language: {threshold: 0.65}`)"
            )
        name, params = next(iter(item.items()))
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError(
                f"{where(source, line)}: the parameters of stage '{name}' must be a mapping"
            )
        value_node = key_lines(item_node).get(str(name), (line, None))[1]
        param_lines = {k: v[0] for k, v in key_lines(value_node).items()}
        entries.append(StageEntry(str(name), params, line, param_lines))
    return entries


def build_stages(entries: list[StageEntry], source: str = "<pipeline>") -> list[Stage]:
    return [build_stage(entry, source) for entry in entries]


def validate_section(
    model: type[BaseModel], raw: Any, name: str, source: str, line: int | None
) -> Any:
    """A section of a YAML file through its pydantic model, errors naming file and line."""
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{where(source, line)}: section '{name}': {problems}") from None


def parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (for line numbers), with ``safe_load`` only."""
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML ({error})") from None
