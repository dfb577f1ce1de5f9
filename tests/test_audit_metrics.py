"""Every metric against small hand-computed cases, and the bootstrap's reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mien import stats as st
from mien.audit import metrics as m

# A 3-class case computed by hand:
#   true  0 0 1 1 2
#   pred  0 1 1 1 -   (the last item: no face found)
Y3 = np.array([0, 0, 1, 1, 2])
P3 = np.array([0, 1, 1, 1, -1])


def test_confusion_matrix_has_a_no_prediction_column():
    cm = m.confusion_matrix(Y3, P3, n_classes=3)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1]]


def test_confusion_matrix_rejects_out_of_range_labels():
    with pytest.raises(ValueError):
        m.confusion_matrix(np.array([3]), np.array([0]), n_classes=3)
    with pytest.raises(ValueError):
        m.confusion_matrix(np.array([0]), np.array([-2]), n_classes=3)


def test_accuracy_counts_missed_faces_as_errors():
    cm = m.confusion_matrix(Y3, P3, n_classes=3)
    assert m.accuracy(cm) == pytest.approx(3 / 5)


def test_per_class_scores_by_hand():
    s = m.class_scores(m.confusion_matrix(Y3, P3, n_classes=3))
    assert s.support.tolist() == [2, 2, 1]
    assert s.predicted.tolist() == [1, 3, 0]
    assert s.precision[:2] == pytest.approx([1.0, 2 / 3])
    assert math.isnan(s.precision[2])  # never predicted
    assert s.recall == pytest.approx([0.5, 1.0, 0.0])
    # F1 = 2TP / (2TP + FP + FN): 2/3, 4/5, 0
    assert s.f1 == pytest.approx([2 / 3, 0.8, 0.0])
    # FPR = FP / negatives: class 1 has one FP among 3 non-class-1 items
    assert s.fpr == pytest.approx([0.0, 1 / 3, 0.0])


def test_balanced_accuracy_and_macro_f1_by_hand():
    cm = m.confusion_matrix(Y3, P3, n_classes=3)
    assert m.balanced_accuracy(cm) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m.macro_f1(cm) == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)


def test_absent_class_is_not_averaged_but_still_costs():
    # true 0 1 0, pred 0 2 1: class 2 has no support but is predicted once
    cm = m.confusion_matrix(np.array([0, 1, 0]), np.array([0, 2, 1]), n_classes=3)
    s = m.class_scores(cm)
    assert math.isnan(s.recall[2])
    assert s.precision[2] == 0.0
    assert m.balanced_accuracy(cm) == pytest.approx((0.5 + 0.0) / 2)
    assert m.macro_f1(cm) == pytest.approx((2 / 3 + 0.0) / 2)
    assert m.accuracy(cm) == pytest.approx(1 / 3)


def test_weights_equal_repetition():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 30)
    p = rng.integers(-1, 4, 30)
    w = rng.integers(0, 4, 30)
    repeated = m.confusion_matrix(np.repeat(y, w), np.repeat(p, w), n_classes=4)
    assert np.array_equal(m.confusion_matrix(y, p, n_classes=4, weights=w), repeated)


def test_softmax_and_temperature():
    assert st.softmax(np.array([[0.0, math.log(3)]])) == pytest.approx(np.array([[0.25, 0.75]]))
    assert st.softmax(np.array([[0.0, 2 * math.log(3)]]), 2.0) == pytest.approx(np.array([[0.25, 0.75]]))
    assert st.softmax(np.array([[1000.0, 0.0]]))[0, 0] == pytest.approx(1.0)  # no overflow


def test_nll_and_brier_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25]])
    y = np.array([0, 1])
    assert m.nll(probs, y) == pytest.approx((-math.log(0.7) - math.log(0.25)) / 2)
    # item 1: .3^2+.2^2+.1^2 = .14; item 2: .5^2+.75^2+.25^2 = .875
    assert m.brier(probs, y) == pytest.approx((0.14 + 0.875) / 2)
    assert m.brier(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(2.0)
    # a zero probability on the truth is clipped, not infinite
    assert m.nll(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(-math.log(m.PROB_FLOOR))


def test_ece_and_reliability_bins_by_hand():
    conf = np.array([0.95, 0.95, 0.5, 0.1])
    correct = np.array([1, 0, 1, 0])
    bins = m.reliability_bins(conf, correct)
    assert len(bins.count) == 15
    assert bins.count[14] == 2 and bins.count[7] == 1 and bins.count[1] == 1 and bins.count.sum() == 4
    assert bins.mean_confidence[14] == pytest.approx(0.95)
    assert bins.accuracy[14] == pytest.approx(0.5)
    assert bins.accuracy[7] == 1.0 and bins.accuracy[1] == 0.0
    assert math.isnan(bins.accuracy[0])  # empty bin
    # (2 * |0.5-0.95| + 1 * |1-0.5| + 1 * |0-0.1|) / 4
    assert m.expected_calibration_error(conf, correct) == pytest.approx(0.375)


def test_confidence_bin_edges():
    assert m.confidence_bin(np.array([0.0, 1e-9, 1.0, 0.999]), 15).tolist() == [0, 0, 14, 14]
    assert m.confidence_bin(np.array([0.5]), 2).tolist() == [0]  # bins are (lo, hi]


def test_restricted_argmax_renormalises():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [np.nan] * 3])
    r = m.restrict_probs(probs, [0, 1])
    assert r[0] == pytest.approx([0.625, 0.375, 0.0])
    assert r[1] == pytest.approx([0.5, 0.5, 0.0])
    assert np.isnan(r[2]).all()
    assert m.predictions_from_probs(probs).tolist() == [0, 2, -1]
    assert m.predictions_from_probs(r).tolist() == [0, 0, -1]


def test_scored_turns_misses_into_uniform_wrong_guesses():
    s = m.Scored.from_probs(np.array([[0.9, 0.05, 0.05], [np.nan] * 3]), np.array([0, 0]))
    assert s.pred.tolist() == [0, -1]
    assert s.probs[1] == pytest.approx([1 / 3] * 3)
    assert m.nll_per_item(s.probs, s.y_true)[1] == pytest.approx(math.log(3))


def test_percentile_interval():
    lo, hi = st.percentile_interval(np.arange(101.0))
    assert (lo, hi) == pytest.approx((2.5, 97.5))
    assert st.percentile_interval(np.array([np.nan, np.nan])) == (None, None)


def _acc_stat(correct):
    def stat(w):
        return {"accuracy": float((w * correct).sum() / w.sum())}

    return stat


def test_bootstrap_is_reproducible_with_a_seed():
    correct = np.random.default_rng(0).random(200) < 0.7
    a = st.bootstrap_ci(_acc_stat(correct), 200, n_resamples=300, seed=7)
    b = st.bootstrap_ci(_acc_stat(correct), 200, n_resamples=300, seed=7)
    c = st.bootstrap_ci(_acc_stat(correct), 200, n_resamples=300, seed=8)
    assert a == b
    assert a != c
    v = a["accuracy"]
    assert v["ci_low"] < v["value"] < v["ci_high"]
    # binomial SE ~ sqrt(.7*.3/200) = .032: the 95% CI should be roughly +-0.064
    assert 0.09 < v["ci_high"] - v["ci_low"] < 0.16


def test_cluster_bootstrap_resamples_whole_subjects():
    subjects = np.repeat(np.arange(10), 5)
    for w in st.resample_weights(50, subjects=subjects, n_resamples=20, seed=3):
        per_subject = w.reshape(10, 5)
        assert (per_subject == per_subject[:, :1]).all()  # one weight per subject
        assert per_subject[:, 0].sum() == 10  # 10 subjects drawn
    # missing subject ids are their own clusters
    assert st.cluster_codes(["a", "", "a", None, "b"]).tolist() == [0, 1, 0, 2, 3]


def test_cluster_bootstrap_is_wider_when_subjects_are_correlated():
    # 20 subjects x 10 images; each subject is either always right or always wrong
    subj_ok = np.random.default_rng(2).random(20) < 0.6
    correct = np.repeat(subj_ok, 10)
    subjects = np.repeat(np.arange(20), 10)
    flat = st.bootstrap_ci(_acc_stat(correct), 200, n_resamples=500, seed=1)["accuracy"]
    clus = st.bootstrap_ci(_acc_stat(correct), 200, subjects=subjects, n_resamples=500, seed=1)["accuracy"]
    assert (clus["ci_high"] - clus["ci_low"]) > 2 * (flat["ci_high"] - flat["ci_low"])


def test_classification_report_matches_hand_values():
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.4, 0.5, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.6, 0.3],
            [np.nan, np.nan, np.nan],
        ]
    )
    rep = m.classification_report(probs, Y3, labels=("a", "b", "c"), n_resamples=200, seed=0)
    assert rep["n"] == 5 and rep["n_no_prediction"] == 1
    assert rep["accuracy"]["value"] == pytest.approx(0.6)
    assert rep["balanced_accuracy"]["value"] == pytest.approx(0.5)
    assert rep["macro_f1"]["value"] == pytest.approx((2 / 3 + 0.8) / 3)
    expected_nll = -(math.log(0.8) + math.log(0.4) + math.log(0.7) + math.log(0.6) + math.log(1 / 3)) / 5
    assert rep["nll"]["value"] == pytest.approx(expected_nll)
    for key in m.HEADLINE:
        v = rep[key]
        assert v["ci_low"] is not None and v["ci_low"] <= v["value"] + 1e-12 <= v["ci_high"] + 2e-12
    assert rep["confusion"]["counts"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1]]
    assert rep["confusion"]["columns"][-1] == "no_prediction"
    assert rep["per_class"]["c"]["precision"]["value"] is None  # JSON null, not NaN
    assert rep["per_class"]["b"]["support"] == 2
    assert sum(b["count"] for b in rep["reliability"]["bins"]) == 5
