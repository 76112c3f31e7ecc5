"""`modelyard monitor …`: drift reports and data profiles from the command line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt, print_json, print_table
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.data import ColumnProfile
    from modelyard.monitoring import TrainingReference

monitor_app = typer.Typer(
    help="Drift reports, data profiles, and stored monitors of served models.",
    no_args_is_help=True,
)


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame, by suffix."""
    import pandas as pd

    from modelyard.serving._scoring_files import format_of

    kind = format_of(path)  # the suffix rule batch scoring uses
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)


@monitor_app.command("drift")
def drift(
    reference: Annotated[Path, typer.Argument(help="Reference data (.parquet or .csv).")],
    current: Annotated[Path, typer.Argument(help="Current data (.parquet or .csv).")],
    html: Annotated[
        Path | None, typer.Option(help="Write the self-contained HTML report here.")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", "-c", help="Compare only these columns.")
    ] = None,
    categorical: Annotated[
        list[str] | None, typer.Option(help="Treat this numeric column as categories.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="False discovery rate across columns.")] = 0.05,
    multivariate: Annotated[
        bool, typer.Option("--multivariate/--no-multivariate", help="Run the domain classifier.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Compare CURRENT with REFERENCE, column by column and across columns."""
    from modelyard.monitoring import drift_report

    report = drift_report(
        read_table(reference),
        read_table(current),
        columns=column or None,
        categorical=categorical or (),
        alpha=alpha,
        multivariate=multivariate,
    )
    if html is not None:
        report.to_html(html)
    if as_json:
        print_json(report.to_dict())
        return
    rows = [
        (
            c.name,
            c.kind,
            "DRIFTED" if c.drifted else "stable" if c.drifted is False else c.status,
            c.method or "",
            fmt(c.adjusted_p_value if c.adjusted_p_value is not None else c.p_value),
            f"{c.effect_name} {fmt(c.effect)}" if c.effect_name else "",
            fmt(c.threshold),
        )
        for c in report.columns.values()
    ]
    print_table(
        f"drift: {len(report.drifted_columns)} of {len(report.tested_columns)} tested column(s)",
        ["column", "kind", "verdict", "test", "p (BH)", "effect", "min effect"],
        rows,
    )
    if report.multivariate is not None:
        m = report.multivariate
        drivers = ", ".join(name for name, _ in m.drivers) or "none"
        console.print(
            f"multivariate: AUC {m.auc:.3f} [{m.auc_low:.3f}, {m.auc_high:.3f}] → "
            f"{'DRIFTED' if m.drifted else 'stable'}; drivers: {drivers}"
        )
    if report.note:
        console.print(report.note)
    if html is not None:
        console.print(f"HTML report: {html}")


@monitor_app.command("reference")
def reference(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    as_json: JsonFlag = False,
) -> None:
    """The training reference VERSION of NAME stores: the profile of its training data."""
    from modelyard.monitoring._reference import read_reference
    from modelyard.registry._default import registry_of
    from modelyard.tracking import open_tracker

    tracker = open_tracker(settings_of(ctx))
    try:
        registry = registry_of(tracker)
        try:
            found = read_reference(registry, tracker.read_artifact, name, version)
        finally:
            registry.close()
    finally:
        tracker.close()
    if as_json:
        print_json(found.to_dict())
        return
    _print_reference(found)


def _print_reference(found: TrainingReference) -> None:
    columns = found.profile.columns.values()
    print_table(
        f"training reference of {found.model} version {found.version}: {found.rows} rows, "
        f"{found.sample_rows} sampled",
        ["column", "kind", "missing", "mean", "min", "max", "top categories"],
        [
            (
                c.name,
                c.kind,
                f"{c.missing} ({c.missing / c.count:.1%})" if c.count else "0",
                *_summary(c),
            )
            for c in columns
        ],
    )


def _summary(column: ColumnProfile) -> tuple[str, str, str, str]:
    """Mean, min, max and the top categories of a column, as the table shows them."""
    if column.kind == "datetime":
        return _instant(column.mean), _instant(column.min), _instant(column.max), ""
    if column.kind == "categorical":
        present = column.count - column.missing
        top = list(column.counts.items())[:3]
        shares = ", ".join(f"{value} {count / present:.0%}" for value, count in top)
        more = len(column.counts) > 3 or column.other
        return "", "", "", shares + (", …" if more else "")
    return fmt(column.mean), fmt(column.min), fmt(column.max), ""


def _instant(epoch_ns: float | None) -> str:
    if epoch_ns is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch_ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
