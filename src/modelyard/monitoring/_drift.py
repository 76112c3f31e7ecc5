"""Per-column data drift: a test per column, a verdict about effect, not only p-values.

A column is drifted when its test is significant after Benjamini–Hochberg correction across
the tested columns AND its effect size reaches a stated minimum. At a million rows every
p-value is tiny, so the effect decides; at two hundred rows every effect estimate is noisy,
so the test decides. Columns that cannot be tested meaningfully (identifiers, constants,
all missing, too few rows) are reported as such, never given a verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

Kind = Literal["numeric", "categorical"]
Status = Literal["tested", "insufficient_data", "constant", "all_missing", "high_cardinality"]
Method = Literal["ks", "chi2", "psi", "wasserstein", "jensen_shannon"]

# The test each kind of column gets unless `methods` says otherwise.
DEFAULT_METHOD: dict[Kind, Method] = {"numeric": "ks", "categorical": "chi2"}
# The smallest effect that counts as drift, per effect measure. Documented in docs/monitoring.md.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein": 0.1,  # Wasserstein-1 distance in reference standard deviations
    "jensen_shannon": 0.05,  # Jensen–Shannon distance (base 2, in [0, 1])
    "psi": 0.2,  # population stability index over the reference's deciles
}
# The effect measure that must pass alongside each test with a p-value.
_EFFECT_OF: dict[Method, str] = {
    "ks": "wasserstein",
    "chi2": "jensen_shannon",
    "psi": "psi",
    "wasserstein": "wasserstein",
    "jensen_shannon": "jensen_shannon",
}
_METHODS_FOR: dict[Kind, frozenset[str]] = {
    "numeric": frozenset({"ks", "psi", "wasserstein", "jensen_shannon"}),
    "categorical": frozenset({"chi2", "psi", "jensen_shannon"}),
}
MIN_ROWS = 30  # fewer non-missing values on either side: insufficient data, no verdict
_BINS = 10
_SHOWN_CATEGORIES = 20


@dataclass(frozen=True)
class Distribution:
    """What the report draws: shares of reference and current over the same bins."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test, effect, threshold and verdict (None when it was not tested)."""

    name: str
    kind: Kind
    status: Status
    method: Method | None
    statistic: float | None
    p_value: float | None
    adjusted_p_value: float | None
    effect_name: str | None
    effect: float | None
    threshold: float | None
    drifted: bool | None
    reference_missing: float
    current_missing: float
    unseen_categories: int = 0
    unseen_share: float = 0.0
    measures: dict[str, float] = field(default_factory=dict)
    distribution: Distribution | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def column_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    methods: Mapping[str, Method] | None = None,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.05,
) -> dict[str, ColumnDrift]:
    """Test every column of `current` against `reference`; see the module docstring."""
    names = _columns(reference, current, columns)
    methods = dict(methods or {})
    if unknown := sorted(set(methods) - set(names)):
        raise InvalidInput(f"methods= names column(s) not compared: {', '.join(unknown)}")
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    if bad := sorted(set(limits) - set(DEFAULT_THRESHOLDS)):
        raise InvalidInput(
            f"unknown threshold(s) {', '.join(bad)}; thresholds exist for "
            f"{', '.join(DEFAULT_THRESHOLDS)}"
        )
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, got {alpha}")
    results = {
        name: _one_column(
            name,
            reference[name],
            current[name],
            kind=_kind(reference[name], current[name], name in categorical),
            method=methods.get(name),
            limits=limits,
        )
        for name in names
    }
    return _decide(results, alpha)


def _columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None
) -> list[str]:
    import pandas as pd

    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"{label} must be a pandas DataFrame, not {type(frame).__name__}")
    ref, cur = [str(c) for c in reference.columns], [str(c) for c in current.columns]
    if columns is None:
        if missing := [c for c in ref if c not in cur]:
            raise InvalidInput(f"current lacks column(s) of the reference: {', '.join(missing)}")
        if extra := [c for c in cur if c not in ref]:
            raise InvalidInput(f"current has column(s) the reference lacks: {', '.join(extra)}")
        return ref
    names = [str(c) for c in columns]
    if absent := [c for c in names if c not in ref or c not in cur]:
        raise InvalidInput(f"column(s) {', '.join(absent)} are not in both reference and current")
    return names


def _kind(reference: pd.Series, current: pd.Series, categorical: bool) -> Kind:
    import pandas as pd

    if categorical or pd.api.types.is_bool_dtype(reference.dtype):
        return "categorical"
    numeric = [
        pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype)
        for s in (reference, current)
    ]
    if all(numeric):
        return "numeric"
    if any(numeric) and not (reference.isna().all() or current.isna().all()):
        raise InvalidInput(
            f"column {reference.name!r} holds numbers on one side and text on the other "
            f"(reference {reference.dtype}, current {current.dtype}); fix the types first"
        )
    return "categorical"


def _one_column(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    *,
    kind: Kind,
    method: Method | None,
    limits: Mapping[str, float],
) -> ColumnDrift:
    chosen = method or DEFAULT_METHOD[kind]
    if chosen not in _METHODS_FOR[kind]:
        raise InvalidInput(
            f"column {name!r} is {kind}: its methods are {', '.join(sorted(_METHODS_FOR[kind]))}"
        )
    ref, cur = reference.dropna(), current.dropna()
    base = {
        "name": name,
        "kind": kind,
        "reference_missing": _share(len(reference) - len(ref), len(reference)),
        "current_missing": _share(len(current) - len(cur), len(current)),
    }
    if status := _untestable(ref, cur, kind, min(len(reference), len(current))):
        return _not_tested(base, status, _detail(status, ref, cur))
    if kind == "numeric":
        return _numeric(base, _numbers(ref), _numbers(cur), chosen, limits)
    return _categorical(base, _category_text(ref), _category_text(cur), chosen, limits)


def _category_text(values: pd.Series) -> pd.Series:
    """Categories as text; whole floats as integers, so a label column that became float
    because some labels are missing still matches its integer reference ("1", not "1.0")."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values.dtype) and bool((values % 1 == 0).all()):
        return values.astype("int64").astype(str)
    return values.astype(str)


def _untestable(ref: pd.Series, cur: pd.Series, kind: Kind, rows: int) -> Status | None:
    """Why a column gets no verdict; `rows` is the smaller side's row count."""
    if rows < MIN_ROWS:
        return "insufficient_data"
    if len(ref) == 0 or len(cur) == 0:
        return "all_missing"
    if len(ref) < MIN_ROWS or len(cur) < MIN_ROWS:
        return "insufficient_data"
    if kind == "numeric":  # min and max cost far less than counting distinct values
        if ref.min() == ref.max():
            return "constant"
        return "high_cardinality" if _sequential(ref) else None
    distinct = ref.nunique()
    if distinct == 1:
        return "constant"
    if distinct > 50 and distinct > 0.5 * len(ref):
        return "high_cardinality"
    return None


def _sequential(values: pd.Series) -> bool:
    """Whole numbers, all different, packed in a range not much wider than their count: what
    row or customer numbers look like (a feature such as a salary spreads much wider)."""
    import pandas as pd

    if not pd.api.types.is_integer_dtype(values.dtype) or len(values) <= 50:
        return False
    if values.max() - values.min() + 1 > 2 * len(values):
        return False
    return bool(values.is_unique)


def _detail(status: Status, ref: pd.Series, cur: pd.Series) -> str:
    if status == "constant":
        value = ref.iloc[0]
        other = float((cur != value).mean()) if len(cur) else 0.0
        return f"the reference is constant ({value!r}); {other:.1%} of current values differ"
    if status == "high_cardinality":
        return (
            f"{ref.nunique()} distinct values in {len(ref)} reference rows: an identifier, "
            "not a distribution to compare"
        )
    if status == "insufficient_data":
        return (
            f"{len(ref)} reference and {len(cur)} current values; at least {MIN_ROWS} "
            "on each side are needed for a verdict"
        )
    return "no values on one side"


def _not_tested(base: dict[str, Any], status: Status, detail: str) -> ColumnDrift:
    return ColumnDrift(
        **base,
        status=status,
        method=None,
        statistic=None,
        p_value=None,
        adjusted_p_value=None,
        effect_name=None,
        effect=None,
        threshold=None,
        drifted=None,
        detail=detail,
    )


def _numbers(series: pd.Series) -> npt.NDArray[np.float64]:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = series.astype("int64")
    values: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]  # ±inf: left out, like missing values


def _numeric(
    base: dict[str, Any],
    ref: npt.NDArray[np.float64],
    cur: npt.NDArray[np.float64],
    method: Method,
    limits: Mapping[str, float],
) -> ColumnDrift:
    from modelyard import stats

    edges = stats.quantile_edges(ref, _BINS)
    ref_counts, cur_counts = stats.bin_counts(ref, edges), stats.bin_counts(cur, edges)
    compared = stats.compare_samples(ref, cur)  # each sample sorted once for both
    scale = stats.spread(ref)
    measures = {
        "wasserstein": compared.wasserstein / scale if scale else math.inf,
        "psi": stats.psi(ref_counts, cur_counts),
        "jensen_shannon": stats.jensen_shannon(ref_counts, cur_counts),
        "ks": compared.ks.statistic,
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
        "reference_std": float(ref.std()),
        "current_std": float(cur.std()),
    }
    statistic, p_value = None, None
    if method == "ks":
        statistic, p_value = compared.ks.statistic, compared.ks.p_value
    labels = _bin_labels(edges)
    counts = (ref_counts, cur_counts)
    return _tested(base, method, statistic, p_value, measures, limits, labels, counts)


def _categorical(
    base: dict[str, Any],
    ref: pd.Series,
    cur: pd.Series,
    method: Method,
    limits: Mapping[str, float],
) -> ColumnDrift:
    from modelyard import stats

    ref_freq, cur_freq = ref.value_counts(), cur.value_counts()
    categories = list(ref_freq.index) + [c for c in cur_freq.index if c not in ref_freq.index]
    ref_counts = ref_freq.reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    cur_counts = cur_freq.reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    unseen = [c for c in cur_freq.index if c not in ref_freq.index]
    measures = {
        "psi": stats.psi(ref_counts, cur_counts),
        "jensen_shannon": stats.jensen_shannon(ref_counts, cur_counts),
    }
    statistic, p_value = None, None
    if method == "chi2":
        result = stats.chi2_test(ref_counts, cur_counts)
        statistic, p_value = result.statistic, result.p_value
    shown = categories[:_SHOWN_CATEGORIES]
    labels = [str(c) for c in shown]
    ref_shown, cur_shown = ref_counts[: len(shown)], cur_counts[: len(shown)]
    if len(categories) > len(shown):  # the rest as one bar
        labels.append("(other)")
        ref_shown = np.append(ref_shown, ref_counts[len(shown) :].sum())
        cur_shown = np.append(cur_shown, cur_counts[len(shown) :].sum())
    base = {
        **base,
        "unseen_categories": len(unseen),
        "unseen_share": _share(int(cur_freq[unseen].sum()) if unseen else 0, len(cur)),
    }
    counts = (ref_shown, cur_shown)
    return _tested(base, method, statistic, p_value, measures, limits, labels, counts)


def _tested(
    base: dict[str, Any],
    method: Method,
    statistic: float | None,
    p_value: float | None,
    measures: dict[str, float],
    limits: Mapping[str, float],
    labels: list[str],
    counts: tuple[npt.NDArray[Any], npt.NDArray[Any]],
) -> ColumnDrift:
    effect_name = _EFFECT_OF[method]
    effect = float(measures[effect_name])
    if statistic is None:  # an effect measure alone decides
        statistic = effect
    return ColumnDrift(
        **base,
        status="tested",
        method=method,
        statistic=float(statistic),
        p_value=None if p_value is None else float(p_value),
        adjusted_p_value=None,
        effect_name=effect_name,
        effect=effect,
        threshold=limits[effect_name],
        drifted=None,  # decided across columns, in `_decide`
        measures={k: float(v) for k, v in measures.items()},
        distribution=Distribution(
            labels, _fractions(counts[0]).tolist(), _fractions(counts[1]).tolist()
        ),
    )


def _decide(results: dict[str, ColumnDrift], alpha: float) -> dict[str, ColumnDrift]:
    """Benjamini–Hochberg over the columns with a p-value, then effect AND significance."""
    from dataclasses import replace

    from modelyard import stats

    with_p = [n for n, r in results.items() if r.status == "tested" and r.p_value is not None]
    p_values = [float(results[n].p_value or 0.0) for n in with_p]
    adjusted = dict(zip(with_p, stats.benjamini_hochberg(p_values).tolist(), strict=True))
    decided = {}
    for name, result in results.items():
        if result.status != "tested":
            decided[name] = result
            continue
        assert result.effect is not None and result.threshold is not None
        large = result.effect >= result.threshold
        if name in adjusted:
            q = float(adjusted[name])
            decided[name] = replace(result, adjusted_p_value=q, drifted=bool(q < alpha and large))
        else:
            decided[name] = replace(result, drifted=bool(large))
    return decided


def _bin_labels(edges: npt.NDArray[np.float64]) -> list[str]:
    def show(x: float) -> str:
        return "−∞" if x == -np.inf else "+∞" if x == np.inf else f"{x:.4g}"

    return [f"[{show(a)}, {show(b)})" for a, b in itertools.pairwise(edges)]


def _fractions(counts: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
