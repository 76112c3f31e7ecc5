"""Alert rules over a monitor's results: a condition, for how many windows, and where to.

`evaluate` moves each rule of a window's monitor between "ok" and "firing" and records an
event for each move; `deliver` sends recorded events over the channels of `_channels` and
records every attempt. The two are apart so that a slow webhook never holds the
transaction that decides and records an alert.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from sqlalchemy import Connection, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.monitoring._channels import (
    Attempt,
    channel_spec,
    register_action,
    register_callback,
    run_action,
    seconds,
    send,
    unregister_action,
    unregister_callback,
)
from modelyard.monitoring._points import ResultPoint, WindowRef
from modelyard.store._tables import (
    AlertDeliveryRow,
    AlertEventRow,
    AlertRuleRow,
    MonitorRow,
    table_of,
)
from modelyard.tracking._entities import now_ms as wall_clock_ms
from modelyard.tracking._validate import check_int64, check_name, check_text

if TYPE_CHECKING:
    from modelyard.store import MetadataStore

D = table_of(AlertDeliveryRow)
E = table_of(AlertEventRow)
M = table_of(MonitorRow)
R = table_of(AlertRuleRow)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_FIELDS = ("value", "lower", "upper")
_SEVERITIES = ("info", "warning", "critical")
_EVENT_STATES = ("firing", "resolved")
_NAME_LEN = 64  # of a check or metric, as stored
_CONDITION = re.compile(
    r"\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?\s*(>=|<=|>|<)\s*"
    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*",
    re.ASCII,
)
_GRAMMAR = (
    "write CHECK.METRIC[.FIELD] OP NUMBER, with OP one of > >= < <= and FIELD one of "
    "value (the default), lower, upper; e.g. 'data_drift.drift_share > 0.3' or "
    "'performance.roc_auc.lower < 0.8'"
)
_INT32 = 2**31 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SHOWN = 10  # names listed in a NotFound message


def utc(ms: int) -> dt.datetime:
    """Unix milliseconds as an aware UTC datetime."""
    return _EPOCH + dt.timedelta(milliseconds=ms)


def utc_iso(ms: int) -> str:
    """Unix milliseconds as an ISO 8601 UTC time."""
    return utc(ms).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Condition:
    """`check.metric[.field] op threshold`, compared with one result point."""

    check: str
    metric: str
    field: str
    op: str
    threshold: float

    def met(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    @property
    def target(self) -> str:
        """`check.metric`, with `.field` unless it is the value."""
        suffix = "" if self.field == "value" else f".{self.field}"
        return f"{self.check}.{self.metric}{suffix}"

    def __str__(self) -> str:
        return f"{self.target} {self.op} {_number(self.threshold)}"


def parse_condition(text: str) -> Condition:
    """The condition in `text` (e.g. "data_drift.drift_share > 0.3"), or InvalidInput."""
    match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"cannot read the alert condition {text!r}: {_GRAMMAR}")
    check, metric, field, op, number = match.groups()
    if field is not None and field not in _FIELDS:
        raise InvalidInput(f"unknown field {field!r} in the condition {text!r}: {_GRAMMAR}")
    if max(len(check), len(metric)) > _NAME_LEN:
        raise InvalidInput(f"check and metric names are at most {_NAME_LEN} characters: {text!r}")
    threshold = float(number)
    if not math.isfinite(threshold):
        raise InvalidInput(f"the threshold of {text!r} is beyond floating point numbers")
    return Condition(check, metric, field or "value", op, threshold)


def _number(x: float) -> str:
    """`x` as short as it reads back exactly: 50, 0.3, 1e+20."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A stored rule and where it stands: `state` "ok" or "firing", `streak` the number of
    consecutive windows that met the condition."""

    id: int
    name: str
    monitor: str
    check: str
    metric: str
    field: str
    column: str | None
    op: str
    threshold: float
    for_windows: int
    severity: str
    cooldown_s: float
    channels: tuple[dict[str, Any], ...]
    action: str | None
    state: str
    streak: int
    last_fired_at: int | None
    created_at: int

    @property
    def condition(self) -> str:
        return str(self._condition())

    def _condition(self) -> Condition:
        return Condition(self.check, self.metric, self.field, self.op, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "monitor": self.monitor,
            "condition": self.condition,
            "column": self.column,
            "for_windows": self.for_windows,
            "severity": self.severity,
            "cooldown_s": self.cooldown_s,
            "channels": [dict(channel) for channel in self.channels],
            "action": self.action,
            "state": self.state,
            "streak": self.streak,
            "last_fired_at": None if self.last_fired_at is None else utc_iso(self.last_fired_at),
            "created_at": utc_iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A rule starting to fire or resolving, with the value and window that made it."""

    id: int
    rule: str
    monitor: str
    state: str  # firing, resolved
    severity: str
    value: float | None
    threshold: float
    condition: str
    window_start: int | None
    window_end: int | None
    message: str
    at: int
    action: str | None

    def to_dict(self) -> dict[str, Any]:
        finite = self.value is not None and math.isfinite(self.value)
        return {
            "id": self.id,
            "rule": self.rule,
            "monitor": self.monitor,
            "state": self.state,
            "severity": self.severity,
            "value": self.value if finite else None,
            "threshold": self.threshold,
            "condition": self.condition,
            "window_start": _iso_or_none(self.window_start),
            "window_end": _iso_or_none(self.window_end),
            "message": self.message,
            "at": utc_iso(self.at),
            "action": self.action,
        }


# AlertRule fields read straight from their column.
_STORED_AS_IS = tuple(
    f.name for f in fields(AlertRule) if f.name in R.c and f.name not in {"channels"}
)


def _iso_or_none(ms: int | None) -> str | None:
    return None if ms is None else utc_iso(ms)


def create_rule(
    store: MetadataStore,
    name: str,
    *,
    monitor: str,
    condition: str,
    column: str | None = None,
    for_windows: int = 1,
    severity: str = "warning",
    cooldown_s: float = 0,
    channels: Sequence[str | Mapping[str, Any]] = ("log",),
    action: str | None = None,
) -> AlertRule:
    """Store a rule over `monitor`'s results, in state "ok"; a refused argument stores nothing.

    `column` picks the point of one column (None: the window's own, column "").
    """
    values = _rule_values(
        name, condition, column, for_windows, severity, cooldown_s, channels, action
    )

    def work(conn: Connection) -> AlertRule:
        conn.execute(insert(R).values({**values, "monitor_id": _monitor_id(conn, monitor)}))
        return _one_rule(conn, name)

    try:
        return store.write(work)
    except DbIntegrityError:
        with store.read() as conn:
            taken = conn.scalar(select(R.c.id).where(R.c.name == name)) is not None
        if not taken:
            raise NotFound(f"monitor {monitor!r} was deleted while the rule was created") from None
        raise AlreadyExists(
            f"alert rule {name!r} already exists: pick another name or delete_rule it first"
        ) from None


def _rule_values(
    name: str,
    condition: str,
    column: str | None,
    for_windows: int,
    severity: str,
    cooldown_s: float,
    channels: Sequence[str | Mapping[str, Any]],
    action: str | None,
) -> dict[str, Any]:
    parsed = parse_condition(condition)
    return {
        "name": check_name("alert rule", name),
        "check": parsed.check,
        "metric": parsed.metric,
        "field": parsed.field,
        "column": _column(column),
        "op": parsed.op,
        "threshold": parsed.threshold,
        "for_windows": _for_windows(for_windows),
        "severity": _severity(severity),
        "cooldown_ms": _cooldown_ms(cooldown_s),
        "channels": orjson.dumps(_channels(channels)).decode(),
        "action": None if action is None else check_name("action", action),
        "state": "ok",
        "streak": 0,
        "last_fired_at": None,
        "created_at": wall_clock_ms(),
    }


def _column(column: object) -> str | None:
    if column is None or column == "":
        return None
    if not isinstance(column, str) or len(column) > 256:
        raise InvalidInput(f"column must be a column name (1-256 characters), got {column!r}")
    return check_text("column", column)


def _for_windows(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _INT32:
        raise InvalidInput(f"for_windows must be a whole number of windows, 1 or more, got {n!r}")
    return n


def _cooldown_ms(cooldown_s: object) -> int:
    ms = round(seconds("cooldown_s", cooldown_s, allow_zero=True) * 1000)
    return check_int64("cooldown_s in milliseconds", ms, minimum=0)


def _severity(severity: object) -> str:
    if severity not in _SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(_SEVERITIES)}, got {severity!r}")
    return str(severity)


def _channels(channels: object) -> list[dict[str, Any]]:
    if isinstance(channels, str | Mapping) or not isinstance(channels, Sequence):
        raise InvalidInput(f"channels must be a list, e.g. ['log'], got {channels!r}")
    return [channel_spec(channel) for channel in channels]


def _monitor_id(conn: Connection, monitor: str) -> int:
    found: int | None = conn.scalar(select(M.c.id).where(M.c.name == monitor))
    if found is None:
        names = list(conn.scalars(select(M.c.name).order_by(M.c.name).limit(_SHOWN)))
        raise NotFound(f"no monitor named {monitor!r}; monitors: {', '.join(names) or '(none)'}")
    return found


def _rules() -> Select[Any]:
    return select(R, M.c.name.label("monitor_name")).join(M, M.c.id == R.c.monitor_id)


def _rule_of(row: Any) -> AlertRule:
    m = row._mapping
    return AlertRule(
        **{name: m[name] for name in _STORED_AS_IS},
        monitor=m["monitor_name"],
        cooldown_s=m["cooldown_ms"] / 1000,
        channels=tuple(orjson.loads(m["channels"])),
    )


def _one_rule(conn: Connection, name: str) -> AlertRule:
    row = conn.execute(_rules().where(R.c.name == name)).one_or_none()
    if row is None:
        names = list(conn.scalars(select(R.c.name).order_by(R.c.name).limit(_SHOWN)))
        raise NotFound(f"no alert rule named {name!r}; rules: {', '.join(names) or '(none)'}")
    return _rule_of(row)


def get_rule(store: MetadataStore, name: str) -> AlertRule:
    """The rule called `name`, with its current state."""
    with store.read() as conn:
        return _one_rule(conn, name)


def list_rules(store: MetadataStore, monitor: str | None = None) -> list[AlertRule]:
    """Every rule (of `monitor` if given), by name."""
    query = _rules().order_by(R.c.name)
    if monitor is not None:
        query = query.where(M.c.name == monitor)
    with store.read() as conn:
        return [_rule_of(row) for row in conn.execute(query)]


def delete_rule(store: MetadataStore, name: str) -> None:
    """Delete the rule `name` with its events and their deliveries."""

    def work(conn: Connection) -> None:
        _one_rule(conn, name)
        conn.execute(delete(R).where(R.c.name == name))

    store.write(work)


def advance(rule: AlertRule, value: float, at: int) -> tuple[AlertRule, str | None]:
    """The rule after a window whose point reads `value`, and the event it makes, if any."""
    if not rule._condition().met(value):
        moved = replace(rule, state="ok", streak=0)
        return moved, "resolved" if rule.state == "firing" else None
    moved = replace(rule, streak=rule.streak + 1)
    cooled = rule.last_fired_at is None or at - rule.last_fired_at >= rule.cooldown_s * 1000
    if rule.state == "ok" and moved.streak >= rule.for_windows and cooled:
        return replace(moved, state="firing", last_fired_at=at), "firing"
    return moved, None


def evaluate(
    store: MetadataStore,
    window: WindowRef,
    points: Sequence[ResultPoint],
    *,
    now_ms: int | None = None,
) -> list[AlertEvent]:
    """Move every rule of the window's monitor on its points, in one transaction.

    A rule whose point is missing or has no number keeps its state and streak. Returns
    the events recorded (deliver them with `deliver`).
    """
    at = wall_clock_ms() if now_ms is None else now_ms
    by_key = {(p.check, p.column, p.metric): p for p in points}

    def work(conn: Connection) -> list[AlertEvent]:
        query = _rules().where(R.c.monitor_id == window.monitor_id).order_by(R.c.id)
        events: list[AlertEvent] = []
        for rule in map(_rule_of, conn.execute(query.with_for_update(of=R))):
            value = _reading(rule, by_key.get((rule.check, rule.column or "", rule.metric)))
            if value is None:
                continue
            moved, kind = advance(rule, value, at)
            if moved != rule:
                conn.execute(update(R).where(R.c.id == rule.id).values(_state_of(moved)))
            if kind is not None:
                events.append(_record_event(conn, moved, kind, value, window, at))
        return events

    return store.write(work)


def _state_of(rule: AlertRule) -> dict[str, Any]:
    return {"state": rule.state, "streak": rule.streak, "last_fired_at": rule.last_fired_at}


def _reading(rule: AlertRule, point: ResultPoint | None) -> float | None:
    value: float | None = None if point is None else getattr(point, rule.field)
    return None if value is None or math.isnan(value) else float(value)


def _record_event(
    conn: Connection, rule: AlertRule, kind: str, value: float, window: WindowRef, at: int
) -> AlertEvent:
    row = {
        "rule_id": rule.id,
        "state": kind,
        "severity": rule.severity,
        "value": value,
        "window_id": window.id,
        "window_start": window.start,
        "window_end": window.end,
        "message": _message(rule, kind, value, window),
        "at": at,
    }
    event_id = conn.execute(insert(E).values(row).returning(E.c.id)).scalar_one()
    return _event_of(conn.execute(_events().where(E.c.id == event_id)).one())


def _events() -> Select[Any]:
    rule_columns = (R.c.check, R.c.metric, R.c.field, R.c.op, R.c.threshold, R.c.action)
    return (
        select(E, R.c.name.label("rule_name"), M.c.name.label("monitor_name"), *rule_columns)
        .join(R, R.c.id == E.c.rule_id)
        .join(M, M.c.id == R.c.monitor_id)
    )


def _event_of(row: Any) -> AlertEvent:
    m = row._mapping
    condition = Condition(m["check"], m["metric"], m["field"], m["op"], m["threshold"])
    return AlertEvent(
        id=m["id"],
        rule=m["rule_name"],
        monitor=m["monitor_name"],
        state=m["state"],
        severity=m["severity"],
        value=m["value"],
        threshold=m["threshold"],
        condition=str(condition),
        window_start=m["window_start"],
        window_end=m["window_end"],
        message=m["message"],
        at=m["at"],
        action=m["action"],
    )


def _message(rule: AlertRule, kind: str, value: float, window: WindowRef) -> str:
    """E.g. "data_drift.drift_share = 0.52 > 0.3 for 2 windows (monitor churn, window …)"."""
    subject = rule._condition().target
    if rule.column:
        subject += f" of column {rule.column!r}"
    threshold = _number(rule.threshold)
    where = f"(monitor {rule.monitor}, window {_span(window.start, window.end)})"
    if kind == "resolved":
        return f"resolved: {subject} = {value:.4g}, no longer {rule.op} {threshold} {where}"
    windows = "window" if rule.streak == 1 else "windows"
    return f"{subject} = {value:.4g} {rule.op} {threshold} for {rule.streak} {windows} {where}"


def _span(start: int, end: int) -> str:
    """ "2026-11-26T10:00Z–11:00Z": the date again only when the window ends on another day."""
    first, last = utc(start), utc(end)
    return f"{_clock(first, date=True)}–{_clock(last, date=first.date() != last.date())}"


def _clock(moment: dt.datetime, *, date: bool) -> str:
    shown = "%H:%M" if moment.second == moment.microsecond == 0 else "%H:%M:%S"
    return moment.strftime(("%Y-%m-%dT" if date else "") + shown) + "Z"


def list_events(
    store: MetadataStore,
    *,
    rule: str | None = None,
    monitor: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[AlertEvent]:
    """Recorded events, newest first, of `rule`, `monitor` and in `state` when given."""
    if state is not None and state not in _EVENT_STATES:
        raise InvalidInput(f"state must be one of {', '.join(_EVENT_STATES)}, got {state!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _INT32:
        raise InvalidInput(f"limit must be a whole number, 1 or more, got {limit!r}")
    query = _events()
    for column, wanted in ((R.c.name, rule), (M.c.name, monitor), (E.c.state, state)):
        if wanted is not None:
            query = query.where(column == wanted)
    with store.read() as conn:
        rows = conn.execute(query.order_by(E.c.id.desc()).limit(limit)).all()
    return [_event_of(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to send an event over one channel ("log", "webhook", "callback", "action")."""

    id: int
    event_id: int
    channel: str
    target: str
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "channel": self.channel,
            "target": self.target,
            "attempt": self.attempt,
            "ok": self.ok,
            "status_code": self.status_code,
            "error": self.error,
            "at": utc_iso(self.at),
        }


def deliver(
    store: MetadataStore,
    events: Sequence[AlertEvent],
    *,
    sleep: Callable[[float], object] = time.sleep,
) -> list[Delivery]:
    """Send each event over its rule's channels, and to its action when it fires.

    Every attempt is recorded and returned; a failing channel is a failed `Delivery`,
    never an exception. Events whose rule was deleted meanwhile are skipped.
    """
    routes = _channels_of(store, [event.id for event in events])
    deliveries: list[Delivery] = []
    with httpx.Client() as client:
        for event in (e for e in events if e.id in routes):
            for channel in routes[event.id]:
                # each attempt is recorded before the next one (and its back-off) begins
                deliveries += [
                    _record(store, event.id, a) for a in send(channel, event, client, sleep)
                ]
            if event.action is not None and event.state == "firing":
                deliveries.append(_record(store, event.id, run_action(event.action, event)))
    return deliveries


def list_deliveries(store: MetadataStore, event_id: int) -> list[Delivery]:
    """Every delivery attempt of an event, oldest first."""
    with store.read() as conn:
        if conn.scalar(select(E.c.id).where(E.c.id == event_id)) is None:
            raise NotFound(f"no alert event {event_id!r}: list_events shows the recorded ones")
        rows = conn.execute(select(D).where(D.c.event_id == event_id).order_by(D.c.id))
        return [Delivery(**row) for row in rows.mappings()]


def _channels_of(store: MetadataStore, event_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    if not event_ids:
        return {}
    query = select(E.c.id, R.c.channels).join(R, R.c.id == E.c.rule_id)
    with store.read() as conn:
        rows = conn.execute(query.where(E.c.id.in_(event_ids))).all()
    return {event_id: orjson.loads(channels) for event_id, channels in rows}


def _record(store: MetadataStore, event_id: int, attempt: Attempt) -> Delivery:
    row: dict[str, Any] = {
        "event_id": event_id,
        "channel": attempt.channel,
        "target": attempt.target,
        "attempt": attempt.number,
        "ok": attempt.ok,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "at": wall_clock_ms(),
    }
    statement = insert(D).values(row).returning(D.c.id)
    return Delivery(store.write(lambda conn: conn.execute(statement).scalar_one()), **row)


# The alerting API, the registries of `_channels` included.
__all__ = [
    "AlertEvent",
    "AlertRule",
    "Condition",
    "Delivery",
    "create_rule",
    "delete_rule",
    "deliver",
    "evaluate",
    "get_rule",
    "list_deliveries",
    "list_events",
    "list_rules",
    "parse_condition",
    "register_action",
    "register_callback",
    "unregister_action",
    "unregister_callback",
]
