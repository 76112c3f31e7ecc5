"""`modelyard monitor create|list|run|status|history|delete|schedule` and `modelyard alerts …`:
stored monitors of served models and the alert rules over their results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._monitor import monitor_app
from modelyard.cli._output import console, fmt, fmt_time, print_json, print_table
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.monitoring._monitors import Monitors
    from modelyard.monitoring._windowing import WindowResult

alerts_app = typer.Typer(
    help="Alert rules over monitor results, and the alerts they raised.", no_args_is_help=True
)


@contextmanager
def _monitors(ctx: typer.Context) -> Iterator[Monitors]:
    from modelyard.monitoring._default import open_monitors

    with open_monitors(settings_of(ctx)) as monitors:
        yield monitors


def _check(text: str) -> str | dict[str, Any]:
    """A check given on the command line: a name, or JSON with options."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"--check {text!r} is neither a check name nor JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"--check {text!r}: JSON checks are objects with a 'check' key")
    return value


@monitor_app.command("create")
def create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The registered model whose traffic to watch.")],
    name: Annotated[str | None, typer.Option(help="The monitor's name (default: MODEL).")] = None,
    alias: Annotated[str | None, typer.Option(help="Watch the version behind this alias.")] = None,
    version: Annotated[int | None, typer.Option(help="Watch this version.")] = None,
    window: Annotated[str | None, typer.Option(help="Window length: 15m, 1h, 1d.")] = None,
    rows: Annotated[int | None, typer.Option(help="Windows of this many predictions.")] = None,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check",
            help="A check (data_drift, skew, prediction_drift, data_quality, performance, "
            "concept, fairness, latency) or JSON with options; repeat for several.",
        ),
    ] = None,
    schedule: Annotated[str | None, typer.Option(help="Run every so often: 15m, 1h.")] = None,
    label_delay: Annotated[
        str, typer.Option(help="Wait this long after a window ends for its labels.")
    ] = "0s",
    as_json: JsonFlag = False,
) -> None:
    """Store a monitor of MODEL's served predictions against its training reference."""
    checks = [_check(c) for c in check] if check else None
    with _monitors(ctx) as monitors:
        monitor = monitors.create(
            model,
            name=name,
            alias=alias,
            version=version,
            window=window,
            rows=rows,
            checks=checks,
            schedule=schedule,
            label_delay=label_delay,
        )
    if as_json:
        print_json(monitor.to_dict())
    else:
        console.print(f"monitor {monitor.name!r} created: {_describe(monitor.to_dict())}")


def _describe(monitor: dict[str, Any]) -> str:
    if monitor["alias"]:
        target = f"@{monitor['alias']}"
    elif monitor["version"]:
        target = f"/{monitor['version']}"
    else:
        target = " (every version)"
    checks = ", ".join(c["check"] for c in monitor["checks"])
    return f"{monitor['model']}{target}, windows of {monitor['window']}, checks {checks}"


@monitor_app.command("list")
def list_monitors(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Stored monitors."""
    with _monitors(ctx) as monitors:
        found = [m.to_dict() for m in monitors.all()]
    if as_json:
        print_json(found)
        return
    print_table(
        "monitors",
        ["name", "watches", "schedule", "last run"],
        [(m["name"], _describe(m), m["schedule"], fmt_time(m["last_run_at"])) for m in found],
    )


@monitor_app.command("run")
def run(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Judge every complete window of monitor NAME not judged yet, and deliver its alerts."""
    with _monitors(ctx) as monitors:
        result = monitors.run(name)
    if as_json:
        print_json(result.to_dict())
        return
    _print_windows(f"monitor {name}: {len(result.windows)} new window(s)", result.windows)
    for event in result.events:  # not markup: "[warning]" would vanish as a style tag
        console.print(
            f"alert {event.state.upper()} [{event.severity}] {event.message}", markup=False
        )


def _print_windows(title: str, windows: list[WindowResult]) -> None:
    print_table(
        title,
        ["window start", "end", "version", "rows", "labels", "flagged"],
        [
            (
                fmt_time(w.start),
                fmt_time(w.end),
                w.version,
                w.rows,
                w.labels,
                ", ".join(w.flagged) or "-",
            )
            for w in windows
        ],
    )


@monitor_app.command("status")
def status(
    ctx: typer.Context,
    name: str,
    limit: Annotated[int, typer.Option(help="Show the latest N windows.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Monitor NAME: its definition, latest windows, and its alert rules' states."""
    from modelyard.monitoring import _alerts

    with _monitors(ctx) as monitors:
        monitor = monitors.get(name).to_dict()
        windows = monitors.windows(name, limit=limit)
        rules = _alerts.list_rules(monitors.metadata, monitor=name)
    if as_json:
        print_json(
            {
                "monitor": monitor,
                "windows": [w.to_dict() for w in windows],
                "alerts": [r.to_dict() for r in rules],
            }
        )
        return
    console.print(f"monitor {name!r}: {_describe(monitor)}")
    _print_windows("latest windows", windows)
    if windows:
        latest = [p for p in windows[0].points if p.column == ""]
        print_table(
            "latest window",
            ["check", "metric", "value", "interval", "flagged", "status"],
            [
                (
                    p.check,
                    p.metric,
                    fmt(p.value),
                    _interval(p.lower, p.upper),
                    fmt(p.flagged),
                    p.status,
                )
                for p in latest
            ],
        )
    for rule in rules:
        console.print(f"alert {rule.name!r}: {rule.condition} → {rule.state}")


def _interval(lower: float | None, upper: float | None) -> str:
    return "-" if lower is None or upper is None else f"[{lower:.4g}, {upper:.4g}]"


@monitor_app.command("history")
def history(
    ctx: typer.Context,
    name: str,
    check: Annotated[str | None, typer.Option(help="Only this check.")] = None,
    metric: Annotated[str | None, typer.Option(help="Only this metric.")] = None,
    column: Annotated[
        str | None, typer.Option(help="Only this column ('' for whole-window numbers).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The stored results of monitor NAME as a time series."""
    with _monitors(ctx) as monitors:
        frame = monitors.history(name, check=check, metric=metric, column=column)
    frame = frame.assign(
        window_start=frame["window_start"].map(lambda t: t.isoformat()),
        window_end=frame["window_end"].map(lambda t: t.isoformat()),
    )
    # missing numbers as None (null), not NaN (which print_json writes as the string "NaN")
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    if as_json:
        print_json(records)
        return
    print_table(
        f"history of {name}",
        ["window start", "check", "column", "metric", "value", "interval", "flagged"],
        [
            (
                r["window_start"],
                r["check"],
                r["column"] or "-",
                r["metric"],
                fmt(_plain(r["value"])),
                _interval(_plain(r["lower"]), _plain(r["upper"])),
                fmt(_plain(r["flagged"])),
            )
            for r in records
        ],
    )


def _plain(value: Any) -> Any:
    """None for pandas' missing markers."""
    import pandas as pd

    return None if pd.isna(value) else value


@monitor_app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete monitor NAME with its history and alert rules."""
    with _monitors(ctx) as monitors:
        monitors.delete(name)
    console.print(f"monitor {name!r} deleted")


@monitor_app.command("schedule")
def schedule(
    ctx: typer.Context,
    tick: Annotated[float, typer.Option(help="Seconds between looks for due monitors.")] = 10.0,
    once: Annotated[bool, typer.Option(help="Run the due monitors once, then stop.")] = False,
) -> None:
    """Run every monitor with a schedule whenever it is due, until interrupted."""
    from modelyard.monitoring._scheduler import run_due

    with _monitors(ctx) as monitors:
        while True:
            for name, outcome in run_due(monitors):
                console.print(f"{fmt_time(int(time.time() * 1000))} {name}: {outcome}")
            if once:
                return
            time.sleep(tick)


# -- alerts ----------------------------------------------------------------------------------


@alerts_app.command("create")
def create_alert(
    ctx: typer.Context,
    name: str,
    monitor: Annotated[str, typer.Option(help="The monitor whose results the rule reads.")],
    condition: Annotated[
        str,
        typer.Option(help="CHECK.METRIC[.FIELD] OP NUMBER, e.g. 'data_drift.drift_share > 0.3'."),
    ],
    column: Annotated[str | None, typer.Option(help="A column's result instead.")] = None,
    for_windows: Annotated[int, typer.Option(help="Consecutive windows before firing.")] = 1,
    severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    cooldown: Annotated[float, typer.Option(help="Seconds before the rule may fire again.")] = 0,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="log, a webhook URL, or callback:NAME; repeatable."),
    ] = None,
    action: Annotated[str | None, typer.Option(help="An action to run when it fires.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create alert rule NAME over a monitor's results."""
    from modelyard.monitoring import _alerts

    with _monitors(ctx) as monitors:
        rule = _alerts.create_rule(
            monitors.metadata,
            name,
            monitor=monitor,
            condition=condition,
            column=column,
            for_windows=for_windows,
            severity=severity,
            cooldown_s=cooldown,
            channels=channel or ("log",),
            action=action,
        )
    if as_json:
        print_json(rule.to_dict())
    else:
        console.print(f"alert rule {rule.name!r}: {rule.condition} on monitor {rule.monitor!r}")


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option(help="Only this monitor's.")] = None,
    events: Annotated[
        bool, typer.Option(help="List the alerts raised instead of the rules.")
    ] = False,
    limit: Annotated[int, typer.Option(help="With --events: the latest N.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Alert rules with their state (firing or ok), or with --events the alerts raised."""
    from modelyard.monitoring import _alerts

    with _monitors(ctx) as monitors:
        if events:
            found = [
                e.to_dict()
                for e in _alerts.list_events(monitors.metadata, monitor=monitor, limit=limit)
            ]
        else:
            found = [r.to_dict() for r in _alerts.list_rules(monitors.metadata, monitor=monitor)]
    if as_json:
        print_json(found)
        return
    if events:
        print_table(
            "alerts",
            ["id", "rule", "state", "severity", "message"],
            [(e["id"], e["rule"], e["state"], e["severity"], e["message"]) for e in found],
        )
        return
    print_table(
        "alert rules",
        ["name", "monitor", "condition", "severity", "state", "channels"],
        [
            (
                r["name"],
                r["monitor"],
                r["condition"],
                r["severity"],
                r["state"],
                ", ".join(c.get("url") or c.get("name") or c["type"] for c in r["channels"]),
            )
            for r in found
        ],
    )


@alerts_app.command("deliveries")
def deliveries(ctx: typer.Context, event_id: int, as_json: JsonFlag = False) -> None:
    """Every attempt to deliver alert EVENT_ID."""
    from modelyard.monitoring import _alerts

    with _monitors(ctx) as monitors:
        found = [d.to_dict() for d in _alerts.list_deliveries(monitors.metadata, event_id)]
    if as_json:
        print_json(found)
        return
    print_table(
        f"deliveries of alert {event_id}",
        ["attempt", "channel", "target", "ok", "status", "error"],
        [
            (d["attempt"], d["channel"], d["target"], d["ok"], d["status_code"], d["error"])
            for d in found
        ],
    )


@alerts_app.command("delete")
def delete_alert(ctx: typer.Context, name: str) -> None:
    """Delete alert rule NAME (its past alerts with it)."""
    from modelyard.monitoring import _alerts

    with _monitors(ctx) as monitors:
        _alerts.delete_rule(monitors.metadata, name)
    console.print(f"alert rule {name!r} deleted")
