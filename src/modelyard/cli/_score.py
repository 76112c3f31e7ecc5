"""`modelyard score`: predictions for every row of a Parquet or CSV file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, cast

import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, print_json


def score(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(help="churn@champion, churn/3, churn (its latest version) or a URI."),
    ],
    source: Annotated[Path, typer.Argument(help="Input file: .parquet, .pq or .csv.")],
    destination: Annotated[Path, typer.Argument(help="Output file: .parquet, .pq or .csv.")],
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Where rows failing the signature go (default: <output>.rejects.<suffix>)."
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read and scored at a time.")
    ] = 50_000,
    id_column: Annotated[
        str | None, typer.Option(help="Input column whose values become row_id.")
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address, or 'local' for a cluster on this machine."),
    ] = None,
    runtime: Annotated[
        str, typer.Option(help="auto (ONNX when the version has an export), native or onnx.")
    ] = "auto",
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="Load a pickled model: it can run any code.")
    ] = False,
    trusted: Annotated[
        list[str] | None,
        typer.Option("--trusted", help="A type name to trust when loading (repeatable)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score every row of SOURCE with MODEL into DESTINATION, in chunks of bounded memory.

    Output rows carry row_id, prediction, proba_<class> (classifiers) and model_version.
    Rows that fail the model's signature go to the rejects file with the reason.
    """
    from modelyard.registry import open_registry
    from modelyard.serving._scoring import Runtime, ScoreJob, ScoreReport, run_job
    from modelyard.tracking import open_tracker

    settings = settings_of(ctx)
    job = ScoreJob(
        model=model,
        source=source,
        destination=destination,
        rejects=rejects,
        chunk_rows=chunk_rows,
        id_column=id_column,
        dask=dask,
        progress=sys.stdout.isatty() and not as_json,
        runtime=cast(Runtime, runtime),
        allow_pickle=allow_pickle,
        trusted=tuple(trusted or ()),
    )
    tracker = open_tracker(settings)
    registry = open_registry(settings)
    try:
        report = run_job(
            job, tracker=tracker, registry=registry, cache_dir=settings.home / "cache" / "models"
        )
    finally:
        registry.close()
        tracker.close()
    if as_json:
        print_json(report, ScoreReport)
    else:
        console.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
