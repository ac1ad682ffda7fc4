"""The statistics behind the verdicts: the health gate, paired bootstrap intervals, their calibration, decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from flatcompress import stats
from flatcompress.predictions import decode_array, encode_array, evaluation_block, read_evaluation
from flatcompress.stats import ModelEval


def _model(labels, predictions, metric="accuracy", name="m", fingerprint="f"):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    from flatcompress.metrics import METRICS

    return ModelEval(name, metric, METRICS[metric](labels, predictions), len(labels), labels, predictions, fingerprint)


def test_predictions_round_trip_compactly():
    classes = np.array([0, 1, 1, 0, 7, -3])
    assert decode_array(encode_array(classes, "classification")).tolist() == classes.tolist()
    values = np.array([0.0, 1.25, 4.999, 3.14159])
    assert np.allclose(decode_array(encode_array(values, "regression")), values, atol=2e-3)
    block = evaluation_block([1, 0, 1], np.array([1, 1, 1]), "classification", "abc")
    assert [a.tolist() for a in read_evaluation(block)] == [[1, 0, 1], [1, 1, 1]]
    assert len(encode_array(np.zeros(872, dtype=int), "classification")["data"]) == 4 * math.ceil(872 / 3)
    with pytest.raises(ValueError, match="int8"):
        encode_array([300], "classification")


def test_the_gate_marks_constant_predictors_zero_correlations_and_near_floor_models():
    labels = np.array([1] * 60 + [0] * 40)
    constant = _model(labels, np.ones(100, dtype=int))
    assert not stats.health(constant).trained and stats.health(constant).reason == "predicts a single class"
    assert stats.floor(constant) == 0.6
    near = _model(labels, np.r_[np.ones(60, dtype=int), np.zeros(3, dtype=int), np.ones(37, dtype=int)])  # 0.63
    assert near.score == pytest.approx(0.63)
    h = stats.health(near)
    assert not h.trained and "within 2 SE" in h.reason and "floor 60.0" in h.reason
    good = _model(labels, labels)  # perfect: far above the floor
    assert stats.health(good).trained
    mcc_zero = ModelEval("cola", "mcc", 0.0, 1000)  # a record without predictions: Fisher's approximation
    assert not stats.health(mcc_zero).trained
    assert stats.score_se(mcc_zero) == pytest.approx(1 / math.sqrt(999))
    pearson = ModelEval("stsb", "pearson", 0.099, 1000)  # 3.1 standard errors above 0: it trained, weakly
    assert stats.health(pearson).trained
    f1 = _model(labels, np.ones(100, dtype=int), metric="f1")  # always "positive": F1 = 2p / (1 + p)
    assert stats.floor(f1) == pytest.approx(2 * 0.6 / 1.6) and not stats.health(f1).trained


def test_resampled_metrics_equal_the_metric_on_the_resample():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    idx = rng.integers(0, 50, size=(7, 50))
    from flatcompress.metrics import METRICS

    for metric in ("accuracy", "f1", "mcc"):
        got = stats._resampled(_model(y, p, metric), idx)
        assert np.allclose(got, [METRICS[metric](y[i], p[i]) for i in idx])
    yr, pr = rng.normal(size=50), rng.normal(size=50)
    for metric in ("pearson", "spearman"):
        got = stats._resampled(ModelEval("r", metric, 0.0, 50, yr, pr, "f"), idx)
        assert np.allclose(got, [METRICS[metric](yr[i], pr[i]) for i in idx])


def test_a_paired_comparison_of_a_model_with_itself_is_exactly_zero():
    y = np.array([0, 1] * 50)
    p = np.array([0, 1, 1, 1] * 25)
    m = _model(y, p)
    estimate = stats.compare([(1.0, [[(1.0, m)]]), (-1.0, [[(1.0, m)]])])
    assert estimate.value == 0 and estimate.low == 0 and estimate.high == 0


def test_one_seed_gives_the_example_bootstrap_of_the_difference():
    """With one seed per side the interval is the paired example bootstrap: the difference's sampling error is
    that of the disagreements (here 10 of 100 examples, all in B's favour: +10 points, SE 3 points)."""
    y = np.ones(100, dtype=int)
    a = _model(y, np.r_[np.zeros(20, dtype=int), np.ones(80, dtype=int)])
    b = _model(y, np.r_[np.zeros(10, dtype=int), np.ones(90, dtype=int)])
    estimate = stats.compare([(1.0, [[(1.0, b)]]), (-1.0, [[(1.0, a)]])])
    assert estimate.value == pytest.approx(0.10)
    assert np.std(estimate.draws) == pytest.approx(math.sqrt(0.1 * 0.9 / 100), rel=0.1)
    assert estimate.seeds == 1 and stats.decide(estimate, 1)[0] == "inconclusive at this scale"


def test_seed_correction_matches_the_t_interval():
    assert stats.seed_correction(3) == pytest.approx(math.sqrt(1.5) * 4.302653 / 1.959964, rel=1e-5)
    assert stats.t_correction([(1.0, 2), (1.0, 2)]) == pytest.approx(2.776445 / 1.959964, rel=1e-5)  # Welch: 4 df
    estimate = stats.compare_scalars([(1.0, [1.0, 2.0, 3.0])], n_resamples=20000)
    half = 4.302653 * 1.0 / math.sqrt(3)  # t_{2} * s / sqrt(k) around the mean 2
    assert (estimate.high - estimate.low) / 2 == pytest.approx(half, rel=0.1)


def test_decisions_follow_the_interval_and_the_papers_direction():
    draws = np.linspace(0.01, 0.05, 101)
    above = stats.Estimate(0.03, draws, 3, "test")
    assert stats.decide(above, 1)[0] == "reproduced" and stats.decide(above, -1)[0] == "contradicted"
    spans = stats.Estimate(0.0, np.linspace(-0.01, 0.01, 101), 5, "test")
    assert stats.decide(spans, 1)[0] == "inconclusive at this scale"
    too_few = stats.Estimate(0.03, draws, 2, "test")
    assert stats.decide(too_few, 1)[0] == "inconclusive at this scale"
    pooled = stats.pool([above, stats.Estimate(0.01, draws - 0.02, 3, "test")])
    assert pooled.value == pytest.approx(0.02) and np.allclose(pooled.draws, draws - 0.01)
    assert stats.sign_test(3, 3) == pytest.approx(0.25)


def _trial(rng, k=3, n=300, effect=0.0, sd_seed=0.02, rho=0.6):
    """Two optimizers' models on one dev set: shared example difficulty, seed-to-seed spread, `effect` for B."""
    y = rng.integers(0, 2, n)
    shared = rng.standard_normal(n)

    def model(acc):
        z = norm.cdf(rho * shared + math.sqrt(1 - rho ** 2) * rng.standard_normal(n))
        return _model(y, np.where(z < acc, y, 1 - y))

    sides = [[[(1.0, model(0.8 + effect + sd_seed * rng.standard_normal()))] for _ in range(k)],
             [[(1.0, model(0.8 + sd_seed * rng.standard_normal()))] for _ in range(k)]]
    return stats.decide(stats.compare([(1.0, sides[0]), (-1.0, sides[1])], n_resamples=1000), 1)[0]


@pytest.mark.parametrize("k, sd_seed", [(3, 0.0), (3, 0.03), (5, 0.03)])
def test_no_effect_is_decided_rarely(k, sd_seed):
    """Calibration: both optimizers drawn from one distribution; decisions ("reproduced" or "contradicted") in at most
    about 5% of trials, whether dev-example noise or seed-to-seed spread dominates."""
    rng = np.random.default_rng([k, int(1000 * sd_seed)])
    decided = [_trial(rng, k, sd_seed=sd_seed) != "inconclusive at this scale" for _ in range(200)]
    assert np.mean(decided) <= 0.065


def test_a_clear_effect_is_reproduced():
    rng = np.random.default_rng(5)
    assert [_trial(rng, 5, effect=0.1, sd_seed=0.01) for _ in range(10)] == ["reproduced"] * 10


def test_projected_half_widths_follow_the_formula_and_agree_with_the_bootstrap():
    # by hand: s² = 4e-4 per side, K = 4: Welch df = 6, t(0.975, 6) = 2.446912, so the half-width in points is
    # 100 × 2.446912 × √(2 × 4e-4 / 4) = 3.4605
    by_hand = stats.Estimate(0.0, np.zeros(10), 3, "test", components=(((4e-4, 3), (4e-4, 3)), 0.0))
    assert stats.projected_half_width(by_hand, 4) == pytest.approx(100 * 2.446912 * math.sqrt(2e-4), rel=1e-4)
    assert stats.seeds_needed(by_hand, 1.5) == 15  # 100 × t(28) × √(8e-4 / 15) = 1.496; 14 seeds: 1.554
    shared_only = stats.Estimate(0.0, np.zeros(10), 3, "test", components=(((1e-8, 3), (1e-8, 3)), 1e-4))
    assert stats.projected_half_width(shared_only, 40) == pytest.approx(1.96, rel=1e-2)
    assert stats.seeds_needed(shared_only, 1.5) is None  # the dev set alone is wider than the target
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 800)
    sides = [[[(1.0, _model(y, np.where(rng.random(800) < 0.8 + 0.03 * rng.standard_normal(), y, 1 - y)))]
              for _ in range(4)] for _ in range(2)]
    pilot = stats.compare([(1.0, sides[0]), (-1.0, sides[1])])
    assert stats.projected_half_width(pilot, 4) == pytest.approx(pilot.half_width, rel=0.15)  # its own seeds
    assert stats.projected_half_width(pilot, 10) < stats.projected_half_width(pilot, 5) < pilot.half_width
