"""Fairness across groups: rates per group, gaps between groups, and the verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, equalized_odds_difference, false_positive_rate
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelyard.errors import InvalidInput
from modelyard.monitoring._fairness import MIN_GROUP, fairness
from modelyard.stats import proportion_interval


def decisions(
    group: str, rows: int, tpr: float, fpr: float, base_rate: float = 0.5, seed: int = 0
) -> pd.DataFrame:
    """`rows` labelled decisions for `group` with exactly these rates."""
    rng = np.random.default_rng(seed)
    positives = round(rows * base_rate)
    label = np.r_[np.ones(positives, int), np.zeros(rows - positives, int)]
    hits = round(positives * tpr)
    false_alarms = round((rows - positives) * fpr)
    prediction = np.r_[
        np.ones(hits, int),
        np.zeros(positives - hits, int),
        np.ones(false_alarms, int),
        np.zeros(rows - positives - false_alarms, int),
    ]
    order = rng.permutation(rows)
    return pd.DataFrame({"group": group, "label": label[order], "prediction": prediction[order]})


def test_groups_with_different_false_positive_rates_are_unfair() -> None:
    frame = pd.concat(
        [decisions("A", 2_000, tpr=0.8, fpr=0.05), decisions("B", 2_000, tpr=0.8, fpr=0.30)]
    )

    report = fairness(frame, sensitive="group", n_resamples=300)

    assert report.unfair
    a, b = report.groups
    assert (a.fpr.value, b.fpr.value) == pytest.approx((0.05, 0.30))
    assert report.equalized_odds_difference.value == pytest.approx(0.25)
    assert report.equalized_odds_difference.low > 0.1
    odds = [r for r in report.reasons if r.startswith("equalized odds")]
    assert len(odds) == 1
    assert "false-positive" in odds[0]
    assert "(group=B 0.300 vs group=A 0.050), above 0.1" in odds[0]


def test_equal_error_rates_are_fair() -> None:
    frame = pd.concat(
        [decisions("A", 2_000, tpr=0.8, fpr=0.1), decisions("B", 2_000, tpr=0.8, fpr=0.1)]
    )

    report = fairness(frame, sensitive="group", n_resamples=300)

    assert not report.unfair
    assert report.reasons == []
    assert report.demographic_parity_difference.value == pytest.approx(0.0)
    assert report.disparate_impact.value == pytest.approx(1.0)


def test_a_model_that_errs_more_for_one_group_is_unfair_and_a_fair_one_is_not() -> None:
    x, y = make_classification(n_samples=8_000, n_features=6, class_sep=1.5, random_state=0)
    group = np.where(np.random.default_rng(0).random(8_000) < 0.5, "A", "B")
    model = LogisticRegression().fit(x[:4_000], y[:4_000])
    served, truth, members = x[4_000:], y[4_000:], group[4_000:]
    noisy = served.copy()  # group B's features arrive corrupted: its negatives look positive
    shift = (members == "B") & (truth == 0)
    noisy[shift] += 1.0 * (model.coef_[0] / np.linalg.norm(model.coef_[0]))

    fair = fairness(
        pd.DataFrame({"sex": members, "label": truth, "prediction": model.predict(served)}),
        sensitive="sex",
        n_resamples=200,
    )
    unfair = fairness(
        pd.DataFrame({"sex": members, "label": truth, "prediction": model.predict(noisy)}),
        sensitive="sex",
        n_resamples=200,
    )

    assert not fair.unfair, fair.reasons
    assert unfair.unfair
    assert any("false-positive" in reason for reason in unfair.reasons)


def test_the_four_fifths_rule_flags_unequal_selection() -> None:
    frame = pd.concat(
        [
            decisions("A", 1_000, tpr=0.9, fpr=0.1, base_rate=0.5),
            decisions("B", 1_000, tpr=0.9, fpr=0.1, base_rate=0.3),
        ]
    )

    report = fairness(frame, sensitive="group", n_resamples=200, max_difference=1.0)

    assert report.disparate_impact.value == pytest.approx(0.34 / 0.5)
    assert report.unfair
    assert report.reasons == [
        "four-fifths rule: group=B is selected at 0.340, 0.680 of group=A's 0.500 (below 0.8)"
    ]


def test_rates_are_fairlearns_with_wilson_intervals() -> None:
    frame = pd.concat(
        [decisions("A", 500, tpr=0.7, fpr=0.2, seed=1), decisions("B", 300, 0.6, 0.1, seed=2)]
    )
    expected = MetricFrame(
        metrics=false_positive_rate,
        y_true=frame["label"],
        y_pred=frame["prediction"],
        sensitive_features=frame["group"],
    ).by_group

    report = fairness(frame, sensitive="group", n_resamples=200)

    for rates in report.groups:
        assert rates.fpr.value == pytest.approx(expected[rates.group["group"]])
        false_alarms = round(rates.fpr.value * rates.negatives)
        assert (rates.fpr.low, rates.fpr.high) == pytest.approx(
            proportion_interval(false_alarms, rates.negatives)
        )
        assert rates.selection_rate.low <= rates.selection_rate.value <= rates.selection_rate.high
    assert report.equalized_odds_difference.value == pytest.approx(
        equalized_odds_difference(
            frame["label"], frame["prediction"], sensitive_features=frame["group"]
        )
    )


def test_small_groups_are_reported_but_not_judged() -> None:
    frame = pd.concat(
        [
            decisions("A", 1_000, tpr=0.8, fpr=0.1),
            decisions("B", 1_000, tpr=0.8, fpr=0.1),
            decisions("C", MIN_GROUP - 10, tpr=0.2, fpr=0.9),
        ]
    )

    report = fairness(frame, sensitive="group", n_resamples=200)

    small = report.groups[2]
    assert small.group == {"group": "C"}
    assert not small.judged
    assert "not judged" in small.note
    assert small.fpr.value == pytest.approx(0.9)
    assert not report.unfair


def test_only_one_judged_group_gives_no_verdict() -> None:
    frame = pd.concat([decisions("A", 500, 0.8, 0.1), decisions("B", 20, 0.1, 0.9)])

    report = fairness(frame, sensitive="group", n_resamples=100)

    assert not report.unfair
    assert report.equalized_odds_difference.value is None
    assert "no verdict" in report.note


def test_sensitive_columns_come_from_logged_inputs_and_combine() -> None:
    frame = pd.concat(
        [decisions("A", 400, 0.8, 0.1, seed=3), decisions("B", 400, 0.8, 0.1, seed=4)]
    ).reset_index(drop=True)
    frame["inputs"] = [
        {"sex": g, "age_band": "young" if i % 2 else "old", "x": 1.0}
        for i, g in enumerate(frame.pop("group"))
    ]
    frame.loc[::7, "label"] = np.nan  # not labelled yet

    report = fairness(frame, sensitive=["sex", "age_band"], n_resamples=100)

    assert len(report.groups) == 4
    assert {tuple(g.group) for g in report.groups} == {("sex", "age_band")}
    assert report.unlabelled == len(frame[::7])
    assert report.rows == len(frame) - report.unlabelled
    json.dumps(report.to_dict())


def test_missing_sensitive_column_names_what_there_is() -> None:
    frame = decisions("A", 50, 0.8, 0.1)
    with pytest.raises(InvalidInput, match=r"sensitive column 'sex' .*\['group', 'label'"):
        fairness(frame, sensitive="sex")
    with pytest.raises(InvalidInput, match=r"lacks column\(s\) \['label'\]"):
        fairness(frame.drop(columns="label"), sensitive="group")


def test_empty_frame_and_unknown_positive_label_are_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        fairness(pd.DataFrame(columns=["group", "label", "prediction"]), sensitive="group")
    with pytest.raises(InvalidInput, match="positive_label 'yes'"):
        fairness(decisions("A", 50, 0.8, 0.1), sensitive="group", positive_label="yes")
