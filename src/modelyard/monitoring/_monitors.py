"""Stored monitors: a model's prediction log cut into windows, each checked once against a
reference, every result kept as a time series and handed to the alert rules.

A window is judged once, when it is complete and `label_delay` has passed since its end
(so labels sent within that delay count); its results never change afterwards. Time
windows are aligned to multiples of their length since the epoch; row windows hold
`window_rows` consecutive predictions. Stretches without predictions make no windows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelyard.monitoring._checks import Baseline, Window, run_checks
from modelyard.monitoring._points import ResultPoint, WindowRef
from modelyard.monitoring._spec import (
    Check,
    Monitor,
    parse_checks,
    parse_duration,
    parse_reference,
)
from modelyard.monitoring._windowing import (
    MonitorRun,
    WindowResult,
    served_version,
    windows,
    with_ms,
)
from modelyard.store._tables import (
    MonitorResultRow,
    MonitorRow,
    MonitorWindowRow,
    table_of,
)
from modelyard.tracking import _validate as v
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

    from modelyard.monitoring._reference import TrainingReference
    from modelyard.registry import Registry
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog
    from modelyard.store import MetadataStore

M = table_of(MonitorRow)
W = table_of(MonitorWindowRow)
R = table_of(MonitorResultRow)
_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


ReferenceReader = Callable[[str, int], "TrainingReference | None"]


class Monitors:
    """Monitors over one metadata store, prediction log, feedback store and registry."""

    def __init__(
        self,
        metadata: MetadataStore,
        log: PredictionLog,
        feedback: FeedbackStore,
        registry: Registry,
        training: ReferenceReader,
    ) -> None:
        self.metadata = metadata
        self.log = log
        self.feedback = feedback
        self.registry = registry
        self.training = training

    # -- definitions -------------------------------------------------------------------------

    def create(
        self,
        model: str,
        *,
        name: str | None = None,
        alias: str | None = None,
        version: int | None = None,
        window: str | None = None,
        rows: int | None = None,
        checks: Sequence[str | Mapping[str, Any]] | None = None,
        reference: str | Mapping[str, Any] | pd.DataFrame = "training",
        schedule: str | None = None,
        label_delay: str | int = 0,
    ) -> Monitor:
        """Store a monitor of `model` (named `name`, default the model's name)."""
        name = name or model
        v.check_name("monitor", name)
        if alias is not None and version is not None:
            raise InvalidInput("give alias= or version=, not both")
        if window is not None and rows is not None:
            raise InvalidInput("give window= (a duration) or rows= (a count), not both")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 2):
            raise InvalidInput(f"rows must be a whole number of at least 2, got {rows!r}")
        window_ms = None if rows is not None else parse_duration(window or "1h", "window")
        if window_ms is not None and window_ms < 1000:
            raise InvalidInput(f"window must be at least 1s, got {window!r}")
        parsed = parse_checks(checks)
        schedule_ms = None if schedule is None else parse_duration(schedule, "schedule")
        if schedule_ms is not None and schedule_ms < 1000:
            raise InvalidInput(f"schedule must be at least 1s, got {schedule!r}")
        self._version(model, alias, version)  # the model, alias or version must exist
        spec, data = parse_reference(reference)
        row = {
            "name": name,
            "model": model,
            "alias": alias,
            "version": version,
            "window_ms": window_ms,
            "window_rows": rows,
            "checks": orjson.dumps([c.to_dict() for c in parsed]).decode(),
            "reference": orjson.dumps(spec).decode(),
            "reference_data": data,
            "label_delay_ms": parse_duration(label_delay, "label_delay"),
            "schedule_ms": schedule_ms,
            "cursor": "{}",
            "state": "{}",
            "created_at": now_ms(),
            "last_run_at": None,
        }
        try:
            self.metadata.write(lambda conn: conn.execute(insert(M).values(**row)))
        except DbIntegrityError:
            raise AlreadyExists(f"a monitor named {name!r} exists; pick another name=") from None
        return self.get(name)

    def get(self, name: str) -> Monitor:
        with self.metadata.read() as conn:
            row = conn.execute(select(M).where(M.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no monitor named {name!r}; `modelyard monitor list` shows them")
        return _monitor(row)

    def all(self) -> list[Monitor]:
        with self.metadata.read() as conn:
            rows = conn.execute(select(M).order_by(M.c.name)).mappings().all()
        return [_monitor(row) for row in rows]

    def delete(self, name: str) -> None:
        """Delete a monitor with its history and alert rules."""
        monitor_id = self._id(name)
        self.metadata.write(lambda conn: conn.execute(delete(M).where(M.c.id == monitor_id)))

    # -- running -----------------------------------------------------------------------------

    def run(self, name: str, *, now: int | None = None, deliver: bool = True) -> MonitorRun:
        """Judge every window of `name` that is complete and settled by `now` (Unix ms)."""
        from modelyard.monitoring import _alerts

        with self.metadata.read() as conn:
            row = conn.execute(select(M).where(M.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no monitor named {name!r}; `modelyard monitor list` shows them")
        monitor = _monitor(row)
        at = now_ms() if now is None else now
        version = self._version(monitor.model, monitor.alias, monitor.version)
        horizon = at - monitor.label_delay_ms
        cursor = orjson.loads(row["cursor"])
        state = orjson.loads(row["state"])
        predictions = self._predictions(monitor, version, cursor, horizon)
        feedback = self._feedback(monitor, predictions)
        baselines: dict[int | None, Baseline] = {}
        results, events = [], []
        position = row["cursor"]
        for start, end, part, next_cursor in windows(monitor, predictions, cursor, horizon):
            window = self._window(part, feedback)
            served = served_version(part)
            if served not in baselines:
                baselines[served] = self._baseline(monitor, row["reference_data"], served)
            evidence, points = run_checks(monitor.checks, window, baselines[served], state)
            labels = int(window.joined["label"].notna().sum())
            stored = self._store(
                row["id"],
                (start, end, served, len(part), labels),
                evidence,
                points,
                (position, orjson.dumps(next_cursor).decode()),
                state,
                at,
            )
            position = orjson.dumps(next_cursor).decode()
            results.append(stored)
            ref = WindowRef(stored.id, row["id"], start, end)
            events.extend(_alerts.evaluate(self.metadata, ref, points, now_ms=at))
        self.metadata.write(
            lambda conn: conn.execute(update(M).where(M.c.id == row["id"]).values(last_run_at=at))
        )
        if deliver and events:
            _alerts.deliver(self.metadata, events)
        return MonitorRun(name, results, events)

    def due(self, *, now: int | None = None) -> list[str]:
        """Monitors with a schedule whose next run is due."""
        at = now_ms() if now is None else now
        return [
            m.name
            for m in self.all()
            if m.schedule_ms is not None
            and (m.last_run_at is None or at - m.last_run_at >= m.schedule_ms)
        ]

    # -- results -----------------------------------------------------------------------------

    def history(
        self,
        name: str,
        *,
        check: str | None = None,
        metric: str | None = None,
        column: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> pd.DataFrame:
        """The stored time series, oldest window first: one row per window, check, column and
        metric (column "" for the window as a whole)."""
        import pandas as pd

        monitor_id = self._id(name)
        query = (
            select(
                W.c.start,
                W.c.end,
                W.c.version,
                W.c.rows,
                R.c.check,
                R.c.column,
                R.c.metric,
                R.c.value,
                R.c.lower,
                R.c.upper,
                R.c.flagged,
                R.c.status,
            )
            .join(W, W.c.id == R.c.window_id)
            .where(R.c.monitor_id == monitor_id)
            .order_by(W.c.start, R.c.id)
        )
        for column_, value in ((R.c.check, check), (R.c.metric, metric), (R.c.column, column)):
            if value is not None:
                query = query.where(column_ == value)
        if since is not None:
            query = query.where(W.c.start >= since)
        if until is not None:
            query = query.where(W.c.start < until)
        with self.metadata.read() as conn:
            rows = conn.execute(query).mappings().all()
        frame = pd.DataFrame(
            [dict(r) for r in rows],
            columns=[
                "start",
                "end",
                "version",
                "rows",
                "check",
                "column",
                "metric",
                "value",
                "lower",
                "upper",
                "flagged",
                "status",
            ],
        )
        for edge in ("start", "end"):
            frame[edge] = pd.to_datetime(frame[edge], unit="ms", utc=True)
        return frame.rename(columns={"start": "window_start", "end": "window_end"})

    def windows(self, name: str, *, limit: int = 20) -> list[WindowResult]:
        """The most recent judged windows, newest first, with their evidence."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a whole number of at least 1, got {limit!r}")
        monitor_id = self._id(name)
        with self.metadata.read() as conn:
            rows = (
                conn.execute(
                    select(W)
                    .where(W.c.monitor_id == monitor_id)
                    .order_by(W.c.start.desc(), W.c.id.desc())  # row windows may share a start
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            points = _points_of(conn, [r["id"] for r in rows])
        return [
            WindowResult(
                id=r["id"],
                start=r["start"],
                end=r["end"],
                version=r["version"],
                rows=r["rows"],
                labels=r["labels"],
                evidence=orjson.loads(r["evidence"]),
                points=points.get(r["id"], []),
            )
            for r in rows
        ]

    # -- internals ---------------------------------------------------------------------------

    def _id(self, name: str) -> int:
        with self.metadata.read() as conn:
            found = conn.execute(select(M.c.id).where(M.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"no monitor named {name!r}; `modelyard monitor list` shows them")
        return int(found)

    def _version(self, model: str, alias: str | None, version: int | None) -> int | None:
        """The version the monitor watches now (None: every version of the model)."""
        if alias is not None:
            return self.registry.resolve(f"models:/{model}@{alias}").version
        if version is not None:
            return self.registry.get_version(model, version).version
        self.registry.get_model(model)
        return None

    def _predictions(
        self, monitor: Monitor, version: int | None, cursor: Mapping[str, Any], horizon: int
    ) -> pd.DataFrame:
        since = cursor.get("next_start", cursor.get("at"))
        frame = with_ms(
            self.log.read(monitor.model, version=version, since_ms=since, until_ms=horizon)
        ).sort_values(["at_ms", "prediction_id"], kind="stable")
        if "parent_id" in frame.columns:  # a deployment's mirrored and fallback rows
            frame = frame[frame["parent_id"].isna()]
        if "id" in cursor:  # row windows: skip what the last window held
            at = frame["at_ms"]
            done = (at < cursor["at"]) | (
                (at == cursor["at"]) & (frame["prediction_id"] <= cursor["id"])
            )
            frame = frame[~done]
        return frame.reset_index(drop=True)

    def _feedback(self, monitor: Monitor, predictions: pd.DataFrame) -> pd.DataFrame:
        """The labels received so far for `predictions` (labels never predate them)."""
        since = int(predictions["at_ms"].min()) if len(predictions) else None
        labels = self.feedback.read(monitor.model, since_ms=since)
        return labels[labels["prediction_id"].isin(set(predictions["prediction_id"]))]

    def _window(self, part: pd.DataFrame, feedback: pd.DataFrame) -> Window:
        from modelyard.monitoring._performance import inputs_frame, join_feedback

        labels = feedback[feedback["prediction_id"].isin(set(part["prediction_id"]))]
        joined = join_feedback(part, labels)
        joined["latency_ms"] = part["latency_ms"].to_numpy()
        return Window(joined=joined, inputs=inputs_frame(part).reset_index(drop=True))

    def _baseline(self, monitor: Monitor, data: bytes | None, version: int | None) -> Baseline:
        import pandas as pd

        manifest = None if version is None else self.registry.get_manifest(monitor.model, version)
        training = None if version is None else self.training(monitor.model, version)
        common = Baseline(
            inputs=None,
            outputs=None,
            training=None if training is None else training.sample,
            metrics=dict(manifest.metrics) if manifest else {},
            signature=manifest.signature if manifest else None,
        )
        kind = monitor.reference["kind"]
        if kind == "training":
            if training is None:
                note = f"version {version} of {monitor.model!r} has no training reference"
                return replace(common, note=note)
            return replace(common, inputs=training.sample, outputs=training.outputs)
        if kind == "dataset":
            assert data is not None
            return replace(common, inputs=pd.read_parquet(io.BytesIO(data)))
        since, until = monitor.reference["since"], monitor.reference["until"]
        frame = with_ms(
            self.log.read(monitor.model, version=version, since_ms=since, until_ms=until)
        )
        if len(frame) == 0:
            note = "the reference window holds no predictions"
            return replace(common, note=note)
        window = self._window(frame, self._feedback(monitor, frame))
        return replace(common, inputs=window.inputs, outputs=window.joined)

    def _store(
        self,
        monitor_id: int,
        shape: tuple[int, int, int | None, int, int],
        evidence: dict[str, Any],
        points: list[ResultPoint],
        cursor: tuple[str, str],
        state: dict[str, Any],
        at: int,
    ) -> WindowResult:
        """Store one judged window and move the cursor past it, in one transaction; a cursor
        another run moved meanwhile refuses the window (`Conflict`): judged once, never twice."""
        start, end, version, rows, labels = shape

        def work(conn: Connection) -> int:
            inserted = conn.execute(
                insert(W).values(
                    monitor_id=monitor_id,
                    start=start,
                    end=end,
                    version=version,
                    rows=rows,
                    labels=labels,
                    evidence=orjson.dumps(evidence, option=_JSON, default=str).decode(),
                    run_at=at,
                )
            )
            window_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            if points:
                conn.execute(
                    insert(R), [_point_row(p, window_id, monitor_id, start) for p in points]
                )
            moved = conn.execute(
                update(M)
                .where(M.c.id == monitor_id, M.c.cursor == cursor[0])
                .values(cursor=cursor[1], state=orjson.dumps(state).decode())
            )
            if moved.rowcount != 1:
                raise Conflict(
                    "another run of this monitor judged these windows meanwhile; nothing stored"
                )
            return int(window_id)

        window_id = self.metadata.write(work)
        return WindowResult(window_id, start, end, version, rows, labels, evidence, points)


def _monitor(row: Any) -> Monitor:
    return Monitor(
        name=row["name"],
        model=row["model"],
        alias=row["alias"],
        version=row["version"],
        window_ms=row["window_ms"],
        window_rows=row["window_rows"],
        checks=tuple(
            Check(c["check"], {k: x for k, x in c.items() if k != "check"})
            for c in orjson.loads(row["checks"])
        ),
        reference=orjson.loads(row["reference"]),
        schedule_ms=row["schedule_ms"],
        label_delay_ms=row["label_delay_ms"],
        created_at=row["created_at"],
        last_run_at=row["last_run_at"],
    )


def _point_row(point: ResultPoint, window_id: int, monitor_id: int, start: int) -> dict[str, Any]:
    return {
        "window_id": window_id,
        "monitor_id": monitor_id,
        "window_start": start,
        "check": point.check,
        "column": point.column,
        "metric": point.metric,
        "value": _finite(point.value),
        "lower": _finite(point.lower),
        "upper": _finite(point.upper),
        "flagged": point.flagged,
        "status": point.status,
    }


def _finite(value: float | None) -> float | None:
    import math

    return None if value is None or not math.isfinite(value) else float(value)


def _points_of(conn: Connection, window_ids: list[int]) -> dict[int, list[ResultPoint]]:
    found: dict[int, list[ResultPoint]] = {}
    if not window_ids:
        return found
    rows = conn.execute(select(R).where(R.c.window_id.in_(window_ids)).order_by(R.c.id)).mappings()
    for r in rows:
        found.setdefault(r["window_id"], []).append(
            ResultPoint(
                r["check"],
                r["column"],
                r["metric"],
                r["value"],
                r["lower"],
                r["upper"],
                r["flagged"],
                r["status"],
            )
        )
    return found
