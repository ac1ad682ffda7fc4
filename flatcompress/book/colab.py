"""A chapter's defaults for where it runs: the one setup every chapter's first cell calls.

Off Colab nothing changes: the tier is `$FLATCOMPRESS_PROFILE` (default `cpu`), read-only, from this checkout's
`results/`. On Colab a fresh runtime has no records, so the chapter computes, and:

- with a GPU, the `colab` tier (bert-base-uncased); without one, a warning and the `cpu` tier (MiniLM-L6), since
  BERT-base on Colab's two CPU cores would take days;
- results go to Google Drive (`MyDrive/flatcompress-results/`), which outlives the runtime: Drive is mounted
  (Colab asks for permission once) and `FLATCOMPRESS_RESULTS_DIR` points there, so `flatcompress reproduce` run
  from the notebook writes there too. Without Drive they go to `/content/flatcompress-results`, with a warning
  that they are lost with the runtime. A rerun resumes: finished runs are read back, interrupted ones continue.

The first cell installs the version this book was written with (`INSTALL`), then calls `setup()`.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["REPOSITORY", "EXTRAS", "install_command", "on_colab", "setup"]

REPOSITORY = "https://github.com/flatcompress/flatcompress"
EXTRAS = "hub,book,quantize,offline"  # the GLUE hub loader, papermill and plotting, int8 back-ends, bundled data
DRIVE = Path("/content/drive")


def install_command(version: str | None = None) -> str:
    """The pip command of a chapter's first cell: this book's version, pinned to its release tag."""
    import flatcompress

    return f'pip install -q "flatcompress[{EXTRAS}] @ git+{REPOSITORY}@v{version or flatcompress.__version__}"'


def on_colab() -> bool:
    return "google.colab" in sys.modules


def _mount_drive() -> Path | None:
    """Mount Google Drive (Colab asks once); its MyDrive folder, or None when it cannot be mounted."""
    if (DRIVE / "MyDrive").is_dir():
        return DRIVE / "MyDrive"
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE))
    except Exception as exc:  # noqa: BLE001 - declined, or no Drive: fall back with a warning
        warnings.warn(f"Google Drive is not mounted ({exc}): results stay on this runtime", stacklevel=3)
        return None
    return DRIVE / "MyDrive" if (DRIVE / "MyDrive").is_dir() else None


def setup(colab: bool | None = None, cuda: bool | None = None, drive: bool = True) -> dict[str, Any]:
    """The chapter's defaults `{"profile", "compute", "results_dir"}` for where it runs (see the module docstring).

    `colab` and `cuda` default to what this runtime is; `drive=False` keeps results on the runtime."""
    colab = on_colab() if colab is None else colab
    if not colab:
        return {"profile": os.environ.get("FLATCOMPRESS_PROFILE", "cpu"), "compute": False, "results_dir": None}
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    profile = "colab" if cuda else "cpu"
    if not cuda:
        warnings.warn("this Colab runtime has no GPU: running the cpu tier (MiniLM-L6). For the colab tier "
                      "(bert-base-uncased) choose Runtime > Change runtime type > GPU, then run all cells again",
                      stacklevel=2)
    folder = _mount_drive() if drive else None
    if folder is None:
        root = Path("/content/flatcompress-results")
        warnings.warn(f"results go to {root}, which is deleted with this runtime; mount Google Drive to keep them",
                      stacklevel=2)
    else:
        root = folder / "flatcompress-results"
    os.environ["FLATCOMPRESS_RESULTS_DIR"] = str(root)
    print(f"Colab: the {profile} tier, computing what is missing; results in {root / profile}")
    return {"profile": profile, "compute": True, "results_dir": str(root / profile)}
