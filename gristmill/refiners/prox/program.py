"""The ProX program language: call types, rendering, and the two parsers.

Model output is untrusted text copied from adversarial web pages, so neither parser runs
any of it. The compat parser reproduces the released executor's string slicing exactly,
quirks included, because parity with the released models depends on it. The
strict parser reads each line with ``ast`` and accepts only whitelisted calls with literal
arguments, for users who prefer rejecting odd output to guessing at it.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from typing import Literal

Level = Literal["doc", "chunk"]

NOOP_NAMES = frozenset({"keep_chunk", "skip_chunk", "untouch_doc"})
DOC_NAMES = frozenset({"drop_doc", "keep_doc"})


@dataclass(frozen=True, slots=True)
class RemoveLines:
    """Delete global lines ``start..end`` inclusive (compat allows any ints, even start > end)."""

    start: int
    end: int

    def render(self) -> str:
        return f"remove_lines(line_start={self.start}, line_end={self.end})"


@dataclass(frozen=True, slots=True)
class RemoveAll:
    """``remove_lines(all=True)``: delete every line, i.e. drop the document."""

    def render(self) -> str:
        return "remove_lines(all=True)"


@dataclass(frozen=True, slots=True)
class Normalize:
    """Replace ``source`` by ``target``.

    ``target`` is ``None`` for the one-argument form, which upstream applies without the
    guard against empty or single-space sources; keeping the distinction lets compat
    reproduce that.
    """

    source: str
    target: str | None = ""

    def render(self) -> str:
        for s in (self.source, self.target or ""):
            if not is_safe_literal(s):
                raise ValueError(f"string cannot be written safely in a ProX program: {s!r}")
        if self.target is None:
            return f'normalize(source_str="{self.source}")'
        return f'normalize(source_str="{self.source}", target_str="{self.target}")'


@dataclass(frozen=True, slots=True)
class NoOp:
    """A recognised call that changes nothing (``keep_chunk()``, ``keep_doc()``, ...)."""

    name: str

    def render(self) -> str:
        return f"{self.name}()"


@dataclass(frozen=True, slots=True)
class DocDecision:
    """A strict doc-level verdict: ``drop_doc()`` or ``keep_doc()``."""

    drop: bool

    def render(self) -> str:
        return "drop_doc()" if self.drop else "keep_doc()"


Call = RemoveLines | RemoveAll | Normalize | NoOp | DocDecision


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """What one program line amounted to.

    ``call`` and ``errors`` are independent because compat can both count an error and
    apply the call (a missing ``)``). ``reason`` explains errors and ignored lines for
    audits; it is empty for clean calls.
    """

    call: Call | None
    errors: int = 0
    reason: str = ""


# Characters that make a string read differently by the compat slicer or by ``ast``:
# quote and backslash (no escapes upstream), comma / '=' / ')' (argument splitting).
_UNSAFE_CHARS = frozenset('"\\,=)')


def is_safe_literal(s: str) -> bool:
    """True if ``s`` round-trips identically through the compat and strict parsers.

    Programs written by rules must mean the same thing to both executors; anything that
    upstream's slicing would cut or that Python would unescape is refused.
    """
    return s.isprintable() and not (_UNSAFE_CHARS & set(s))


# --------------------------------------------------------------------------- compat


def _value(part: str) -> str:
    """Upstream's value extraction: the text between the first and second '='."""
    return part.split("=")[1]


def parse_compat_line(op: str) -> ParsedLine:
    """Parse one line exactly like the released executor.

    Recognition is by prefix at column 0; unknown lines are ignored without error, which is
    why no-op names need no list here.
    """
    if op.startswith("remove_lines"):
        if "all=True" in op:
            return ParsedLine(RemoveAll())
        kind = "remove"
    elif op.startswith("normalize"):
        kind = "normalize"
    else:
        # Upstream ignores every other line; naming the no-ops only feeds the call count.
        name = op.strip().removesuffix("()")
        if name in NOOP_NAMES:
            return ParsedLine(NoOp(name))
        return ParsedLine(None, 0, "ignored: not a remove_lines/normalize line")

    open_at = op.find("(")
    if open_at < 0:
        return ParsedLine(None, 1, "missing '('")
    errors = 0
    close_at = op.find(")")
    if close_at < 0:
        errors, close_at = 1, len(op) - 1
    parts = op[open_at + 1 : close_at].split(",")

    if kind == "remove":
        try:
            start, end = int(_value(parts[0])), int(_value(parts[1]))
        except (IndexError, ValueError):
            return ParsedLine(None, errors + 1, "remove_lines arguments not parseable")
        return ParsedLine(RemoveLines(start, end), errors, "missing ')'" if errors else "")

    if len(parts) >= 3:
        return ParsedLine(None, errors, "ignored: normalize with 3+ comma-separated parts")
    try:
        source = _value(parts[0]).strip('"')
        target = _value(parts[1]).strip('"') if len(parts) == 2 else None
    except IndexError:
        return ParsedLine(None, errors + 1, "normalize arguments not parseable")
    return ParsedLine(Normalize(source, target), errors, "missing ')'" if errors else "")


# --------------------------------------------------------------------------- strict

# One line of model output is a single short call; anything far longer is not worth handing
# to the parser (deeply nested input makes ``ast.parse`` exhaust its stack).
MAX_STRICT_LINE = 4096

# name -> parameter slots, each slot a tuple of accepted keyword spellings.
_CHUNK_SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "remove_lines": (("line_start", "start"), ("line_end", "end")),
    "normalize": (("source_str",), ("target_str",)),
    **{name: () for name in NOOP_NAMES},
}
_DOC_SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {name: () for name in DOC_NAMES}


class _RejectedError(Exception):
    """Internal: carries the reason a strict line was refused."""


def _literal(node: ast.expr) -> int | str:
    value = node.value if isinstance(node, ast.Constant) else None
    if type(value) is int or type(value) is str:  # bool is an int subclass: refused too
        return value
    raise _RejectedError("arguments must be int or string literals")


def _bind(call: ast.Call, slots: tuple[tuple[str, ...], ...]) -> list[int | str | None]:
    """Bind positional and keyword arguments to slots the way Python would, or refuse."""
    if any(isinstance(a, ast.Starred) for a in call.args):
        raise _RejectedError("star arguments are not allowed")
    if len(call.args) > len(slots):
        raise _RejectedError("too many arguments")
    bound: list[int | str | None] = [None] * len(slots)
    for i, arg in enumerate(call.args):
        bound[i] = _literal(arg)
    for kw in call.keywords:
        if kw.arg is None:
            raise _RejectedError("** arguments are not allowed")
        slot = next((i for i, names in enumerate(slots) if kw.arg in names), None)
        if slot is None:
            raise _RejectedError(f"unknown keyword {kw.arg!r}")
        if bound[slot] is not None:
            raise _RejectedError(f"argument {kw.arg!r} given twice")
        bound[slot] = _literal(kw.value)
    return bound


def _strict_chunk_call(name: str, call: ast.Call) -> Call:
    if name == "remove_lines" and call.keywords and call.keywords[0].arg == "all":
        value = call.keywords[0].value
        if (
            call.args
            or len(call.keywords) != 1
            or not (isinstance(value, ast.Constant) and value.value is True)
        ):
            raise _RejectedError("remove_lines(all=...) takes exactly all=True")
        return RemoveAll()
    bound = _bind(call, _CHUNK_SIGNATURES[name])
    if name == "remove_lines":
        start, end = bound
        if not (isinstance(start, int) and isinstance(end, int)):
            raise _RejectedError("remove_lines needs two int line numbers")
        if start < 0 or start > end:
            raise _RejectedError("remove_lines needs 0 <= line_start <= line_end")
        return RemoveLines(start, end)
    if name == "normalize":
        source, target = bound
        target = "" if target is None else target
        if not (isinstance(source, str) and isinstance(target, str)):
            raise _RejectedError("normalize needs string arguments")
        if not source.strip():
            raise _RejectedError("normalize source must contain a non-space character")
        if any(c in s for s in (source, target) for c in "\r\n"):
            raise _RejectedError("normalize strings may not contain line breaks")
        return Normalize(source, target)
    return NoOp(name)


def parse_strict_line(line: str, level: Level = "chunk") -> ParsedLine:
    """Parse one line as a bare whitelisted call with literal arguments, or refuse it.

    Only the syntax tree is inspected; nothing is compiled to code or run. Every refusal
    is one error, so output that is not a clean program is counted, not guessed at.
    """
    src = line.strip()
    if len(src) > MAX_STRICT_LINE:
        return ParsedLine(None, 1, "line too long")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes warn, or raise under -W error
            tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return ParsedLine(None, 1, f"not a Python expression: {type(exc).__name__}")
    node = tree.body
    if not isinstance(node, ast.Call):
        return ParsedLine(None, 1, "not a call")
    if not isinstance(node.func, ast.Name):
        return ParsedLine(None, 1, "callee must be a plain name")
    name = node.func.id
    signatures = _CHUNK_SIGNATURES if level == "chunk" else _DOC_SIGNATURES
    if name not in signatures:
        return ParsedLine(None, 1, f"{name!r} is not allowed at {level} level")
    try:
        if level == "doc":
            if node.args or node.keywords:
                raise _RejectedError(f"{name}() takes no arguments")
            return ParsedLine(DocDecision(drop=name == "drop_doc"))
        return ParsedLine(_strict_chunk_call(name, node))
    except _RejectedError as exc:
        return ParsedLine(None, 1, str(exc))
