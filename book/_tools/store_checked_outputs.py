"""Execute chapters at the smoke tier and keep only the outputs that nbval checks.

Cells tagged `nbval-check-output` keep the output of this run (CI compares against it); every other
output is dropped, so the committed notebooks stay small and the book build (which executes them
at the cpu tier) shows fresh results.

    FLATCOMPRESS_RESULTS_DIR=/tmp/smoke python book/_tools/store_checked_outputs.py book/train-flat.ipynb
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill


def store(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(executed), parameters={"profile": "smoke"}, cwd=str(path.parent),
                                   progress_bar=False, kernel_name="python3")
        ran = nbformat.read(executed, as_version=4)
    source = nbformat.read(path, as_version=4)
    by_id = {c.get("id"): c for c in ran.cells}
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        keep = "nbval-check-output" in cell.metadata.get("tags", [])
        ran_cell = by_id[cell.get("id")]
        cell.outputs = ran_cell.outputs if keep else []
        cell.execution_count = ran_cell.execution_count if keep else None  # nbval skips cells never run
    nbformat.write(source, path)


if __name__ == "__main__":
    os.environ.setdefault("FLATCOMPRESS_PROFILE", "smoke")
    for name in sys.argv[1:]:
        store(Path(name))
