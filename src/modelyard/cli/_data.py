"""`modelyard data log|list|show|compare|validate|lineage`: dataset versions, validation of a
file against a stored version, and the lineage of a model version or a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt_time, print_json, print_table
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.data._versions import DatasetVersion, DatasetVersions

data_app = typer.Typer(
    help="Datasets: content-hashed versions with schema and profile, validation, lineage.",
    no_args_is_help=True,
)


@contextmanager
def _versions(ctx: typer.Context) -> Iterator[DatasetVersions]:
    from modelyard.data._default import open_dataset_versions

    with open_dataset_versions(settings_of(ctx)) as versions:
        yield versions


@data_app.command("log")
def log(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A Parquet or CSV file, or a Parquet folder.")],
    name: Annotated[str, typer.Option(help="The dataset's name.")],
    description: Annotated[str, typer.Option(help="What the data is.")] = "",
    lineage: Annotated[
        str | None,
        typer.Option(help='What it was derived from, as JSON: \'{"labels": "churn-labels@2"}\'.'),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Store a file as the next version of a dataset (or show the version it already is)."""
    from modelyard.tracking._environment import current_user

    derived = _json_object("--lineage", lineage)
    with _versions(ctx) as versions:
        version = versions.log(
            path, name=name, description=description, lineage=derived, actor=current_user()
        )
    if as_json:
        print_json(version.to_dict(profile=False))
        return
    console.print(
        f"dataset {version.ref}: {version.num_rows} rows, {version.num_columns} columns, "
        f"digest {version.digest[:12]}",
        markup=False,
    )


@data_app.command("list")
def list_datasets(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Show every version of this one.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Each dataset's latest version, or every version of NAME."""
    with _versions(ctx) as versions:
        if name is not None:
            versions.get(name)  # NotFound naming the known datasets
        found = versions.all(name)
    if as_json:
        print_json([v.to_dict(profile=False) for v in found])
        return
    print_table(
        None,
        ["name", "version", "rows", "columns", "digest", "created", "by"],
        [
            (v.name, v.version, v.num_rows, v.num_columns, v.digest[:12], fmt_time(v.created_at),
             v.created_by)
            for v in found
        ],
    )  # fmt: skip


@data_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (the latest version) or NAME@VERSION.")],
    as_json: JsonFlag = False,
) -> None:
    """One dataset version: its schema with ranges, lineage and size."""
    with _versions(ctx) as versions:
        version = versions.resolve(ref)
    if as_json:
        print_json(version.to_dict())
        return
    _print_version(version)


def _print_version(version: DatasetVersion) -> None:
    console.print(
        f"dataset {version.ref}: {version.num_rows} rows, {version.num_columns} columns, "
        f"digest {version.digest}, by {version.created_by or '-'} at "
        f"{fmt_time(version.created_at)}",
        markup=False,
    )
    if version.description:
        console.print(version.description, markup=False)
    rows = []
    for column in version.columns:
        bounds = version.ranges.get(column.name, {})
        categories = None if column.categories is None else ", ".join(map(str, column.categories))
        rows.append(
            (column.name, column.dtype, column.nullable, column.pii, bounds.get("min"),
             bounds.get("max"), categories)
        )  # fmt: skip
    print_table("schema", ["name", "dtype", "nullable", "pii", "min", "max", "categories"], rows)
    if version.lineage:
        console.print(f"derived from: {orjson.dumps(version.lineage).decode()}", markup=False)


@data_app.command("compare")
def compare(
    ctx: typer.Context,
    name: str,
    a: Annotated[int, typer.Argument(help="The older version.")],
    b: Annotated[int, typer.Argument(help="The newer version.")],
    as_json: JsonFlag = False,
) -> None:
    """Schema, range and row-count changes and profile drift from version A to B."""
    from modelyard.data._versions import compare_versions

    with _versions(ctx) as versions:
        comparison = compare_versions(versions.get(name, a), versions.get(name, b))
    if as_json:
        print_json(comparison.to_dict())
        return
    rows_a, rows_b = comparison.rows
    console.print(f"{name} {a} → {b}: rows {rows_a} → {rows_b}", markup=False)
    for line in (
        [f"column {c!r} added" for c in comparison.added]
        + [f"column {c!r} removed" for c in comparison.removed]
        + comparison.changes
    ):
        console.print(f"  {line}", markup=False)
    print_table(
        "drift",
        ["column", "mean a", "mean b", "shift (std)", "missing a", "missing b"],
        [
            (column, d.get("mean_a"), d.get("mean_b"), d.get("mean_shift_in_std"),
             d["missing_rate_a"], d["missing_rate_b"])
            for column, d in comparison.drift.items()
        ],
    )  # fmt: skip


@data_app.command("validate")
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A Parquet or CSV file, or a Parquet folder.")],
    against: Annotated[str, typer.Option(help="The dataset version: NAME or NAME@VERSION.")],
    as_json: JsonFlag = False,
) -> None:
    """Check a file against a stored dataset version; exit 1 on any violation."""
    from modelyard.data._validate import validate as check
    from modelyard.data._versions import read_dataset

    frame, _ = read_dataset(path)
    with _versions(ctx) as versions:
        report = check(frame, versions.resolve(against))
    if as_json:
        print_json(report.to_dict())
    else:
        verdict = "ok" if report.ok else f"{len(report.errors)} violation(s)"
        console.print(f"{path} against {report.against}: {verdict}", markup=False)
        if report.violations:
            print_table(
                None,
                ["column", "kind", "severity", "rows", "message", "examples", "at rows"],
                [
                    (v.column, v.kind, v.severity, v.count, v.message,
                     ", ".join(map(str, v.examples)), ", ".join(map(str, v.rows)))
                    for v in report.violations
                ],
            )  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("lineage")
def lineage(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A model name (or with --dataset a dataset).")],
    version: Annotated[int | None, typer.Argument(help="The model (or dataset) version.")] = None,
    dataset: Annotated[
        bool, typer.Option("--dataset", help="TARGET is a dataset: NAME or NAME@VERSION.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Where a model version's data came from and where it is deployed; or with --dataset,
    what a dataset version was derived from and what it trained."""
    from modelyard.data._lineage import dataset_lineage, model_lineage
    from modelyard.data._versions import parse_ref

    with _versions(ctx) as versions:
        if dataset:
            name, at = parse_ref(target)
            graph = dataset_lineage(versions.metadata, name, version or at)
        elif version is None:
            raise InvalidInput("lineage of a model takes MODEL VERSION (churn 3)")
        else:
            graph = model_lineage(versions.metadata, target, version)
    if as_json:
        print_json(graph.to_dict())
        return
    console.print(graph.render(), markup=False)


def _json_object(option: str, text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{option} {text!r} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{option} {text!r} must be a JSON object")
    return value
