"""The monitor and alert routes of `/api/v1/monitoring` against a live `modelyard server` on
a home holding a real model and its labelled traffic (normal, shifted for an hour, normal):
what each route answers, and that a refused call answers its status and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from _monitored import HOUR, ROWS, T0, configured, log_model, log_phases, stored

from conftest import start_server, stop_server

API = "/api/v1/monitoring"
STARTS = [T0, T0 + HOUR, T0 + 2 * HOUR]
ISO = ["2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]


@dataclass(frozen=True)
class Live:
    api: httpx.Client
    home: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server over a home with `churn` version 1 behind `champion` and its traffic."""
    home = tmp_path_factory.mktemp("monitors-api") / "home"
    with configured(home):
        log_phases(log_model())
    process, url = start_server(home)
    try:
        with httpx.Client(base_url=f"{url}{API}", timeout=60) as client:
            yield Live(client, home)
    finally:
        stop_server(process)


@dataclass(frozen=True)
class Judged:
    created: dict[str, Any]
    read: dict[str, Any]  # GET /monitors/churn before the run
    rule: dict[str, Any]
    run: dict[str, Any]


def answer(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def judged(live: Live) -> Judged:
    """Monitor `churn` (windows of 200 predictions) with the rule `drift`, run once."""
    api = live.api
    created = answer(api.post("/monitors", json={
        "model": "churn", "alias": "champion", "rows": ROWS, "label_delay": "5m",
        "checks": ["data_drift", {"check": "performance", "confidence": 0.9}, "latency"],
    }), 201)  # fmt: skip
    read = answer(api.get("/monitors/churn"), 200)
    rule = answer(api.post("/alerts", json={
        "name": "drift", "monitor": "churn", "condition": "data_drift.drift_share > 0.2",
        "severity": "critical",
    }), 201)  # fmt: skip
    return Judged(created, read, rule, answer(api.post("/monitors/churn/run"), 200))


def test_create_answers_201_with_the_monitor(live: Live, judged: Judged) -> None:
    created = dict(judged.created)
    assert isinstance(created.pop("created_at"), int)
    assert created == {
        "name": "churn",
        "model": "churn",
        "alias": "champion",
        "version": None,
        "window": "200 rows",
        "window_ms": None,
        "window_rows": ROWS,
        "checks": [
            {"check": "data_drift"},
            {"check": "performance", "confidence": 0.9},
            {"check": "latency"},
        ],
        "reference": {"kind": "training"},
        "schedule": None,
        "label_delay": "5m",
        "last_run_at": None,
    }
    assert judged.read == {"monitor": judged.created, "windows": [], "alerts": []}
    assert "churn" in [m["name"] for m in answer(live.api.get("/monitors"), 200)]
    window = answer(live.api.post("/monitors", json={
        "model": "churn", "name": "hourly", "version": 1, "window": "1h", "schedule": "15m",
        "reference": {"since": T0, "until": T0 + HOUR}, "checks": ["latency"],
    }), 201)  # fmt: skip
    assert (window["window"], window["window_ms"], window["schedule"]) == ("1h", HOUR, "15m")
    assert window["reference"] == {"kind": "window", "since": T0, "until": T0 + HOUR}
    listed = answer(live.api.get("/monitors"), 200)
    assert [m["name"] for m in listed] == sorted(m["name"] for m in listed)
    assert {"churn", "hourly"} <= {m["name"] for m in listed}


def test_run_judges_every_window_once_and_flags_the_shifted_one(live: Live, judged: Judged) -> None:
    windows = judged.run["windows"]
    assert judged.run["monitor"] == "churn"
    assert [w["start"] for w in windows] == STARTS
    assert [(w["rows"], w["labels"], w["version"]) for w in windows] == [(ROWS, ROWS, 1)] * 3
    assert [w["flagged"] for w in windows] == [[], ["data_drift", "performance"], []]
    assert windows[1]["evidence"]["data_drift"]["drifted_columns"] == ["x0"]
    events = [(e["rule"], e["state"], e["window_start"]) for e in judged.run["events"]]
    assert events == [
        ("drift", "firing", "2026-01-01T01:00:00.000+00:00"),
        ("drift", "resolved", "2026-01-01T02:00:00.000+00:00"),
    ]
    again = answer(live.api.post("/monitors/churn/run"), 200)
    assert again == {"monitor": "churn", "windows": [], "events": []}


def test_get_shows_the_latest_windows_and_the_rules(live: Live, judged: Judged) -> None:
    read = answer(live.api.get("/monitors/churn"), 200)
    assert read["monitor"]["last_run_at"] is not None
    assert {**read["monitor"], "last_run_at": None} == judged.created
    assert [w["start"] for w in read["windows"]] == STARTS[::-1]  # newest first
    assert read["windows"][1]["evidence"] == judged.run["windows"][1]["evidence"]
    assert [(r["name"], r["state"], r["streak"]) for r in read["alerts"]] == [("drift", "ok", 0)]
    latest = answer(live.api.get("/monitors/churn", params={"limit": 1}), 200)
    assert [w["start"] for w in latest["windows"]] == [STARTS[-1]]


def test_history_is_filtered_by_check_metric_column_and_time(live: Live, judged: Judged) -> None:
    def history(**params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = answer(
            live.api.get("/monitors/churn/history", params=params), 200
        )
        return found

    share = history(check="data_drift", metric="drift_share", column="")
    assert [r["window_start"] for r in share] == ISO
    assert [r["value"] > 0.2 for r in share] == [False, True, False]
    assert [r["flagged"] for r in share] == [False, True, False]
    assert [(r["version"], r["rows"]) for r in share] == [(1, ROWS)] * 3
    assert [r["flagged"] for r in history(column="x0", metric="drift_score")] == [
        False,
        True,
        False,
    ]
    accuracy = history(metric="accuracy")
    assert all(r["lower"] <= r["value"] <= r["upper"] for r in accuracy)
    assert accuracy[1]["upper"] < 0.75 < min(accuracy[0]["lower"], accuracy[2]["lower"])
    assert [r["window_start"] for r in history(metric="p99_ms", since=T0 + HOUR)] == ISO[1:]
    assert [r["window_start"] for r in history(metric="p99_ms", until=T0 + HOUR)] == ISO[:1]
    shifted = history(since=T0 + HOUR, until=T0 + 2 * HOUR)
    assert {r["window_start"] for r in shifted} == {ISO[1]}
    everything = history()
    assert len(everything) == sum(len(history(check=c)) for c in ("data_drift", "performance",
                                                                   "latency"))  # fmt: skip
    for record in everything:  # missing numbers are null
        assert all(record[k] is None or isinstance(record[k], float) for k in ("lower", "upper"))
    assert history(check="fairness") == []


def test_alert_rules_events_and_deliveries(live: Live, judged: Judged) -> None:
    api = live.api
    assert [r["name"] for r in answer(api.get("/alerts", params={"monitor": "churn"}), 200)] == [
        "drift"
    ]
    events = answer(api.get("/alert-events", params={"monitor": "churn"}), 200)
    assert [(e["rule"], e["state"]) for e in events] == [("drift", "resolved"), ("drift", "firing")]
    (firing,) = answer(api.get("/alert-events", params={"state": "firing", "rule": "drift"}), 200)
    assert firing == events[1] and firing["value"] == pytest.approx(0.25)
    latest = answer(api.get("/alert-events", params={"rule": "drift", "limit": 1}), 200)
    assert latest == events[:1]
    (delivery,) = answer(api.get(f"/alert-events/{firing['id']}/deliveries"), 200)
    assert (delivery["event_id"], delivery["channel"], delivery["attempt"], delivery["ok"]) == (
        firing["id"],
        "log",
        1,
        True,
    )

    slow = answer(api.post("/alerts", json={
        "name": "slow", "monitor": "churn", "condition": "latency.p99_ms >= 50",
        "for_windows": 2, "cooldown_s": 60, "channels": ["log", "callback:pager"],
    }), 201)  # fmt: skip
    assert (slow["condition"], slow["for_windows"], slow["cooldown_s"]) == (
        "latency.p99_ms >= 50",
        2,
        60.0,
    )
    assert slow["channels"] == [{"type": "log"}, {"type": "callback", "name": "pager"}]
    assert {"drift", "slow"} <= {r["name"] for r in answer(api.get("/alerts"), 200)}
    deleted = api.delete("/alerts/slow")
    assert deleted.status_code == 204 and deleted.content == b""
    assert "slow" not in {r["name"] for r in answer(api.get("/alerts"), 200)}


def test_deleting_a_monitor_takes_its_history_and_rules(live: Live, judged: Judged) -> None:
    api = live.api
    answer(api.post("/monitors", json={
        "model": "churn", "name": "doomed", "rows": ROWS, "checks": ["latency"],
    }), 201)  # fmt: skip
    answer(api.post("/alerts", json={
        "name": "doomed-slow", "monitor": "doomed", "condition": "latency.p99_ms > 1",
    }), 201)  # fmt: skip
    (event,) = answer(api.post("/monitors/doomed/run"), 200)["events"]
    deleted = api.delete("/monitors/doomed")
    assert deleted.status_code == 204 and deleted.content == b""
    assert answer(api.get("/monitors/doomed"), 404)["error"]["type"] == "NotFound"
    answer(api.get("/monitors/doomed/history"), 404)
    assert "doomed" not in {m["name"] for m in answer(api.get("/monitors"), 200)}
    assert "doomed-slow" not in {r["name"] for r in answer(api.get("/alerts"), 200)}
    assert answer(api.get("/alert-events", params={"monitor": "doomed"}), 200) == []
    answer(api.get(f"/alert-events/{event['id']}/deliveries"), 404)


def post(path: str, body: Any) -> tuple[str, str, dict[str, Any]]:
    return ("POST", path, {"json": body})


def get(path: str, **params: Any) -> tuple[str, str, dict[str, Any]]:
    return ("GET", path, {"params": params})


def delete(path: str) -> tuple[str, str, dict[str, Any]]:
    return ("DELETE", path, {})


ALERT = {"name": "x", "monitor": "churn", "condition": "latency.p99_ms > 1"}


@pytest.mark.parametrize(
    ("request_", "status", "problem"),
    [
        (post("/monitors", {"model": "churn"}), 409, "a monitor named 'churn' exists"),
        (post("/monitors", {"model": "churn", "name": "x", "window": "1h", "rows": 100}), 400,
         "not both"),
        (post("/monitors", {"model": "churn", "name": "x", "rows": 1}), 400, "at least 2"),
        (post("/monitors", {"model": "churn", "name": "x", "checks": ["nonsense"]}), 400,
         "unknown check 'nonsense'"),
        (post("/monitors", {"model": "churn", "name": "x",
                            "checks": [{"check": "concept", "detector": "magic"}]}), 400,
         "option 'detector' of check 'concept' is one of adwin, page_hinkley, kswin, ddm"),
        (post("/monitors", {"model": "churn", "name": "x",
                            "checks": [{"check": "fairness", "sensitive": ["x0", "x0"]}]}), 400,
         "names column(s) x0 more than once"),
        (post("/monitors", {"model": "churn", "name": "x", "window": "soon"}), 400, "'soon'"),
        (post("/monitors", {"model": "churn", "name": "x", "schedule": "500ms"}), 400,
         "schedule must be at least 1s"),
        (post("/monitors", {"model": "churn", "name": "x", "reference": "yesterday"}), 400,
         "reference is 'training'"),
        (post("/monitors", {"model": "churn", "name": "x",
                            "reference": {"since": T0 + HOUR, "until": T0}}), 400,
         "must end after it starts"),
        (post("/monitors", {"model": "churn", "name": "  "}), 400, "invalid monitor name '  '"),
        (post("/monitors", {"model": "nope", "name": "x"}), 404, "nope"),
        (post("/monitors", {"model": "churn", "name": "x", "alias": "gone"}), 404, "gone"),
        (post("/monitors", {"name": "x"}), 422, "model"),
        (post("/monitors", {"model": "churn", "name": "x", "rows": "many"}), 422, "rows"),
        (post("/monitors", {"model": "churn", "name": "x", "checks": "latency"}), 422, "checks"),
        (post("/monitors", ["churn"]), 422, "body"),
        (post("/monitors/nope/run", None), 404, "no monitor named 'nope'"),
        (get("/monitors/nope"), 404, "no monitor named 'nope'"),
        (get("/monitors/nope/history"), 404, "no monitor named 'nope'"),
        (get("/monitors/churn/history", since="yesterday"), 422, "since"),
        (delete("/monitors/nope"), 404, "no monitor named 'nope'"),
        (post("/alerts", {**ALERT, "condition": "drift_share >> 3"}), 400,
         "cannot read the alert condition"),
        (post("/alerts", {**ALERT, "monitor": "nope"}), 404, "no monitor named 'nope'"),
        (post("/alerts", {**ALERT, "name": "drift"}), 409, "alert rule 'drift' already exists"),
        (post("/alerts", {**ALERT, "severity": "loud"}), 400, "severity must be one of"),
        (post("/alerts", {**ALERT, "channels": ["carrier pigeon"]}), 400,
         "unknown alert channel 'carrier pigeon'"),
        (post("/alerts", {**ALERT, "channels": "log"}), 422, "channels"),
        (post("/alerts", {**ALERT, "for_windows": 0}), 400, "for_windows"),
        (post("/alerts", {"name": "x", "monitor": "churn"}), 422, "condition"),
        (delete("/alerts/nope"), 404, "no alert rule named 'nope'"),
        (get("/alert-events", state="maybe"), 400, "state must be one of firing, resolved"),
        (get("/alert-events", limit=0), 400, "limit"),
        (get("/alert-events/999999/deliveries"), 404, "no alert event 999999"),
        (get("/alert-events/first/deliveries"), 422, "event_id"),
    ],
)  # fmt: skip
def test_a_refused_call_answers_its_status_and_changes_nothing(
    live: Live,
    judged: Judged,
    request_: tuple[str, str, dict[str, Any]],
    status: int,
    problem: str,
) -> None:
    method, path, options = request_
    before = stored(live.home)
    response = live.api.request(method, path, **options)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert problem in error["message"], error
    kind = {400: "InvalidInput", 404: "NotFound", 409: "AlreadyExists", 422: "InvalidInput"}
    assert error["type"] == kind[status]
    assert stored(live.home) == before
