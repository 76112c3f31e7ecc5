"""`modelyard predictions …`: what served models answered, and the ground truth sent back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt_time, print_json, print_table

if TYPE_CHECKING:
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog

predictions_app = typer.Typer(
    help="The prediction log and feedback: what served models answered, and the labels "
    "sent back for it.",
    no_args_is_help=True,
)

Version = Annotated[int | None, typer.Option(help="Only this version.")]
Since = Annotated[
    str | None, typer.Option(help="From this time, ISO 8601 (2024-05-01T12:00, UTC if no zone).")
]
Limit = Annotated[int, typer.Option(help="Show the most recent N.")]


@contextmanager
def _log(ctx: typer.Context) -> Iterator[PredictionLog]:
    from modelyard.serving._log import open_prediction_log

    log = open_prediction_log(settings_of(ctx))
    try:
        yield log
    finally:
        log.close()


@contextmanager
def _feedback(ctx: typer.Context) -> Iterator[FeedbackStore]:
    """The feedback store, and the prediction log it checks ids against, on one database."""
    from modelyard.serving._feedback import open_feedback
    from modelyard.serving._log import open_prediction_log
    from modelyard.store import open_stores

    settings = settings_of(ctx)
    metadata = None if settings.tracking_uri else open_stores(settings)[0]
    try:
        log = open_prediction_log(settings, metadata)
        store = open_feedback(settings, log, metadata)
        try:
            yield store
        finally:
            store.close()
            log.close()
    finally:
        if metadata is not None:
            metadata.close()


def _since_ms(since: str | None) -> int | None:
    from modelyard.serving._default import to_ms

    if since is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(since)
    except ValueError:
        raise typer.BadParameter(
            f"--since takes an ISO 8601 time such as 2024-05-01T12:00:00Z, got {since!r}"
        ) from None
    return to_ms(moment)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


@predictions_app.command("list")
def list_predictions(
    ctx: typer.Context,
    model: str,
    version: Version = None,
    since: Since = None,
    limit: Limit = 20,
    as_json: JsonFlag = False,
) -> None:
    """The most recent predictions of MODEL, oldest first."""
    from modelyard.serving._log import frame_records

    with _log(ctx) as log:
        frame = log.read(model, version=version, since_ms=_since_ms(since), limit=limit)
    records = frame_records(frame)
    if as_json:
        print_json(records)
        return
    print_table(
        f"predictions of {model}",
        ["id", "version", "at", "latency", "outputs"],
        [
            (
                r["prediction_id"],
                r["version"],
                fmt_time(r["at_ms"]),
                f"{r['latency_ms']:.1f} ms",
                _json_text(r["outputs"]),
            )
            for r in records
        ],
    )


@predictions_app.command("count")
def count(
    ctx: typer.Context, model: str, version: Version = None, as_json: JsonFlag = False
) -> None:
    """How many predictions of MODEL the log holds."""
    with _log(ctx) as log:
        total = log.count(model, version)
    if as_json:
        print_json({"model": model, "version": version, "count": total})
    else:
        print(total)


@predictions_app.command("feedback")
def record_feedback(
    ctx: typer.Context,
    prediction_id: str,
    label: Annotated[str, typer.Argument(help="The ground truth: JSON (1, true, [1, 2]) or text.")],
    as_json: JsonFlag = False,
) -> None:
    """Record LABEL as the ground truth of the prediction PREDICTION_ID."""
    try:
        value = orjson.loads(label)
    except orjson.JSONDecodeError:
        value = label
    with _feedback(ctx) as store:
        (recorded,) = store.record([(prediction_id, value)])
    if as_json:
        print_json(recorded)
        return
    console.print(
        f"recorded {_json_text(recorded.label)} for {recorded.prediction_id} "
        f"({recorded.model} version {recorded.version})",
        markup=False,
        highlight=False,
    )


@predictions_app.command("feedback-list")
def list_feedback(
    ctx: typer.Context,
    model: str,
    version: Version = None,
    since: Since = None,
    limit: Limit = 20,
    as_json: JsonFlag = False,
) -> None:
    """The most recent feedback on MODEL, oldest first."""
    from modelyard.serving._log import frame_records

    with _feedback(ctx) as store:
        frame = store.read(model, version=version, since_ms=_since_ms(since), limit=limit)
    records = frame_records(frame)
    if as_json:
        print_json(records)
        return
    print_table(
        f"feedback on {model}",
        ["id", "version", "at", "label"],
        [
            (r["prediction_id"], r["version"], fmt_time(r["at_ms"]), _json_text(r["label"]))
            for r in records
        ],
    )
