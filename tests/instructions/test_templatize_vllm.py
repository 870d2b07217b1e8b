"""``templatize`` through the real vLLM engine (vllm-cpu) on the taught tiny templatizer.

Excluded from the default run (``-m vllm``; CI runs it in its vLLM step). Same model and
checks as the transformers test: the engine must give the same rows and the same counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from support.templatizer_model import (  # noqa: E402
    check_templatized,
    teach_templatizer,
    templatizer_queries,
)

from gristmill.instructions.templatize import Templatize  # noqa: E402

#: CPU-friendly engine settings, as in tests/inference/test_vllm_generator.py.
OPTIONS = {
    "dtype": "float32",
    "max_model_len": 2048,
    "enforce_eager": True,
    "cpu_kvcache_space_gb": 1,
    "engine_args": {"compilation_config": {"mode": 0}},
}


@pytest.fixture(scope="module")
def templatizer_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return teach_templatizer(tiny_model_dir, tmp_path_factory.mktemp("templatizer"))


def test_templatize_through_vllm(templatizer_dir: Path, data_dir: Path) -> None:
    stage = Templatize(
        generator={"backend": "vllm", "model": str(templatizer_dir), "options": OPTIONS},
        max_new_tokens=160,
    )
    assert stage.resources.gpus == 1.0
    sent = templatizer_queries(data_dir)
    try:
        out = stage.process(pa.table({"text": sent}))
    finally:
        stage.teardown()
    check_templatized(out, sent, stage)
