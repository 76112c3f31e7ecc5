"""Monitor results on a model server's `/metrics`: the latest window of every monitor of the
served models, and which alert rules are firing, read from the store at scrape time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from modelyard.monitoring._monitors import M, R, W
from modelyard.store._tables import AlertRuleRow, table_of

if TYPE_CHECKING:
    from modelyard.monitoring._monitors import Monitors

A = table_of(AlertRuleRow)


class MonitorExposition:
    """Prometheus text for the monitors of `models`, re-read at most every `max_age_s`."""

    def __init__(self, monitors: Monitors, models: Iterable[str], *, max_age_s: float = 5.0):
        self.monitors = monitors
        self.models = sorted(set(models))
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._text = b""
        self._at = -float("inf")

    def text(self) -> bytes:
        with self._lock:
            if time.monotonic() - self._at >= self.max_age_s:
                self._text = self._render()
                self._at = time.monotonic()
            return self._text

    def _render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self._read()))
        return generate_latest(registry)

    def _read(self) -> tuple[list[Any], list[Any]]:
        # the window judged last (windows are judged in order); row windows of one batch of
        # predictions share their start, so the start does not single one out
        latest = (
            select(func.max(W.c.id).label("window_id"))
            .join(M, M.c.id == W.c.monitor_id)
            .where(M.c.model.in_(self.models))
            .group_by(W.c.monitor_id)
            .subquery()
        )
        points = (
            select(M.c.name, R.c.check, R.c.column, R.c.metric, R.c.value, R.c.flagged)
            .join(latest, latest.c.window_id == R.c.window_id)
            .join(M, M.c.id == R.c.monitor_id)
            .order_by(M.c.name, R.c.id)
        )
        rules = (
            select(A.c.name, M.c.name.label("monitor"), A.c.severity, A.c.state)
            .join(M, M.c.id == A.c.monitor_id)
            .where(M.c.model.in_(self.models))
            .order_by(A.c.name)
        )
        with self.monitors.metadata.read() as conn:
            return list(conn.execute(points).all()), list(conn.execute(rules).all())


class _Collector:
    def __init__(self, rows: tuple[list[Any], list[Any]]) -> None:
        self.points, self.rules = rows

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        values = GaugeMetricFamily(
            "modelyard_monitor_value",
            "The latest judged window of each monitor: every check's numbers (drift scores, "
            "drift share, metrics, latency); column is empty for whole-window numbers.",
            labels=("monitor", "check", "column", "metric"),
        )
        flagged = GaugeMetricFamily(
            "modelyard_monitor_flagged",
            "1 when a check flagged anything in the latest judged window of its monitor.",
            labels=("monitor", "check"),
        )
        verdicts: dict[tuple[str, str], bool] = {}
        for monitor, check, column, metric, value, flag in self.points:
            if value is not None:
                values.add_metric((monitor, check, column, metric), float(value))
            if column == "" and flag is not None:
                verdicts[monitor, check] = verdicts.get((monitor, check), False) or bool(flag)
        for labels, flag in verdicts.items():
            flagged.add_metric(labels, 1.0 if flag else 0.0)
        firing = GaugeMetricFamily(
            "modelyard_alert_firing",
            "1 while an alert rule is firing.",
            labels=("rule", "monitor", "severity"),
        )
        for name, monitor, severity, state in self.rules:
            firing.add_metric((name, monitor, severity), 1.0 if state == "firing" else 0.0)
        yield from (values, flagged, firing)
