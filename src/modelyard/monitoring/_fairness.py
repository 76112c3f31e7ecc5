"""Fairness across groups: do the model's decisions and errors differ by a sensitive attribute?

Per group of the sensitive column(s) (from the frame, or from the logged `inputs` dicts):
selection rate, true- and false-positive rate and accuracy, computed by fairlearn's
`MetricFrame`, each with a Wilson interval. Across groups: fairlearn's demographic-parity
difference (largest gap in selection rate), equalized-odds difference (the larger of the
largest TPR gap and the largest FPR gap) and demographic-parity ratio (lowest over highest
selection rate, the "disparate impact" of the four-fifths rule).

Only labelled rows count. A group is *judged* when it has at least `MIN_GROUP` (30) of them,
with both a positive and a negative label (else its TPR or FPR is undefined); smaller groups
are reported, not judged, and the cross-group measures use judged groups only. The verdict
uses the point values: unfair when the ratio is below `four_fifths` or either difference
exceeds `max_difference`. Their intervals are percentile bootstraps over the judged rows
(label, prediction and group resampled together, `modelyard.stats.bootstrap_interval`); a
resample in which fewer than two groups define a rate counts as no gap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.monitoring._performance import MetricValue, inputs_frame
from modelyard.stats import bootstrap_interval, proportion_interval

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    _Floats = NDArray[np.float64]

MIN_GROUP = 30
_MISSING = "(missing)"
_COUNTS = ("rows", "positives", "negatives", "selected", "true_positives", "false_positives")


@dataclass(frozen=True)
class GroupRates:
    """One group's rates with Wilson intervals; `judged` False: reported, not in the verdict."""

    group: dict[str, Any]
    rows: int
    positives: int
    negatives: int
    selection_rate: MetricValue
    tpr: MetricValue
    fpr: MetricValue
    accuracy: MetricValue
    judged: bool
    note: str = ""

    @property
    def name(self) -> str:
        return ", ".join(f"{column}={value}" for column, value in self.group.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "rows": self.rows,
            "positives": self.positives,
            "negatives": self.negatives,
            "selection_rate": self.selection_rate.to_dict(),
            "tpr": self.tpr.to_dict(),
            "fpr": self.fpr.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "judged": self.judged,
            "note": self.note,
        }


@dataclass(frozen=True)
class FairnessReport:
    """Rates per group, the gaps between judged groups, and the verdict with its reasons."""

    sensitive: tuple[str, ...]
    positive_label: Any
    rows: int
    unlabelled: int
    groups: list[GroupRates]
    demographic_parity_difference: MetricValue
    equalized_odds_difference: MetricValue
    disparate_impact: MetricValue
    four_fifths: float
    max_difference: float
    min_group: int
    confidence: float
    unfair: bool
    reasons: list[str]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitive": list(self.sensitive),
            "positive_label": _plain(self.positive_label),
            "rows": self.rows,
            "unlabelled": self.unlabelled,
            "unfair": self.unfair,
            "reasons": self.reasons,
            "note": self.note,
            "thresholds": {
                "four_fifths": self.four_fifths,
                "max_difference": self.max_difference,
                "min_group": self.min_group,
            },
            "confidence": self.confidence,
            "demographic_parity_difference": self.demographic_parity_difference.to_dict(),
            "equalized_odds_difference": self.equalized_odds_difference.to_dict(),
            "disparate_impact": self.disparate_impact.to_dict(),
            "groups": [g.to_dict() for g in self.groups],
        }


def fairness(
    joined_or_frame: pd.DataFrame,
    *,
    sensitive: str | Sequence[str],
    label: str = "label",
    prediction: str = "prediction",
    positive_label: Any = 1,
    confidence: float = 0.95,
    four_fifths: float = 0.8,
    max_difference: float = 0.1,
    min_group: int = MIN_GROUP,
    n_resamples: int = 1000,
    seed: int = 0,
) -> FairnessReport:
    """Compare groups of `sensitive` (column names, or keys of the logged `inputs` dicts).

    `label` and `prediction` name the columns (`join_feedback`'s by default); a row is
    positive where its value equals `positive_label`.
    """
    names = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    frame = _checked(joined_or_frame, names, label, prediction)
    groups_frame = _sensitive_columns(frame, names)
    labelled = (frame[label].notna() & frame[prediction].notna()).to_numpy()
    y = np.array([v == positive_label for v in frame[label][labelled]], dtype=np.float64)
    p = np.array([v == positive_label for v in frame[prediction][labelled]], dtype=np.float64)
    if labelled.any() and not (y.any() or p.any()):
        raise InvalidInput(
            f"positive_label {positive_label!r} is neither a label nor a prediction; labels "
            f"seen: {sorted(map(repr, frame[label][labelled].unique()))[:10]}"
        )
    keys = groups_frame[labelled].reset_index(drop=True)
    rates = _group_rates(y, p, keys, names, confidence, min_group)
    judged = [g for g in rates if g.judged]
    report = {
        "sensitive": names,
        "positive_label": positive_label,
        "rows": int(labelled.sum()),
        "unlabelled": int((~labelled).sum()),
        "groups": rates,
        "four_fifths": four_fifths,
        "max_difference": max_difference,
        "min_group": min_group,
        "confidence": confidence,
    }
    if len(judged) < 2:
        why = (
            f"fewer than two groups with at least {min_group} labelled rows and both classes; "
            "no verdict"
        )
        none = MetricValue(None, reason=why)
        return FairnessReport(
            **report,
            demographic_parity_difference=none,
            equalized_odds_difference=none,
            disparate_impact=none,
            unfair=False,
            reasons=[],
            note=why,
        )
    judged_keys = {tuple(g.group.values()) for g in judged}
    chosen = np.array([k in judged_keys for k in keys.itertuples(index=False, name=None)])
    measures = _gaps(
        y[chosen], p[chosen], keys[chosen].reset_index(drop=True), confidence, n_resamples, seed
    )
    reasons = _reasons(judged, *measures, four_fifths, max_difference)
    return FairnessReport(
        **report,
        demographic_parity_difference=measures[0],
        equalized_odds_difference=measures[1],
        disparate_impact=measures[2],
        unfair=bool(reasons),
        reasons=reasons,
    )


def _checked(frame: Any, names: tuple[str, ...], label: str, prediction: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"fairness needs a pandas DataFrame; got {type(frame).__name__}")
    if not names:
        raise InvalidInput("sensitive names no column: pass at least one column name")
    if len(frame) == 0:
        raise InvalidInput("no rows to compare: the frame is empty; widen the time range")
    missing = [c for c in (label, prediction) if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the frame lacks column(s) {missing}; it has {list(frame.columns)}: pass "
            "join_feedback's frame or name the columns with label= and prediction="
        )
    return frame.reset_index(drop=True)


def _sensitive_columns(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    logged = inputs_frame(frame) if "inputs" in frame.columns else pd.DataFrame(index=frame.index)
    columns = {}
    for name in names:
        if name in frame.columns:
            column = frame[name]
        elif name in logged.columns:
            column = logged[name]
        else:
            raise InvalidInput(
                f"sensitive column {name!r} is neither a column of the frame "
                f"({list(frame.columns)}) nor a logged input ({list(logged.columns)}); "
                "declare it in the signature or add it to the frame"
            )
        values = column.astype(object)
        if values.isna().any():  # one kind of value per column, so groups sort
            values = values.map(lambda v: _MISSING if pd.isna(v) else str(v))
        columns[name] = values
    return pd.DataFrame(columns)


def _group_rates(
    y: _Floats,
    p: _Floats,
    keys: pd.DataFrame,
    names: tuple[str, ...],
    confidence: float,
    min_group: int,
) -> list[GroupRates]:
    if not len(keys):
        return []
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    def total(values: Callable[[_Floats, _Floats], _Floats]) -> Callable[..., int]:
        return lambda yt, yp: int(np.sum(values(np.asarray(yt), np.asarray(yp))))

    metrics: dict[str, Callable[..., Any]] = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "accuracy": accuracy_score,
        "rows": count,
        "positives": total(lambda yt, _: yt),
        "negatives": total(lambda yt, _: 1 - yt),
        "selected": total(lambda _, yp: yp),
        "true_positives": total(lambda yt, yp: yt * yp),
        "false_positives": total(lambda yt, yp: (1 - yt) * yp),
    }
    with warnings.catch_warnings():  # a group without positives: its TPR is reported None
        warnings.simplefilter("ignore")
        by_group = MetricFrame(
            metrics=metrics, y_true=y, y_pred=p, sensitive_features=keys
        ).by_group
    result = []
    for key, row in by_group.iterrows():
        values = key if isinstance(key, tuple) else (key,)
        n, pos, neg, sel, tp, fp = (int(row[c]) for c in _COUNTS)
        correct = round(float(row["accuracy"]) * n)
        judged = n >= min_group and pos > 0 and neg > 0
        note = "" if judged else f"not judged: {n} rows ({pos} positive), fewer than {min_group}"
        if n >= min_group and not judged:
            note = f"not judged: its labels are all {'positive' if pos else 'negative'}"
        result.append(
            GroupRates(
                group={name: _plain(v) for name, v in zip(names, values, strict=True)},
                rows=n,
                positives=pos,
                negatives=neg,
                selection_rate=_rate(float(row["selection_rate"]), sel, n, confidence),
                tpr=_rate(float(row["tpr"]), tp, pos, confidence, "no positive labels"),
                fpr=_rate(float(row["fpr"]), fp, neg, confidence, "no negative labels"),
                accuracy=_rate(float(row["accuracy"]), correct, n, confidence),
                judged=judged,
                note=note,
            )
        )
    return result


def _rate(value: float, hits: int, trials: int, confidence: float, empty: str = "") -> MetricValue:
    if trials == 0:
        return MetricValue(None, reason=empty)
    low, high = proportion_interval(hits, trials, confidence)
    return MetricValue(value, low, high)


def _gaps(
    y: _Floats, p: _Floats, keys: pd.DataFrame, confidence: float, n_resamples: int, seed: int
) -> tuple[MetricValue, MetricValue, MetricValue]:
    """Demographic-parity difference, equalized-odds difference and ratio over judged rows."""
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    codes = keys.groupby(list(keys.columns), sort=True).ngroup().to_numpy(dtype=np.float64)
    size = int(codes.max()) + 1
    result = []
    for measure, statistic in (
        (demographic_parity_difference, _parity_gap(size)),
        (equalized_odds_difference, _odds_gap(size)),
        (demographic_parity_ratio, _parity_ratio(size)),
    ):
        value = float(measure(y, p, sensitive_features=keys))
        low, high = bootstrap_interval(
            statistic,
            y,
            p,
            codes,
            confidence=confidence,
            n_resamples=n_resamples,
            method="percentile",
            seed=seed,
        )
        result.append(MetricValue(value, low, high))
    return result[0], result[1], result[2]


def _by_group(values: _Floats, over: _Floats, codes: _Floats, size: int) -> _Floats:
    """Per group, the share of `over` rows where `values` is 1 (NaN without such rows)."""
    index = codes.astype(np.intp)
    hits = np.bincount(index, weights=values * over, minlength=size)
    trials = np.bincount(index, weights=over, minlength=size)
    rates: _Floats = np.divide(hits, trials, out=np.full(size, np.nan), where=trials > 0)
    return rates


def _spread(rates: _Floats) -> float:
    defined = rates[~np.isnan(rates)]
    return float(defined.max() - defined.min()) if defined.size >= 2 else 0.0


def _parity_gap(size: int) -> Callable[[_Floats, _Floats, _Floats], float]:
    return lambda y, p, g: _spread(_by_group(p, np.ones_like(p), g, size))


def _odds_gap(size: int) -> Callable[[_Floats, _Floats, _Floats], float]:
    return lambda y, p, g: max(
        _spread(_by_group(p, y, g, size)), _spread(_by_group(p, 1.0 - y, g, size))
    )


def _parity_ratio(size: int) -> Callable[[_Floats, _Floats, _Floats], float]:
    def statistic(y: _Floats, p: _Floats, g: _Floats) -> float:
        rates = _by_group(p, np.ones_like(p), g, size)
        defined = rates[~np.isnan(rates)]
        top = float(defined.max()) if defined.size else 0.0
        return float(defined.min()) / top if top > 0.0 else 1.0

    return statistic


def _reasons(
    judged: list[GroupRates],
    parity: MetricValue,
    odds: MetricValue,
    ratio: MetricValue,
    four_fifths: float,
    max_difference: float,
) -> list[str]:
    reasons = []
    low, high = _extremes(judged, "selection_rate")
    if ratio.value is not None and ratio.value < four_fifths:
        reasons.append(
            f"four-fifths rule: {low} is selected at {_of(low, judged, 'selection_rate')}"
            f", {ratio.value:.3f} of {high}'s {_of(high, judged, 'selection_rate')} "
            f"(below {four_fifths})"
        )
    if parity.value is not None and parity.value > max_difference:
        reasons.append(
            f"demographic parity: selection rates differ by {parity.value:.3f} ({high} "
            f"{_of(high, judged, 'selection_rate')} vs {low} "
            f"{_of(low, judged, 'selection_rate')}), above {max_difference}"
        )
    if odds.value is not None and odds.value > max_difference:
        for rate, words in (("tpr", "true-positive"), ("fpr", "false-positive")):
            low, high = _extremes(judged, rate)
            gap = _value(high, judged, rate) - _value(low, judged, rate)
            if gap > max_difference:
                reasons.append(
                    f"equalized odds: {words} rates differ by {gap:.3f} ({high} "
                    f"{_of(high, judged, rate)} vs {low} {_of(low, judged, rate)}), "
                    f"above {max_difference}"
                )
    return reasons


def _extremes(groups: list[GroupRates], rate: str) -> tuple[str, str]:
    ordered = sorted(groups, key=lambda g: getattr(g, rate).value)
    return ordered[0].name, ordered[-1].name


def _value(name: str, groups: list[GroupRates], rate: str) -> float:
    value: float = next(getattr(g, rate).value for g in groups if g.name == name)
    return value


def _of(name: str, groups: list[GroupRates], rate: str) -> str:
    return f"{_value(name, groups, rate):.3f}"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
