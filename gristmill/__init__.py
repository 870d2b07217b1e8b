"""gristmill: composable streaming stages that turn raw pretraining text into a curated corpus.

The public surface most users need is re-exported here; everything else lives in the
sub-packages named in DESIGN.md (``core``, ``io``, ``executors``, ``stages`` ...).
"""

from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.pipeline import Pipeline
from gristmill.core.registry import get_stage_class, register_stage
from gristmill.core.resources import Resources
from gristmill.core.stage import Stage, StageParams
from gristmill.core.stats import PipelineStats, StageStats

__version__ = "0.1.0"

__all__ = [
    "Filter",
    "FilterParams",
    "Pipeline",
    "PipelineStats",
    "Resources",
    "Stage",
    "StageParams",
    "StageStats",
    "Verdict",
    "get_stage_class",
    "register_stage",
]
