"""Feedback: the ground truth for a served prediction, sent back later by its id.

A prediction takes one label. Recording is all or nothing: one malformed id or label,
one unknown prediction, or one prediction that already has feedback refuses the call.
Feedback always lives in the metadata database, wherever the prediction log is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import ColumnElement, Connection, insert, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard._http import ServerApi
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.serving._ids import is_id
from modelyard.serving._log import check_query, time_column
from modelyard.store._tables import FeedbackRow, table_of
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.serving._log import PredictionLog
    from modelyard.store import MetadataStore

F = table_of(FeedbackRow)
FEEDBACK_COLUMNS = ("prediction_id", "model", "version", "at", "label")
_LOOKUP_CHUNK = 500
_INT64 = 2**63
_SHOWN = 10  # ids named in an error message
_PLAIN = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Feedback:
    """The label recorded for one prediction, with the model version that made it."""

    prediction_id: str
    label: Any  # a JSON scalar (text, number, bool) or a list of them
    model: str
    version: int
    at_ms: int


class FeedbackStore(Protocol):
    def record(self, items: Sequence[tuple[str, Any]]) -> list[Feedback]:
        """Record `(prediction_id, label)` pairs, all or none."""
        ...

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Feedback on `model` received `since_ms <= at < until_ms`, oldest first; `limit`
        keeps the most recent. Columns: `FEEDBACK_COLUMNS`, `label` decoded."""
        ...

    def close(self) -> None: ...


def check_items(items: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Ids of the form of prediction ids and labels of the allowed shapes, or InvalidInput;
    NumPy scalars and tuples become plain values and lists."""
    bad_ids = [i for i, _ in items if not is_id(i)]
    if bad_ids:
        raise InvalidInput(
            f"malformed prediction id(s) {_shown([repr(i) for i in bad_ids])}: use the "
            "32 hex digit id "
            "a prediction answered with"
        )
    return [(prediction_id, check_label(prediction_id, label)) for prediction_id, label in items]


def check_label(prediction_id: str, label: Any) -> Any:
    """`label` if it is a JSON scalar or a flat list of them (finite numbers only)."""
    if isinstance(label, list | tuple):
        return [_scalar(prediction_id, value) for value in label]
    return _scalar(prediction_id, label)


def _scalar(prediction_id: str, value: Any) -> Any:
    if type(value) not in _PLAIN:  # NumPy scalars, str and int subclasses, anything else
        value = _plain(value)
        if type(value) not in _PLAIN:
            raise InvalidInput(
                f"label of {prediction_id} must be text, a number, a bool or a list of them, "
                f"got {type(value).__name__} {value!r:.80}"
            )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"label of {prediction_id} must be a finite number, got {value!r}")
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise InvalidInput(f"label of {prediction_id} is beyond 64-bit integers: {value!r}")
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInput(f"label of {prediction_id} must not contain a NUL character")
    return value


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _shown(ids: Sequence[str]) -> str:
    listed = ", ".join(ids[:_SHOWN])
    return listed + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def feedback_frame(
    ids: Sequence[str],
    models: Sequence[str],
    versions: Sequence[int],
    at_ms: Sequence[int],
    labels: Sequence[Any],
) -> pd.DataFrame:
    """The DataFrame `FeedbackStore.read` answers."""
    import pandas as pd

    return pd.DataFrame(
        {
            "prediction_id": pd.Series(ids, dtype="str"),
            "model": pd.Series(models, dtype="str"),
            "version": pd.Series(versions, dtype="int64"),
            "at": time_column(at_ms),
            "label": pd.Series(labels, dtype=object),
        }
    )


class SqlFeedback:
    """Feedback in the `feedback` table, checked against `log`."""

    def __init__(
        self, metadata: MetadataStore, log: PredictionLog, *, owns_metadata: bool = False
    ) -> None:
        self.metadata = metadata
        self.log = log
        self._owns = owns_metadata

    def record(self, items: Sequence[tuple[str, Any]]) -> list[Feedback]:
        clean = check_items(list(items))
        if not clean:
            return []
        ids = [prediction_id for prediction_id, _ in clean]
        found = self.log.find(ids)
        missing = sorted({i for i in ids if i not in found})
        if missing:
            raise NotFound(
                f"no prediction {_shown(missing)} in the prediction log: send feedback to the "
                "id a prediction answered with, once the log has written it (a moment later)"
            )
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        if twice:
            raise Conflict(f"prediction(s) {_shown(twice)} given more than one label in one call")
        at = now_ms()
        records = [Feedback(i, label, *found[i], at) for i, label in clean]
        rows = [
            {
                "prediction_id": r.prediction_id,
                "model": r.model,
                "version": r.version,
                "label": orjson.dumps(r.label).decode(),
                "at": r.at_ms,
            }
            for r in records
        ]

        def work(conn: Connection) -> None:
            taken = self._labelled(conn, ids)
            if taken:
                raise _already(taken)
            conn.execute(insert(F), rows)

        try:
            self.metadata.write(work)
        except DbIntegrityError:  # recorded by a concurrent call since we looked
            with self.metadata.read() as conn:
                raise _already(self._labelled(conn, ids)) from None
        return records

    @staticmethod
    def _labelled(conn: Connection, ids: Sequence[str]) -> list[str]:
        taken: list[str] = []
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            taken += conn.scalars(select(F.c.prediction_id).where(F.c.prediction_id.in_(chunk)))
        return sorted(taken)

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        check_query(model, version, since_ms, until_ms, limit)
        clauses: list[ColumnElement[bool]] = [F.c.model == model]
        if version is not None:
            clauses.append(F.c.version == version)
        if since_ms is not None:
            clauses.append(F.c.at >= since_ms)
        if until_ms is not None:
            clauses.append(F.c.at < until_ms)
        query = select(F.c.prediction_id, F.c.model, F.c.version, F.c.at, F.c.label).where(*clauses)
        newest_first = (F.c.at.desc(), F.c.prediction_id.desc())
        if limit is not None:
            query = query.order_by(*newest_first).limit(limit)
        else:
            query = query.order_by(F.c.at, F.c.prediction_id)
        with self.metadata.read() as conn:
            rows = list(conn.execute(query).all())
        if limit is not None:
            rows.reverse()
        ids, models, versions, ats, labels = zip(*rows, strict=True) if rows else ([],) * 5
        return feedback_frame(ids, models, versions, ats, [orjson.loads(x) for x in labels])

    def close(self) -> None:
        if self._owns:
            self.metadata.close()

    def __repr__(self) -> str:
        return f"SqlFeedback({self.metadata.display_url!r})"


def _already(ids: Sequence[str]) -> Conflict:
    return Conflict(
        f"prediction(s) {_shown(ids)} already have feedback: a prediction takes one label "
        "(read_feedback shows it)"
    )


class RestFeedback:
    """Feedback through the REST API of a modelyard server."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._api = ServerApi(base_url, timeout_s=timeout_s)
        self.base_url = self._api.base_url

    def record(self, items: Sequence[tuple[str, Any]]) -> list[Feedback]:
        clean = check_items(list(items))
        if not clean:
            return []
        body = {"feedback": [{"prediction_id": i, "label": label} for i, label in clean]}
        response = self._api.call("POST", "/feedback", content=orjson.dumps(body))
        return [Feedback(**record) for record in orjson.loads(response.content)["feedback"]]

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        check_query(model, version, since_ms, until_ms, limit)
        given = {"version": version, "since_ms": since_ms, "until_ms": until_ms, "limit": limit}
        params = {"model": model, **{k: val for k, val in given.items() if val is not None}}
        records = orjson.loads(self._api.call("GET", "/feedback", params=params).content)
        return feedback_frame(
            [r["prediction_id"] for r in records],
            [r["model"] for r in records],
            [r["version"] for r in records],
            [r["at_ms"] for r in records],
            [r["label"] for r in records],
        )

    def close(self) -> None:
        self._api.close()

    def __repr__(self) -> str:
        return f"RestFeedback({self.base_url!r})"


def open_feedback(
    settings: Settings, log: PredictionLog, metadata: MetadataStore | None = None
) -> FeedbackStore:
    """The feedback store `settings` name: the server's at `tracking_uri`, else the metadata
    database (`metadata` if given; else opened here and closed with the store)."""
    if settings.tracking_uri:
        return RestFeedback(settings.tracking_uri)
    if metadata is not None:
        return SqlFeedback(metadata, log)
    from modelyard.store import open_stores

    opened, _artifacts = open_stores(settings)
    return SqlFeedback(opened, log, owns_metadata=True)
