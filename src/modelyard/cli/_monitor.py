"""`modelyard monitor …`: drift reports and data profiles from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._app import JsonFlag
from modelyard.cli._output import console, fmt, print_json, print_table
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

monitor_app = typer.Typer(help="Drift reports and data profiles.", no_args_is_help=True)


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
