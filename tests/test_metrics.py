import math

import numpy as np
import pytest

from flatcompress import metrics


def test_accuracy_and_f1_by_hand():
    y = [1, 1, 0, 0, 1, 0]
    p = [1, 0, 0, 1, 1, 0]
    assert metrics.accuracy(y, p) == pytest.approx(4 / 6)
    # TP=2, FP=1, FN=1 -> F1 = 4 / (4 + 1 + 1)
    assert metrics.f1_binary(y, p) == pytest.approx(4 / 6)
    assert metrics.f1_binary([0, 0], [0, 0]) == 0.0


def test_matthews_by_hand():
    y = [1, 1, 1, 0, 0, 0, 0]
    p = [1, 1, 0, 0, 0, 1, 0]
    tp, tn, fp, fn = 2, 3, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics.matthews_corrcoef(y, p) == pytest.approx(expected)
    assert metrics.matthews_corrcoef(y, y) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef(y, [1 - v for v in y]) == pytest.approx(-1.0)
    assert metrics.matthews_corrcoef(y, [1] * 7) == 0.0  # an empty margin


def test_pearson_spearman_by_hand():
    y = [1.0, 2.0, 3.0, 4.0]
    p = [2.0, 4.0, 6.0, 8.5]
    ym, pm = np.mean(y), np.mean(p)
    expected = sum((a - ym) * (b - pm) for a, b in zip(y, p)) / math.sqrt(
        sum((a - ym) ** 2 for a in y) * sum((b - pm) ** 2 for b in p))
    assert metrics.pearson(y, p) == pytest.approx(expected)
    assert metrics.spearman(y, [1, 10, 100, 1000]) == pytest.approx(1.0)
    assert metrics.spearman(y, [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.pearson(y, [1, 1, 1, 1]) == 0.0


def test_squad_em_f1_by_hand():
    answers = [["the Eiffel Tower", "Eiffel Tower"], ["1889"]]
    preds = ["Eiffel tower!", "in 1889 it was"]
    assert metrics.squad_exact_match(answers, preds) == pytest.approx(0.5)
    # second: pred tokens [in, 1889, it, was], gold [1889]: P=1/4, R=1, F1=0.4
    assert metrics.squad_f1(answers, preds) == pytest.approx((1.0 + 0.4) / 2)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="zero examples"):
        metrics.accuracy([], [])
