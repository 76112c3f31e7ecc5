"""Performance with delayed labels: the log joined with feedback, per window, against the
version's validation metrics."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.datasets import load_diabetes, make_classification
from sklearn.linear_model import LogisticRegression, Ridge

from modelyard.errors import InvalidInput
from modelyard.monitoring._performance import (
    MIN_LABELS,
    inputs_frame,
    join_feedback,
    performance,
)
from modelyard.stats import proportion_interval

START = pd.Timestamp("2024-05-01 00:00", tz="UTC")
RESAMPLES = 300


def prediction_log(
    inputs: pd.DataFrame, predicted: np.ndarray, proba: np.ndarray | None, at: pd.Series
) -> pd.DataFrame:
    """Predictions as `modelyard.serving.read_predictions` returns them."""
    outputs: list[dict[str, Any]] = []
    for row, value in enumerate(predicted):
        out: dict[str, Any] = {"predict": value.item()}
        if proba is not None:
            out["predict_proba"] = proba[row].tolist()
        outputs.append(out)
    return pd.DataFrame(
        {
            "prediction_id": [uuid.uuid4().hex for _ in range(len(inputs))],
            "model": "churn",
            "version": 3,
            "at": at.astype("datetime64[ms, UTC]").to_numpy(),
            "latency_ms": 1.0,
            "inputs": inputs.to_dict("records"),
            "outputs": outputs,
        }
    )


def feedback_for(
    log: pd.DataFrame, labels: np.ndarray, delays_s: np.ndarray, labelled: np.ndarray
) -> pd.DataFrame:
    """Feedback as `modelyard.serving.read_feedback` returns it, for the `labelled` rows."""
    at = log["at"] + pd.to_timedelta(delays_s, unit="s")
    return pd.DataFrame(
        {
            "prediction_id": log["prediction_id"],
            "model": "churn",
            "version": 3,
            "at": at,
            "label": pd.Series([v.item() for v in labels], dtype=object),
        }
    )[labelled].reset_index(drop=True)


@pytest.fixture(scope="module")
def classifier() -> dict[str, Any]:
    """A logistic regression served for two hours; 30% of labels flipped in the second hour."""
    x, y = make_classification(
        n_samples=6_000, n_features=8, n_informative=5, class_sep=1.5, random_state=0
    )
    model = LogisticRegression(max_iter=1_000).fit(x[:2_000], y[:2_000])
    valid_x, valid_y = x[2_000:3_000], y[2_000:3_000]
    baseline = {
        "accuracy": sk.accuracy_score(valid_y, model.predict(valid_x)),
        "roc_auc": sk.roc_auc_score(valid_y, model.predict_proba(valid_x)[:, 1]),
        "log_loss": sk.log_loss(valid_y, model.predict_proba(valid_x)),
    }
    served_x, truth = x[3_000:], y[3_000:].copy()
    rows = len(served_x)
    rng = np.random.default_rng(1)
    at = pd.Series(START + pd.to_timedelta(np.linspace(0, 7_199, rows), unit="s"))
    flip = (np.arange(rows) >= rows // 2) & (rng.random(rows) < 0.3)
    truth[flip] = 1 - truth[flip]
    log = prediction_log(
        pd.DataFrame(served_x, columns=[f"f{i}" for i in range(8)]),
        model.predict(served_x),
        model.predict_proba(served_x),
        at,
    )
    delays = rng.exponential(600.0, rows)
    labelled = rng.random(rows) < 0.8
    return {
        "log": log,
        "feedback": feedback_for(log, truth, delays, labelled),
        "baseline": baseline,
        "delays": delays,
        "labelled": labelled,
    }


def test_join_keeps_one_row_per_prediction_with_label_when_known(
    classifier: dict[str, Any],
) -> None:
    log, feedback = classifier["log"], classifier["feedback"]
    joined = join_feedback(log, feedback)

    assert len(joined) == len(log)
    assert list(joined["prediction_id"]) == list(log["prediction_id"])
    assert joined["label"].notna().sum() == len(feedback)
    assert joined.loc[~classifier["labelled"], "label"].isna().all()
    assert joined.loc[~classifier["labelled"], "delay_s"].isna().all()
    first = log["outputs"].iloc[0]
    assert joined["prediction"].iloc[0] == first["predict"]
    assert joined["score"].iloc[0] == pytest.approx(first["predict_proba"][1])
    expected = classifier["delays"][classifier["labelled"]]
    assert joined["delay_s"].dropna().to_numpy() == pytest.approx(expected, abs=2e-3)


def test_window_with_flipped_labels_is_degraded_and_the_first_is_not(
    classifier: dict[str, Any],
) -> None:
    joined = join_feedback(classifier["log"], classifier["feedback"])
    baseline = classifier["baseline"]

    report = performance(joined, window="1h", baseline=baseline, n_resamples=RESAMPLES, seed=0)

    assert report.task == "classification"
    assert report.positive_label == 1
    first, second = report.windows
    assert first.status == second.status == "ok"
    assert not first.degraded
    accuracy = first.metrics["accuracy"]
    assert accuracy.low <= baseline["accuracy"] <= accuracy.high
    assert second.degraded
    assert {"accuracy", "roc_auc", "log_loss"} <= set(second.degraded_metrics)
    assert second.metrics["accuracy"].high < baseline["accuracy"]
    assert second.metrics["log_loss"].low > baseline["log_loss"]
    assert second.degradation["accuracy"].difference < -0.15
    assert report.degraded


def test_label_coverage_and_delay_come_from_feedback_times(
    classifier: dict[str, Any],
) -> None:
    joined = join_feedback(classifier["log"], classifier["feedback"])

    (window,) = performance(joined, n_resamples=50).windows

    labelled, delays = classifier["labelled"], classifier["delays"][classifier["labelled"]]
    assert window.rows == len(joined)
    assert window.labelled == labelled.sum()
    assert window.coverage.value == pytest.approx(labelled.mean())
    low, high = proportion_interval(labelled.sum(), len(labelled))
    assert (window.coverage.low, window.coverage.high) == pytest.approx((low, high))
    assert window.delay_median_s == pytest.approx(np.median(delays), abs=2e-3)
    assert window.delay_p90_s == pytest.approx(np.percentile(delays, 90), abs=2e-3)


def test_classification_values_are_scikit_learns(classifier: dict[str, Any]) -> None:
    joined = join_feedback(classifier["log"], classifier["feedback"])
    labelled = joined[joined["label"].notna()]
    y = labelled["label"].astype(int)
    p = labelled["prediction"].astype(int)

    metrics = performance(joined, n_resamples=50).windows[0].metrics

    assert metrics["accuracy"].value == pytest.approx(sk.accuracy_score(y, p))
    assert metrics["precision"].value == pytest.approx(sk.precision_score(y, p))
    assert metrics["recall"].value == pytest.approx(sk.recall_score(y, p))
    assert metrics["f1"].value == pytest.approx(sk.f1_score(y, p))
    assert metrics["roc_auc"].value == pytest.approx(sk.roc_auc_score(y, labelled["score"]))
    assert metrics["brier"].value == pytest.approx(sk.brier_score_loss(y, labelled["score"]))
    for value in metrics.values():
        assert value.low <= value.value <= value.high


def test_regression_metrics_match_scikit_learn() -> None:
    x, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.1).fit(x[:250], y[:250])
    served, truth = x[250:], y[250:]
    at = pd.Series(START + pd.to_timedelta(np.arange(len(served)) * 10, unit="s"))
    log = prediction_log(pd.DataFrame(served), model.predict(served), None, at)
    everyone = np.ones(len(served), dtype=bool)
    joined = join_feedback(log, feedback_for(log, truth, np.full(len(served), 60.0), everyone))

    report = performance(joined, n_resamples=RESAMPLES, baseline={"mae": 40.0})

    assert report.task == "regression"
    metrics = report.windows[0].metrics
    predicted = model.predict(served)
    assert metrics["mae"].value == pytest.approx(sk.mean_absolute_error(truth, predicted))
    assert metrics["rmse"].value == pytest.approx(sk.root_mean_squared_error(truth, predicted))
    assert metrics["r2"].value == pytest.approx(sk.r2_score(truth, predicted))
    assert metrics["mape"].value == pytest.approx(
        sk.mean_absolute_percentage_error(truth, predicted)
    )
    for value in metrics.values():
        assert value.low < value.value < value.high
    assert report.windows[0].delay_median_s == pytest.approx(60.0)
    assert report.windows[0].degradation["mae"].higher_is_better is False


@pytest.mark.parametrize("classes", [2, 4])
def test_bootstrap_statistics_equal_scikit_learns(classes: int) -> None:
    from modelyard.monitoring._performance import _definitions

    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 500).astype(np.float64)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, classes, 500)).astype(np.float64)
    s = np.round(rng.random(500), 2)  # ties, as real scores have
    names = ["accuracy", "precision", "recall", "f1"]
    if classes == 2:
        names += ["roc_auc", "log_loss", "brier", "mae", "rmse", "r2", "mape"]
    for name in names:
        reported, statistic = _definitions(name, classes)
        second = s if name in ("roc_auc", "log_loss", "brier") else p
        truth = y + 1.0 if name == "mape" else y
        assert statistic(truth, second) == pytest.approx(reported(truth, second)), name


def test_window_with_few_labels_gets_no_verdict(classifier: dict[str, Any]) -> None:
    joined = join_feedback(classifier["log"], classifier["feedback"]).iloc[:200].copy()
    joined.loc[joined.index[MIN_LABELS - 10 :], ["label", "delay_s"]] = np.nan

    report = performance(joined, baseline={"accuracy": 0.99}, n_resamples=50)

    (window,) = report.windows
    assert window.status == "insufficient labels"
    assert window.metrics["accuracy"].value is None
    assert "insufficient labels" in window.metrics["accuracy"].reason
    assert window.degradation["accuracy"].degraded is None
    assert not report.degraded
    assert window.coverage.value == pytest.approx(window.labelled / 200)


def test_single_class_makes_roc_auc_none_with_the_reason(classifier: dict[str, Any]) -> None:
    joined = join_feedback(classifier["log"], classifier["feedback"])
    negatives = joined[joined["label"] == 0]

    metrics = performance(negatives, n_resamples=50).windows[0].metrics

    assert metrics["roc_auc"].value is None
    assert "both classes" in metrics["roc_auc"].reason
    assert metrics["accuracy"].value is not None
    assert metrics["log_loss"].value is not None


def test_report_is_json_and_a_frame_per_window_and_metric(classifier: dict[str, Any]) -> None:
    joined = join_feedback(classifier["log"], classifier["feedback"])
    report = performance(joined, window="1h", baseline=classifier["baseline"], n_resamples=50)

    data = json.loads(json.dumps(report.to_dict()))
    frame = report.to_frame()

    assert data["windows"][1]["degraded"] is True
    assert len(frame) == 2 * 7
    assert set(frame["metric"]) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
    }
    assert frame.loc[frame["metric"] == "f1", "baseline"].isna().all()


def test_text_labels_use_the_named_positive_class() -> None:
    rng = np.random.default_rng(3)
    truth = np.where(rng.random(400) < 0.4, "churn", "stay")
    predicted = np.where(rng.random(400) < 0.8, truth, np.where(truth == "churn", "stay", "churn"))
    at = pd.Series(START + pd.to_timedelta(np.arange(400), unit="s"))
    log = prediction_log(pd.DataFrame({"a": range(400)}), predicted, None, at)
    labels = feedback_for(log, truth, np.ones(400), np.ones(400, dtype=bool))

    report = performance(join_feedback(log, labels), positive_label="churn", n_resamples=50)

    recall = report.windows[0].metrics["recall"].value
    assert recall == pytest.approx(sk.recall_score(truth, predicted, pos_label="churn"))
    assert report.windows[0].metrics["roc_auc"].value is None


def test_inputs_frame_expands_logged_inputs(classifier: dict[str, Any]) -> None:
    columns = inputs_frame(classifier["log"])

    assert list(columns.columns) == [f"f{i}" for i in range(8)]
    assert len(columns) == len(classifier["log"])


def test_missing_columns_are_named() -> None:
    with pytest.raises(InvalidInput, match=r"lacks column\(s\) \['outputs'\]"):
        join_feedback(pd.DataFrame(columns=["prediction_id", "at", "version"]), pd.DataFrame())
    with pytest.raises(InvalidInput, match=r"lacks column\(s\) \['label'\]"):
        performance(pd.DataFrame({"at": [START], "prediction": [1]}))


def test_empty_input_is_refused() -> None:
    empty = pd.DataFrame(columns=["at", "prediction", "label"])
    with pytest.raises(InvalidInput, match="empty"):
        performance(empty)


def test_duplicate_feedback_and_unknown_baseline_are_refused(
    classifier: dict[str, Any],
) -> None:
    feedback = classifier["feedback"]
    with pytest.raises(InvalidInput, match="more than once"):
        join_feedback(classifier["log"], pd.concat([feedback, feedback.iloc[:1]]))
    joined = join_feedback(classifier["log"], feedback)
    with pytest.raises(InvalidInput, match="'mae'"):
        performance(joined, baseline={"mae": 1.0})
    with pytest.raises(InvalidInput, match="pandas offset"):
        performance(joined, window="fortnightly")
