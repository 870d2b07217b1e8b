"""Shared fixtures. ``tests/`` is put on sys.path so that ``support`` (stages used by tests)
is importable in the spawned worker processes of the executors, which re-import by name;
``scripts/`` too, for the development tooling there (``labelled``) that is not packaged."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SCRIPTS = REPO / "scripts"
for folder in (SCRIPTS, TESTS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

SAMPLES = REPO / "data_samples"
#: Real data the tests read, sliced from the origin files (see tests/data/SOURCES.md).
DATA = TESTS / "data"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches the tests build (the template index) go to a temporary folder, not ``~/.cache``.

    Set in the environment so that pool and Dask workers the tests start see it too.
    """
    cache = tmp_path_factory.mktemp("gristmill_cache")
    os.environ["GRISTMILL_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``tests/data``: the real files the tests read, in the layout of their origin."""
    return DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama + tokenizer trained on real text, built once per test session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from support.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))
