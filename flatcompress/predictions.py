"""Per-example predictions in result records, compactly: what lets any comparison be re-scored and bootstrapped
without the weights.

An evaluation block holds, for one split, the fingerprint of its examples, the labels and the predictions, each
array as base64 of little-endian int8 (classes) or float16 (regression values):

    {"fingerprint": "<sha256 of the split's examples>", "n": 872,
     "labels": {"dtype": "int8", "data": "AQAB..."}, "predictions": {"dtype": "int8", "data": "AQEA..."}}

872 SST-2 predictions take 1.2 kB. float16 keeps a regression value to 3 significant digits, enough for Pearson
to 1e-4 on STS-B's 0-5 scale.

A question-answering split holds each question's scores instead, which is all a bootstrap of their means needs
(F1 as float16, to 3 digits; exact match as int8); 10,570 SQuAD questions take 42 kB:

    {"fingerprint": "...", "n": 10570, "scores": {"squad_f1": {"dtype": "float16", ...},
                                                  "exact_match": {"dtype": "int8", ...}}}
"""

from __future__ import annotations

import base64
from typing import Any, Sequence

import numpy as np

__all__ = ["encode_array", "decode_array", "evaluation_block", "read_evaluation", "read_scores"]

_DTYPES = {"int8": "<i1", "float16": "<f2"}


def encode_array(values: Sequence[float] | np.ndarray, kind: str) -> dict[str, str]:
    """`values` as `{"dtype", "data"}`: int8 for `kind="classification"`, float16 for `"regression"`."""
    dtype = "int8" if kind == "classification" else "float16"
    array = np.asarray(values)
    if dtype == "int8" and (array.min(initial=0) < -128 or array.max(initial=0) > 127):
        raise ValueError("class ids must fit in int8")
    return {"dtype": dtype, "data": base64.b64encode(array.astype(_DTYPES[dtype]).tobytes()).decode("ascii")}


def decode_array(block: dict[str, str]) -> np.ndarray:
    """The array `encode_array` stored (int64 classes or float64 values)."""
    if block.get("dtype") not in _DTYPES:
        raise ValueError(f"unknown prediction dtype {block.get('dtype')!r}; valid: {', '.join(_DTYPES)}")
    array = np.frombuffer(base64.b64decode(block["data"]), dtype=_DTYPES[block["dtype"]])
    return array.astype(np.int64 if block["dtype"] == "int8" else np.float64)


def evaluation_block(labels: Sequence[float] | None, predictions: np.ndarray, kind: str,
                     fingerprint: str) -> dict[str, Any]:
    """One split's labels and predictions with the fingerprint of its examples; for `kind="qa"`, `predictions` are
    the per-question scores (`metrics.squad_scores`) and there are no labels."""
    if kind == "qa":
        from flatcompress.metrics import SQUAD_COLUMNS

        scores = np.asarray(predictions, dtype=float)
        f1, em = (scores[:, SQUAD_COLUMNS.index(m)] for m in ("squad_f1", "exact_match"))
        return {"fingerprint": fingerprint, "n": len(scores),
                "scores": {"squad_f1": encode_array(f1, "regression"),
                           "exact_match": encode_array(em, "classification")}}
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    return {"fingerprint": fingerprint, "n": len(labels), "labels": encode_array(labels, kind),
            "predictions": encode_array(predictions, kind)}


def read_scores(block: dict[str, Any], metric: str) -> np.ndarray:
    """The per-question scores in `metric` of a question-answering block."""
    if metric not in block.get("scores", {}):
        raise ValueError(f"the evaluation block has no per-question {metric!r} scores; it has: "
                         f"{', '.join(block.get('scores', {})) or 'none (not a question-answering block)'}")
    scores = decode_array(block["scores"][metric])
    if len(scores) != block["n"]:
        raise ValueError(f"an evaluation block says n={block['n']} but holds {len(scores)} {metric} scores")
    return scores


def read_evaluation(block: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) of an evaluation block."""
    labels, predictions = decode_array(block["labels"]), decode_array(block["predictions"])
    if len(labels) != block["n"] or len(predictions) != block["n"]:
        raise ValueError(f"an evaluation block says n={block['n']} but holds {len(labels)} labels and "
                         f"{len(predictions)} predictions")
    return labels, predictions
