"""Run locks on a shared results folder: a run is computed by whoever creates its lock file first.

A lock is `<results>/sweeps/locks/<run key>.lock`, created atomically (`O_CREAT | O_EXCL`) with the holder's host,
process id and start time. It is held while that process lives: a lock of a dead process on this host is broken
at once (its run resumes from its last finished epoch); a lock from another host (a Slurm node, a Ray worker
elsewhere) is trusted until it is older than `stale_after` seconds, if given (`--break-locks-after HOURS`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["lock_dir", "holder", "is_held", "claim", "release"]


def lock_dir(results: str | Path) -> Path:
    return Path(results) / "sweeps" / "locks"


def holder(lock: Path) -> dict | None:
    """Who holds `lock` (host, pid, started), `{}` while it is being written, or None when there is no lock."""
    try:
        return json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def is_held(lock: Path, stale_after: float | None = None) -> bool:
    """Is `lock` held by a live process (see the module's docstring)?"""
    owner = holder(lock)
    if owner is None:
        return False
    if not owner:
        return True  # being written right now
    if stale_after is not None and time.time() - float(owner.get("started", 0)) > stale_after:
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(lock: Path, stale_after: float | None = None) -> bool:
    """Create `lock` for this process; False when a live holder has it. A dead or stale holder's lock is broken."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    if lock.exists() and not is_held(lock, stale_after):
        lock.unlink(missing_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}, fh)
    return True


def release(lock: Path) -> None:
    """Remove `lock` if this process holds it."""
    owner = holder(lock)
    if owner and owner.get("host") == socket.gethostname() and owner.get("pid") == os.getpid():
        lock.unlink(missing_ok=True)
