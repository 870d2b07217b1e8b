"""gristmill: composable streaming stages that turn raw pretraining text into a curated corpus.

The public surface most users need is re-exported here; everything else lives in the
sub-packages (``core``, ``io``, ``executors``, ``runs``, ``stages`` ...).
"""

from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.registry import get_stage_class, register_stage
from gristmill.core.resources import Resources
from gristmill.core.stage import Stage, StageParams
from gristmill.core.stats import PipelineStats, StageStats
from gristmill.runs.pipeline import Pipeline
from gristmill.runs.report import RunReport

__version__ = "0.1.0"

__all__ = [
    "Filter",
    "FilterParams",
    "Pipeline",
    "PipelineStats",
    "Resources",
    "RunReport",
    "Stage",
    "StageParams",
    "StageStats",
    "Verdict",
    "get_stage_class",
    "register_stage",
]
