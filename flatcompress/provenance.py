"""Where a result came from: code version, package versions, hardware."""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["provenance", "code_version", "device_name", "cpu_name"]

_PACKAGES = ("flatcompress", "torch", "transformers", "numpy", "scipy", "datasets")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return cpu_name()


@functools.lru_cache(maxsize=1)
def code_version() -> tuple[str | None, bool | None]:
    """(git commit, whether the tree had uncommitted changes), read once per process: the code a process runs is the
    code it imported, even if the checkout changes while it runs (sweep workers import it all first)."""
    repo = Path(__file__).resolve().parent.parent
    commit = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo) if commit else None
    return commit, (bool(status) if status is not None else None)


def provenance(device: torch.device | str = "cpu") -> dict:
    """Git commit (and whether the tree had uncommitted changes), versions, device, time."""
    commit, dirty = code_version()
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "device": str(torch.device(device)),
        "device_name": device_name(device),
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
