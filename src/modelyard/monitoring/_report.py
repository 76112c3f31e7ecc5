"""`drift_report`: per-column drift and multivariate drift, as data, JSON or one HTML file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.errors import InvalidInput
from modelyard.monitoring._drift import ColumnDrift, Method, column_drift

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.monitoring._multivariate import MultivariateDrift


@dataclass(frozen=True)
class DriftReport:
    """Reference against current: every column's verdict, and the multivariate check."""

    reference_rows: int
    current_rows: int
    columns: dict[str, ColumnDrift]
    multivariate: MultivariateDrift | None
    alpha: float
    thresholds: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.drifted]

    @property
    def tested_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.status == "tested"]

    @property
    def drift_share(self) -> float:
        """Drifted columns among those tested (0 when none could be tested)."""
        tested = self.tested_columns
        return len(self.drifted_columns) / len(tested) if tested else 0.0

    @property
    def drifted(self) -> bool:
        """Whether any column, or the relationship between columns, drifted."""
        return bool(self.drifted_columns) or bool(self.multivariate and self.multivariate.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "drift_share": self.drift_share,
            "alpha": self.alpha,
            "thresholds": self.thresholds,
            "note": self.note,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "multivariate": None if self.multivariate is None else self.multivariate.to_dict(),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """One self-contained HTML page (no scripts, no network); written to `path` if given."""
        from modelyard.monitoring._html import render

        page = render(self)
        if path is not None:
            target = Path(path)
            temp = target.with_name(f".{target.name}.tmp")
            temp.write_text(page, encoding="utf-8")
            temp.replace(target)
        return page


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    methods: Mapping[str, Method] | None = None,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    multivariate: bool = True,
    seed: int = 0,
) -> DriftReport:
    """Compare `current` with `reference`, column by column and across columns.

    `methods` picks the test per column (`ks`, `chi2`, `psi`, `wasserstein`,
    `jensen_shannon`); `thresholds` overrides the minimum effects; `categorical` names
    numeric columns to treat as categories. See docs/monitoring.md for the verdict rule.
    """
    results = column_drift(
        reference,
        current,
        columns=columns,
        categorical=categorical,
        methods=methods,
        thresholds=thresholds,
        alpha=alpha,
    )
    from modelyard.monitoring._drift import DEFAULT_THRESHOLDS

    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    note = ""
    found: MultivariateDrift | None = None
    if len(reference) == 0 or len(current) == 0:
        note = "insufficient data: an empty window gets no verdict"
    elif multivariate:
        # identifiers and timestamps would tell any two windows apart: only tested columns
        tested = [name for name, r in results.items() if r.status == "tested"]
        found, note = _multivariate(reference, current, tested, seed)
    return DriftReport(
        reference_rows=len(reference),
        current_rows=len(current),
        columns=results,
        multivariate=found,
        alpha=alpha,
        thresholds=limits,
        note=note,
    )


def _multivariate(
    reference: pd.DataFrame, current: pd.DataFrame, names: list[str], seed: int
) -> tuple[MultivariateDrift | None, str]:
    from modelyard.monitoring._multivariate import domain_classifier_drift

    if not names:
        return None, "multivariate check skipped: no column could be tested"
    try:
        return domain_classifier_drift(reference, current, columns=names, seed=seed), ""
    except InvalidInput as exc:  # too few rows, nothing to learn from: said, not a verdict
        return None, f"multivariate check skipped: {exc.message}"


_OUTPUTS = ("prediction", "score", "label")


def output_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    alpha: float = 0.05,
    thresholds: Mapping[str, float] | None = None,
) -> DriftReport:
    """Prediction drift (the model's answers and scores) and target drift (the labels, where
    they have arrived), between two windows of `join_feedback` rows.

    Class predictions and labels are compared as categories, scores and regression outputs
    as numbers; a column with no values on either side (no labels yet, no scores) is left out.
    """
    import pandas as pd

    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame) or "prediction" not in frame:
            raise InvalidInput(
                f"{label} must be a frame of join_feedback rows, with a 'prediction' column"
            )
    names = [
        c
        for c in _OUTPUTS
        if c in reference
        and c in current
        and reference[c].notna().any()
        and current[c].notna().any()
    ]
    categorical = [c for c in ("prediction", "label") if c in names and _classes(reference[c])]
    return drift_report(
        reference[names].infer_objects(),
        current[names].infer_objects(),
        categorical=categorical,
        alpha=alpha,
        thresholds=thresholds,
        multivariate=False,
    )


def _classes(values: pd.Series) -> bool:
    """Whether answers are classes: text, booleans, or at most 20 whole numbers."""
    import pandas as pd

    present = values.dropna().infer_objects()
    if not pd.api.types.is_numeric_dtype(present.dtype) or pd.api.types.is_bool_dtype(
        present.dtype
    ):
        return True
    whole = bool((present % 1 == 0).all())
    return whole and present.nunique() <= 20
