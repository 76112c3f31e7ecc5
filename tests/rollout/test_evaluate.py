"""What each variant did, from the prediction log and feedback as frames: served, mirrored,
failed and fallback rows told apart, labels found through the id the client got, rates with
their intervals, and nothing made up for an empty window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from _traffic import T0, Traffic, deployment_of, frames, rows_of, simulate
from modelyard.errors import InvalidInput
from modelyard.rollout._evaluate import deployment_rows, variant_stats
from modelyard.rollout._spec import Deployment
from modelyard.serving._ids import new_ids
from modelyard.serving._records import PredictionRow
from modelyard.stats import proportion_interval


def row(
    deployment: Deployment,
    variant: str,
    outputs: dict[str, Any],
    *,
    at: int = T0,
    parent: str | None = None,
    latency: float = 10.0,
    inputs: str = '{"customer": "c1"}',
    row_id: str | None = None,
) -> PredictionRow:
    import orjson

    return PredictionRow(
        id=row_id or new_ids(1, at)[0],
        model="churn",
        version=deployment.variant(variant).version,
        at_ms=at,
        latency_ms=latency,
        inputs=inputs,
        outputs=orjson.dumps(outputs).decode(),
        deployment=deployment.name,
        variant=variant,
        parent_id=parent,
    )


def test_failures_count_for_the_variant_that_failed_not_for_the_primary_that_answered() -> None:
    canary = deployment_of("canary")
    client = new_ids(1, T0)[0]
    traffic = Traffic(
        rows=[
            row(canary, "primary", {"predict": 1}, latency=10.0),
            row(canary, "candidate", {"predict": 0}, latency=20.0),
            # the candidate failed; the primary answered the client under `client`
            row(canary, "candidate", {"error": "boom"}, parent=client, latency=500.0),
            row(canary, "primary", {"predict": 1}, row_id=client, latency=11.0),
        ],
        labels=[(client, 1)],
    )
    rows = rows_of(canary, traffic)
    assert rows["fallback"].tolist() == [False, False, False, True]
    stats = variant_stats(rows, canary)
    primary, candidate = stats["primary"], stats["candidate"]
    assert (primary.requests, primary.errors, primary.labelled) == (1, 0, 0)
    assert (candidate.requests, candidate.errors) == (2, 1)
    assert candidate.error_rate == 0.5
    assert (candidate.error_low, candidate.error_high) == pytest.approx(
        proportion_interval(1, 2, 0.95)
    )
    # the failed request has no answer: no latency, no label, no predicted class
    assert candidate.latency_p50_ms == 20.0
    assert candidate.labelled == 0
    assert candidate.predicted == {"0": 1}


def test_a_mirrored_answer_takes_the_label_of_the_answer_the_client_got() -> None:
    duel = deployment_of("champion_challenger", 2)
    traffic = Traffic()
    truth = [1, 1, 0, 0, 1]
    champion = [1, 0, 0, 1, 1]  # right, wrong, right, wrong, right
    first = [1, 1, 0, 0, 0]  # right, right, right, right, wrong
    for i, (y, a, b) in enumerate(zip(truth, champion, first, strict=True)):
        client = new_ids(1, T0 + i)[0]
        traffic.rows.append(row(duel, "primary", {"predict": a}, at=T0 + i, row_id=client))
        traffic.rows.append(row(duel, "challenger-1", {"predict": b}, at=T0 + i, parent=client))
        traffic.labels.append((client, y))
    # a challenger copy whose request the champion never logged is not paired
    traffic.rows.append(row(duel, "challenger-2", {"predict": 1}, parent=new_ids(1, T0)[0]))
    stats = variant_stats(rows_of(duel, traffic), duel)
    pairing = stats["challenger-1"].pairing
    assert pairing is not None
    assert (pairing.pairs, pairing.agreements, pairing.labelled) == (5, 2, 5)
    assert (pairing.both_right, pairing.only_variant_right) == (2, 2)
    assert (pairing.only_primary_right, pairing.both_wrong) == (1, 0)
    champion_right, challenger_right = pairing.correctness()
    assert champion_right.tolist() == [1, 1, 0, 0, 1]
    assert challenger_right.tolist() == [1, 1, 1, 1, 0]
    assert stats["challenger-1"].metric_value == 0.8
    assert stats["primary"].metric_value == 0.6
    assert stats["challenger-2"].pairing is not None
    assert stats["challenger-2"].pairing.pairs == 0


def test_an_empty_window_has_no_rates_rather_than_rates_of_zero() -> None:
    canary = deployment_of("canary")
    traffic = simulate(canary, 50, seed=1)
    stats = variant_stats(rows_of(canary, traffic), canary, since_ms=traffic.last_ms + 1)
    for variant in stats.values():
        assert variant.requests == 0
        assert variant.error_rate is None and variant.error_low is None
        assert variant.latency_p99_ms is None
        assert variant.metric_value is None and variant.labelled == 0
        assert variant.predicted == {}


def test_rewards_are_the_numeric_labels_of_the_answers_clients_got() -> None:
    ab = deployment_of("ab", metric="reward")
    traffic = simulate(ab, 2000, seed=2, rewards={"primary": 1.0, "candidate": 1.5})
    traffic.labels[0] = (traffic.labels[0][0], "not a number")  # no reward: not counted
    stats = variant_stats(rows_of(ab, traffic), ab)
    primary, candidate = stats["primary"], stats["candidate"]
    assert primary.labelled + candidate.labelled == 1999
    assert primary.metric_value == pytest.approx(1.0, abs=0.1)
    assert candidate.metric_value == pytest.approx(1.5, abs=0.1)
    assert primary.metric_low is not None and primary.metric_high is not None
    assert primary.metric_low < primary.metric_value < primary.metric_high


def test_labels_of_a_later_window_and_missing_labels_are_told_apart() -> None:
    canary = deployment_of("canary")
    traffic = simulate(canary, 400, seed=3, labelled=0.25)
    stats = variant_stats(rows_of(canary, traffic), canary)
    labelled = stats["primary"].labelled + stats["candidate"].labelled
    assert 60 < labelled < 140  # a quarter of 400, not every answer
    assert stats["primary"].requests + stats["candidate"].requests == 400


def test_many_numeric_predictions_fall_in_bins_shared_by_every_variant() -> None:
    canary = deployment_of("canary")
    rng = np.random.default_rng(4)
    traffic = Traffic()
    for i in range(400):
        variant = "candidate" if i % 4 == 0 else "primary"
        shift = 1.0 if variant == "candidate" else 0.0
        value = float(rng.normal(shift, 1.0))
        traffic.rows.append(row(canary, variant, {"predict": value}, at=T0 + i))
    stats = variant_stats(rows_of(canary, traffic), canary)
    assert 2 <= len(stats["primary"].predicted) <= 10
    assert set(stats["candidate"].predicted) <= set(stats["primary"].predicted)
    assert sum(stats["candidate"].predicted.values()) == 100


def test_sticky_keys_are_counted_for_the_sample_ratio_check() -> None:
    ab = deployment_of("ab", sticky="field:customer")
    traffic = Traffic(
        rows=[
            row(ab, "primary", {"predict": 1}, inputs='{"customer": "a"}'),
            row(ab, "primary", {"predict": 1}, inputs='{"customer": "a"}'),
            row(ab, "primary", {"predict": 0}, inputs='{"customer": "b"}'),
            row(ab, "candidate", {"predict": 0}, inputs='{"customer": "c"}'),
        ]
    )
    predictions, feedback = frames(traffic)
    rows = deployment_rows(predictions, feedback, ab, unit_field="customer")
    stats = variant_stats(rows, ab)
    assert (stats["primary"].requests, stats["primary"].units) == (3, 2)
    assert stats["candidate"].units == 1


def test_other_deployments_and_plain_predictions_are_left_out() -> None:
    canary = deployment_of("canary")
    other = deployment_of("canary", name="other")
    traffic = simulate(canary, 100, seed=5)
    traffic += simulate(other, 100, seed=6)
    predictions, feedback = frames(traffic)
    plain = predictions.iloc[:3].assign(deployment=None, variant=None)
    predictions = pd.concat([predictions, plain], ignore_index=True)
    rows = deployment_rows(predictions, feedback, canary)
    assert len(rows) == 100


def test_frames_without_the_deployment_columns_are_refused_with_what_to_pass() -> None:
    canary = deployment_of("canary")
    predictions, feedback = frames(simulate(canary, 10, seed=7))
    with pytest.raises(InvalidInput, match="deployment, variant, parent_id"):
        deployment_rows(predictions.drop(columns=["deployment", "variant", "parent_id"]),
                        feedback, canary)  # fmt: skip
