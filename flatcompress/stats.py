r"""The statistics behind every verdict: a health gate, paired bootstrap intervals and the decision rule.

**Health gate.** A model *did not train* when it predicts a single class, or when its dev score is within two
standard errors of its floor: the score of the best constant predictor (the majority rate for accuracy, the F1
of always answering "positive" for F1) or 0 for Matthews and rank/linear correlations and SQuAD's F1 and exact match,

$$\text{score} - \text{floor} \le 2\,\mathrm{SE}(\text{score}).$$

Such a model is shown, marked, and left out of every verdict.

**Intervals.** A comparison is a signed sum of *sides* (e.g. SAM minus Adam); each side is the mean over seeds
of a *unit*, one seed's weighted sum of model scores (a score, or int8 − fp32 of one model). Its uncertainty has
two sources, estimated by a two-stage bootstrap with $B$ resamples:

1. seeds: resample each side's units with replacement. With $k$ seeds this bootstrap underestimates the spread
   of a mean ($\frac{k-1}{k}$ of the variance, and normal rather than $t$ tails), so its deviations are rescaled
   by $\sqrt{k/(k-1)}$ and widened by $t_{\nu,\,0.975} / z_{0.975}$, with Welch-Satterthwaite's $\nu$ for the
   signed sum of the sides' means (2.78 / 1.96 for two sides of 3 seeds, 2.31 / 1.96 for two of 5);
2. dev examples: resample the examples once per draw and re-score *every* model on the same resample (paired:
   the examples both models got right or wrong cancel).

The spread over seeds already holds each model's own example-level noise (its errors on these dev examples
beyond those all models share), so stage 2 adds only the dev-set variance the seeds have in common: the
example deviations are shrunk to it, estimated from their covariance across units (for one seed, nothing can be
separated and stage 2 counts in full). Draw $b$ is
$\hat\theta + \frac{t}{z}\sum_s \pm\sqrt{\tfrac{k_s}{k_s-1}}\,\delta^{\text{seed}}_{s,b}
+ a\sum_s \pm\delta^{\text{example}}_{s,b}$ with that shrinkage $a \le 1$, and the 95% interval is its 2.5th and
97.5th percentiles. Per-model scalars without examples (ε-sharpness) take stage 1 only, on the log ratio. A record without per-example predictions falls back to a normal approximation
of its score's sampling error (binomial for accuracy), drawn independently: wider, never narrower.

**Decision.** "reproduced" when the interval excludes 0 in the paper's direction, "contradicted" when it
excludes 0 in the other, otherwise "inconclusive at this scale"; with fewer than `MIN_SEEDS` seeds on a side
there is no seed variance to estimate and nothing is decided. Across tasks, per-task estimates are averaged with
equal weights, draw by draw.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import stats as _scipy_stats

from flatcompress.predictions import read_evaluation, read_scores

__all__ = ["ModelEval", "Health", "Estimate", "health", "record_health", "floor", "score_se", "compare",
           "compare_scalars", "pool", "decide", "sign_test", "seed_correction", "t_correction", "projected_half_width",
           "seeds_needed", "MIN_SEEDS", "N_RESAMPLES", "STATUSES"]

MIN_SEEDS = 3  # fewer seeds on a side: no seed variance to speak of, nothing is decided
N_RESAMPLES = 2000
STATUSES = ("reproduced", "contradicted", "inconclusive at this scale")
_Z = 1.959963984540054


@dataclass(frozen=True)
class ModelEval:
    """One model's evaluation on one split: its recorded score and, when the record has them, the labels and
    per-example predictions (and the fingerprint of the examples, which pairs models of one dev set)."""

    name: str
    metric: str
    score: float
    n: int
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)
    fingerprint: str | None = None
    majority_rate: float | None = None
    predicted_classes: int | None = None

    @classmethod
    def from_block(cls, name: str, metric: str, score: float, block: dict[str, Any] | None, n: int,
                   majority_rate: float | None = None, predicted_classes: int | None = None) -> "ModelEval":
        """From a record's evaluation block (`flatcompress.predictions`), or None for a record without one."""
        if block is None:
            return cls(name, metric, float(score), int(n), majority_rate=majority_rate,
                       predicted_classes=predicted_classes)
        if "scores" in block:  # question answering: per-question scores, no labels
            labels, predictions = None, read_scores(block, metric)
        else:
            labels, predictions = read_evaluation(block)
        if predicted_classes is None and metric in ("accuracy", "f1", "mcc"):
            predicted_classes = len(set(predictions.tolist()))
        return cls(name, metric, float(score), int(block["n"]), labels, predictions, block["fingerprint"],
                   majority_rate, predicted_classes)

    @classmethod
    def from_record(cls, record: dict[str, Any], name: str | None = None) -> "ModelEval":
        """A fine-tuning record's best epoch on its main split, in its main metric."""
        task, config = record["task"], record["config"]
        split, metric = task["main_split"], task["main_metric"]
        block = (record.get("predictions") or {}).get(split)
        n = record["data"]["n_eval"][split]
        return cls.from_block(name or f"{config['task']} {config['optimizer']} seed {config['seed']}", metric,
                              record["score"], block, n, record["data"].get("majority_rate"),
                              record.get("predicted_classes"))

    @property
    def paired(self) -> bool:
        return self.predictions is not None


@dataclass(frozen=True)
class Health:
    trained: bool
    floor: float
    se: float
    reason: str  # why it is gated ("" when it trained)


def floor(model: ModelEval) -> float:
    """The score of the best constant predictor: majority rate (accuracy), F1 of always "positive" (F1), else 0."""
    if model.metric == "accuracy":
        if model.labels is not None:
            return float(np.bincount(model.labels).max() / len(model.labels))
        return float(model.majority_rate) if model.majority_rate is not None else 0.0
    if model.metric == "f1":
        p = float(np.mean(model.labels == 1)) if model.labels is not None else (model.majority_rate or 0.0)
        return 2 * p / (1 + p)
    return 0.0


def score_se(model: ModelEval, n_resamples: int = 1000) -> float:
    """Standard error of the model's score over dev examples: bootstrapped from its predictions, else the binomial
    (accuracy, F1) or the Fisher approximation (1 - r^2) / sqrt(n - 1) (correlations, MCC)."""
    if model.paired:
        return float(np.std(_resampled(model, _indices(model.n, n_resamples, 7)), ddof=1))
    s = model.score
    if model.metric in ("accuracy", "f1"):
        return math.sqrt(max(s * (1 - s), 1e-12) / model.n)
    return (1 - s * s) / math.sqrt(max(model.n - 1, 1))


def health(model: ModelEval) -> Health:
    """Did the model train? (see the module docstring)"""
    base, se = floor(model), score_se(model)
    classes = model.predicted_classes
    if classes is None and model.paired and model.metric in ("accuracy", "f1", "mcc"):
        classes = len(np.unique(model.predictions))
    if classes == 1:
        return Health(False, base, se, "predicts a single class")
    if model.score - base <= 2 * se:
        return Health(False, base, se, f"{model.metric} {100 * model.score:.1f} is within 2 SE "
                                       f"({200 * se:.1f} points) of its floor {100 * base:.1f}")
    return Health(True, base, se, "")


def record_health(record: dict[str, Any]) -> Health:
    """`health` of a fine-tuning record's best epoch (on its main split and metric)."""
    return health(ModelEval.from_record(record))


# --- vectorised metrics on resampled examples ------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, n]).integers(0, n, size=(n_resamples, n))


def _counts(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    yy, pp = y[idx] == 1, p[idx] == 1
    tp = (yy & pp).sum(1).astype(float)
    fp = (~yy & pp).sum(1).astype(float)
    fn = (yy & ~pp).sum(1).astype(float)
    tn = idx.shape[1] - tp - fp - fn
    return tp, fp, fn, tn


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(1, keepdims=True)
    y = y - y.mean(1, keepdims=True)
    denom = np.sqrt((x * x).sum(1) * (y * y).sum(1))
    return np.divide((x * y).sum(1), denom, out=np.zeros(len(x)), where=denom > 0)


def _resampled(model: ModelEval, idx: np.ndarray) -> np.ndarray:
    """The model's metric on every resample (rows of `idx`)."""
    y, p = model.labels, model.predictions
    if model.metric == "accuracy":
        return (y == p).astype(float)[idx].mean(1)
    if model.metric == "f1":
        tp, fp, fn, _ = _counts(y, p, idx)
        denom = 2 * tp + fp + fn
        return np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0)
    if model.metric == "mcc":
        tp, fp, fn, tn = _counts(y, p, idx)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return np.divide(tp * tn - fp * fn, denom, out=np.zeros(len(tp)), where=denom > 0)
    if model.metric == "pearson":
        return _pearson_rows(p[idx].astype(float), y[idx].astype(float))
    if model.metric == "spearman":
        return _pearson_rows(_scipy_stats.rankdata(p[idx], axis=1), _scipy_stats.rankdata(y[idx], axis=1))
    if model.metric in ("squad_f1", "exact_match"):  # a mean of per-question scores
        return p.astype(float)[idx].mean(1)
    raise ValueError(f"no bootstrap for metric {model.metric!r}; valid: accuracy, f1, mcc, pearson, spearman, "
                     "squad_f1, exact_match")


# --- estimates ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A quantity with its bootstrap draws: `value`, the 95% interval (`low`, `high`) and the fewest seeds on any
    side. `scale` multiplies it for display (100: points)."""

    value: float
    draws: np.ndarray = field(repr=False, compare=False)
    seeds: int
    method: str
    scale: float = 100.0
    # from `compare`: per side, the variance of one seed's value (ddof 1) and its seeds; the dev-set variance the seeds
    # share (what more seeds do not remove). `projected_half_width` extrapolates from them.
    components: tuple[tuple[tuple[float, int], ...], float] | None = field(default=None, repr=False, compare=False)

    @property
    def low(self) -> float:
        return float(np.percentile(self.draws, 2.5))

    @property
    def high(self) -> float:
        return float(np.percentile(self.draws, 97.5))

    @property
    def half_width(self) -> float:
        """Half the 95% interval's width, in display units: about the smallest effect this evidence can detect."""
        return self.scale * (self.high - self.low) / 2

    @property
    def has_interval(self) -> bool:
        """False for a degenerate interval: one seed of a per-model scalar (log φ) has no spread to resample."""
        return self.high - self.low > 1e-12

    def text(self, digits: int = 1, unit: str = "") -> str:
        """`+1.2 [−0.3, +2.7]` in display units."""
        f = lambda v: signed(self.scale * v, digits)  # noqa: E731
        if not self.has_interval:
            return f"{f(self.value)}{unit} (no interval: {self.seeds} seed)"
        return f"{f(self.value)}{unit} [{f(self.low)}, {f(self.high)}]"


def signed(value: float, digits: int = 1) -> str:
    """A difference as the book prints it: always signed, with a typographic minus (`+1.2`, `−0.3`)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def seed_correction(k: int) -> float:
    """c_k: the factor that widens a k-seed bootstrap of one mean to a t-interval's width (see the module docstring)."""
    if k < 2:
        return 0.0
    return math.sqrt(k / (k - 1)) * t_correction([(1.0, k - 1)])


def t_correction(variances: Sequence[tuple[float, int]]) -> float:
    """t / z at 97.5% with Welch-Satterthwaite degrees of freedom for a sum of means with these (variance, df);
    1 when there is nothing to correct."""
    variances = [(v, df) for v, df in variances if df > 0]
    if not variances:
        return 1.0
    total = sum(v for v, _ in variances)
    denom = sum(v * v / df for v, df in variances)
    df = total * total / denom if denom > 0 else min(df for _, df in variances)
    return float(_scipy_stats.t.ppf(0.975, df)) / _Z


Unit = Sequence[tuple[float, ModelEval]]  # one seed: sum of weight x score


def compare(sides: Sequence[tuple[float, Sequence[Unit]]], n_resamples: int = N_RESAMPLES, seed: int = 0,
            scale: float = 100.0) -> Estimate:
    """Σ_side sign × mean over the side's units (seeds) of Σ weight × score, with its two-stage bootstrap draws.

    Every model with predictions must be scored on the same examples (one fingerprint): they are resampled together.
    """
    models = [m for _, units in sides for unit in units for _, m in unit]
    if not models or any(len(units) == 0 for _, units in sides):
        raise ValueError("a comparison needs at least one unit (seed) on every side")
    paired = [m for m in models if m.paired]
    if len({m.fingerprint for m in paired}) > 1 or len({m.n for m in paired}) > 1:
        raise ValueError("paired models must be scored on the same examples; got fingerprints "
                         f"{sorted({str(m.fingerprint)[:8] for m in paired})}")
    rng = np.random.default_rng([seed, 1])
    idx = _indices(paired[0].n, n_resamples, seed) if paired else None
    deviations: dict[int, np.ndarray] = {}

    def deviation(m: ModelEval) -> np.ndarray:
        """How the model's score moves over the example resamples (or its normal approximation)."""
        if id(m) not in deviations:
            if m.paired:
                deviations[id(m)] = _resampled(m, idx) - _resampled(m, np.arange(m.n)[None, :])[0]
            else:
                deviations[id(m)] = score_se(m) * rng.standard_normal(n_resamples)
        return deviations[id(m)]

    value, seed_total, example_total, private = 0.0, np.zeros(n_resamples), np.zeros(n_resamples), 0.0
    variances, spreads = [], []  # (variance of the side's mean over seeds, its degrees of freedom); (s², seeds)
    for sign, units in sides:
        values = np.array([sum(w * m.score for w, m in unit) for unit in units])
        k = len(units)
        pick = rng.integers(0, k, size=(n_resamples, k))
        value += sign * values.mean()
        if k > 1:  # the bootstrap's variance of a mean is (k-1)/k of the unbiased one
            seed_total += sign * math.sqrt(k / (k - 1)) * (values[pick].mean(1) - values.mean())
            variances.append((float(np.var(values, ddof=1)) / k, k - 1))
        spreads.append((float(np.var(values, ddof=1)) if k > 1 else 0.0, k))
        deltas = np.array([sum(w * deviation(m) for w, m in unit) for unit in units])  # (k, B)
        example_total += sign * deltas.mean(0)
        if k > 1:  # the part of each unit's example noise that is its own is already in the spread over seeds
            cov = np.cov(deltas)
            private += max(float(np.mean(np.diag(cov)) - (cov.sum() - np.trace(cov)) / (k * (k - 1))), 0.0) / k
    seed_total *= t_correction(variances)
    if all(len(units) > 1 for _, units in sides):  # keep only the dev-set variance the seeds share
        total_var = float(np.var(example_total))
        example_total *= math.sqrt(max(total_var - private, 0.0) / total_var) if total_var > 0 else 0.0
    total = seed_total + example_total
    seeds = min(len(units) for _, units in sides)
    how = "paired bootstrap over seeds and dev examples" if len(paired) == len(models) else \
        "bootstrap over seeds; normal approximation over dev examples (records without per-example predictions)"
    return Estimate(value, value + total, seeds, how, scale, (tuple(spreads), float(np.var(example_total))))


def projected_half_width(estimate: Estimate, seeds: int) -> float:
    """The half-width (display units) of the 95% interval `compare` would give with `seeds` seeds on every side,
    from a pilot's estimate: each side's seed variance s² as measured, the dev-set variance the seeds share as it is;

        half-width ≈ 1.96 √(c² Σ_side s²/K + V_shared),
        c = the t-correction for K − 1 degrees of freedom per side."""
    if estimate.components is None:
        raise ValueError("a projection needs an estimate from `compare`")
    spreads, shared = estimate.components
    if seeds < 2 or any(k < 2 for _, k in spreads):
        raise ValueError("a projection needs at least 2 pilot seeds on every side, and seeds >= 2")
    seed_part = [(s2 / seeds, seeds - 1) for s2, _ in spreads]
    c = t_correction(seed_part)
    return estimate.scale * 1.959964 * math.sqrt(c ** 2 * sum(v for v, _ in seed_part) + shared)


def seeds_needed(estimate: Estimate, half_width: float, most: int = 50) -> int | None:
    """The fewest seeds per side whose projected 95% half-width (display units) is at most `half_width`; None when
    even `most` seeds are not enough (the shared dev-set variance alone can be too wide)."""
    return next((k for k in range(2, most + 1) if projected_half_width(estimate, k) <= half_width), None)


def compare_scalars(sides: Sequence[tuple[float, Sequence[float]]], n_resamples: int = N_RESAMPLES, seed: int = 0,
                    scale: float = 1.0) -> Estimate:
    """Σ sign × mean of per-seed scalars (e.g. log φ), with the corrected seed bootstrap of stage 1 only."""
    if any(len(values) == 0 for _, values in sides):
        raise ValueError("a comparison needs at least one value on every side")
    rng = np.random.default_rng([seed, 2])
    value, total, variances = 0.0, np.zeros(n_resamples), []
    for sign, values in sides:
        v = np.asarray(values, dtype=float)
        value += sign * v.mean()
        if len(v) > 1:
            pick = rng.integers(0, len(v), size=(n_resamples, len(v)))
            total += sign * math.sqrt(len(v) / (len(v) - 1)) * (v[pick].mean(1) - v.mean())
            variances.append((float(np.var(v, ddof=1)) / len(v), len(v) - 1))
    total *= t_correction(variances)
    return Estimate(value, value + total, min(len(v) for _, v in sides), "bootstrap over seeds", scale)


def pool(estimates: Sequence[Estimate]) -> Estimate:
    """The mean of per-task estimates, draw by draw (each task's draws are independent of the others').

    Equal weights: inverse-variance weights estimated from three seeds are noisy enough to narrow the pooled
    interval below 95% (measured in the calibration test), and the paper's Fig. 1 averages tasks equally too."""
    if not estimates:
        raise ValueError("nothing to pool")
    value = float(np.mean([e.value for e in estimates]))
    draws = np.mean([e.draws for e in estimates], axis=0)
    return Estimate(value, draws, min(e.seeds for e in estimates), f"mean of {len(estimates)} per-task estimates",
                    estimates[0].scale)


def decide(estimate: Estimate, paper_sign: int) -> tuple[str, str]:
    """(status, reason) from an estimate and the sign of the paper's effect (+1: the quantity is positive)."""
    if estimate.seeds < MIN_SEEDS:
        return STATUSES[2], (f"{estimate.seeds} seed(s): a decision needs {MIN_SEEDS} on every side; the interval "
                             f"covers {'dev examples only' if estimate.seeds == 1 else 'too few seeds'}")
    low, high = estimate.low, estimate.high
    if low > 0 or high < 0:
        agrees = (low > 0) == (paper_sign > 0)
        return (STATUSES[0] if agrees else STATUSES[1],
                f"the 95% interval excludes 0 {'in' if agrees else 'against'} the paper's direction")
    return STATUSES[2], "the 95% interval includes 0"


def sign_test(positive: int, n: int) -> float:
    """Two-sided exact binomial p-value of `positive` successes in `n` fair coin flips."""
    return float(_scipy_stats.binomtest(positive, n, 0.5).pvalue) if n else 1.0
