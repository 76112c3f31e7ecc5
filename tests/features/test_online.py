"""The online store: one contract, on SQLite and Redis (newest wins, atomically and
idempotently, under concurrent writers), and the pure functions around it (times, value
types, the TTL, store URLs)."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _locks import write_lock_held
from modelyard.errors import InvalidInput
from modelyard.features import Field
from modelyard.features._online import (
    OnlineRecord,
    OnlineRow,
    OnlineStore,
    check_value,
    encode_key,
    open_online_store,
    to_ms,
)
from modelyard.features._online_redis import RedisOnlineStore
from modelyard.features._online_sqlite import SqliteOnlineStore
from modelyard.features._rows import apply_ttl

VIEW = "driver_stats"


def row(key: Any, event: int, created: int | None = None, **values: Any) -> OnlineRow:
    return OnlineRow(key=(key,), event_ms=event, created_ms=created, values=values)


def values_of(store: OnlineStore, *keys: Any, view: str = VIEW) -> list[Any]:
    return [r.values if r else None for r in store.read(view, [(k,) for k in keys])]


def in_threads(work: Callable[[int], None], count: int) -> list[BaseException]:
    """`work(seed)` for seeds 0..count-1, each on its own thread, all let go at once; what
    they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        barrier.wait()
        try:
            work(seed)
        except BaseException as exc:  # pragma: no cover - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


# -- the contract, on every store ---------------------------------------------------------


def test_a_written_row_reads_back_with_its_times(online_store: OnlineStore) -> None:
    written = online_store.write(VIEW, [row(1, 1_000, 900, rate=0.5, trips=3, name="a")])
    (record,) = online_store.read(VIEW, [(1,)])
    assert written == 1
    assert record is not None
    assert record.values == {"rate": 0.5, "trips": 3, "name": "a"}
    assert (record.event_ms, record.created_ms) == (1_000, 900)
    assert abs(record.written_ms - datetime.now(UTC).timestamp() * 1000) < 60_000


def test_a_newer_row_replaces_an_older_one(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(1, 1_000, rate=0.1)])
    assert online_store.write(VIEW, [row(1, 2_000, rate=0.2)]) == 1
    assert online_store.write(VIEW, [row(1, 2_000, 5, rate=0.3)]) == 1  # created breaks the tie
    assert values_of(online_store, 1) == [{"rate": 0.3}]


@pytest.mark.parametrize(
    ("event", "created"),
    [(1_000, 10), (2_000, 5), (2_000, 10), (2_000, None)],
    ids=["older-event", "same-event-older-created", "exact-replay", "same-event-no-created"],
)
def test_a_late_or_replayed_row_never_overwrites_a_newer_value(
    online_store: OnlineStore, event: int, created: int | None
) -> None:
    online_store.write(VIEW, [row(1, 2_000, 10, rate=0.9)])
    assert online_store.write(VIEW, [row(1, event, created, rate=0.0)]) == 0
    (record,) = online_store.read(VIEW, [(1,)])
    assert record is not None
    assert (record.values, record.event_ms, record.created_ms) == ({"rate": 0.9}, 2_000, 10)


def test_a_replay_of_a_whole_batch_changes_nothing(online_store: OnlineStore) -> None:
    batch = [row(k, 1_000 + k, k, rate=k / 10) for k in range(50)]
    assert online_store.write(VIEW, batch) == 50
    before = online_store.read(VIEW, [(k,) for k in range(50)])
    assert online_store.write(VIEW, batch) == 0
    assert online_store.read(VIEW, [(k,) for k in range(50)]) == before


def test_within_one_write_the_newest_row_of_a_key_wins_whatever_the_order(
    online_store: OnlineStore,
) -> None:
    versions = [row("a", e, c, v=f"{e}/{c}") for e in (1, 2, 3) for c in (None, 1, 2)]
    for seed in range(3):
        random.Random(seed).shuffle(versions)
        online_store.write(f"view_{seed}", versions)
        assert values_of(online_store, "a", view=f"view_{seed}") == [{"v": "3/2"}]


def test_reads_return_none_for_missing_keys_in_the_order_asked(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(k, 1, rate=float(k)) for k in (1, 3)])
    assert values_of(online_store, 3, 2, 1, 3) == [
        {"rate": 3.0},
        None,
        {"rate": 1.0},
        {"rate": 3.0},
    ]
    assert online_store.read(VIEW, []) == []
    assert values_of(online_store, 1, view="no_such_view") == [None]


def test_reads_of_many_keys_cross_the_chunk_size(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(k, 1, n=k) for k in range(0, 2_400, 2)])
    found = values_of(online_store, *range(2_400))
    assert found == [{"n": k} if k % 2 == 0 else None for k in range(2_400)]


def test_keys_of_different_types_do_not_collide(online_store: OnlineStore) -> None:
    keys: list[Any] = [42, "42", True, 1, "true", "a:b*"]
    online_store.write(VIEW, [row(k, 1, k=repr(k)) for k in keys])
    assert values_of(online_store, *keys) == [{"k": repr(k)} for k in keys]
    assert online_store.views() == {VIEW: len(keys)}


def test_composite_keys_keep_their_order(online_store: OnlineStore) -> None:
    both = [OnlineRow((1, "x"), 1, None, {"v": 1}), OnlineRow(("x", 1), 1, None, {"v": 2})]
    online_store.write(VIEW, both)
    found = online_store.read(VIEW, [("x", 1), (1, "x"), (np.int64(1), "x")])
    assert [r.values if r else None for r in found] == [{"v": 2}, {"v": 1}, {"v": 1}]


def test_a_read_of_one_key_answers_as_a_read_of_many(online_store: OnlineStore) -> None:
    keys: list[Any] = [(42,), ("42",), (True,), (1, "x"), (-(2**63),), (2**64 - 1,)]
    online_store.write(VIEW, [OnlineRow(k, 1, 2, {"k": repr(k)}) for k in keys])
    for key in [*keys, (np.int64(42),), (7,), (2**63,)]:
        assert online_store.read_one(VIEW, key) == online_store.read(VIEW, [key])[0]
    record = online_store.read_one(VIEW, (42,))
    assert record is not None and (record.values, record.event_ms, record.created_ms) == (
        {"k": "(42,)"},
        1,
        2,
    )
    assert online_store.read_one("no_such_view", (42,)) is None
    for bad in [(2**64,), (1.0,), ()]:
        with pytest.raises(InvalidInput):
            online_store.read_one(VIEW, bad)
    with pytest.raises(InvalidInput, match="feature view"):
        online_store.read_one("no such view", (1,))


@given(st.integers(-(2**70), 2**70))
def test_an_integer_key_is_its_json(value: int) -> None:
    if -(2**63) <= value < 2**64:
        assert encode_key((value,)) == orjson.dumps([value]).decode() == f"[{value}]"
    else:
        with pytest.raises(InvalidInput, match="cannot be stored"):
            encode_key((value,))


def test_float_keys_are_refused(online_store: OnlineStore) -> None:
    with pytest.raises(InvalidInput, match="join key"):
        online_store.write(VIEW, [row(1.5, 1, v=1)])
    with pytest.raises(InvalidInput, match="join key"):
        online_store.read(VIEW, [(1.0,)])


def test_values_round_trip_as_plain_python(online_store: OnlineStore) -> None:
    stored: dict[str, Any] = {
        "f": np.float32(0.5),
        "i": np.int64(7),
        "b": np.bool_(True),
        "nan": float("nan"),
        "none": None,
        "ts": "2024-05-01T12:00:00.000000+00:00",
    }
    online_store.write(VIEW, [row(1, 1, **stored)])
    (found,) = values_of(online_store, 1)
    assert found == {"f": 0.5, "i": 7, "b": True, "nan": None, "none": None, "ts": stored["ts"]}
    assert [type(found[k]) for k in ("f", "i", "b")] == [float, int, bool]


def test_watermark_round_trips(online_store: OnlineStore) -> None:
    assert online_store.watermark(VIEW) is None
    online_store.set_watermark(VIEW, 1_700_000_000_000)
    online_store.set_watermark("other", 5)
    assert online_store.watermark(VIEW) == 1_700_000_000_000
    online_store.set_watermark(VIEW, 1_000)  # moving it back is the caller's choice
    assert (online_store.watermark(VIEW), online_store.watermark("other")) == (1_000, 5)


def test_delete_view_removes_only_that_view(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(k, 1, v=k) for k in range(1_234)])
    online_store.write("other", [row(k, 1, v=k) for k in range(3)])
    online_store.set_watermark(VIEW, 10)
    online_store.set_watermark("other", 20)
    assert online_store.views() == {VIEW: 1_234, "other": 3}
    assert online_store.delete_view(VIEW) == 1_234
    assert online_store.views() == {"other": 3}
    assert values_of(online_store, 0, 1_233) == [None, None]
    assert values_of(online_store, 0, view="other") == [{"v": 0}]
    assert (online_store.watermark(VIEW), online_store.watermark("other")) == (None, 20)
    assert online_store.delete_view(VIEW) == 0
    online_store.write(VIEW, [row(1, 0, v="again")])
    assert online_store.views() == {VIEW: 1, "other": 3}


def test_bad_view_names_are_refused(online_store: OnlineStore) -> None:
    with pytest.raises(InvalidInput, match="feature view"):
        online_store.write("a:b*", [row(1, 1, v=1)])


def test_concurrent_writers_keep_the_newest(online_store: OnlineStore) -> None:
    keys = range(20)
    versions = [row(k, e, c, v=f"{e}/{c}") for k in keys for e in range(8) for c in (None, 0, 3)]

    def writer(seed: int) -> None:
        mine = versions[:]
        random.Random(seed).shuffle(mine)
        for start in range(0, len(mine), 7):
            online_store.write(VIEW, mine[start : start + 7])

    assert in_threads(writer, 6) == []
    assert values_of(online_store, *keys) == [{"v": "7/3"}] * len(keys)
    assert online_store.views() == {VIEW: len(keys)}


def test_several_views_read_at_once_answer_as_each_read_alone(
    online_store: OnlineStore,
) -> None:
    online_store.write(VIEW, [row(1, 1, v="a1"), row(2, 1, v="a2")])
    online_store.write("other", [row(2, 5, w="b2"), row(3, 5, w="b3")])
    reads = [(VIEW, [(2,), (3,), (1,)]), ("other", [(3,), (1,)]), ("empty", []), (VIEW, [(1,)])]
    together = online_store.read_views(reads)
    assert together == [online_store.read(view, keys) for view, keys in reads]
    assert [[r.values if r else None for r in found] for found in together] == [
        [{"v": "a2"}, None, {"v": "a1"}],
        [{"w": "b3"}, None],
        [],
        [{"v": "a1"}],
    ]


def test_concurrent_readers_each_get_their_own_rows(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(k, 1, v=k) for k in range(50)])
    wrong: list[Any] = []

    def reader(seed: int) -> None:
        chooser = random.Random(seed)
        for _ in range(200):
            keys = chooser.sample(range(60), chooser.choice([1, 1, 3, 40]))
            want = [{"v": k} if k < 50 else None for k in keys]
            if (got := values_of(online_store, *keys)) != want:
                wrong.append((keys, got))

    assert in_threads(reader, 6) == []
    assert wrong == []


def test_a_read_of_thousands_of_keys_answers_each_in_order(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(k, 1, v=k) for k in range(0, 2_600, 2)])
    keys = list(range(2_600))[::-1]
    assert values_of(online_store, *keys) == [{"v": k} if k % 2 == 0 else None for k in keys]


_WRITER = """
import random, sys
from modelyard.features._online import OnlineRow
from modelyard.features._online_redis import RedisOnlineStore
from modelyard.features._online_sqlite import SqliteOnlineStore

kind, where, prefix, seed = sys.argv[1:]
store = SqliteOnlineStore(where) if kind == "sqlite" else RedisOnlineStore(where, prefix=prefix)
rows = [
    OnlineRow((k,), e, c, {"v": f"{e}/{c}"}) for k in range(10) for e in range(6) for c in (None, 1)
]
random.Random(int(seed)).shuffle(rows)
for start in range(0, len(rows), 5):
    store.write("driver_stats", rows[start : start + 5])
store.close()
"""


def test_concurrent_processes_keep_the_newest(online_store: OnlineStore) -> None:
    if isinstance(online_store, SqliteOnlineStore):
        args = ["sqlite", str(online_store.path), ""]
    else:
        assert isinstance(online_store, RedisOnlineStore)
        args = ["redis", online_store.url, online_store.prefix]
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, *args, str(seed)]) for seed in range(4)
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0] * 4
    assert values_of(online_store, *range(10)) == [{"v": "5/1"}] * 10


def test_an_expired_value_reads_as_null_with_the_expired_flag(online_store: OnlineStore) -> None:
    online_store.write(VIEW, [row(1, 10_000, rate=0.5), row(2, 4_000, rate=0.7)])
    records = online_store.read(VIEW, [(1,), (2,), (3,)])
    served = [apply_ttl(record, 5.0, now_ms=10_000 + 1_000) for record in records]
    assert served == [({"rate": 0.5}, "ok"), (None, "expired"), (None, "missing")]


def test_a_store_opened_again_on_the_same_place_sees_the_rows(
    online_store: OnlineStore, tmp_path: Path
) -> None:
    online_store.write(VIEW, [row(1, 1, v=1)])
    if isinstance(online_store, SqliteOnlineStore):
        again: OnlineStore = SqliteOnlineStore(online_store.path)
    else:
        assert isinstance(online_store, RedisOnlineStore)
        again = RedisOnlineStore(online_store.url, prefix=online_store.prefix)
    try:
        assert values_of(again, 1) == [{"v": 1}]
        assert again.write(VIEW, [row(1, 1, v=2)]) == 0
    finally:
        again.close()


def test_redis_reads_carry_on_when_the_server_drops_the_connections(
    redis_url: str, redis_prefix: str
) -> None:
    import redis

    from modelyard.features._online_redis import CLIENT_NAME

    store = RedisOnlineStore(redis_url, prefix=redis_prefix)
    admin = redis.Redis.from_url(redis_url)

    def connections() -> list[int]:
        return [c["id"] for c in admin.client_list() if c["name"] == CLIENT_NAME]

    try:
        store.write(VIEW, [row(1, 1, v=1), row(2, 1, v=2)])  # the pool's connection
        assert values_of(store, 1) == [{"v": 1}]  # the connection kept for reads
        dropped = connections()
        assert len(dropped) >= 2
        for client_id in dropped:
            admin.client_kill_filter(_id=client_id)
        assert values_of(store, 2) == [{"v": 2}]
        assert values_of(store, 1, 2) == [{"v": 1}, {"v": 2}]
        assert values_of(store, 1) == [{"v": 1}]
        assert not set(connections()) & set(dropped)
    finally:
        admin.close()
        store.close()


def test_a_redis_key_that_is_no_row_is_refused_and_the_next_read_is_served(
    redis_url: str, redis_prefix: str
) -> None:
    import redis

    store = RedisOnlineStore(redis_url, prefix=redis_prefix)
    admin = redis.Redis.from_url(redis_url)
    try:
        store.write(VIEW, [row(1, 1, v=1)])
        admin.set(f"{redis_prefix}:fv:{VIEW}:[2]", "not a hash")  # somebody else's key
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            store.read(VIEW, [(2,)])
        assert values_of(store, 1) == [{"v": 1}]
    finally:
        admin.delete(f"{redis_prefix}:fv:{VIEW}:[2]")
        admin.close()
        store.close()


# -- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, 0, 123_456, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 123_456),  # naive: UTC
        datetime(2024, 5, 1, 14, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2))),
        pd.Timestamp("2024-05-01T12:00:00.123456789Z"),
        pd.Timestamp("2024-05-01T12:00:00.123456789"),
        pd.Timestamp("2024-05-01T08:00:00.1234", tz="America/New_York"),
        np.datetime64("2024-05-01T12:00:00.123456789"),
        1_714_564_800_123,
        np.int64(1_714_564_800_123),
    ],
)
def test_to_ms_reads_every_kind_of_moment_as_utc_ms(moment: Any) -> None:
    assert to_ms(moment) == 1_714_564_800_123


def test_to_ms_floors_times_before_the_epoch() -> None:
    assert to_ms(datetime(1969, 12, 31, 23, 59, 59, 999_500)) == -1
    assert to_ms(pd.Timestamp("1969-12-31T23:59:59.9995")) == -1
    assert to_ms(np.datetime64("1969-12-31T23:59:59.9995")) == -1


@pytest.mark.parametrize("bad", [None, True, "2024-05-01", 1.5, pd.NaT, np.datetime64("NaT")])
def test_to_ms_refuses_what_is_not_a_moment(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        to_ms(bad)


@given(
    st.datetimes(datetime(1678, 1, 1), datetime(2261, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 999),
)
def test_to_ms_agrees_with_numpy_and_pandas(moment: datetime, nanos: int) -> None:
    expected = int(np.datetime64(moment.replace(tzinfo=None), "ms").astype(np.int64))
    assert to_ms(moment) == expected
    assert to_ms(pd.Timestamp(moment) + pd.Timedelta(nanos, "ns")) == expected
    assert to_ms(moment.replace(tzinfo=None)) == expected


def test_to_ms_reads_pandas_times_beyond_the_nanosecond_range() -> None:
    far = pd.Timestamp(datetime(2500, 1, 1, tzinfo=UTC))
    assert to_ms(far) == to_ms(datetime(2500, 1, 1)) == 16_725_225_600_000


# -- value types ----------------------------------------------------------------------------

FLOAT, INT, INT32 = Field("rate", "float64"), Field("trips", "int64"), Field("n", "int32")
BOOL, TEXT, TIME = Field("ok", "bool"), Field("name", "string"), Field("at", "timestamp")


@given(st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False))
def test_a_number_is_a_float(value: float) -> None:
    assert check_value(FLOAT, value) == float(value)
    assert type(check_value(Field("f", "float32"), np.float64(value))) is float


@given(st.integers(-(2**63), 2**63 - 1))
def test_an_integer_is_an_int_also_as_a_whole_float_or_numpy(value: int) -> None:
    assert check_value(INT, value) == value
    assert check_value(INT, np.int64(value)) == value
    if abs(value) < 2**53:
        assert check_value(INT, float(value)) == value


@given(st.floats(allow_nan=False, allow_infinity=True).filter(lambda f: not f.is_integer()))
def test_a_float_with_a_fraction_is_not_an_int(value: float) -> None:
    with pytest.raises(InvalidInput, match=r"'trips' is int64"):
        check_value(INT, value)


def test_an_int_out_of_range_is_refused() -> None:
    assert check_value(INT32, 2**31 - 1) == 2**31 - 1
    for bad in (2**31, -(2**31) - 1):
        with pytest.raises(InvalidInput, match="int32"):
            check_value(INT32, bad)
    with pytest.raises(InvalidInput, match="int64"):
        check_value(INT, 2**63)


@pytest.mark.parametrize("field", [FLOAT, INT, INT32])
@pytest.mark.parametrize("flag", [True, False, np.bool_(True)])
def test_a_bool_is_not_a_number(field: Field, flag: Any) -> None:
    with pytest.raises(InvalidInput, match=f"{field.name!r} is {field.dtype}"):
        check_value(field, flag)


@pytest.mark.parametrize("not_bool", [1, 0, 1.0, "true", None])
def test_only_a_bool_is_a_bool(not_bool: Any) -> None:
    assert check_value(BOOL, np.bool_(False)) is False
    if not_bool is None:
        assert check_value(BOOL, None) is None
    else:
        with pytest.raises(InvalidInput, match="'ok' is bool"):
            check_value(BOOL, not_bool)


@given(st.text())
def test_any_text_is_a_string_and_nothing_else_is(text: str) -> None:
    assert check_value(TEXT, text) == text
    for bad in (1, 1.5, b"x", [text]):
        with pytest.raises(InvalidInput, match="'name' is string"):
            check_value(TEXT, bad)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 5),
        pd.Timestamp("2024-05-01T14:00:00.000005+02:00"),
        np.datetime64("2024-05-01T12:00:00.000005"),
        "2024-05-01T12:00:00.000005Z",
        "2024-05-01 12:00:00.000005",
    ],
)
def test_a_timestamp_is_stored_as_iso_text_in_utc(moment: Any) -> None:
    assert check_value(TIME, moment) == "2024-05-01T12:00:00.000005+00:00"


@pytest.mark.parametrize("bad", ["yesterday", 1_714_564_800_000, 1.5, True])
def test_what_is_not_a_time_is_not_a_timestamp(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="'at' is timestamp"):
        check_value(TIME, bad)


@pytest.mark.parametrize("field", [FLOAT, INT, BOOL, TEXT, TIME])
@pytest.mark.parametrize("missing", [None, float("nan"), np.float64("nan"), pd.NaT])
def test_a_missing_value_is_always_allowed(field: Field, missing: Any) -> None:
    assert check_value(field, missing) is None


def test_the_error_names_the_feature_the_dtype_and_the_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_value(FLOAT, "fast")
    assert caught.value.message == "feature 'rate' is float64, but got 'fast' (str)"


# -- the TTL --------------------------------------------------------------------------------


def record(event_ms: int) -> OnlineRecord:
    return OnlineRecord({"v": 1}, event_ms, None, event_ms)


def test_an_age_equal_to_the_ttl_is_still_ok() -> None:
    assert apply_ttl(record(1_000), 2.0, now_ms=3_000) == ({"v": 1}, "ok")
    assert apply_ttl(record(1_000), 2.0, now_ms=3_001) == (None, "expired")
    assert apply_ttl(record(1_000), 0.001, now_ms=1_001) == ({"v": 1}, "ok")
    assert apply_ttl(record(1_000), 0.001, now_ms=1_002) == (None, "expired")


@given(st.integers(0, 10**9), st.timedeltas(timedelta(milliseconds=1), timedelta(days=3650)))
def test_the_ttl_boundary_is_exact_at_any_ttl(age_ms: int, ttl: timedelta) -> None:
    ttl_s = ttl.total_seconds()
    _, status = apply_ttl(record(10**12), ttl_s, now_ms=10**12 + age_ms)
    assert status == ("ok" if timedelta(milliseconds=age_ms) <= ttl else "expired")


def test_no_ttl_never_expires_and_no_record_is_missing() -> None:
    assert apply_ttl(record(0), None, now_ms=10**13) == ({"v": 1}, "ok")
    assert apply_ttl(None, 1.0, now_ms=0) == (None, "missing")
    assert apply_ttl(None, None, now_ms=0) == (None, "missing")


def test_a_value_from_the_future_is_ok() -> None:
    assert apply_ttl(record(5_000), 1.0, now_ms=1_000)[1] == "ok"


# -- opening a store ------------------------------------------------------------------------


def test_no_url_opens_sqlite_in_the_home_folder(tmp_path: Path) -> None:
    store = open_online_store(None, tmp_path / "home")
    try:
        assert isinstance(store, SqliteOnlineStore)
        assert store.path == tmp_path / "home" / "online.db"
        assert store.path.exists()
    finally:
        store.close()


def test_a_sqlite_url_opens_that_file(tmp_path: Path) -> None:
    store = open_online_store(f"sqlite:///{tmp_path / 'x' / 'o.db'}", tmp_path / "home")
    try:
        assert isinstance(store, SqliteOnlineStore)
        assert store.path == tmp_path / "x" / "o.db"
    finally:
        store.close()


def test_opening_waits_for_another_writer_holding_a_new_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with write_lock_held(path, 0.3):
        store = open_online_store(f"sqlite:///{path}", tmp_path / "home")
    try:
        assert store.read("v", [("k",)]) == [None]
    finally:
        store.close()


def test_a_redis_url_opens_redis(redis_url: str, tmp_path: Path) -> None:
    store = open_online_store(redis_url, tmp_path)
    try:
        assert isinstance(store, RedisOnlineStore)
        assert store.watermark("never_set_view_xyz") is None
    finally:
        store.close()


def test_a_prefix_in_a_redis_url_is_the_store_prefix(redis_url: str, redis_prefix: str) -> None:
    stores = [
        RedisOnlineStore(redis_url, prefix=redis_prefix),
        RedisOnlineStore(f"{redis_url}?prefix={redis_prefix}"),
        RedisOnlineStore(
            f"{redis_url}?client_name=mine&prefix={redis_prefix}", prefix=redis_prefix
        ),
    ]
    try:
        stores[0].write(VIEW, [row(1, 1, v=1)])
        assert [values_of(store, 1) for store in stores] == [[{"v": 1}]] * 3
        stores.append(RedisOnlineStore(redis_url))
        assert stores[-1].prefix == "modelyard"
        with pytest.raises(InvalidInput, match="two prefixes"):
            RedisOnlineStore(f"{redis_url}?prefix=a", prefix="b")
    finally:
        stores[0].delete_view(VIEW)
        for store in stores:
            store.close()


@pytest.mark.parametrize("url", ["postgresql://db/x", "sqlite://", "memory://", "redis:/x", ""])
def test_an_unknown_scheme_is_refused_naming_the_supported_ones(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"sqlite:///PATH, redis://, rediss://"):
        open_online_store(url, tmp_path)


def test_an_unreachable_redis_is_a_store_unavailable_error() -> None:
    from modelyard.errors import StoreUnavailable

    store = RedisOnlineStore("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreUnavailable, match="not reachable"):
            store.read(VIEW, [(1,)])
    finally:
        store.close()


def test_nan_is_not_a_number_to_keep() -> None:
    assert check_value(FLOAT, math.nan) is None
