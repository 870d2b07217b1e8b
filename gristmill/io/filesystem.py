"""Local paths, globs and fsspec URLs behind one small API, plus atomic writes.

Output is always written under a temporary name and renamed into place, so a reader (or a
resumed run) never sees half a file.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

from gristmill.errors import ConfigError

GLOB_CHARS = "*?["
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class InputFile:
    """One input file: where it is, its size, and its name relative to the input root."""

    url: str
    relative: str
    size: int


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a path or URL, and the path as that filesystem spells it."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def full_url(fs: AbstractFileSystem, path: str) -> str:
    """Turn a filesystem-relative path back into something ``filesystem`` accepts."""
    return str(fs.unstrip_protocol(path)) if _has_protocol(fs) else path


def _has_protocol(fs: AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol not in ("file", "local")


def _root_of(pattern: str) -> str:
    """The directory above the first glob character: names are taken relative to it."""
    cut = min((pattern.find(c) for c in GLOB_CHARS if c in pattern), default=len(pattern))
    return posixpath.dirname(pattern[:cut])


def expand_inputs(patterns: list[str], suffixes: tuple[str, ...]) -> list[InputFile]:
    """Every file matching the patterns (files, directories or globs), sorted, de-duplicated.

    A directory stands for the files in it (recursively) with one of ``suffixes``.
    """
    found: dict[str, InputFile] = {}
    for pattern in patterns:
        fs, path = filesystem(pattern)
        matches = _match(fs, path, suffixes)
        if not matches:
            raise ConfigError(f"input {pattern!r} matches no file")
        root = path.rstrip("/") if fs.isdir(path) else _root_of(path)
        for name, info in matches.items():
            relative = posixpath.relpath(name, root) if root else name.lstrip("/")
            found.setdefault(
                name, InputFile(full_url(fs, name), relative, int(info.get("size", 0)))
            )
    files = sorted(found.values(), key=lambda f: f.url)
    _check_unique_names(files)
    return files


def _match(fs: AbstractFileSystem, path: str, suffixes: tuple[str, ...]) -> dict[str, Any]:
    if any(c in path for c in GLOB_CHARS):
        matches = fs.glob(path, detail=True)
    elif fs.isdir(path):
        matches = fs.find(path, detail=True)
        matches = {k: v for k, v in matches.items() if k.endswith(suffixes)}
    elif fs.exists(path):
        matches = {path: fs.info(path)}
    else:
        return {}
    return {
        k: v
        for k, v in matches.items()
        if v.get("type") != "directory" and not posixpath.basename(k).startswith((".", "_"))
    }


def _check_unique_names(files: list[InputFile]) -> None:
    seen: dict[str, str] = {}
    for file in files:
        if file.relative in seen:
            raise ConfigError(
                f"inputs {seen[file.relative]!r} and {file.url!r} would both write "
                f"{file.relative!r}; give them different names or input roots"
            )
        seen[file.relative] = file.url


def temporary_path(path: str) -> str:
    """A unique sibling name for writing ``path`` before it is renamed into place."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")


def write_bytes_atomically(url: str, data: bytes) -> None:
    fs, path = filesystem(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    temporary = temporary_path(path)
    with fs.open(temporary, "wb") as handle:
        handle.write(data)
    fs.mv(temporary, path)


def remove_stale_temporaries(url: str) -> int:
    """Delete temporary files that a killed run left behind; returns how many."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return 0
    stale = [p for p in fs.find(path) if posixpath.basename(p).startswith(TEMP_PREFIX)]
    for name in stale:
        fs.rm(name)
    return len(stale)


def join(url: str, *parts: str) -> str:
    return posixpath.join(url.rstrip("/"), *parts)
