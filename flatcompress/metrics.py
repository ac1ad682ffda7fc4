"""Evaluation metrics of the paper (§3.2, following Chen et al. 2020), written out so they can be checked.

Every function takes plain sequences (labels, predictions) and returns a float in the
units the paper reports: accuracy, F1, Matthews correlation, Pearson and Spearman
correlation as fractions in [0, 1] (or [-1, 1]); SQuAD exact match and F1 as fractions too.
Chapters multiply by 100 when they print next to the paper's tables.
"""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Callable, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "accuracy",
    "f1_binary",
    "matthews_corrcoef",
    "pearson",
    "spearman",
    "squad_exact_match",
    "squad_f1",
    "squad_scores",
    "SQUAD_COLUMNS",
    "METRICS",
]


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Fraction of predictions equal to the label."""
    y, p = np.asarray(labels), np.asarray(predictions)
    _check_lengths(y, p)
    return float((y == p).mean())


def f1_binary(labels: Sequence[int], predictions: Sequence[int], positive: int = 1) -> float:
    r"""F1 of the positive class: $F_1 = \frac{2\,TP}{2\,TP + FP + FN}$ (0 when there are no positives at all)."""
    y, p = np.asarray(labels), np.asarray(predictions)
    _check_lengths(y, p)
    tp = int(((p == positive) & (y == positive)).sum())
    fp = int(((p == positive) & (y != positive)).sum())
    fn = int(((p != positive) & (y == positive)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def matthews_corrcoef(labels: Sequence[int], predictions: Sequence[int]) -> float:
    r"""Matthews correlation (CoLA), binary case:
    $\mathrm{MCC} = \frac{TP\,TN - FP\,FN}{\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN)}}$, 0 when a margin is empty."""
    y, p = np.asarray(labels), np.asarray(predictions)
    _check_lengths(y, p)
    tp = float(((p == 1) & (y == 1)).sum())
    tn = float(((p == 0) & (y == 0)).sum())
    fp = float(((p == 1) & (y == 0)).sum())
    fn = float(((p == 0) & (y == 1)).sum())
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


def _correlation(statistic: Callable, labels: Sequence[float], predictions: Sequence[float]) -> float:
    y, p = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    _check_lengths(y, p)
    if y.std() == 0 or p.std() == 0:
        return 0.0
    return float(statistic(y, p).statistic)


def pearson(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Pearson correlation (STS-B's main metric); 0 when either side is constant."""
    return _correlation(stats.pearsonr, labels, predictions)


def spearman(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Spearman rank correlation (reported for STS-B); 0 when either side is constant."""
    return _correlation(stats.spearmanr, labels, predictions)


def _normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalization: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _token_f1(prediction: str, truth: str) -> float:
    pred_tokens = _normalize_answer(prediction).split()
    truth_tokens = _normalize_answer(truth).split()
    common = collections.Counter(pred_tokens) & collections.Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


SQUAD_COLUMNS = ("squad_f1", "exact_match")  # the columns of `squad_scores`


def squad_scores(answers: Sequence[Sequence[str]], predictions: Sequence[str]) -> np.ndarray:
    """Each question's SQuAD v1.1 token F1 and exact match (columns `SQUAD_COLUMNS`), each the best over its gold
    answers: the two metrics are these columns' means, and a bootstrap resamples the rows."""
    _check_lengths(answers, predictions)
    return np.array([
        (max(_token_f1(pred, gold) for gold in golds),
         max(float(_normalize_answer(pred) == _normalize_answer(gold)) for gold in golds))
        for golds, pred in zip(answers, predictions)
    ])


def squad_exact_match(answers: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """SQuAD v1.1 exact match: the best over each question's gold answers, averaged."""
    return float(squad_scores(answers, predictions)[:, 1].mean())


def squad_f1(answers: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """SQuAD v1.1 token F1: the best over each question's gold answers, averaged."""
    return float(squad_scores(answers, predictions)[:, 0].mean())


def _check_lengths(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"labels and predictions differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise ValueError("cannot compute a metric on zero examples")


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "f1": f1_binary,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
    "exact_match": squad_exact_match,
    "squad_f1": squad_f1,
}
