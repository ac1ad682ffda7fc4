"""Paper-vs-ours tables for the chapters: our records, summarized per (task, optimizer), next to the paper's cells.

Nothing here decides a result: it reshapes records and `flatcompress.book.paper` data for display, with the 95%
intervals of `flatcompress.stats`, and `glue` hands numbers to the book's prose (MyST-NB), so the text cannot
disagree with the records. `model_row` turns a fine-tuning record into a table row that carries the model's
evaluation, so every table can show its interval and mark the models the health gate leaves out.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from flatcompress.book.paper import paper_value

__all__ = ["OPTIMIZER_ROW", "model_row", "summarize", "interval_cell", "estimates_table", "paper_vs_ours", "side_by_side", "paper_mean",
           "paper_value_text", "mean_std", "glue"]

# Our optimizer names -> the paper's row labels.
OPTIMIZER_ROW = {"adamw": "Adam", "sam": "SAM", "swa": "SWA"}


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value), as the paper reports over seeds."""
    values = list(values)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def model_row(record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A table row of one fine-tuning record: task, optimizer, seed, score × 100, the model's evaluation (for
    intervals) and whether it trained (`flatcompress.stats.health`), plus `extra` columns."""
    from flatcompress.stats import ModelEval, health

    config = record["config"]
    model = ModelEval.from_record(record)
    h = health(model)
    return {"task": config["task"], "optimizer": config["optimizer"], "seed": config["seed"],
            "score": 100 * record["score"], "model": model, "trained": h.trained, "gate": h.reason, **extra}


def _cell(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    has_std = std is not None and not math.isnan(std)  # pandas turns a missing std into NaN
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if has_std else "")


def interval_cell(mean: float, low: float | None, high: float | None, digits: int = 1) -> str:
    """`61.0 [58.1, 63.9]`, or the mean alone without an interval."""
    if mean is None or math.isnan(mean):
        return "–"
    if low is None or high is None or math.isnan(low) or high - low <= 1e-12:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def summarize(rows: Iterable[dict[str, Any]], value: str, keys: Sequence[str] = ("task", "optimizer"),
              log: bool = False) -> pd.DataFrame:
    """Rows with `keys`, `seed` and `value` -> one row per group: mean over seeds, its 95% interval, n seeds, and
    how many seeds did not train (`gated`).

    Rows that carry a `model` (`model_row`) get the paired bootstrap interval over seeds and dev examples
    (`flatcompress.stats.compare`); rows of plain numbers get the corrected seed bootstrap, none for one seed.
    `log=True`, for a positive quantity that spans orders of magnitude (sharpness φ, a Hessian eigenvalue): the
    geometric mean over seeds, exp(mean log v), with the interval of the same bootstrap on log v mapped back, so it
    stays positive, as the verdicts compare such quantities (log ratios). A group with a value of 0 or below (φ of
    a model that did not train) has no geometric mean: it gets the plain mean and no interval.
    """
    from flatcompress.stats import compare, compare_scalars

    frame = pd.DataFrame(list(rows))
    out = []
    for group_keys, group in frame.groupby(list(keys), sort=False):
        group_keys = group_keys if isinstance(group_keys, tuple) else (group_keys,)
        values = group[value].astype(float).tolist()
        mean, std = mean_std(values)
        if "model" in group and value == "score":
            estimate = compare([(1.0, [[(1.0, m)] for m in group.model])])
        elif log and min(values) <= 0:
            estimate = None
        else:
            estimate = compare_scalars([(1.0, list(np.log(values)) if log else values)], scale=1.0)
        scale = 100.0 if "model" in group and value == "score" else 1.0
        low, high = (scale * estimate.low, scale * estimate.high) if estimate else (math.nan, math.nan)
        if log and estimate:  # exp(mean log v) = the geometric mean
            mean, low, high = (float(np.exp(x)) for x in (estimate.value, low, high))
        out.append({**dict(zip(keys, group_keys)), "mean": mean, "std": std, "low": low, "high": high,
                    "n": len(group), "gated": int((~group.trained.astype(bool)).sum()) if "trained" in group else 0})
    return pd.DataFrame(out)


def estimates_table(cells: dict[str, Any], digits: int = 1, label: str = "cell") -> pd.DataFrame:
    """A verdict's per-cell estimates (`Verdict.cells`: label -> `stats.Estimate`) as a table: estimate, 95%
    interval, seeds."""
    if not cells:
        return pd.DataFrame({label: ["none: no healthy pair of models to compare"]})
    from flatcompress.stats import signed

    return pd.DataFrame([{label: name, "estimate": signed(e.scale * e.value, digits),
                          "95% interval": "–" if not e.has_interval else
                          f"[{signed(e.scale * e.low, digits)}, {signed(e.scale * e.high, digits)}]", "seeds": e.seeds}
                         for name, e in cells.items()])


def paper_vs_ours(summary: pd.DataFrame, table: str, row_prefix: tuple[str, ...] = (), digits: int = 1,
                  paper_task: dict[str, str] | None = None, paper_digits: int = 1) -> pd.DataFrame:
    """`summarize` output next to the paper's cells of `table`, row `(*row_prefix, Adam|SAM|SWA)`.

    Ours are the mean over seeds with its 95% interval, the paper's mean ± std over its 3 seeds, with `digits` and
    `paper_digits` decimals (as printed: 1 in Tables 1-7).
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
                      "ours": interval_cell(item.mean, getattr(item, "low", None), getattr(item, "high", None), digits),
                      "seeds": item.n, "did not train": getattr(item, "gated", 0)})
    return pd.DataFrame(lines)


def side_by_side(table: pd.DataFrame, keys: Sequence[str] = ("task",)) -> pd.DataFrame:
    """`paper_vs_ours` rows (one per optimizer) as one row per `keys`: the paper's Adam, SAM (and SWA) cells, then
    ours."""
    keys = list(keys)
    wide = table.pivot_table(index=keys, columns="optimizer", values=["paper (BERT-base)", "ours"],
                             aggfunc="first", sort=False)
    optimizers = [o for o in OPTIMIZER_ROW.values() if o in set(table.optimizer)]
    columns = [(what, opt) for what in ("paper (BERT-base)", "ours") for opt in optimizers if (what, opt) in wide.columns]
    wide = wide[columns].fillna("–")  # an optimizer one setting has and another has not (SWA: rewinding only)
    wide.columns = [f"{what}, {opt}" for what, opt in columns]
    wide["seeds"] = table.groupby(keys, sort=False).seeds.min()
    if "did not train" in table and table["did not train"].sum():
        wide[f"did not train ({' / '.join(optimizers)})"] = table.pivot_table(
            index=keys, columns="optimizer", values="did not train", aggfunc="sum", sort=False).apply(
            lambda r: " / ".join(str(int(r.get(o, 0))) for o in optimizers), axis=1)
    return wide


def paper_mean(table: str, row: tuple[str, ...], task: str) -> float:
    """The paper's mean for one cell, NaN where the paper has none (e.g. Rotten Tomatoes)."""
    try:
        cell = paper_value(table, row, task)
    except KeyError:
        return math.nan
    return cell[0] if cell else math.nan


def paper_value_text(table: str, row: tuple[str, ...], task: str, digits: int = 2) -> str:
    """The paper's cell as printed, `mean ± std` (or the mean alone), "–" where the paper has none."""
    try:
        cell = paper_value(table, row, task)
    except KeyError:
        return "–"
    return _cell(*(cell or (None, None)), digits)


def glue(name: str, value: Any) -> None:
    """Make `value` quotable in the chapter's text as {glue:text}`name` (a no-op outside a book build)."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # e.g. on Colab, where the book's toolchain is not installed
        return
    _glue(name, value, display=False)
