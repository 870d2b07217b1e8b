"""``gristmill stages``: every stage with its parameters, types, defaults and docs."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gristmill.core.registry import available_stages, get_stage_class
from gristmill.core.stage import Stage

#: reST inline code (``x``), a role (:class:`x`), a literal-block marker at a line's end (::).
_CODE = re.compile(r"(?::[a-z]+:)?``?([^`]+)``?")


def render_doc(text: str) -> str:
    """A docstring (reST) as terminal text: inline code in colour without its backquotes,
    roles reduced to their text, ``::`` to ``:``; everything else escaped for rich."""
    text = re.sub(r"::$", ":", text, flags=re.M)
    parts, last = [], 0
    for match in _CODE.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(f"[cyan]{escape(match.group(1))}[/cyan]")
        last = match.end()
    parts.append(escape(text[last:]))
    return "".join(parts)


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        return "required" if field.default_factory is None else repr(field.default_factory())  # type: ignore[call-arg]
    return repr(field.default)


def stage_table(cls: type[Stage]) -> Table:
    table = Table("parameter", "type", "default", "description", title=f"[bold]{cls.name}")
    for name, field in cls.Params.model_fields.items():
        table.add_row(
            name,
            escape(_type_name(field.annotation)),
            escape(_default(field)),
            render_doc(field.description or ""),
        )
    return table


def first_paragraph(cls: type) -> str:
    return (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")


def print_stages(name: str | None, console: Console) -> None:
    if name is None:
        overview = Table("stage", "what it does", "reads", title="gristmill stages")
        for stage_name, cls in available_stages().items():
            requires = cls.requires if isinstance(cls.requires, tuple) else ("(depends on params)",)
            overview.add_row(stage_name, render_doc(first_paragraph(cls)), ", ".join(requires))
        console.print(overview)
        console.print("[cyan]gristmill stages NAME[/cyan] shows a stage's parameters.")
        return
    cls = get_stage_class(name)
    console.print(render_doc(inspect.getdoc(cls) or ""))
    console.print(stage_table(cls))
