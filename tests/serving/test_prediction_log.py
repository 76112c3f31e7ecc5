"""One contract for every prediction log: the metadata database (SQLite, PostgreSQL),
Parquet files (a local folder, `memory://`) and a live server over REST."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import fsspec
import httpx
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.config import Settings
from modelyard.errors import InvalidInput
from modelyard.serving import (
    ParquetPredictionLog,
    PredictionLog,
    PredictionRow,
    RestPredictionLog,
    SqlPredictionLog,
    new_ids,
    open_prediction_log,
)
from modelyard.store import MetadataStore

from conftest import start_server, stop_server

T0 = 1_714_563_000_000  # 2024-05-01 11:30 UTC
DAY = 86_400_000

COLUMNS = (
    "prediction_id", "model", "version", "at", "latency_ms", "inputs", "outputs",
    "deployment", "variant", "parent_id",
)  # fmt: skip


@pytest.fixture(params=["sql-sqlite", "sql-postgresql", "parquet-folder", "parquet-memory", "rest"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PredictionLog]:
    """Each prediction log, fresh (the REST one shares the session's server: tests use
    model names of their own)."""
    kind = request.param
    made: PredictionLog
    if kind == "sql-sqlite":
        made = SqlPredictionLog(MetadataStore(f"sqlite:///{tmp_path / 'm.db'}"), owns_metadata=True)
    elif kind == "sql-postgresql":
        made = SqlPredictionLog(
            MetadataStore(request.getfixturevalue("pg_url")), owns_metadata=True
        )
    elif kind == "parquet-folder":
        made = ParquetPredictionLog(str(tmp_path / "predictions"))
    elif kind == "parquet-memory":
        made = ParquetPredictionLog(f"memory://predictions-{uuid.uuid4().hex}")
    else:
        made = RestPredictionLog(request.getfixturevalue("live_server"))
    yield made
    made.close()
    if kind == "parquet-memory":
        assert isinstance(made, ParquetPredictionLog)
        memory, root = fsspec.filesystem("memory"), made.url.removeprefix("memory://")
        if memory.exists(root):
            memory.rm(root, recursive=True)


@pytest.fixture
def model() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


def rows_of(
    model: str, count: int, *, at_ms: int = T0, version: int = 1, step_ms: int = 1
) -> list[PredictionRow]:
    """`count` predictions of `model`, `step_ms` apart from `at_ms`."""
    made = []
    for k in range(count):
        at = at_ms + k * step_ms
        made.append(
            PredictionRow(
                id=new_ids(1, at)[0],
                model=model,
                version=version,
                at_ms=at,
                latency_ms=0.5 + k,
                inputs=orjson.dumps({"age": 30 + k, "city": "Lyon"}).decode(),
                outputs=orjson.dumps({"predict": k % 2, "predict_proba": [0.25, 0.75]}).decode(),
            )
        )
    return made


def ids_of(frame: pd.DataFrame) -> list[str]:
    return [str(i) for i in frame["prediction_id"]]


def test_rows_read_back_as_written_in_id_order(log: PredictionLog, model: str) -> None:
    rows = rows_of(model, 5)
    log.write(list(reversed(rows[:3])))
    log.write(rows[3:])
    frame = log.read(model)
    assert tuple(frame.columns) == COLUMNS
    assert str(frame["at"].dtype) == "datetime64[ms, UTC]"
    assert frame["version"].dtype == "int64" and frame["latency_ms"].dtype == "float64"
    assert ids_of(frame) == sorted(r.id for r in rows)
    first = frame.iloc[0]
    assert first["model"] == model and first["version"] == 1
    assert first["at"] == pd.Timestamp(T0, unit="ms", tz="UTC")
    assert first["latency_ms"] == 0.5
    assert first["inputs"] == {"age": 30, "city": "Lyon"}
    assert first["outputs"] == {"predict": 0, "predict_proba": [0.25, 0.75]}


def test_a_deployment_s_rows_keep_their_deployment_variant_and_parent(
    log: PredictionLog, model: str
) -> None:
    answered, mirrored = rows_of(model, 2)
    answered = replace(answered, deployment="churn-canary", variant="candidate")
    mirrored = replace(
        mirrored, version=2, deployment="churn-canary", variant="shadow", parent_id=answered.id
    )
    plain = rows_of(model, 1, at_ms=T0 + 10)[0]
    log.write([answered, mirrored, plain])
    frame = log.read(model)
    got = {
        r["prediction_id"]: (r["deployment"], r["variant"], r["parent_id"])
        for _, r in frame.iterrows()
    }
    assert got == {
        answered.id: ("churn-canary", "candidate", None),
        mirrored.id: ("churn-canary", "shadow", answered.id),
        plain.id: (None, None, None),
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("parent_id", "not-an-id", "parent_id"),
        ("variant", "", "variant"),
        ("deployment", "", "invalid deployment name"),
    ],
)
def test_malformed_deployment_fields_are_refused(
    log: PredictionLog, model: str, field: str, value: Any, message: str
) -> None:
    (row,) = rows_of(model, 1)
    with pytest.raises(InvalidInput, match=message):
        log.write([replace(row, **{field: value})])


def test_an_unknown_model_reads_as_an_empty_frame_with_the_columns(log: PredictionLog) -> None:
    frame = log.read(f"nothing-{uuid.uuid4().hex[:8]}")
    assert frame.empty
    assert tuple(frame.columns) == COLUMNS
    assert str(frame["at"].dtype) == "datetime64[ms, UTC]"


def test_read_filters_by_version_and_a_half_open_time_window(
    log: PredictionLog, model: str
) -> None:
    first = rows_of(model, 4, at_ms=T0, version=1, step_ms=1000)
    second = rows_of(model, 4, at_ms=T0 + 4000, version=2, step_ms=1000)
    log.write(first + second)
    assert ids_of(log.read(model, version=2)) == [r.id for r in second]
    window = log.read(model, since_ms=T0 + 2000, until_ms=T0 + 5000)
    assert ids_of(window) == [r.id for r in (*first[2:], second[0])]
    assert ids_of(log.read(model, version=1, since_ms=T0 + 3000)) == [first[3].id]


def test_a_limit_keeps_the_most_recent_rows(log: PredictionLog, model: str) -> None:
    rows = rows_of(model, 6, step_ms=DAY // 2)  # over three days: several Parquet folders
    log.write(rows)
    assert ids_of(log.read(model, limit=4)) == [r.id for r in rows[2:]]
    assert ids_of(log.read(model, limit=0)) == []
    assert ids_of(log.read(model, limit=100)) == [r.id for r in rows]


def test_find_answers_model_and_version_of_the_ids_it_holds(log: PredictionLog) -> None:
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    rows_a = rows_of(a, 3, version=1)
    rows_b = rows_of(b, 2, version=7, at_ms=T0 + 3 * DAY)
    log.write(rows_a + rows_b)
    unknown = new_ids(1, T0)[0]
    found = log.find([rows_a[0].id, rows_b[1].id, unknown, "not-an-id", rows_a[0].id])
    assert found == {rows_a[0].id: (a, 1), rows_b[1].id: (b, 7)}
    assert log.find([]) == {}


def test_count_by_model_and_version(log: PredictionLog, model: str) -> None:
    before = log.count()
    log.write(rows_of(model, 3, version=1) + rows_of(model, 2, version=2, at_ms=T0 + 10))
    assert log.count(model) == 5
    assert log.count(model, 2) == 2
    assert log.count(model, 3) == 0
    assert log.count() - before == 5


def test_one_write_over_two_models_and_two_days_reads_back_per_model(log: PredictionLog) -> None:
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    rows = rows_of(a, 3, at_ms=T0, step_ms=DAY // 2) + rows_of(b, 2, at_ms=T0 + DAY)
    log.write(rows)
    assert ids_of(log.read(a)) == [r.id for r in rows[:3]]
    assert ids_of(log.read(b)) == [r.id for r in rows[3:]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "not-an-id", "malformed"),
        ("id", "A" * 32, "malformed"),
        ("model", "", "invalid model name"),
        ("version", -1, "version"),
        ("at_ms", T0 + 2 * DAY, "was not made at its at_ms"),
        ("inputs", "{not json", "must be JSON"),
        ("outputs", "", "must be JSON"),
        ("latency_ms", float("nan"), "finite"),
    ],
)
def test_a_malformed_row_refuses_the_whole_write(
    log: PredictionLog, model: str, field: str, value: Any, message: str
) -> None:
    good = rows_of(model, 3)
    bad = PredictionRow(**{**_fields(good[1]), field: value})
    with pytest.raises(InvalidInput, match=message):
        log.write([good[0], bad, good[2]])
    assert log.count(model) == 0


def _fields(row: PredictionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in PredictionRow.__dataclass_fields__}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_model_names = st.text(min_size=1, max_size=256).filter(lambda s: s.strip() and "\x00" not in s)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=_model_names,
    payloads=st.lists(st.tuples(st.dictionaries(st.text(max_size=8), _json), _json), max_size=6),
    at_ms=st.integers(0, 4_000_000_000_000),
)
def test_any_json_and_any_model_name_round_trip(
    log: PredictionLog, name: str, payloads: Sequence[tuple[dict[str, Any], Any]], at_ms: int
) -> None:
    model = f"{name[:240]}-{uuid.uuid4().hex[:8]}"
    ids = new_ids(len(payloads), at_ms)
    rows = [
        PredictionRow(i, model, 3, at_ms, 1.25, orjson.dumps(x).decode(), orjson.dumps(y).decode())
        for i, (x, y) in zip(ids, payloads, strict=True)
    ]
    log.write(rows)
    frame = log.read(model)
    assert ids_of(frame) == sorted(ids)
    by_id = {i: (x, y) for i, (x, y) in zip(ids, payloads, strict=True)}
    assert [(r["inputs"], r["outputs"]) for _, r in frame.iterrows()] == [
        by_id[i] for i in sorted(ids)
    ]
    assert log.find(ids) == dict.fromkeys(ids, (model, 3))


def test_the_database_log_keeps_a_row_written_twice_once(db_url: str) -> None:
    log = SqlPredictionLog(MetadataStore(db_url), owns_metadata=True)
    try:
        rows = rows_of("churn", 3)
        log.write(rows)
        log.write(rows)  # a retry after a lost answer
        assert log.count("churn") == 3
    finally:
        log.close()


def test_parquet_files_are_laid_out_by_model_and_day(tmp_path: Path) -> None:
    log = ParquetPredictionLog(str(tmp_path))
    rows = rows_of("fraud/eu", 2, at_ms=T0, step_ms=DAY)
    log.write(rows)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("part-*.parquet"))
    assert [f.rsplit("-", 1)[0] for f in files] == [
        f"model=fraud%2Feu/date=2024-05-01/part-{rows[0].id}",
        f"model=fraud%2Feu/date=2024-05-02/part-{rows[1].id}",
    ]
    assert list((tmp_path / "_tmp").iterdir()) == []


def test_parquet_readers_skip_files_being_written_and_strangers(tmp_path: Path) -> None:
    log = ParquetPredictionLog(str(tmp_path))
    rows = rows_of("churn", 2)
    log.write(rows)
    day = tmp_path / "model=churn" / "date=2024-05-01"
    (tmp_path / "_tmp" / "crashed-writer.parquet").write_bytes(b"PAR1 half a file")
    (day / "notes.txt").write_text("not a part")
    (tmp_path / "model=churn" / "date=garbage").mkdir()
    assert ids_of(log.read("churn")) == [r.id for r in rows]
    assert log.count("churn") == 2 and log.count() == 2
    assert set(log.find([r.id for r in rows])) == {r.id for r in rows}


def test_parquet_files_written_before_deployments_read_with_empty_deployment_columns(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = ParquetPredictionLog(str(tmp_path))
    old, new = rows_of("churn", 2)
    folder = tmp_path / "model=churn" / "date=2024-05-01"
    folder.mkdir(parents=True)
    columns = ("id", "model", "version", "at", "latency_ms", "inputs", "outputs")
    values = (old.id, old.model, old.version, old.at_ms, old.latency_ms, old.inputs, old.outputs)
    table = pa.table({name: [value] for name, value in zip(columns, values, strict=True)})
    pq.write_table(table.cast(table.schema.set(2, pa.field("version", pa.int32()))),
                   folder / f"part-{old.id}-00000000.parquet")  # fmt: skip
    log.write([replace(new, deployment="churn-ab", variant="primary")])
    frame = log.read("churn")
    assert ids_of(frame) == [old.id, new.id]
    assert frame["deployment"].tolist() == [None, "churn-ab"]
    assert frame["variant"].tolist() == [None, "primary"]
    assert frame["parent_id"].tolist() == [None, None]
    assert log.count("churn") == 2 and set(log.find([old.id])) == {old.id}


def test_a_long_model_name_gets_a_short_parquet_folder(tmp_path: Path) -> None:
    log = ParquetPredictionLog(str(tmp_path))
    long_name = "é" * 256
    log.write(rows_of(long_name, 2))
    assert len(log.read(long_name)) == 2
    (folder,) = [p.name for p in tmp_path.iterdir() if p.name.startswith("model=")]
    assert len(folder.encode()) < 200


def test_open_prediction_log_follows_the_settings(tmp_path: Path, live_server: str) -> None:
    sql = open_prediction_log(Settings(home=tmp_path / "a"))
    assert isinstance(sql, SqlPredictionLog)
    sql.write(rows_of("churn", 1))
    sql.close()  # it opened its own database, and closes it
    parquet = open_prediction_log(Settings(home=tmp_path / "b", prediction_log="parquet"))
    assert isinstance(parquet, ParquetPredictionLog)
    parquet.write(rows_of("churn", 1))
    assert list((tmp_path / "b" / "predictions").glob("model=churn/date=*/part-*.parquet"))
    remote = open_prediction_log(Settings(home=tmp_path / "c", tracking_uri=live_server))
    assert isinstance(remote, RestPredictionLog)
    remote.close()


def test_a_server_set_to_parquet_logs_to_parquet_files(tmp_path: Path) -> None:
    home = tmp_path / "server"
    process, url = start_server(home, {"MODELYARD_PREDICTION_LOG": "parquet"})
    try:
        log = RestPredictionLog(url)
        rows = rows_of("churn", 3)
        log.write(rows)
        assert list((home / "predictions").glob("model=churn/date=2024-05-01/part-*.parquet"))
        assert ids_of(log.read("churn")) == [r.id for r in rows]
        answer = httpx.post(
            f"{url}/api/v1/feedback", json={"prediction_id": rows[0].id, "label": 1}, timeout=30
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["model"] == "churn"
        log.close()
    finally:
        stop_server(process)
