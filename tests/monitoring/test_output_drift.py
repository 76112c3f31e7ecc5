"""Prediction drift and target drift between two windows of served predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import InvalidInput


def window(
    rows: int, *, positive: float, score_mean: float, seed: int, labels: bool = True
) -> pd.DataFrame:
    """Rows as `join_feedback` gives them: a class, a score, and a label 90 % right."""
    rng = np.random.default_rng(seed)
    prediction = (rng.random(rows) < positive).astype(int)
    return pd.DataFrame(
        {
            "prediction_id": [f"{seed:04d}{i:028d}" for i in range(rows)],
            "prediction": prediction,
            "score": np.clip(rng.normal(score_mean, 0.1, rows), 0, 1),
            "label": np.where(rng.random(rows) < 0.9, prediction, 1 - prediction)
            if labels
            else np.nan,
        }
    )


def test_answers_and_labels_that_move_are_flagged() -> None:
    reference = window(5_000, positive=0.3, score_mean=0.35, seed=1)
    steady = window(5_000, positive=0.3, score_mean=0.35, seed=2)
    same = my.monitoring.output_drift(reference, steady)
    assert same.drifted_columns == []
    shifted = window(5_000, positive=0.5, score_mean=0.5, seed=3)
    moved = my.monitoring.output_drift(reference, shifted)
    assert sorted(moved.drifted_columns) == ["label", "prediction", "score"]
    assert moved.columns["prediction"].kind == "categorical"
    assert moved.columns["score"].kind == "numeric"


def test_labels_that_have_not_arrived_are_left_out() -> None:
    reference = window(2_000, positive=0.3, score_mean=0.35, seed=1)
    current = window(2_000, positive=0.3, score_mean=0.35, seed=2, labels=False)
    report = my.monitoring.output_drift(reference, current)
    assert set(report.columns) == {"prediction", "score"}


def test_frames_without_predictions_are_refused() -> None:
    with pytest.raises(InvalidInput, match="join_feedback rows"):
        my.monitoring.output_drift(pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1]}))


def test_labels_that_became_floats_while_some_are_missing_match_integer_labels() -> None:
    """A window with labels still missing holds them as floats (1.0); they are the same
    classes as the reference's integers, so nothing drifts."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 400)
    reference = pd.DataFrame({"prediction": labels, "label": labels})
    late = pd.Series(labels[:200], dtype="float64")
    late.iloc[:20] = np.nan
    current = pd.DataFrame({"prediction": labels[:200], "label": late})
    report = my.monitoring.output_drift(reference, current)
    assert report.columns["label"].status == "tested"
    assert report.drifted_columns == []
