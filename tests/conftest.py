"""Shared fixtures. ``tests/`` is put on sys.path so that ``support`` (stages used by tests)
is importable in the spawned worker processes of the executors, which re-import by name;
``scripts/`` too, for the development tooling there (``labelled``) that is not packaged."""

from __future__ import annotations

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
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is not here")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama + tokenizer trained on real text, built once per test session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from support.tiny_model import SOURCES, build_tiny_llama

    if not SOURCES.exists():
        pytest.skip(f"{SOURCES} (tokenizer training text) is not here")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))
