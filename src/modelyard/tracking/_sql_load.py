"""Whole runs read back in a fixed number of queries, however many runs are asked for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import BindParameter, Connection, bindparam, select

from modelyard.store._tables import (
    DatasetRow,
    EnvironmentRow,
    ExperimentRow,
    LatestMetricRow,
    ParamRow,
    RunDatasetRow,
    RunRow,
    RunTagRow,
    table_of,
)
from modelyard.tracking._entities import DatasetInput, Metric, Run, RunStatus

R, E, ENV = table_of(RunRow), table_of(ExperimentRow), table_of(EnvironmentRow)
P, RT, LM = table_of(ParamRow), table_of(RunTagRow), table_of(LatestMetricRow)
D, RD = table_of(DatasetRow), table_of(RunDatasetRow)

# Built once so SQLAlchemy compiles each once; `ids` expands to the list at execution.
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_RUN_COLUMNS = (
    R.c.id,
    R.c.name,
    R.c.experiment_id,
    E.c.name,
    R.c.status,
    R.c.lifecycle,
    R.c.user,
    R.c.start_time,
    R.c.end_time,
    R.c.parent_id,
    R.c.note,
)
_RUNS = select(*_RUN_COLUMNS).join(E, E.c.id == R.c.experiment_id).where(R.c.id.in_(_IDS))
_ENVIRONMENTS = (
    select(R.c.id, ENV.c.data)
    .join(ENV, ENV.c.digest == R.c.environment_digest)
    .where(R.c.id.in_(_IDS))
)
_PARAMS = select(P.c.run_id, P.c.key, P.c.value).where(P.c.run_id.in_(_IDS))
_TAGS = select(RT.c.run_id, RT.c.key, RT.c.value).where(RT.c.run_id.in_(_IDS))
_METRICS = select(LM.c.run_id, LM.c.key, LM.c.value, LM.c.step, LM.c.timestamp).where(
    LM.c.run_id.in_(_IDS)
)
_DATASETS = (
    select(
        RD.c.run_id,
        RD.c.name,
        RD.c.role,
        D.c.digest,
        D.c.schema_json,
        D.c.num_rows,
        D.c.num_columns,
        D.c.source,
    )
    .join(D, D.c.digest == RD.c.dataset_digest)
    .where(RD.c.run_id.in_(_IDS))
    .order_by(RD.c.logged_at)
)


def load_runs(conn: Connection, ids: Sequence[str], *, with_environment: bool) -> list[Run]:
    """The runs with these ids, in this order (missing ids are left out)."""
    if not ids:
        return []
    bind = {"ids": list(ids)}
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, Metric]] = {i: {} for i in ids}
    datasets: dict[str, list[DatasetInput]] = {i: [] for i in ids}
    environments: dict[str, Any] = {}
    rows = {row[0]: row for row in conn.execute(_RUNS, bind)}
    for run_id, key, value in conn.execute(_PARAMS, bind):
        params[run_id][key] = value
    for run_id, key, value in conn.execute(_TAGS, bind):
        tags[run_id][key] = value
    for run_id, key, value, step, timestamp in conn.execute(_METRICS, bind):
        metrics[run_id][key] = Metric(key, math.nan if value is None else value, step, timestamp)
    for run_id, name, role, digest, schema, num_rows, num_columns, source in conn.execute(
        _DATASETS, bind
    ):
        datasets[run_id].append(
            DatasetInput(name, role, digest, orjson.loads(schema), num_rows, num_columns, source)
        )
    if with_environment:
        environments = {
            run_id: orjson.loads(data) for run_id, data in conn.execute(_ENVIRONMENTS, bind)
        }
    runs = []
    for run_id in ids:
        row = rows.get(run_id)
        if row is None:
            continue
        (
            _,
            name,
            experiment_id,
            experiment_name,
            status,
            lifecycle,
            user,
            start_time,
            end_time,
            parent_id,
            note,
        ) = row
        runs.append(
            Run(
                id=run_id,
                name=name,
                experiment_id=experiment_id,
                experiment_name=experiment_name,
                status=RunStatus(status),
                lifecycle=lifecycle,
                user=user,
                start_time=start_time,
                end_time=end_time,
                parent_id=parent_id,
                note=note,
                params=params[run_id],
                tags=tags[run_id],
                metrics=metrics[run_id],
                datasets=tuple(datasets[run_id]),
                environment=environments.get(run_id),
            )
        )
    return runs
