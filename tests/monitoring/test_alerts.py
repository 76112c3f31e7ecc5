"""Alert rules over monitor results: conditions, firing and resolving, and delivery."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from modelyard.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.monitoring._alerts import (
    AlertEvent,
    AlertRule,
    Condition,
    advance,
    create_rule,
    delete_rule,
    deliver,
    evaluate,
    get_rule,
    list_deliveries,
    list_events,
    list_rules,
    parse_condition,
    register_action,
    register_callback,
    unregister_action,
    unregister_callback,
)
from modelyard.monitoring._channels import channel_spec
from modelyard.monitoring._points import ResultPoint, WindowRef
from modelyard.store import MetadataStore
from modelyard.store._tables import AlertRuleRow, MonitorRow, MonitorWindowRow, table_of

from conftest import free_port

HOUR = 3_600_000
T0 = 1_795_687_200_000  # 2026-11-26T10:00Z
MONITORS = table_of(MonitorRow)
WINDOWS = table_of(MonitorWindowRow)
RULES = table_of(AlertRuleRow)


# -- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data_drift.drift_share > 0.3", Condition("data_drift", "drift_share", "value", ">", 0.3)),
        ("performance.roc_auc.lower < 0.8", Condition("performance", "roc_auc", "lower", "<", 0.8)),
        ("latency.p99_ms > 50", Condition("latency", "p99_ms", "value", ">", 50.0)),
        (
            "fairness.selection_rate_ratio < 0.8",
            Condition("fairness", "selection_rate_ratio", "value", "<", 0.8),
        ),
        ("skew.psi.upper>=-1e-3", Condition("skew", "psi", "upper", ">=", -0.001)),
        (
            "  concept.error_rate.value <= .25 ",
            Condition("concept", "error_rate", "value", "<=", 0.25),
        ),
    ],
)
def test_conditions_in_the_grammar_parse(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "drift_share > 0.3",
        "data_drift.drift_share",
        "data_drift.drift_share == 0.3",
        "data_drift.drift_share => 0.3",
        "data_drift.drift_share > high",
        "data_drift.drift_share > nan",
        "data_drift.drift_share > inf",
        "data_drift.drift_share > 0.3 or latency.p99_ms > 5",
        "data_drift.drift_share.median > 0.3",
        "data_drift.drift_share.value.lower > 0.3",
        "1data.drift > 0.3",
        "data drift.share > 0.3",
        "dätä.drift > 0.3",
    ],
)
def test_conditions_outside_the_grammar_are_refused_with_the_grammar(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"CHECK\.METRIC\[\.FIELD\] OP NUMBER.*e\.g\."):
        parse_condition(text)


def test_thresholds_beyond_floats_and_overlong_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="beyond floating point"):
        parse_condition("latency.p99_ms > 1e999")
    with pytest.raises(InvalidInput, match="at most 64 characters"):
        parse_condition(f"latency.{'m' * 65} > 1")


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
CONDITIONS = st.builds(
    Condition,
    check=NAMES,
    metric=NAMES,
    field=st.sampled_from(["value", "lower", "upper"]),
    op=st.sampled_from([">", ">=", "<", "<="]),
    threshold=st.floats(allow_nan=False, allow_infinity=False),
)


@given(CONDITIONS)
def test_a_condition_reads_back_from_its_text(condition: Condition) -> None:
    assert parse_condition(str(condition)) == condition


@given(st.text(max_size=60))
def test_any_text_is_refused_or_parses_to_a_condition_that_reads_back(text: str) -> None:
    try:
        condition = parse_condition(text)
    except InvalidInput:
        return
    assert parse_condition(str(condition)) == condition


# -- the state machine, without a database ----------------------------------------------------


def rule_of(condition: str, *, for_windows: int = 1, cooldown_s: float = 0) -> AlertRule:
    c = parse_condition(condition)
    return AlertRule(
        id=1,
        name="r",
        monitor="m",
        check=c.check,
        metric=c.metric,
        field=c.field,
        column=None,
        op=c.op,
        threshold=c.threshold,
        for_windows=for_windows,
        severity="warning",
        cooldown_s=cooldown_s,
        channels=(),
        action=None,
        state="ok",
        streak=0,
        last_fired_at=None,
        created_at=0,
    )


@given(
    values=st.lists(st.floats(0, 1), max_size=30),
    for_windows=st.integers(1, 4),
    cooldown_windows=st.integers(0, 5),
)
def test_events_alternate_firing_and_resolved_and_respect_for_windows(
    values: list[float], for_windows: int, cooldown_windows: int
) -> None:
    rule = rule_of("c.m > 0.5", for_windows=for_windows, cooldown_s=cooldown_windows * 3600)
    kinds, run = [], 0
    for i, value in enumerate(values):
        rule, kind = advance(rule, value, T0 + i * HOUR)
        run = run + 1 if value > 0.5 else 0
        assert rule.streak == run
        if kind == "firing":
            assert run >= for_windows
        if kind is not None:
            kinds.append(kind)
        assert rule.state == ("firing" if kinds and kinds[-1] == "firing" else "ok")
    assert kinds == ["firing", "resolved"] * (len(kinds) // 2) + ["firing"] * (len(kinds) % 2)


def test_a_suppressed_rule_fires_once_the_cooldown_has_passed() -> None:
    rule = replace(rule_of("c.m > 0.5", cooldown_s=7200), last_fired_at=T0)
    rule, kind = advance(rule, 0.9, T0 + HOUR)
    assert (kind, rule.state, rule.streak) == (None, "ok", 1)
    rule, kind = advance(rule, 0.9, T0 + 2 * HOUR)
    assert (kind, rule.state, rule.last_fired_at) == ("firing", "firing", T0 + 2 * HOUR)


# -- channels ---------------------------------------------------------------------------------


def test_channel_shorthands_expand_to_their_stored_form() -> None:
    assert channel_spec("log") == {"type": "log"}
    assert channel_spec("callback:pager") == {"type": "callback", "name": "pager"}
    assert channel_spec("https://hooks.example.com/x") == {
        "type": "webhook",
        "url": "https://hooks.example.com/x",
        "retries": 3,
        "backoff_s": 0.5,
        "timeout_s": 5.0,
    }
    given_dict = {"type": "webhook", "url": "http://h:8080/", "retries": 0, "timeout_s": 1}
    assert channel_spec(given_dict)["retries"] == 0


@pytest.mark.parametrize(
    "channel",
    [
        "slack",
        "ftp://example.com/x",
        "http://",
        "http://exa mple.com/",
        "callback:",
        {"type": "email", "to": "me@example.com"},
        {"type": "log", "level": "debug"},
        {"type": "webhook"},
        {"type": "webhook", "url": "https://h/", "retries": -1},
        {"type": "webhook", "url": "https://h/", "retries": 1.5},
        {"type": "webhook", "url": "https://h/", "backoff_s": float("nan")},
        {"type": "webhook", "url": "https://h/", "timeout_s": 0},
        {"type": "callback"},
        42,
    ],
)
def test_malformed_channels_are_refused(channel: Any) -> None:
    with pytest.raises(InvalidInput):
        channel_spec(channel)


# -- rules in the store -----------------------------------------------------------------------


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    metadata = MetadataStore(db_url)
    yield metadata
    metadata.close()


@pytest.fixture
def monitor_id(store: MetadataStore) -> int:
    return add_monitor(store, "churn")


def add_monitor(store: MetadataStore, name: str) -> int:
    row = {
        "name": name,
        "model": "churn-model",
        "checks": "[]",
        "reference": "{}",
        "label_delay_ms": 0,
        "cursor": "{}",
        "state": "{}",
        "created_at": T0,
    }
    statement = insert(MONITORS).values(row).returning(MONITORS.c.id)
    return int(store.write(lambda c: c.execute(statement).scalar_one()))


def window(store: MetadataStore, monitor_id: int, i: int) -> WindowRef:
    """The i-th hourly window of the monitor, stored."""
    start = T0 + i * HOUR
    row = {
        "monitor_id": monitor_id,
        "start": start,
        "end": start + HOUR,
        "rows": 100,
        "labels": 0,
        "evidence": "{}",
        "run_at": start + HOUR,
    }
    statement = insert(WINDOWS).values(row).returning(WINDOWS.c.id)
    return WindowRef(
        int(store.write(lambda c: c.execute(statement).scalar_one())),
        monitor_id,
        start,
        start + HOUR,
    )


def drift(value: float | None, column: str = "") -> list[ResultPoint]:
    return [ResultPoint("data_drift", column, "drift_share", value)]


def run(
    store: MetadataStore, monitor_id: int, i: int, points: list[ResultPoint]
) -> list[AlertEvent]:
    return evaluate(store, window(store, monitor_id, i), points, now_ms=T0 + (i + 1) * HOUR)


def rule_count(store: MetadataStore) -> int:
    with store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(RULES)) or 0)


def test_a_new_rule_is_stored_ok_with_its_channels(store: MetadataStore, monitor_id: int) -> None:
    rule = create_rule(
        store,
        "churn-drift",
        monitor="churn",
        condition="data_drift.drift_share>0.3",
        for_windows=2,
        severity="critical",
        cooldown_s=1.5,
        channels=["log", "https://hooks.example.com/a", {"type": "callback", "name": "pager"}],
        action="retrain",
    )
    assert (rule.monitor, rule.condition, rule.column) == (
        "churn",
        "data_drift.drift_share > 0.3",
        None,
    )
    assert (rule.state, rule.streak, rule.last_fired_at, rule.cooldown_s) == ("ok", 0, None, 1.5)
    assert [c["type"] for c in rule.channels] == ["log", "webhook", "callback"]
    assert get_rule(store, "churn-drift") == rule
    assert list_rules(store) == [rule]
    assert list_rules(store, monitor="churn") == [rule]
    assert list_rules(store, monitor="other") == []
    as_json = json.loads(json.dumps(rule.to_dict()))
    assert as_json["condition"] == "data_drift.drift_share > 0.3"
    assert as_json["created_at"].startswith("20")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"name": ""}, InvalidInput),
        ({"name": "x" * 300}, InvalidInput),
        ({"name": "taken"}, AlreadyExists),
        ({"monitor": "nope"}, NotFound),
        ({"condition": "drift > 0.3"}, InvalidInput),
        ({"for_windows": 0}, InvalidInput),
        ({"for_windows": True}, InvalidInput),
        ({"cooldown_s": -1}, InvalidInput),
        ({"cooldown_s": float("inf")}, InvalidInput),
        ({"cooldown_s": 1e300}, InvalidInput),
        ({"severity": "fatal"}, InvalidInput),
        ({"channels": "log"}, InvalidInput),
        ({"channels": ["log", "smoke-signal"]}, InvalidInput),
        ({"channels": [{"type": "webhook", "url": "https://h/", "secret": "s"}]}, InvalidInput),
        ({"action": ""}, InvalidInput),
        ({"column": 3}, InvalidInput),
    ],
)
def test_a_refused_rule_changes_nothing(
    store: MetadataStore, monitor_id: int, changes: dict[str, Any], error: type[Exception]
) -> None:
    create_rule(store, "taken", monitor="churn", condition="latency.p99_ms > 50")
    arguments: dict[str, Any] = {
        "name": "new",
        "monitor": "churn",
        "condition": "latency.p99_ms > 50",
        **changes,
    }
    with pytest.raises(error):
        create_rule(store, arguments.pop("name"), **arguments)
    assert rule_count(store) == 1
    assert get_rule(store, "taken").condition == "latency.p99_ms > 50"


def test_an_unknown_monitor_is_named_with_the_existing_ones(
    store: MetadataStore, monitor_id: int
) -> None:
    with pytest.raises(NotFound, match=r"no monitor named 'nope'; monitors: churn"):
        create_rule(store, "r", monitor="nope", condition="latency.p99_ms > 50")


def test_deleting_a_rule_removes_it_and_its_events(store: MetadataStore, monitor_id: int) -> None:
    create_rule(store, "r", monitor="churn", condition="data_drift.drift_share > 0.3")
    assert run(store, monitor_id, 0, drift(0.9))
    delete_rule(store, "r")
    assert list_rules(store) == []
    assert list_events(store) == []
    with pytest.raises(NotFound, match="no alert rule named 'r'"):
        delete_rule(store, "r")
    with pytest.raises(NotFound):
        get_rule(store, "r")


# -- evaluation -------------------------------------------------------------------------------


def test_for_windows_two_fires_only_on_two_consecutive_windows(
    store: MetadataStore, monitor_id: int
) -> None:
    create_rule(
        store, "r", monitor="churn", condition="data_drift.drift_share > 0.3", for_windows=2
    )
    assert run(store, monitor_id, 0, drift(0.5)) == []
    assert run(store, monitor_id, 1, drift(0.1)) == []
    assert run(store, monitor_id, 2, drift(0.5)) == []
    assert get_rule(store, "r").streak == 1
    [event] = run(store, monitor_id, 3, drift(0.52))
    assert event.message == (
        "data_drift.drift_share = 0.52 > 0.3 for 2 windows (monitor churn, window "
        "2026-11-26T13:00Z–14:00Z)"
    )
    assert (event.state, event.value, event.threshold, event.severity) == (
        "firing",
        0.52,
        0.3,
        "warning",
    )
    assert (event.window_start, event.window_end, event.at) == (
        T0 + 3 * HOUR,
        T0 + 4 * HOUR,
        T0 + 4 * HOUR,
    )
    rule = get_rule(store, "r")
    assert (rule.state, rule.streak, rule.last_fired_at) == ("firing", 2, T0 + 4 * HOUR)
    assert run(store, monitor_id, 4, drift(0.6)) == []  # still firing: no second event


def test_inconclusive_windows_keep_the_streak_and_the_state(
    store: MetadataStore, monitor_id: int
) -> None:
    create_rule(
        store, "r", monitor="churn", condition="data_drift.drift_share > 0.3", for_windows=2
    )
    assert run(store, monitor_id, 0, drift(0.5)) == []
    assert run(store, monitor_id, 1, []) == []
    assert run(store, monitor_id, 2, drift(None)) == []
    assert run(store, monitor_id, 3, drift(float("nan"))) == []
    assert run(store, monitor_id, 4, drift(0.1, column="age")) == []  # another column's point
    assert get_rule(store, "r").streak == 1
    [fired] = run(store, monitor_id, 5, drift(0.5))
    assert fired.state == "firing"
    assert run(store, monitor_id, 6, drift(None)) == []
    assert get_rule(store, "r").state == "firing"


def test_a_window_that_no_longer_meets_the_condition_resolves(
    store: MetadataStore, monitor_id: int
) -> None:
    create_rule(store, "r", monitor="churn", condition="data_drift.drift_share > 0.3")
    [fired] = run(store, monitor_id, 0, drift(0.5))
    [resolved] = run(store, monitor_id, 1, drift(0.3))
    assert resolved.state == "resolved"
    assert resolved.message == (
        "resolved: data_drift.drift_share = 0.3, no longer > 0.3 "
        "(monitor churn, window 2026-11-26T11:00Z–12:00Z)"
    )
    assert (get_rule(store, "r").state, get_rule(store, "r").streak) == ("ok", 0)
    assert run(store, monitor_id, 2, drift(0.1)) == []
    assert list_events(store) == [resolved, fired]
    assert list_events(store, state="firing") == [fired]
    assert list_events(store, rule="r", monitor="churn", limit=1) == [resolved]
    assert list_events(store, monitor="other") == []
    payload = resolved.to_dict()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["window_start"] == "2026-11-26T11:00:00.000+00:00"


def test_list_events_refuses_unknown_states_and_limits(store: MetadataStore) -> None:
    with pytest.raises(InvalidInput):
        list_events(store, state="pending")
    with pytest.raises(InvalidInput):
        list_events(store, limit=0)


def test_a_cooldown_suppresses_firing_again_until_it_has_passed(
    store: MetadataStore, monitor_id: int
) -> None:
    create_rule(
        store, "r", monitor="churn", condition="data_drift.drift_share > 0.3", cooldown_s=3 * 3600
    )
    assert [e.state for e in run(store, monitor_id, 0, drift(0.5))] == ["firing"]
    assert [e.state for e in run(store, monitor_id, 1, drift(0.1))] == ["resolved"]
    assert run(store, monitor_id, 2, drift(0.5)) == []  # 2 h after firing: suppressed
    rule = get_rule(store, "r")
    assert (rule.state, rule.streak, rule.last_fired_at) == ("ok", 1, T0 + HOUR)
    [again] = run(store, monitor_id, 3, drift(0.5))  # 3 h after firing
    assert again.state == "firing"
    assert "for 2 windows" in again.message


def test_column_and_field_pick_the_point(store: MetadataStore, monitor_id: int) -> None:
    create_rule(store, "auc", monitor="churn", condition="performance.roc_auc.lower < 0.8")
    create_rule(
        store,
        "age",
        monitor="churn",
        condition="data_drift.psi >= 0.2",
        column="age",
        severity="info",
    )
    points = [
        ResultPoint("performance", "", "roc_auc", 0.85, lower=0.75, upper=0.9),
        ResultPoint("data_drift", "age", "psi", 0.25),
        ResultPoint("data_drift", "income", "psi", 0.01),
    ]
    events = run(store, monitor_id, 0, points)
    assert [(e.rule, e.value) for e in events] == [("auc", 0.75), ("age", 0.25)]
    assert events[0].condition == "performance.roc_auc.lower < 0.8"
    assert events[1].message.startswith("data_drift.psi of column 'age' = 0.25 >= 0.2 for 1 window")


def test_rules_of_other_monitors_are_not_evaluated(store: MetadataStore, monitor_id: int) -> None:
    other = add_monitor(store, "fraud")
    create_rule(store, "r", monitor="fraud", condition="data_drift.drift_share > 0.3")
    assert run(store, monitor_id, 0, drift(0.9)) == []
    assert run(store, other, 0, drift(0.9))[0].monitor == "fraud"


# -- delivery ---------------------------------------------------------------------------------


class Receiver:
    """A local webhook receiver that answers the given statuses in turn, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.bodies: list[Any] = []
        self.statuses = statuses
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    serving = Receiver([500])
    yield serving
    serving.close()


@pytest.fixture
def handlers() -> Iterator[dict[str, list[AlertEvent]]]:
    """Callbacks "collect" and "broken" and action "retrain", registered for one test."""
    seen: dict[str, list[AlertEvent]] = {"collect": [], "retrain": []}

    def broken(event: AlertEvent) -> None:
        raise ConnectionError("pager is down")

    register_callback("collect", seen["collect"].append)
    register_callback("broken", broken)
    register_action("retrain", seen["retrain"].append)
    yield seen
    for name in ("collect", "broken"):
        unregister_callback(name)
    unregister_action("retrain")


def test_a_webhook_answering_500_is_retried_and_every_attempt_recorded(
    store: MetadataStore, monitor_id: int, receiver: Receiver
) -> None:
    channel = {"type": "webhook", "url": receiver.url, "backoff_s": 0.25}
    create_rule(
        store, "r", monitor="churn", condition="data_drift.drift_share > 0.3", channels=[channel]
    )
    events = run(store, monitor_id, 0, drift(0.5))
    slept: list[float] = []
    deliveries = deliver(store, events, sleep=slept.append)
    assert receiver.bodies == [events[0].to_dict()] * 2
    assert receiver.bodies[0]["rule"] == "r"
    assert receiver.bodies[0]["state"] == "firing"
    assert slept == [0.25]
    assert [(d.attempt, d.ok, d.status_code) for d in deliveries] == [
        (1, False, 500),
        (2, True, 200),
    ]
    assert deliveries[0].error is not None and "500" in deliveries[0].error
    assert list_deliveries(store, events[0].id) == deliveries
    assert all(d.channel == "webhook" and d.target == receiver.url for d in deliveries)


def test_an_unreachable_webhook_is_failed_deliveries_not_an_error(
    store: MetadataStore, monitor_id: int
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    channel = {"type": "webhook", "url": url, "retries": 2, "backoff_s": 1, "timeout_s": 2}
    create_rule(
        store, "r", monitor="churn", condition="data_drift.drift_share > 0.3", channels=[channel]
    )
    slept: list[float] = []
    deliveries = deliver(store, run(store, monitor_id, 0, drift(0.5)), sleep=slept.append)
    assert [(d.attempt, d.ok, d.status_code) for d in deliveries] == [
        (1, False, None),
        (2, False, None),
        (3, False, None),
    ]
    assert all(d.error and "Connect" in d.error for d in deliveries)
    assert slept == [1, 2]


def test_callbacks_get_every_event_and_actions_only_firing_ones(
    store: MetadataStore, monitor_id: int, handlers: dict[str, list[AlertEvent]]
) -> None:
    create_rule(
        store,
        "r",
        monitor="churn",
        condition="data_drift.drift_share > 0.3",
        channels=["callback:collect"],
        action="retrain",
    )
    fired = run(store, monitor_id, 0, drift(0.5))
    resolved = run(store, monitor_id, 1, drift(0.1))
    first = deliver(store, fired)
    second = deliver(store, resolved)
    assert handlers["collect"] == fired + resolved
    assert handlers["retrain"] == fired
    assert [(d.channel, d.target, d.ok) for d in first] == [
        ("callback", "collect", True),
        ("action", "retrain", True),
    ]
    assert [(d.channel, d.ok) for d in second] == [("callback", True)]


def test_failing_and_missing_callbacks_are_recorded_as_failed(
    store: MetadataStore, monitor_id: int, handlers: dict[str, list[AlertEvent]]
) -> None:
    create_rule(
        store,
        "r",
        monitor="churn",
        condition="data_drift.drift_share > 0.3",
        channels=["callback:broken", "callback:nobody"],
        action="rollback",
    )
    events = run(store, monitor_id, 0, drift(0.5))
    deliveries = deliver(store, events)
    assert [(d.channel, d.ok, d.error) for d in deliveries] == [
        ("callback", False, "ConnectionError: pager is down"),
        ("callback", False, "no callback named 'nobody' is registered in this process"),
        ("action", False, "no action named 'rollback' is registered in this process"),
    ]
    assert list_deliveries(store, events[0].id) == deliveries


def test_the_log_channel_logs_at_the_rules_severity(
    store: MetadataStore, monitor_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    create_rule(
        store, "crit", monitor="churn", condition="latency.p99_ms > 50", severity="critical"
    )
    create_rule(store, "info", monitor="churn", condition="latency.p99_ms > 10", severity="info")
    events = run(store, monitor_id, 0, [ResultPoint("latency", "", "p99_ms", 80.0)])
    with caplog.at_level(logging.INFO, logger="modelyard.alerts"):
        deliveries = deliver(store, events)
    levels = {r.message.split()[1]: r.levelno for r in caplog.records}
    assert levels == {"crit": logging.CRITICAL, "info": logging.INFO}
    assert all(e.message in caplog.text for e in events)
    assert [(d.channel, d.ok) for d in deliveries] == [("log", True), ("log", True)]


def test_deliveries_of_an_unknown_event_are_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="no alert event 12345"):
        list_deliveries(store, 12345)
