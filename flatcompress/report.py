"""Paper-vs-ours tables for the chapters: our records, summarized per (task, optimizer), next to the paper's cells.

Nothing here computes a result: it reshapes records and `flatcompress.paper` data for display, and
`glue` hands numbers to the book's prose (MyST-NB), so the text cannot disagree with the records.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import pandas as pd

from flatcompress.paper import paper_value

__all__ = ["OPTIMIZER_ROW", "summarize", "paper_vs_ours", "side_by_side", "paper_mean", "mean_std", "glue"]

# Our optimizer names -> the paper's row labels.
OPTIMIZER_ROW = {"adamw": "Adam", "sam": "SAM"}


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value), as the paper reports over seeds."""
    values = list(values)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _cell(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    has_std = std is not None and not math.isnan(std)  # pandas turns a missing std into NaN
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if has_std else "")


def summarize(rows: Iterable[dict[str, Any]], value: str) -> pd.DataFrame:
    """Rows with `task`, `optimizer`, `seed` and `value` -> one row per (task, optimizer): mean, std, n."""
    frame = pd.DataFrame(list(rows))
    out = []
    for (task, optimizer), group in frame.groupby(["task", "optimizer"], sort=False):
        mean, std = mean_std(group[value].tolist())
        out.append({"task": task, "optimizer": optimizer, "mean": mean, "std": std, "n": len(group)})
    return pd.DataFrame(out)


def paper_vs_ours(summary: pd.DataFrame, table: str, row_prefix: tuple[str, ...] = (), digits: int = 1,
                  paper_task: dict[str, str] | None = None, paper_digits: int = 1) -> pd.DataFrame:
    """`summarize` output next to the paper's cells of `table`, row `(*row_prefix, Adam|SAM)`.

    Ours are shown with `digits` decimals, the paper's with `paper_digits` (as printed: 1 in Tables 1-7).
    Tasks the paper does not report (Rotten Tomatoes) show "–" in the paper column.
    """
    lines = []
    for item in summary.itertuples():
        row = (*row_prefix, OPTIMIZER_ROW.get(item.optimizer, item.optimizer))
        task = (paper_task or {}).get(item.task, item.task)
        try:
            cell = paper_value(table, row, task)
        except KeyError:
            cell = None
        lines.append({"task": item.task, "optimizer": OPTIMIZER_ROW.get(item.optimizer, item.optimizer),
                      "paper (BERT-base)": _cell(*(cell or (None, None)), paper_digits),
                      "ours": _cell(item.mean, item.std, digits), "seeds": item.n})
    return pd.DataFrame(lines)


def side_by_side(table: pd.DataFrame, keys: Sequence[str] = ("task",)) -> pd.DataFrame:
    """`paper_vs_ours` rows (one per optimizer) as one row per `keys`: paper Adam, paper SAM, ours Adam, ours SAM."""
    keys = list(keys)
    wide = table.pivot_table(index=keys, columns="optimizer", values=["paper (BERT-base)", "ours"],
                             aggfunc="first", sort=False)
    columns = [(what, opt) for what in ("paper (BERT-base)", "ours") for opt in ("Adam", "SAM")
               if (what, opt) in wide.columns]
    wide = wide[columns]
    wide.columns = [f"{what}, {opt}" for what, opt in columns]
    wide["seeds"] = table.groupby(keys, sort=False).seeds.min()
    return wide


def paper_mean(table: str, row: tuple[str, ...], task: str) -> float:
    """The paper's mean for one cell, NaN where the paper has none (e.g. Rotten Tomatoes)."""
    try:
        cell = paper_value(table, row, task)
    except KeyError:
        return math.nan
    return cell[0] if cell else math.nan


def glue(name: str, value: Any) -> None:
    """Make `value` quotable in the chapter's text as {glue:text}`name` (a no-op outside a book build)."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # e.g. on Colab, where the book's toolchain is not installed
        return
    _glue(name, value, display=False)
