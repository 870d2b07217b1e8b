"""The worker side of ``shared``: one object per map, unpickled once per worker process.

The blob is the object this run's own driver pickled (stage chains and their parameters,
never documents), sent to workers the way every process pool and Dask send work; no user data
is ever unpickled. A worker keeps the last few objects by digest, so a long-lived worker
serving several passes or runs does not keep every pass's models in memory; an evicted object
is torn down (its models released).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 2
_LOCK = threading.Lock()


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


def shared_object(key: str, blob: bytes, loads: Callable[[bytes], Any]) -> Any:
    """This worker's copy of the shared object ``key``, unpickled on first use."""
    with _LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = loads(blob)
            _CACHE[key] = found
            while len(_CACHE) > _CACHE_SIZE:
                _old_key, old = _CACHE.popitem(last=False)
                _teardown(old)
        _CACHE.move_to_end(key)
        return found


def release_all() -> None:
    """Tear down every object this worker keeps (its models released): a worker calls this
    as it ends, so that no model waits for the interpreter's teardown to let go."""
    with _LOCK:
        while _CACHE:
            _teardown(_CACHE.popitem()[1])


def _teardown(shared: Any) -> None:
    teardown = getattr(shared, "teardown", None)
    if callable(teardown):
        teardown()
