"""`modelyard`: the command line. Settings are built once here and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard._version import __version__
from modelyard.cli._output import print_json, print_table
from modelyard.config import Settings

app = typer.Typer(
    name="modelyard",
    help="Track, version, serve and monitor ML models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _version(value: bool) -> None:
    if value:
        print(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="State folder (default ./.modelyard).")] = None,
    db_url: Annotated[str | None, typer.Option(help="Metadata database URL.")] = None,
    artifacts_url: Annotated[str | None, typer.Option(help="Artifact store URL.")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="URL of a modelyard server to use instead.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Options here override MODELYARD_* environment variables."""
    overrides: dict[str, Any] = {
        "home": home,
        "db_url": db_url,
        "artifacts_url": artifacts_url,
        "tracking_uri": tracking_uri,
    }
    ctx.obj = Settings(**{k: val for k, val in overrides.items() if val is not None})


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


@app.command()
def info(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Settings, store URLs, schema version and health."""
    from modelyard.tracking import open_tracker

    settings = settings_of(ctx)
    tracker = open_tracker(settings)
    try:
        details = {
            "version": __version__,
            "home": str(settings.home.absolute()),
            **tracker.info(),
            "health": "ok",
        }
    finally:
        tracker.close()
    if as_json:
        print_json(details)
    else:
        print_table("modelyard", ["setting", "value"], list(details.items()))


@app.command()
def server(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback only for now).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5005,
) -> None:
    """Serve the REST API (docs at /docs) over the local stores."""
    from modelyard.server import check_bind_address, serve

    check_bind_address(host)
    print(f"modelyard server on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    serve(settings_of(ctx), host=host, port=port)


@app.command()
def gc(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Delete; without it, only list.")] = False,
    grace: Annotated[
        float | None,
        typer.Option(
            help="Keep anything younger than this many seconds [default: 3600, "
            "or MODELYARD_GC_GRACE_S]."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove artifact blobs nothing references (a dry run unless --apply)."""
    from modelyard.store import collect_garbage, open_stores

    settings = settings_of(ctx)
    if settings.tracking_uri:
        raise typer.BadParameter(
            "gc runs where the stores are: on the server's machine, without --tracking-uri"
        )
    metadata, artifacts = open_stores(settings)
    try:
        report = collect_garbage(
            artifacts,
            metadata.referenced_digests(),
            grace_s=settings.gc_grace_s if grace is None else grace,
            apply=apply,
        )
    finally:
        metadata.close()
    if as_json:
        print_json(report)
        return
    verb = "removed" if apply else "would remove"
    rows = [("blob", b.digest, b.size) for b in report.unreferenced]
    rows += [("temp", t.key, t.size) for t in report.stale_temp]
    if rows:
        print_table(f"gc: {verb}", ["kind", "id", "bytes"], rows)
    print(
        f"{len(report.unreferenced)} unreferenced blob(s), {len(report.stale_temp)} stale temp "
        f"file(s), {len(report.missing)} missing blob(s), {report.young} too young to judge; "
        f"{verb} {sum(r[2] for r in rows)} bytes" + ("" if apply else " (dry run: --apply)")
    )
    for digest in report.missing:
        print(f"missing: {digest} is referenced but not in the artifact store")


@app.command()
def demo(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="Where the demo keeps its state.")] = None,
) -> None:
    """Train a few real models on a scikit-learn dataset, track them and compare them."""
    from modelyard.cli._demo import run_demo

    settings = settings_of(ctx)
    if home is not None:
        settings = settings.model_copy(update={"home": home})
    run_demo(settings)


def _register_groups() -> None:
    from modelyard.cli._data import data_app
    from modelyard.cli._deploy import deploy_app
    from modelyard.cli._features import features_app
    from modelyard.cli._models import models_app
    from modelyard.cli._monitor import monitor_app
    from modelyard.cli._monitors import alerts_app
    from modelyard.cli._predictions import predictions_app
    from modelyard.cli._runs import experiments_app, runs_app
    from modelyard.cli._score import score
    from modelyard.cli._serve import serve

    app.add_typer(runs_app, name="runs")
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(models_app, name="models")
    app.add_typer(monitor_app, name="monitor")
    app.add_typer(predictions_app, name="predictions")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(deploy_app, name="deploy")
    app.add_typer(features_app, name="features")
    app.add_typer(data_app, name="data")
    app.command(name="serve")(serve)
    app.command(name="score")(score)


_register_groups()
