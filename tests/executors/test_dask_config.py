"""The `executor:` section of a pipeline file for Dask and Slurm, and what it turns into."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The [dask] extra (dask[distributed], dask-jobqueue) must be installed for these tests.
pytest.importorskip("distributed")

from gristmill.errors import ConfigError
from gristmill.executors.dask import DaskExecutor
from gristmill.executors.dask_cluster import gpu_capacity, slurm_cluster_kwargs
from gristmill.executors.local import LocalExecutor
from gristmill.executors.select import build_executor
from gristmill.runs.config import parse_pipeline

PIPELINE = """
input: {paths: [data_samples/*.parquet]}
output: {path: out}
executor:
  type: dask
  workers: 3
  dask:
    retries: 2
    slurm:
      queue: gpu
      account: proj42
      cores: 8
      processes: 2
      memory: 64GB
      walltime: "04:00:00"
      gpus_per_job: 2
      job_directives: ["--qos=high", "--constraint=a100"]
      minimum_jobs: 1
      maximum_jobs: 10
"""


def test_slurm_section_becomes_slurm_cluster_arguments():
    config = parse_pipeline(PIPELINE).executor
    dask = config.dask
    assert dask.resolved_cluster() == "slurm" and dask.slurm is not None
    assert dask.slurm.adaptive
    kwargs = slurm_cluster_kwargs(dask.slurm, dask)

    assert kwargs["queue"] == "gpu" and kwargs["account"] == "proj42"
    assert (kwargs["cores"], kwargs["processes"], kwargs["memory"]) == (8, 2, "64GB")
    assert kwargs["walltime"] == "04:00:00"
    assert kwargs["job_extra_directives"] == ["--qos=high", "--constraint=a100", "--gres=gpu:2"]
    # Two GPUs over two worker processes: each worker advertises one.
    assert kwargs["worker_extra_args"] == ["--resources", "GPU=1"]
    assert gpu_capacity(dask) == 1
    assert kwargs["python"] == sys.executable
    # Slurm-launched workers never pause on memory (that would hang the run): a subprocess
    # that reads dask's configuration from the same environment sees the settings.
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in kwargs["job_script_prologue"]
        if line.startswith("export DASK_")
    )
    seen = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dask; print(dask.config.get('distributed.worker.memory.pause'))",
        ],
        env={**os.environ, **exports},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert seen == "False"


def test_unknown_key_in_the_slurm_section_names_it():
    text = PIPELINE.replace("queue: gpu", "queue: gpu\n      partitionn: x")
    with pytest.raises(ConfigError, match=r"section 'executor'.*'dask\.slurm\.partitionn'"):
        parse_pipeline(text, "p.yaml")


def test_cluster_defaults_from_what_is_set():
    plain = parse_pipeline(PIPELINE.split("executor:")[0]).executor
    assert plain.type == "local" and plain.dask.resolved_cluster() == "local"
    address = parse_pipeline(
        PIPELINE.split("executor:")[0] + "executor: {type: dask, dask: {scheduler: tcp://h:8786}}"
    ).executor
    assert address.dask.resolved_cluster() == "scheduler"


def test_cli_flags_override_the_pipeline_executor():
    config = parse_pipeline(PIPELINE).executor
    on_scheduler = build_executor(config, scheduler="tcp://h:8786")
    assert isinstance(on_scheduler, DaskExecutor)
    assert on_scheduler.config.resolved_cluster() == "scheduler"
    assert on_scheduler.config.retries == 2  # the rest of the section still applies
    local = build_executor(config, executor_type="local", workers=4)
    assert isinstance(local, LocalExecutor) and local.workers == 4
    sized = build_executor(config, executor_type="dask")
    assert isinstance(sized, DaskExecutor) and sized.workers == 3
