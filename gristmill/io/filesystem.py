"""Local paths, globs and fsspec URLs behind one small API, plus atomic writes.

Everything gristmill writes goes through ``atomic_output``: written under a temporary name and
renamed into place, so a reader (or a resumed run) never sees half a file. Names starting
with ``_`` or ``.`` are a run's bookkeeping (``_run/``, ``_rejects/``, temporaries): listing
a directory's data files leaves them out at any depth.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

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


def is_local(url: str) -> bool:
    fs, _path = filesystem(url)
    return not _has_protocol(fs)


def _has_protocol(fs: AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol not in ("file", "local")


def _root_of(pattern: str) -> str:
    """The directory above the first glob character: names are taken relative to it."""
    cut = min((pattern.find(c) for c in GLOB_CHARS if c in pattern), default=len(pattern))
    return posixpath.dirname(pattern[:cut])


def is_bookkeeping(relative: str) -> bool:
    """True for a path that lies under, or is, a name starting with ``_`` or ``.``."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def expand_inputs(patterns: list[str], suffixes: tuple[str, ...]) -> list[InputFile]:
    """Every data file matching the patterns (files, directories or globs), sorted, unique.

    A directory stands for its files (at any depth) with one of ``suffixes``; bookkeeping
    names (``_run``, ``_rejects``, ``.tmp-*``) are never data, so a run's output directory
    lists as exactly its curated files.
    """
    found: dict[str, InputFile] = {}
    for pattern in patterns:
        fs, path = filesystem(pattern)
        is_directory = not any(c in path for c in GLOB_CHARS) and fs.isdir(path)
        root = path.rstrip("/") if is_directory else _root_of(path)
        matches = _match(fs, path, suffixes, root, is_directory)
        if not matches:
            raise ConfigError(f"input {pattern!r} matches no file")
        for name, info in matches.items():
            relative = posixpath.relpath(name, root) if root else name.lstrip("/")
            found.setdefault(
                name, InputFile(full_url(fs, name), relative, int(info.get("size", 0)))
            )
    return sorted(found.values(), key=lambda f: f.url)


def _match(
    fs: AbstractFileSystem, path: str, suffixes: tuple[str, ...], root: str, is_directory: bool
) -> dict[str, Any]:
    if is_directory:
        return _directory_files(fs, path, suffixes)
    if any(c in path for c in GLOB_CHARS):
        matches = fs.glob(path, detail=True)
    elif fs.exists(path):
        matches = {path: fs.info(path)}
    else:
        return {}
    return {
        name: info
        for name, info in matches.items()
        if info.get("type") != "directory"
        and not is_bookkeeping(posixpath.relpath(name, root) if root else name)
    }


def _directory_files(
    fs: AbstractFileSystem, path: str, suffixes: tuple[str, ...]
) -> dict[str, Any]:
    return {
        name: info
        for name, info in fs.find(path, detail=True).items()
        if name.endswith(suffixes) and not is_bookkeeping(posixpath.relpath(name, path))
    }


def data_files(root: str, suffixes: tuple[str, ...]) -> list[InputFile]:
    """The data files of a run's output directory (or any directory), bookkeeping left out;
    empty when the directory does not exist."""
    fs, path = filesystem(root)
    if not fs.isdir(path):
        return []
    path = path.rstrip("/")
    files = [
        InputFile(full_url(fs, name), posixpath.relpath(name, path), int(info.get("size", 0)))
        for name, info in _directory_files(fs, path, suffixes).items()
    ]
    return sorted(files, key=lambda f: f.url)


# -- atomic writes -----------------------------------------------------------------------------
def temporary_path(path: str) -> str:
    """A unique sibling name for writing ``path`` before it is renamed into place."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")


class AtomicFile:
    """A file written under a temporary sibling name: ``commit`` renames it into place whole,
    ``abort`` removes it. The one way gristmill writes a file (``atomic_output`` is the
    ``with`` form); a killed process leaves only a temporary, which the next run removes."""

    def __init__(self, url: str, mode: str = "wb") -> None:
        self._fs, self._path = filesystem(url)
        self._fs.makedirs(posixpath.dirname(self._path), exist_ok=True)
        self._temporary = temporary_path(self._path)
        self.handle: IO[Any] = self._fs.open(self._temporary, mode)

    def commit(self) -> None:
        self.handle.close()
        self._fs.mv(self._temporary, self._path)

    def abort(self) -> None:
        try:
            self.handle.close()
        finally:
            if self._fs.exists(self._temporary):
                self._fs.rm(self._temporary)


@contextmanager
def atomic_output(url: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """A file handle whose content appears at ``url`` whole when the block ends, or never;
    an exception leaves the old file, if any, untouched."""
    atomic = AtomicFile(url, mode)
    try:
        yield atomic.handle
    except BaseException:
        atomic.abort()
        raise
    atomic.commit()


def write_bytes_atomically(url: str, data: bytes) -> None:
    with atomic_output(url) as handle:
        handle.write(data)


def write_json_atomically(url: str, data: Any) -> None:
    """JSON, indented and key-sorted so that the files diff well between runs."""
    write_bytes_atomically(url, json.dumps(data, indent=2, sort_keys=True).encode())


def read_json(url: str) -> Any:
    """A JSON file's content, or None when it does not exist."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as handle:
        return json.loads(handle.read())


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return bool(fs.exists(path))


def remove(url: str) -> None:
    """Delete a file or a directory tree, if it is there."""
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


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
