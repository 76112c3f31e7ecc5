"""The monitoring part of `modelyard demo`: served traffic whose distribution shifts halfway,
labels fed back, a monitor that flags the shifted windows only, an alert delivered to a
local webhook, and the HTML drift report."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from modelyard.cli._demo_serving import serving
from modelyard.cli._output import console, print_table

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.monitoring._monitors import Monitors
    from modelyard.monitoring._points import ResultPoint
    from modelyard.monitoring._windowing import MonitorRun, WindowResult
    from modelyard.registry import Registry
    from modelyard.tracking import Tracker

MONITOR = "demo-monitor"
ROWS = 120  # predictions per window: enough that chance alone never flags a normal window
SEED = 7
# After the shift a recalibrated imaging step reads every size measurement 30% high.
SHIFTED = [
    f"{prefix}{size}{suffix}"
    for size in ("radius", "perimeter", "area")
    for prefix, suffix in (("mean ", ""), ("", " error"), ("worst ", ""))
]
FACTOR = 1.3
CONDITION = "data_drift.drift_share > 0.2"


@dataclass(frozen=True)
class Phase:
    """One batch of traffic: what it is, its inputs and their true labels."""

    kind: str
    inputs: pd.DataFrame
    labels: pd.Series


def watch_drift(
    tracker: Tracker,
    registry: Registry,
    settings: Settings,
    model: str,
    x_test: pd.DataFrame,
    y_test: pd.Series,
) -> None:
    """Serve the champion again, send two normal and two shifted windows of traffic with their
    labels, judge them with a monitor whose alert goes to a local webhook, write the report."""
    from modelyard.monitoring._default import open_monitors

    if settings.tracking_uri:
        console.print("\n[bold]monitoring[/bold] skipped: monitors run where the database is")
        return
    version = registry.resolve(f"models:/{model}@champion").version
    with open_monitors(settings) as monitors, _webhook() as (url, received):
        console.print(f"\n[bold]monitoring[/bold] {model}@champion (version {version})")
        _create(monitors, model, url)
        with serving(settings, model) as http:
            # the earlier requests open the first window, so each window is one kind of traffic
            earlier = _made_earlier(monitors, model, version)
            phases = _traffic(x_test, y_test, first=ROWS - earlier % ROWS)
            for phase in phases:
                _send(http, model, phase)
        # the server has stopped, so every prediction is in the log
        run = monitors.run(MONITOR)
        kinds = ["normal"] * (len(run.windows) - len(phases)) + [p.kind for p in phases]
        _show_windows(run.windows, kinds, earlier)
        _show_alerts(run, received)
    shifted = next(p for p in phases if p.kind == "shifted")
    _write_report(tracker, registry, settings, model, version, shifted)


def _create(monitors: Monitors, model: str, url: str) -> None:
    from modelyard.monitoring._alerts import create_rule

    if MONITOR in {m.name for m in monitors.all()}:
        monitors.delete(MONITOR)  # a demo run again in the same home starts afresh
    checks = ["data_drift", "prediction_drift", "performance", "latency"]
    monitors.create(model, name=MONITOR, alias="champion", rows=ROWS, checks=checks)
    channel = {"type": "webhook", "url": url, "retries": 2, "backoff_s": 0.1}
    create_rule(
        monitors.metadata, "demo-drift", monitor=MONITOR, condition=CONDITION, channels=[channel]
    )  # severity "warning", the default
    console.print(
        f"  monitor {MONITOR}: windows of {ROWS} predictions, checks {', '.join(checks)}; "
        f"alert demo-drift when {CONDITION}, to the webhook {url}"
    )


def _traffic(x_test: pd.DataFrame, y_test: pd.Series, *, first: int) -> list[Phase]:
    """Two windows of held-out rows as they are, then two with the size columns scaled up
    (`first` rows in the first window: the rest of it holds the earlier predictions)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    phases = []
    for kind, size in (("normal", first), ("normal", ROWS), ("shifted", ROWS), ("shifted", ROWS)):
        # without replacement: repeated rows would look like drift to the tests
        picked = rng.choice(len(x_test), size=size, replace=False)
        inputs = x_test.iloc[picked].reset_index(drop=True)
        if kind == "shifted":
            inputs[SHIFTED] = inputs[SHIFTED] * FACTOR
        phases.append(Phase(kind, inputs, y_test.iloc[picked].reset_index(drop=True)))
    return phases


def _made_earlier(monitors: Monitors, model: str, version: int) -> int:
    """How many predictions of `version` the demo made above."""
    return len(monitors.log.read(model, version=version))


def _send(http: httpx.Client, model: str, phase: Phase) -> None:
    """Predict `phase` over HTTP, then send the true label of every prediction."""
    records = phase.inputs.to_dict("records")
    answer = http.post(f"/v1/models/{model}:predict", json={"instances": records})
    answer.raise_for_status()
    ids = answer.json()["prediction_ids"]
    feedback = [
        {"prediction_id": i, "label": int(label)}
        for i, label in zip(ids, phase.labels, strict=True)
    ]
    http.post("/v1/feedback", json={"feedback": feedback}).raise_for_status()


def _show_windows(windows: list[WindowResult], kinds: list[str], earlier: int) -> None:
    rows = []
    for number, (window, kind) in enumerate(zip(windows, kinds, strict=True), start=1):
        points = {(p.check, p.metric): p for p in window.points if p.column == ""}
        share = points.get(("data_drift", "drift_share"))
        accuracy = _interval(points.get(("performance", "accuracy")))
        flagged = ", ".join(window.flagged) or "-"
        share_value = None if share is None else share.value
        rows.append((number, kind, window.rows, window.labels, share_value, accuracy, flagged))
    print_table(
        f"{MONITOR}: windows of {ROWS} predictions (the {earlier} made above come first)",
        ["window", "traffic", "rows", "labels", "drift share", "accuracy [95% interval]",
         "flagged"],
        rows,
    )  # fmt: skip


def _show_alerts(run: MonitorRun, received: list[dict[str, Any]]) -> None:
    numbers = {w.start: n for n, w in enumerate(run.windows, start=1)}
    for event in run.events:
        where = numbers.get(event.window_start or 0, "?")
        console.print(f"  alert {event.rule} {event.state} ({event.severity}) on window {where}")
    for body in received:
        console.print(
            f"  the webhook received: state {body['state']}, rule {body['rule']}, "
            f"message {body['message']!r}"
        )


def _interval(point: ResultPoint | None) -> str:
    if point is None or point.value is None:
        return "-"
    if point.lower is None or point.upper is None:
        return f"{point.value:.3f}"
    return f"{point.value:.3f} [{point.lower:.3f}, {point.upper:.3f}]"


def _write_report(
    tracker: Tracker,
    registry: Registry,
    settings: Settings,
    model: str,
    version: int,
    shifted: Phase,
) -> None:
    """The first shifted window against the version's training reference, as HTML."""
    from modelyard.monitoring import drift_report
    from modelyard.monitoring._reference import read_reference

    reference = read_reference(registry, tracker.read_artifact, model, version)
    # per column only: the multivariate domain classifier would add seconds to the demo
    report = drift_report(reference.sample, shifted.inputs, multivariate=False)
    path = settings.home / "reports" / "drift.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    report.to_html(path)
    console.print(
        f"  drift report of the first shifted window: {len(report.drifted_columns)} of "
        f"{len(report.columns)} columns drifted → {path}"
    )


@contextmanager
def _webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on a free 127.0.0.1 port, and the JSON bodies it has received."""
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo prints what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="demo-webhook",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
