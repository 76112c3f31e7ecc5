"""Multiple-testing corrections: Benjamini–Hochberg as SciPy has it, Holm against known values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import benjamini_hochberg, holm

EXACT = 1e-12

p_value_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40)


def holm_by_definition(p_values: list[float]) -> list[float]:
    """max over j <= i (in sorted order) of min(1, (m - j) * p_(j)), mapped back."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def test_benjamini_hochberg_matches_scipy_false_discovery_control() -> None:
    # the p-values of the example in SciPy's documentation (Benjamini & Hochberg 1995)
    ps = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
          0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]  # fmt: skip
    expected = stats.false_discovery_control(ps, method="bh")
    assert benjamini_hochberg(ps) == pytest.approx(expected, rel=EXACT)
    shuffled = [0.5, 0.6, 0.1, 0.001]
    assert benjamini_hochberg(shuffled) == pytest.approx([0.6, 0.6, 0.2, 0.004], rel=EXACT)


@settings(max_examples=100, deadline=None)
@given(p_value_lists)
def test_benjamini_hochberg_equals_scipy_on_any_p_values(ps: list[float]) -> None:
    expected = stats.false_discovery_control(ps, method="bh")
    assert benjamini_hochberg(ps) == pytest.approx(expected, rel=EXACT, abs=1e-300)


def test_holm_matches_known_values() -> None:
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") -> 0.03 0.06 0.06 0.02
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=EXACT)
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9], rel=EXACT)
    assert holm([0.6, 0.7, 0.8]) == pytest.approx([1.0, 1.0, 1.0])


@settings(max_examples=100, deadline=None)
@given(p_value_lists)
def test_holm_equals_its_definition(ps: list[float]) -> None:
    assert holm(ps) == pytest.approx(holm_by_definition(ps), rel=EXACT, abs=1e-300)


@pytest.mark.parametrize("correct", [benjamini_hochberg, holm])
@settings(max_examples=100, deadline=None)
@given(ps=p_value_lists, data=st.data())
def test_adjusted_p_values_are_bounded_monotone_and_order_free(
    correct: object, ps: list[float], data: st.DataObject
) -> None:
    adjust = correct  # the parametrized correction
    assert callable(adjust)
    raw = np.asarray(ps)
    adjusted = adjust(raw)
    assert adjusted.shape == raw.shape
    assert np.all((adjusted >= 0.0) & (adjusted <= 1.0))
    assert np.all(adjusted >= raw)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0.0)
    permutation = np.asarray(data.draw(st.permutations(range(raw.size))))
    assert adjust(raw[permutation]) == pytest.approx(adjusted[permutation], rel=EXACT)


@pytest.mark.parametrize("correct", [benjamini_hochberg, holm])
def test_corrections_of_no_or_one_test_change_nothing(correct: object) -> None:
    assert callable(correct)
    assert correct([]).shape == (0,)
    assert correct([0.03]).tolist() == [0.03]


@pytest.mark.parametrize("correct", [benjamini_hochberg, holm])
@pytest.mark.parametrize(
    ("ps", "message"),
    [
        ([0.1, float("nan")], "NaN at positions \\[1\\]; leave inconclusive tests out"),
        ([0.1, 1.5], "must lie in \\[0, 1\\]; 1.5 at position 1"),
        ([[0.1, 0.2]], "one-dimensional"),
    ],
)
def test_corrections_refuse_values_that_are_not_p_values(
    correct: object, ps: object, message: str
) -> None:
    assert callable(correct)
    with pytest.raises(InvalidInput, match=message):
        correct(ps)
