"""Where gristmill keeps what it derives once and reuses: ``$GRISTMILL_CACHE``, else
``~/.cache/gristmill``. On a cluster, point it at a disk every worker sees."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``<cache root>/<parts...>`` (not created here: writers create what they write)."""
    root = os.environ.get("GRISTMILL_CACHE") or Path.home() / ".cache" / "gristmill"
    return Path(root).joinpath(*parts)
