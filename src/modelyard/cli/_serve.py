"""`modelyard serve`: models and deployments as an HTTP service."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli._app import settings_of


def serve(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to serve: churn@champion, churn/3, churn (latest), or "
            "name=churn@challenger to serve under another name.",
            show_default=False,
        ),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            "--deployment",
            help="A deployment to serve (repeatable): every variant is loaded, requests are "
            "routed by its strategy and split, changes reach the server within --refresh-s.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback only for now).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on the port.")] = 1,
    max_batch_rows: Annotated[
        int, typer.Option(min=1, help="Most rows run through the model in one call.")
    ] = 128,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="Longest wait to fill a batch while requests arrive.")
    ] = 2.0,
    inline_below_ms: Annotated[
        float,
        typer.Option(
            min=0,
            help="Run a model on the event loop while its calls take less than this on "
            "average (0: always on a worker thread).",
        ),
    ] = 1.0,
    refresh_s: Annotated[
        float,
        typer.Option(
            min=0.01, help="How often aliases and deployments are looked up again, in seconds."
        ),
    ] = 10.0,
    runtime: Annotated[
        str,
        typer.Option(
            help="auto (ONNX Runtime when the version has an ONNX export), native or onnx."
        ),
    ] = "auto",
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body accepted, in MB.")
    ] = 10.0,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Record predictions in the prediction log.")
    ] = True,
    log_capacity: Annotated[
        int, typer.Option(min=1, help="Rows the prediction log queue holds before dropping.")
    ] = 100_000,
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="Load pickled models (runs their code).")
    ] = False,
    trusted: Annotated[
        list[str] | None,
        typer.Option("--trusted", help="A type name skops may load beyond its defaults."),
    ] = None,
    candidate_timeout_ms: Annotated[
        float,
        typer.Option(
            min=1,
            help="Longest a deployment's candidate may take before the primary answers instead.",
        ),
    ] = 1000.0,
    mirror_capacity: Annotated[
        int,
        typer.Option(
            min=1, help="Mirrored requests (shadows, challengers) in flight before dropping."
        ),
    ] = 1000,
    decide_every: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds between decisions of the served deployments (promote, step, roll "
            "back) on a background thread; 0 turns them off.",
        ),
    ] = 10.0,
    monitors: Annotated[
        bool,
        typer.Option(
            "--monitors/--no-monitors",
            help="Run scheduled monitors on a background thread (never on the request path).",
        ),
    ] = False,
) -> None:
    """Serve models and deployments over OIP v2, /v1 JSON and MLflow /invocations, with
    feedback and metrics."""
    from modelyard.server import check_bind_address
    from modelyard.serving import ServeOptions
    from modelyard.serving import serve as run

    check_bind_address(host)
    models, deployments = list(models or ()), list(deployment or ())
    if not models and not deployments:
        raise typer.BadParameter("name a model to serve (churn@champion) or --deployment NAME")
    if runtime not in ("auto", "native", "onnx"):
        raise typer.BadParameter(f"--runtime is auto, native or onnx, not {runtime!r}")
    options = ServeOptions(
        max_batch_rows=max_batch_rows,
        max_wait_ms=max_wait_ms,
        inline_below_ms=inline_below_ms,
        refresh_s=refresh_s,
        runtime=runtime,
        max_body_bytes=int(max_body_mb * 1_000_000),
        log_predictions=log,
        log_capacity=log_capacity,
        allow_pickle=allow_pickle,
        trusted=tuple(trusted or ()),
        run_monitors=monitors,
        candidate_timeout_ms=candidate_timeout_ms,
        mirror_capacity=mirror_capacity,
        decide_every_s=decide_every,
    )
    base = f"http://{host}:{port}"
    what = [*models, *(f"deployment {name}" for name in deployments)]
    print(
        f"serving {', '.join(what)} on {base} ({workers} worker{'s' * (workers > 1)}): "
        f"{base}/v2/models/NAME/infer, {base}/v1/models/NAME:predict"
        + (f", {base}/v1/deployments/NAME:predict" if deployments else "")
        + f", {base}/invocations, {base}/metrics, docs at {base}/docs"
    )
    run(
        models,
        deployments=deployments,
        settings=settings_of(ctx),
        options=options,
        host=host,
        port=port,
        workers=workers,
    )
