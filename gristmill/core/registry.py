"""Stage lookup by name, for YAML pipelines and ``gristmill stages``.

Built-in stages register when their module is imported; ``load_builtin_stages`` imports every
module of the packages in ``BUILTIN_PACKAGES`` (so a new stage module needs no list to be
edited), and third-party packages add theirs through the ``gristmill.stages`` entry point group.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TypeVar

from gristmill.core.stage import Stage
from gristmill.errors import ConfigError

StageClass = TypeVar("StageClass", bound=type[Stage])

_STAGES: dict[str, type[Stage]] = {}

#: Modules, and packages whose every module, registers built-in stages when imported.
BUILTIN_MODULES: tuple[str, ...] = ("gristmill.adapters.datatrove_in_gristmill",)
BUILTIN_PACKAGES: tuple[str, ...] = (
    "gristmill.stages",
    "gristmill.refiners",
    "gristmill.instructions",
)

_loaded = False


def register_stage(cls: StageClass) -> StageClass:
    """Class decorator: make a stage available by its ``name`` in YAML pipelines."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} has no name")
    existing = _STAGES.get(cls.name)
    if existing is not None and existing is not cls:
        same = (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
        if not same:
            raise TypeError(
                f"stage name {cls.name!r} is taken by {existing.__module__}.{existing.__qualname__}"
            )
    _STAGES[cls.name] = cls
    return cls


def load_builtin_stages() -> None:
    """Import every built-in stage module and the plugins' entry points, once."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(info.name)
    for entry in entry_points(group="gristmill.stages"):
        entry.load()
    _loaded = True


def available_stages() -> dict[str, type[Stage]]:
    load_builtin_stages()
    return dict(sorted(_STAGES.items()))


def get_stage_class(name: str) -> type[Stage]:
    """The stage class registered under ``name``, or a ConfigError suggesting close names."""
    stages = available_stages()
    if name in stages:
        return stages[name]
    close = difflib.get_close_matches(name, stages, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ConfigError(f"unknown stage {name!r}{hint}; `gristmill stages` lists them all")
