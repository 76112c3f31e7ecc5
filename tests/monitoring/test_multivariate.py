"""Multivariate drift: a domain classifier catches changed relationships and names them."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.monitoring import domain_classifier_drift

NOISE = ["n1", "n2", "n3"]


def correlated(rows: int, rho: float, seed: int) -> pd.DataFrame:
    """x, y standard normal with correlation `rho`, plus three unrelated noise columns."""
    rng = np.random.default_rng(seed)
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=rows)
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})
    for name in NOISE:
        frame[name] = rng.normal(size=rows)
    return frame


@pytest.fixture(scope="module")
def flipped() -> tuple[pd.DataFrame, pd.DataFrame]:
    return correlated(5_000, 0.8, seed=1), correlated(5_000, -0.8, seed=2)


def test_flipped_correlation_leaves_every_marginal_unchanged(
    flipped: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = flipped
    for column in reference.columns:
        assert stats.ks_2samp(reference[column], current[column]).pvalue > 0.01, column


def test_flipped_correlation_is_drift_driven_by_both_columns(
    flipped: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    result = domain_classifier_drift(*flipped)

    assert result.drifted
    assert result.auc_low > result.threshold == 0.55
    assert result.auc_low <= result.auc <= result.auc_high
    assert {name for name, _ in result.drivers[:2]} == {"x", "y"}
    assert not {name for name, _ in result.drivers} & set(NOISE)
    assert result.rows == (5_000, 5_000)


def test_same_distribution_is_not_drift() -> None:
    result = domain_classifier_drift(correlated(5_000, 0.8, seed=3), correlated(5_000, 0.8, seed=4))

    assert not result.drifted
    assert result.auc_low <= 0.5 <= result.auc_high
    assert result.drivers == []


def plans(rows: int, shares: list[float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "plan": rng.choice(["free", "pro", "team", "enterprise"], size=rows, p=shares),
            "age": rng.normal(40, 10, size=rows),
            "visits": rng.poisson(3, size=rows),
        }
    )


def test_moved_category_share_is_drift_named_by_its_column() -> None:
    reference = plans(3_000, [0.7, 0.2, 0.1, 0.0], seed=5)
    current = plans(3_000, [0.3, 0.3, 0.2, 0.2], seed=6)  # "enterprise" is new
    current["plan"] = current["plan"].astype("category")

    result = domain_classifier_drift(reference, current)

    assert result.drifted
    assert [name for name, _ in result.drivers] == ["plan"]


def test_change_in_missing_rate_is_drift() -> None:
    reference, current = (
        plans(2_000, [0.5, 0.5, 0.0, 0.0], seed=7),
        plans(2_000, [0.5, 0.5, 0.0, 0.0], seed=8),
    )
    current.loc[current.index[:600], "age"] = np.nan

    result = domain_classifier_drift(reference, current)

    assert result.drifted
    assert result.drivers[0][0] == "age"


def test_constant_columns_are_skipped_and_reported() -> None:
    reference, current = correlated(500, 0.0, seed=9), correlated(500, 0.0, seed=10)
    for frame in (reference, current):
        frame["version"] = "v1"
        frame["empty"] = np.nan

    result = domain_classifier_drift(reference, current)
    assert result.skipped == ("version", "empty")
    assert not result.drifted

    only_constant = domain_classifier_drift(reference, current, columns=["version", "empty"])
    assert (only_constant.auc, only_constant.drifted) == (0.5, False)


def test_same_seed_gives_the_same_verdict() -> None:
    reference, current = correlated(1_000, 0.8, seed=11), correlated(1_000, -0.8, seed=12)

    first = domain_classifier_drift(reference, current, max_rows=600, seed=3)
    again = domain_classifier_drift(reference, current, max_rows=600, seed=3)

    assert first == again
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()


def test_cost_is_bounded_by_subsampling() -> None:
    rng = np.random.default_rng(13)
    rows = 1_000_000
    reference = pd.DataFrame({f"c{i}": rng.normal(size=rows) for i in range(5)})
    current = pd.DataFrame({f"c{i}": rng.normal(size=rows) for i in range(5)})
    current["c0"] += 0.5

    started = time.perf_counter()
    result = domain_classifier_drift(reference, current)
    elapsed = time.perf_counter() - started

    assert result.rows == (20_000, 20_000)
    assert result.drifted
    assert result.drivers[0][0] == "c0"
    assert elapsed < 20, f"{elapsed:.1f} s"


@pytest.mark.parametrize(
    ("reference", "current", "options", "message"),
    [
        (
            correlated(100, 0.0, 0),
            correlated(100, 0.0, 0).rename(columns={"n1": "z"}),
            {},
            r"only in reference: \['n1'\], only in current: \['z'\]",
        ),
        (correlated(100, 0.0, 0), correlated(100, 0.0, 0), {"columns": ["x", "w"]}, r"\['w'\]"),
        (correlated(0, 0.0, 0), correlated(100, 0.0, 0), {}, "reference has no rows"),
        (correlated(100, 0.0, 0), correlated(49, 0.0, 0), {}, "insufficient data: current"),
        (correlated(100, 0.0, 0), correlated(100, 0.0, 0), {"threshold": 0.4}, "threshold"),
        (correlated(100, 0.0, 0), correlated(100, 0.0, 0), {"folds": 1}, "folds"),
        (correlated(100, 0.0, 0), correlated(100, 0.0, 0), {"confidence": 1.0}, "confidence"),
        (correlated(100, 0.0, 0), correlated(100, 0.0, 0), {"max_rows": 10}, "max_rows"),
    ],
)
def test_bad_input_says_what_to_fix(
    reference: pd.DataFrame, current: pd.DataFrame, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        domain_classifier_drift(reference, current, **options)  # type: ignore[arg-type]
