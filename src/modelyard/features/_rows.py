"""Rows and times at the edges of the feature store: entity rows as requests give them,
source rows as online rows (transformed, typed, keyed), what an online read serves (the
TTL applied), and times as the stores keep them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.features._definitions import FeatureView, Field
    from modelyard.features._online import OnlineRecord


def time_ms(value: Any) -> int:
    if type(value) is int:  # already ms: an online read's `now`, the common case
        return value
    return time_us(value) // 1000


def time_us(value: Any) -> int:
    """A time as µs since the epoch, given as a datetime (naive: UTC), a pandas Timestamp,
    ISO 8601 text or ms since the epoch."""
    if isinstance(value, bool):
        raise InvalidInput(f"{value!r} is not a time")
    if isinstance(value, int):
        return value * 1000
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InvalidInput(f"{value!r} is not a time (ISO 8601, a datetime or ms)") from None
    if pd.isna(stamp):
        raise InvalidInput("a time is missing (NaT)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value // 1000)


KEY_TYPES = (str, int)  # what a join key may be (bool is an int)
_PLAIN_KEY = frozenset([int, str, bool])


def entity_rows(entities: Any) -> list[dict[str, Any]]:
    """Entity rows from `{"driver_id": [1, 2]}`, `[{"driver_id": 1}, ...]` or a DataFrame."""
    import pandas as pd

    if type(entities) is dict or isinstance(entities, Mapping | pd.DataFrame):
        columns: list[tuple[Any, list[Any]]] = [
            (k, [v] if _one_value(v) else list(v)) for k, v in entities.items()
        ]
        lengths = {len(v) for _, v in columns}
        if len(lengths) > 1:
            raise InvalidInput(f"entity columns have different lengths: {sorted(lengths)}")
        count = lengths.pop() if lengths else 0
        return [{k: v[i] for k, v in columns} for i in range(count)]
    if isinstance(entities, str | bytes) or not isinstance(entities, Iterable):
        raise InvalidInput(f"entities must be key columns or rows, not {entities!r}")
    rows = []
    for row in entities:
        if not isinstance(row, Mapping):
            raise InvalidInput(f'an entity row maps join keys to values ({{"id": 42}}): {row!r}')
        rows.append(dict(row))
    if not rows:
        raise InvalidInput("no entity rows given")
    return rows


def single_row(entities: Any) -> dict[str, Any] | None:
    """The one entity row of `{"driver_id": 42}`, `{"driver_id": [42]}` or `[{...}]`; None
    for anything else (more rows, other types), which `entity_rows` reads or refuses."""
    if type(entities) is dict:
        row = {}
        for name, value in entities.items():
            if type(value) is list:
                if len(value) != 1:
                    return None
                row[name] = value[0]
            elif _one_value(value):
                row[name] = value
            else:
                return None
        return row or None
    if type(entities) is list and len(entities) == 1 and type(entities[0]) is dict:
        return dict(entities[0])
    return None


def _one_value(value: Any) -> bool:
    """Whether an entity column given as `value` is one value (42, "a", numpy.int64(42))
    rather than a list, tuple, array or Series of them."""
    return isinstance(value, KEY_TYPES) or not isinstance(value, Iterable)


def entity_key(view: str, join_keys: Sequence[str], row: Mapping[str, Any]) -> tuple[Any, ...]:
    if len(join_keys) == 1 and join_keys[0] in row:  # the usual view
        return (_plain_key(row[join_keys[0]]),)
    missing = [k for k in join_keys if k not in row]
    if missing:
        raise InvalidInput(
            f"feature view {view!r} needs the join keys {list(join_keys)}; missing: {missing}"
        )
    return tuple(_plain_key(row[k]) for k in join_keys)


def _plain_key(value: Any) -> Any:
    if type(value) in _PLAIN_KEY:
        return value
    plain = value.item() if hasattr(value, "item") else value
    if isinstance(plain, KEY_TYPES):
        return plain
    raise InvalidInput(f"a join key must be an integer, a string or a boolean, not {value!r}")


def apply_ttl(
    record: OnlineRecord | None, ttl_s: float | None, now_ms: int
) -> tuple[dict[str, Any] | None, str]:
    """The values one read serves and its status: "ok", "expired" (older than the TTL: no
    values) or "missing". An age equal to the TTL is still ok, as in the offline join."""
    if record is None:
        return None, "missing"
    # compared in µs, the resolution of a timedelta, so the boundary is exact
    if ttl_s is not None and (now_ms - record.event_ms) * 1000 > round(ttl_s * 1_000_000):
        return None, "expired"
    return record.values, "ok"


def serve_record(
    row: dict[str, Any],
    pairs: Sequence[tuple[str, str]],
    record: OnlineRecord | None,
    ttl_s: float | None,
    now_ms: int,
) -> tuple[str, float | None]:
    """Put one view's features (its (column, feature) `pairs`) of `record` into an entity's
    output `row`, null when missing or expired (`apply_ttl`); the status and the age in s."""
    values, state = apply_ttl(record, ttl_s, now_ms)
    for column, feature in pairs:
        row[column] = values.get(feature) if values is not None else None
    return state, (now_ms - record.event_ms) / 1000 if record is not None else None


def online_rows(view: FeatureView, frame: pd.DataFrame, *, transform: bool = True) -> list[Any]:
    """Source rows of `view` as online rows: transformed (unless `transform` is False: they
    already are), checked against the features' types, keyed by the join keys."""
    from modelyard.features._online import OnlineRow, check_value, to_ms

    frame = with_times(view, frame)
    if transform and view.transform is not None:
        frame = view.transform(frame.copy())
    needed = [*view.join_keys, view.timestamp_field, *view.feature_names]
    if missing := [c for c in needed if c not in frame.columns]:
        raise InvalidInput(f"rows for feature view {view.name!r} lack the columns {missing}")
    created = view.created_timestamp_field
    fields: list[Field] = list(view.features)
    made = []
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for record in records:
        if _missing(record[view.timestamp_field]):
            raise InvalidInput(f"a row for feature view {view.name!r} has no event time")
        made.append(
            OnlineRow(
                key=entity_key(view.name, view.join_keys, record),
                event_ms=to_ms(record[view.timestamp_field]),
                created_ms=(
                    to_ms(record[created])
                    if created and created in record and not _missing(record[created])
                    else None
                ),
                values={f.name: check_value(f, _none(record[f.name])) for f in fields},
            )
        )
    return made


def with_times(view: FeatureView, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the view's timestamp columns as times: JSON and CSV carry them as ISO 8601
    text (naive: UTC) or as ms since the epoch."""
    import pandas as pd

    for column in (view.timestamp_field, view.created_timestamp_field):
        if not column or column not in frame.columns:
            continue
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            continue
        try:
            if pd.api.types.is_numeric_dtype(values):
                parsed = pd.to_datetime(values, unit="ms", utc=True)
            else:
                parsed = pd.to_datetime(values, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"{column} of feature view {view.name!r} is not a time: {exc}"
            ) from None
        frame = frame.assign(**{column: parsed})
    return frame


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _none(value: Any) -> Any:
    return None if _missing(value) else value
