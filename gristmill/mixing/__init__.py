"""Skill-It data mixing: skills graph, online mixture schedule, per-round sampling.

Skill-It (Chen et al., 2023, "Skill-it! A Data-Driven Skills Framework for Understanding and
Training Language Models"). The pipeline owns the schedule and the data; a trainer only reads
``round_NNNN/`` shards and writes ``round_NNNN/eval_losses.json``. ``mixing.loop`` runs the
loop over those files; docs/skillit.md shows it from the shell.
"""

from gristmill.mixing.graph import (
    SkillsGraph,
    TrainingRun,
    from_edges,
    from_pair_runs,
    from_single_skill_runs,
    graph_hash,
    load_graph,
)
from gristmill.mixing.sampler import (
    PoolCursor,
    SkillPools,
    allocate,
    build_pools,
    draw_from_pool,
    largest_remainder_counts,
    plan_round,
    read_manifest,
    round_dir,
    sample_round,
)
from gristmill.mixing.scheduler import MixtureError, Observation, SkillItScheduler, stable_softmax

__all__ = [
    "MixtureError",
    "Observation",
    "PoolCursor",
    "SkillItScheduler",
    "SkillPools",
    "SkillsGraph",
    "TrainingRun",
    "allocate",
    "build_pools",
    "draw_from_pool",
    "from_edges",
    "from_pair_runs",
    "from_single_skill_runs",
    "graph_hash",
    "largest_remainder_counts",
    "load_graph",
    "plan_round",
    "read_manifest",
    "round_dir",
    "sample_round",
    "stable_softmax",
]
