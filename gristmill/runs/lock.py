"""One run per output directory, and no worker writing for a run that is gone.

A run holds ``OUTPUT/_run/lock.json`` (a random token, its host, process id and start time, and
a heartbeat it refreshes every few seconds). A second run on the same output finds the lock
and refuses with a message naming the holder. A lock whose holder is dead is taken over: on
the same host that is known at once (the process is gone, or its id now belongs to another
process), on another host when the heartbeat is older than ``STALE_AFTER`` seconds.

Workers carry a :class:`RunGuard` for the run they work for. While a unit runs, a watchdog
thread checks it every few seconds and ends the worker process when the run no longer holds
the lock (its driver died, or another run took over), so nothing writes into an output
directory after its run is gone; the guard is checked once more before a unit's completion
marker is written.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gristmill.errors import ConfigError
from gristmill.io.filesystem import filesystem, is_local, read_json, write_json_atomically

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 60.0
GUARD_CHECK_SECONDS = 1.0


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), which tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if known, started when it was recorded."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except OSError:
        pass
    return started is None or _process_start(pid) in (None, started)


@dataclass(frozen=True)
class RunGuard:
    """What a worker needs to tell whether its run still holds the output (picklable)."""

    lock_url: str
    token: str
    host: str
    pid: int
    started: str | None

    def holds(self) -> bool:
        try:
            lock = read_json(self.lock_url)
        except (OSError, ValueError):
            return True  # a lock being rewritten: judge at the next check
        if not isinstance(lock, dict) or lock.get("token") != self.token:
            return False
        if self.host == socket.gethostname():
            return process_alive(self.pid, self.started)
        return time.time() - float(lock.get("heartbeat", 0)) < STALE_AFTER


_watched: RunGuard | None = None
_watchdog: threading.Thread | None = None


def _watch() -> None:
    while True:
        time.sleep(GUARD_CHECK_SECONDS)
        guard = _watched
        if guard is not None and not guard.holds():
            os._exit(3)  # the run is gone: this worker must not write another byte for it


def watch(guard: RunGuard | None) -> None:
    """Watch ``guard`` from now on in this worker process (None: stop watching).

    The driver's own process is never watched: it is the run.
    """
    global _watched, _watchdog
    if guard is not None and guard.pid == os.getpid() and guard.host == socket.gethostname():
        guard = None
    _watched = guard
    if guard is not None and _watchdog is None:
        _watchdog = threading.Thread(target=_watch, name="gristmill-run-guard", daemon=True)
        _watchdog.start()


class RunLock:
    """The lock of one output directory, held for the length of a run."""

    def __init__(self, url: str, root: str) -> None:
        self.url = url
        self.root = root
        self.token = uuid.uuid4().hex
        self.took_over: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._record = {
            "token": self.token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_started": _process_start(os.getpid()),
            "started": time.time(),
            "command": " ".join(sys.argv),
        }

    @property
    def guard(self) -> RunGuard:
        return RunGuard(
            self.url,
            self.token,
            str(self._record["host"]),
            int(self._record["pid"]),  # type: ignore[call-overload]
            self._record["pid_started"],  # type: ignore[arg-type]
        )

    # -- taking and giving back ---------------------------------------------------------------
    def acquire(self) -> None:
        fs, path = filesystem(self.url)
        try:
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot write to {self.root}: {error.strerror or error}") from None
        current = self._read()
        if current is not None:
            if self._alive(current):
                raise ConfigError(self._busy_message(current))
            self.took_over = current
        try:
            self._create(current)
        except FileExistsError:
            raise ConfigError(self._busy_message(self._read() or {})) from None
        except OSError as error:
            raise ConfigError(f"cannot write to {self.root}: {error.strerror or error}") from None
        self._thread = threading.Thread(target=self._beat, name="gristmill-run-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_SECONDS * 2)
        current = self._read()
        if current is not None and current.get("token") == self.token:
            fs, path = filesystem(self.url)
            fs.rm(path)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- the file ----------------------------------------------------------------------------
    def _read(self) -> dict[str, Any] | None:
        try:
            found = read_json(self.url)
        except (OSError, ValueError):
            return {}  # unreadable: a run died while writing it; not a live holder
        return found if isinstance(found, dict) else None

    @staticmethod
    def _alive(lock: dict[str, Any]) -> bool:
        if "token" not in lock:
            return False
        if lock.get("host") == socket.gethostname():
            return process_alive(int(lock.get("pid", 0) or 0), lock.get("pid_started"))
        return time.time() - float(lock.get("heartbeat", 0)) < STALE_AFTER

    def _busy_message(self, lock: dict[str, Any]) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(lock.get("started", 0))))
        return (
            f"{self.root} is being written by another gristmill run (pid {lock.get('pid')} on "
            f"{lock.get('host')}, since {since}: {lock.get('command', '?')}); wait for it to "
            "finish or stop it, or choose another output. The lock of a run that died is "
            "taken over by the next run"
        )

    def _payload(self) -> bytes:
        return json.dumps({**self._record, "heartbeat": time.time()}, indent=1).encode()

    def _create(self, stale: dict[str, Any] | None) -> None:
        """Create the lock file, exclusively where the file system allows it."""
        if not is_local(self.url):
            write_json_atomically(self.url, json.loads(self._payload()))
            if (self._read() or {}).get("token") != self.token:
                raise FileExistsError(self.url)
            return
        path = filesystem(self.url)[1]
        if stale is not None:
            # Only one of several runs taking over the same dead lock renames it away.
            if (self._read() or {}).get("token") != stale.get("token"):
                raise FileExistsError(path)  # another run took it over first
            aside = f"{path}.stale-{self.token}"
            try:
                os.rename(path, aside)
                os.remove(aside)
            except FileNotFoundError:
                pass
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self._payload())

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if (self._read() or {}).get("token") != self.token:
                    return
                write_json_atomically(self.url, json.loads(self._payload()))
            except OSError:
                continue  # a shared file system hiccup: the next beat tries again
