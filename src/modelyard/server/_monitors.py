"""REST routes of stored monitors and alert rules, a thin layer over `Monitors` and
`monitoring._alerts` on the server's stores."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from modelyard.monitoring import _alerts
from modelyard.monitoring._monitors import Monitors
from modelyard.server._errors import json_response


class MonitorIn(BaseModel):
    model: str
    name: str | None = None
    alias: str | None = None
    version: int | None = None
    window: str | None = None
    rows: int | None = None
    checks: list[str | dict[str, Any]] | None = None
    reference: str | dict[str, Any] = "training"  # "training" or {"since": ms, "until": ms}
    schedule: str | None = None
    label_delay: str | int = 0


class AlertIn(BaseModel):
    name: str
    monitor: str
    condition: str
    column: str | None = None
    for_windows: int = 1
    severity: str = "warning"
    cooldown_s: float = 0
    channels: list[str | dict[str, Any]] = Field(
        default_factory=lambda: list[str | dict[str, Any]](["log"])
    )
    action: str | None = None


def monitors_router(monitors: Monitors) -> APIRouter:
    api = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])
    store = monitors.metadata

    @api.post("/monitors", status_code=201)
    def create_monitor(body: MonitorIn) -> Response:
        fields = body.model_dump()
        monitor = monitors.create(fields.pop("model"), **fields)
        return json_response(monitor.to_dict(), status_code=201)

    @api.get("/monitors")
    def list_monitors() -> Response:
        return json_response([m.to_dict() for m in monitors.all()])

    @api.get("/monitors/{name}")
    def get_monitor(name: str, limit: int = 10) -> Response:
        monitor = monitors.get(name)
        return json_response(
            {
                "monitor": monitor.to_dict(),
                "windows": [w.to_dict() for w in monitors.windows(name, limit=limit)],
                "alerts": [r.to_dict() for r in _alerts.list_rules(store, monitor=name)],
            }
        )

    @api.delete("/monitors/{name}", status_code=204)
    def delete_monitor(name: str) -> Response:
        monitors.delete(name)
        return Response(status_code=204)

    @api.post("/monitors/{name}/run")
    async def run_monitor(name: str) -> Response:
        result = await run_in_threadpool(monitors.run, name)
        return json_response(result.to_dict())

    @api.get("/monitors/{name}/history")
    def history(
        name: str,
        check: str | None = None,
        metric: str | None = None,
        column: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> Response:
        frame = monitors.history(
            name, check=check, metric=metric, column=column, since=since, until=until
        )
        for edge in ("window_start", "window_end"):
            frame[edge] = frame[edge].map(lambda t: t.isoformat())
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        return json_response(records)

    @api.post("/alerts", status_code=201)
    def create_alert(body: AlertIn) -> Response:
        fields = body.model_dump()
        rule = _alerts.create_rule(store, fields.pop("name"), **fields)
        return json_response(rule.to_dict(), status_code=201)

    @api.get("/alerts")
    def list_alerts(monitor: str | None = None) -> Response:
        return json_response([r.to_dict() for r in _alerts.list_rules(store, monitor=monitor)])

    @api.delete("/alerts/{name}", status_code=204)
    def delete_alert(name: str) -> Response:
        _alerts.delete_rule(store, name)
        return Response(status_code=204)

    @api.get("/alert-events")
    def alert_events(
        monitor: str | None = None,
        rule: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> Response:
        events = _alerts.list_events(store, monitor=monitor, rule=rule, state=state, limit=limit)
        return json_response([e.to_dict() for e in events])

    @api.get("/alert-events/{event_id}/deliveries")
    def deliveries(event_id: int) -> Response:
        return json_response([d.to_dict() for d in _alerts.list_deliveries(store, event_id)])

    return api
