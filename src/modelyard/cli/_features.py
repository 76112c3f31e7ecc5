"""`modelyard features apply|list|show|training-frame|materialize|get-online|push`: the
feature store from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt, fmt_time, print_json, print_table
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.features._registry import Change
    from modelyard.features._store import FeatureStore

features_app = typer.Typer(
    help="The feature store: definitions applied from Python files, point-in-time training "
    "frames, materialization into the online store, online reads and pushes.",
    no_args_is_help=True,
)

Module = Annotated[
    Path | None,
    typer.Option(
        "--module",
        help="A Python file of definitions, for views with a transform or an in-memory source "
        "(it must match what was applied).",
    ),
]
Features = Annotated[
    list[str] | None,
    typer.Option("--feature", "-f", help="A feature as VIEW:FEATURE; repeat for several."),
]
Service = Annotated[str | None, typer.Option(help="A feature service's features instead.")]


@contextmanager
def _store(ctx: typer.Context, module: Path | None = None) -> Iterator[FeatureStore]:
    from modelyard.features._default import open_feature_store
    from modelyard.features._module import load_definitions

    with open_feature_store(settings_of(ctx)) as store:
        if module is not None:
            store.use(load_definitions(module))
        yield store


@features_app.command("apply")
def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A Python file of definitions.")],
    force: Annotated[bool, typer.Option(help="Store breaking changes too.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only show what would change.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show what changed in FILE's entities, views and services, and store the new versions
    (a breaking change needs --force)."""
    from modelyard.features._module import load_definitions
    from modelyard.tracking._environment import current_user

    items = load_definitions(file)
    with _store(ctx) as store:
        if dry_run:
            changes = store.plan(items)
        else:
            changes = store.apply(items, force=force, actor=current_user())
    if as_json:
        print_json([c.to_dict() for c in changes])
        return
    _print_changes(changes, dry_run)


def _print_changes(changes: list[Change], dry_run: bool) -> None:
    rows = [
        [c.kind, c.name, c.action, f"v{c.version}", ", ".join(c.changes), "; ".join(c.breaking)]
        for c in changes
    ]
    title = "would apply" if dry_run else "applied"
    print_table(title, ["kind", "name", "action", "version", "changed", "breaking"], rows)


@features_app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="entity, view or service.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The definitions in force."""
    with _store(ctx) as store:
        found = store.registry.latest(kind)  # type: ignore[arg-type]  # checked inside
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    rows = [
        [
            d.kind,
            d.name,
            f"v{d.version}",
            _summary(d.kind, d.spec),
            d.created_by,
            fmt_time(d.created_at),
        ]
        for d in found
    ]
    print_table("feature definitions", ["kind", "name", "version", "what", "by", "at"], rows)


def _summary(kind: str, spec: dict[str, Any]) -> str:
    if kind == "entity":
        return f"keys {', '.join(spec['join_keys'])}"
    if kind == "view":
        ttl = f", ttl {spec['ttl_s']:g}s" if spec["ttl_s"] is not None else ""
        return f"{len(spec['features'])} features of {', '.join(spec['entities'])}{ttl}"
    return f"{len(spec['features'])} features"


@features_app.command("show")
def show(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="entity, view or service.")],
    name: Annotated[str, typer.Argument(help="Its name.")],
    version: Annotated[int | None, typer.Option(help="This version (default: in force).")] = None,
    history: Annotated[bool, typer.Option(help="Every version, oldest first.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """One definition as stored, or its history."""
    with _store(ctx) as store:
        if history:
            found = store.registry.history(kind, name)  # type: ignore[arg-type]
        else:
            found = [store.registry.get(kind, name, version)]  # type: ignore[arg-type]
    if as_json:
        data = [d.to_dict() for d in found]
        print_json(data if history else data[0])
        return
    for d in found:
        console.print(
            f"[bold]{d.kind} {d.name}[/bold] v{d.version} by {d.created_by or '?'} at "
            f"{fmt_time(d.created_at)}"
        )
        console.print_json(orjson.dumps(d.spec).decode())


@features_app.command("training-frame")
def training_frame(
    ctx: typer.Context,
    labels: Annotated[Path, typer.Argument(help="Label rows: Parquet, CSV or JSON lines.")],
    out: Annotated[Path, typer.Option(help="Where to write the frame (.parquet or .csv).")],
    feature: Features = None,
    service: Service = None,
    timestamp_column: Annotated[
        str, typer.Option(help="The labels' time column.")
    ] = "event_timestamp",
    full_feature_names: Annotated[bool, typer.Option(help="Name columns VIEW__FEATURE.")] = False,
    dask: Annotated[
        str | None,
        typer.Option(help="Join on this Dask scheduler (or 'local'), partitioned by entity."),
    ] = None,
    module: Module = None,
) -> None:
    """Join the features, point in time, onto every label row and write the result."""
    frame = read_table(labels, dates=[timestamp_column])
    with _store(ctx, module) as store:
        joined = store.training_frame(
            frame,
            feature,
            service=service,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            dask=dask,
        )
    write_table(joined, out)
    console.print(f"{len(joined):,} rows x {len(joined.columns)} columns written to {out}")


@features_app.command("materialize")
def materialize(
    ctx: typer.Context,
    views: Annotated[
        list[str] | None, typer.Argument(help="Views (default: every online one).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Up to this time, excluded (default: now).")
    ] = None,
    incremental: Annotated[
        bool, typer.Option(help="From each view's watermark (where the last run ended).")
    ] = False,
    module: Module = None,
    as_json: JsonFlag = False,
) -> None:
    """Load the latest value per entity of each view into the online store."""
    with _store(ctx, module) as store:
        written = store.materialize(views, start=start, end=end, incremental=incremental)
        marks = {name: store.online.watermark(name) for name in written}
    if as_json:
        print_json({"written": written, "watermarks": marks})
        return
    rows = [[name, f"{count:,}", fmt_time(marks[name])] for name, count in written.items()]
    print_table("materialized", ["view", "rows written", "up to"], rows)


@features_app.command("get-online")
def get_online(
    ctx: typer.Context,
    entity: Annotated[
        list[str],
        typer.Option("--entity", "-e", help="An entity row as KEY=VALUE[,KEY=VALUE]; repeat."),
    ],
    feature: Features = None,
    service: Service = None,
    module: Module = None,
    as_json: JsonFlag = False,
) -> None:
    """The online values of features for entity rows, with each view's status."""
    rows = [parse_entity(text) for text in entity]
    with _store(ctx, module) as store:
        found = store.get_online(rows, feature, service=service)
    if as_json:
        print_json(found.to_dict())
        return
    columns = list(found.rows[0]) if found.rows else []
    table = [
        [*(fmt(row[c]) for c in columns), ", ".join(f"{v}: {s}" for v, s in state.items())]
        for row, state in zip(found.rows, found.status, strict=True)
    ]
    print_table("online features", [*columns, "status"], table)


@features_app.command("push")
def push(
    ctx: typer.Context,
    view: Annotated[str, typer.Argument(help="The feature view.")],
    rows: Annotated[Path, typer.Argument(help="Source rows: Parquet, CSV or JSON lines.")],
    module: Module = None,
) -> None:
    """Write fresh rows to the online store; older ones than what is stored change nothing."""
    frame = read_table(rows)
    with _store(ctx, module) as store:
        written = store.push(view, frame)
    console.print(f"{written:,} of {len(frame):,} rows replaced an online value")


def parse_entity(text: str) -> dict[str, Any]:
    """`driver_id=42,region=eu` as {"driver_id": 42, "region": "eu"} (values read as JSON
    where they parse, else as text)."""
    row: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--entity {text!r}: write KEY=VALUE[,KEY=VALUE]")
        try:
            row[key.strip()] = orjson.loads(value)
        except orjson.JSONDecodeError:
            row[key.strip()] = value
    return row


def read_table(path: Path, dates: list[str] | None = None) -> pd.DataFrame:
    """A table file; in CSV and JSON lines, the `dates` columns are parsed as times (Parquet
    keeps its own types)."""
    import pandas as pd

    if not path.exists():
        raise InvalidInput(f"no such file: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".parquet" or path.is_dir():
        return pd.read_parquet(path)
    if suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix in (".json", ".jsonl"):
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        raise InvalidInput(f"{str(path)!r}: read Parquet, CSV or JSON lines (by the file suffix)")
    for column in dates or []:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise InvalidInput(f"--out {str(path)!r}: write .parquet or .csv")


@features_app.command("ingest")
def ingest(
    ctx: typer.Context,
    view: Annotated[str, typer.Argument(help="The feature view the messages are rows of.")],
    redis_stream: Annotated[
        str | None, typer.Option(help="Read this Redis stream (consumer group 'modelyard').")
    ] = None,
    nats_stream: Annotated[
        str | None, typer.Option(help="Read this NATS JetStream stream (durable 'modelyard').")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="The NATS subject (default: the stream).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="The Redis or NATS URL (default: redis_url, or nats://127.0.0.1:4222)."),
    ] = None,
    batch: Annotated[int, typer.Option(help="Messages per batch.")] = 500,
    max_messages: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
    idle_stop: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without a message.")
    ] = None,
    module: Module = None,
    as_json: JsonFlag = False,
) -> None:
    """Consume a stream of feature rows (JSON objects with the join keys, the event time and
    the features) into the online store; unusable messages go to the dead letters."""
    from modelyard.features._ingest import ingest_from

    with _store(ctx, module) as store:
        stats = ingest_from(
            store,
            view,
            redis_stream=redis_stream,
            nats_stream=nats_stream,
            subject=subject,
            url=url,
            redis_url=settings_of(ctx).redis_url,
            batch=batch,
            max_messages=max_messages,
            idle_stop_s=idle_stop,
        )
    if as_json:
        print_json(stats.to_dict())
        return
    console.print(
        f"{stats.received:,} messages: {stats.written:,} written, {stats.stale:,} older than "
        f"what was stored, {stats.dead:,} dead-lettered"
    )


@features_app.command("dead-letters")
def dead_letters(
    ctx: typer.Context,
    view: Annotated[str | None, typer.Argument(help="Only this view's.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Streamed messages ingestion could not use, with the reason."""
    from modelyard.features._ingest import DeadLetters

    with _store(ctx) as store:
        found = DeadLetters(store.registry.metadata).list(view, limit=limit)
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    rows = [
        [d.view, d.source, d.reason, fmt(d.payload.decode(errors="replace")[:80]), fmt_time(d.at)]
        for d in found
    ]
    print_table("dead letters", ["view", "message", "reason", "payload", "at"], rows)


@features_app.command("skew")
def skew(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model logged with a feature service.")],
    version: Annotated[int, typer.Argument(help="Its version.")],
    since: Annotated[str | None, typer.Option(help="Predictions from this time (ISO).")] = None,
    until: Annotated[str | None, typer.Option(help="Predictions before this time (ISO).")] = None,
    limit: Annotated[int, typer.Option(help="At most the latest this many predictions.")] = 10_000,
    module: Module = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare the features VERSION was served from entity keys with the same features
    joined offline at the predictions' times, value for value; exits 1 on a mismatch."""
    from modelyard.features._default import feature_store_of
    from modelyard.features._module import load_definitions
    from modelyard.features._rows import time_ms
    from modelyard.monitoring._feature_skew import feature_skew
    from modelyard.registry import SqlRegistry
    from modelyard.serving._log import open_prediction_log
    from modelyard.tracking import open_local_backend

    settings = settings_of(ctx)
    if settings.tracking_uri:
        raise InvalidInput("the skew check reads the stores themselves, not a tracking server")
    backend = open_local_backend(settings)
    store = feature_store_of(backend.metadata, settings)
    log = open_prediction_log(settings, backend.metadata)
    try:
        if module is not None:
            store.use(load_definitions(module))
        manifest = SqlRegistry(backend.metadata, backend.artifacts).get_manifest(model, version)
        report = feature_skew(
            log,
            store,
            model,
            version,
            manifest.features if manifest is not None else None,
            since_ms=time_ms(since) if since else None,
            until_ms=time_ms(until) if until else None,
            limit=limit,
        )
    finally:
        log.close()
        store.close()
        backend.close()
    if as_json:
        print_json(report.to_dict())
    else:
        rows = [
            [
                c.name,
                f"{c.mismatches:,} of {c.compared:,}",
                f"{c.rate:.1%}",
                "SKEWED" if c.skewed else "ok",
            ]
            for c in report.columns.values()
        ]
        print_table(
            f"served vs offline, {report.matched:,} predictions",
            ["feature", "mismatches", "rate", ""],
            rows,
        )
    if report.skewed_columns:
        raise typer.Exit(1)
