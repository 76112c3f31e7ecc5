"""Tracking over the local stores: the metadata database and the artifact store."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import orjson
from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelyard.store import ArtifactStore, MetadataStore
from modelyard.store._prepared import Prepared, insert_values
from modelyard.store._tables import (
    ArtifactRow,
    DatasetRow,
    EnvironmentRow,
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    MetricChunkRow,
    ParamRow,
    RunDatasetRow,
    RunRow,
    RunTagRow,
    table_of,
)
from modelyard.tracking import _validate as v
from modelyard.tracking._entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunPage,
    RunQuery,
    RunSpec,
    RunStatus,
    View,
    now_ms,
)
from modelyard.tracking._packing import pack_metrics, unpack_history
from modelyard.tracking._sql_load import load_runs
from modelyard.tracking._sql_search import search_run_ids

E = table_of(ExperimentRow)
ET = table_of(ExperimentTagRow)
R = table_of(RunRow)
RT = table_of(RunTagRow)
P = table_of(ParamRow)
MC = table_of(MetricChunkRow)
LM = table_of(LatestMetricRow)
A = table_of(ArtifactRow)
D = table_of(DatasetRow)
RD = table_of(RunDatasetRow)
ENV = table_of(EnvironmentRow)

ACTIVE, DELETED = "active", "deleted"


class SqlTracking:
    """The tracking backend of local mode and of `modelyard server`."""

    def __init__(self, metadata: MetadataStore, artifacts: ArtifactStore) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self._sql = _Statements(metadata)

    # experiments -----------------------------------------------------------------

    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        v.check_name("experiment", name)
        if name.isascii() and name.isdigit():
            raise InvalidInput(f"experiment name {name!r} would read as an id; add a letter")
        if description is not None:
            v.check_text("description", description)
        clean_tags = v.string_map("tag", tags)

        def work(conn: Connection) -> int:
            try:
                with conn.begin_nested():
                    new_id = conn.execute(
                        E.insert().values(
                            name=name,
                            description=description,
                            lifecycle=ACTIVE,
                            created_at=now_ms(),
                        )
                    ).inserted_primary_key
            except DbIntegrityError:
                raise AlreadyExists(f"experiment {name!r} already exists") from None
            assert new_id is not None
            experiment_id = int(new_id[0])
            if clean_tags:
                conn.execute(
                    ET.insert(),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": val}
                        for k, val in clean_tags.items()
                    ],
                )
            return experiment_id

        return self.get_experiment(self.metadata.write(work))

    def get_experiment(self, ref: str | int, *, create: bool = False) -> Experiment:
        """An experiment by id or name; with `create`, a missing name is created."""
        by_id = isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit())
        if by_id:
            ref = v.check_int64("experiment id", int(ref))
        else:
            v.check_name("experiment", ref)
        with self.metadata.read() as conn:
            row = conn.execute(
                select(E).where(E.c.id == int(ref) if by_id else E.c.name == ref)
            ).first()
            if row is not None:
                tags = dict(
                    conn.execute(
                        select(ET.c.key, ET.c.value).where(ET.c.experiment_id == row.id)
                    ).all()
                )
                return _experiment(row, tags)
        if create and not by_id:
            try:
                return self.create_experiment(str(ref))
            except AlreadyExists:  # created concurrently by another writer
                return self.get_experiment(ref)
        raise NotFound(f"experiment {ref!r} does not exist")

    def list_experiments(self, view: View = "active") -> list[Experiment]:
        query = select(E).order_by(E.c.id)
        if view != "all":
            query = query.where(E.c.lifecycle == (ACTIVE if view == "active" else DELETED))
        with self.metadata.read() as conn:
            rows = conn.execute(query).all()
            tags: dict[int, dict[str, str]] = {}
            for eid, key, value in conn.execute(select(ET.c.experiment_id, ET.c.key, ET.c.value)):
                tags.setdefault(eid, {})[key] = value
        return [_experiment(row, tags.get(row.id, {})) for row in rows]

    def set_experiment_deleted(self, experiment_id: int, deleted: bool) -> None:
        v.check_int64("experiment id", experiment_id)
        self._set_lifecycle(E, experiment_id, deleted, f"experiment {experiment_id}")

    # runs --------------------------------------------------------------------------

    def create_run(self, spec: RunSpec) -> Run:
        v.check_name("run", spec.name)
        v.check_name("user", spec.user)
        v.check_int64("experiment_id", spec.experiment_id)
        v.check_int64("start_time", spec.start_time, minimum=0)
        if spec.parent_id is not None:
            v.run_id(spec.parent_id)
        tags = v.string_map("tag", spec.tags)
        run_id = uuid.uuid4().hex
        env_digest, env_json = _environment_record(spec.environment)

        sql = self._sql

        def work(conn: Connection) -> str:
            cursor = sql.experiment.execute(conn, {"id": spec.experiment_id})
            experiment = cursor.fetchone()
            cursor.close()
            if experiment is None:
                raise NotFound(f"experiment {spec.experiment_id} does not exist")
            if experiment[1] != ACTIVE:
                raise Conflict(f"experiment {experiment[0]!r} is deleted; restore it first")
            if spec.parent_id is not None:
                self._check_run(conn, spec.parent_id)
            if env_digest is not None:
                sql.insert_environment.execute(conn, {"digest": env_digest, "data": env_json})
            sql.insert_run.execute(
                conn,
                {
                    "id": run_id,
                    "experiment_id": spec.experiment_id,
                    "name": spec.name,
                    "status": RunStatus.RUNNING.value,
                    "lifecycle": ACTIVE,
                    "user": spec.user,
                    "start_time": spec.start_time,
                    "parent_id": spec.parent_id,
                    "environment_digest": env_digest,
                },
            )
            sql.upsert_tag.execute_many(
                conn, [{"run_id": run_id, "key": k, "value": val} for k, val in tags.items()]
            )
            return str(experiment[0])

        experiment_name = self.metadata.write(work)
        return Run(
            id=run_id,
            name=spec.name,
            experiment_id=spec.experiment_id,
            experiment_name=experiment_name,
            status=RunStatus.RUNNING,
            lifecycle=ACTIVE,
            user=spec.user,
            start_time=spec.start_time,
            parent_id=spec.parent_id,
            tags=tags,
            environment=spec.environment,
        )

    def get_run(self, run_id: str) -> Run:
        v.run_id(run_id)
        with self.metadata.read() as conn:
            runs = load_runs(conn, [run_id], with_environment=True)
        if not runs:
            raise NotFound(f"run {run_id!r} does not exist")
        return runs[0]

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise InvalidInput("a run is finished with status finished, failed or killed")
        if end_time is not None:
            v.check_int64("end_time", end_time, minimum=0)

        def work(conn: Connection) -> None:
            self._check_run(conn, run_id)
            self._sql.finish_run.execute(
                conn, {"run_id": run_id, "status": status.value, "end_time": end_time or now_ms()}
            )

        self.metadata.write(work)

    def update_run(self, run_id: str, *, name: str | None = None, note: str | None = None) -> None:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = v.check_name("run", name)
        if note is not None:
            values["note"] = v.check_text("note", note)
        if not values:
            return

        def work(conn: Connection) -> None:
            self._check_run(conn, run_id)
            conn.execute(update(R).where(R.c.id == run_id).values(**values))

        self.metadata.write(work)

    def set_run_deleted(self, run_id: str, deleted: bool) -> None:
        self._set_lifecycle(R, v.run_id(run_id), deleted, f"run {run_id!r}")

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Params, metrics and tags in one transaction: all stored, or none."""
        clean_params = v.string_map("param", params)
        tag_rows = [
            {"run_id": run_id, "key": k, "value": val}
            for k, val in v.string_map("tag", tags).items()
        ]
        chunks, latest = pack_metrics(run_id, metrics)
        sql = self._sql

        def work(conn: Connection) -> None:
            # Metric chunks are only inserted for an active run, which spares the hot
            # path (metrics alone) a separate check of the run.
            if clean_params or tag_rows or not chunks:
                self._check_run(conn, run_id)
            if clean_params:
                self._insert_params(conn, run_id, clean_params)
            sql.upsert_tag.execute_many(conn, tag_rows)
            if sql.insert_chunk.execute_many(conn, chunks) != len(chunks):
                self._check_run(conn, run_id)  # says why: no such run, or a deleted one
                raise AssertionError(f"metric chunks of run {run_id} were not stored")
            sql.upsert_latest.execute_many(conn, latest)

        self.metadata.write(work)

    def delete_tag(self, run_id: str, key: str) -> None:
        v.check_key("tag", key)

        def work(conn: Connection) -> None:
            self._check_run(conn, run_id)
            result = conn.execute(delete(RT).where(RT.c.run_id == run_id, RT.c.key == key))
            if result.rowcount == 0:
                raise NotFound(f"run {run_id!r} has no tag {key!r}")

        self.metadata.write(work)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        v.run_id(run_id)
        v.check_key("metric", key)
        with self.metadata.read() as conn:
            if conn.execute(select(R.c.id).where(R.c.id == run_id)).first() is None:
                raise NotFound(f"run {run_id!r} does not exist")
            chunks = conn.execute(
                select(MC.c.steps, MC.c.timestamps, MC.c["values"])
                .where(MC.c.run_id == run_id, MC.c.key == key)
                .order_by(MC.c.id)
            ).all()
        return unpack_history(key, (tuple(chunk) for chunk in chunks))

    def search_runs(self, query: RunQuery) -> RunPage:
        offset = _decode_token(query.page_token)
        if not 1 <= query.max_results <= 50_000:
            raise InvalidInput(f"max_results must be between 1 and 50000, got {query.max_results}")
        for experiment_id in query.experiment_ids or ():
            v.check_int64("experiment_ids", experiment_id)
        with self.metadata.read() as conn:
            ids = search_run_ids(conn, query, offset=offset, limit=query.max_results + 1)
            runs = load_runs(conn, ids[: query.max_results], with_environment=False)
        more = len(ids) > query.max_results
        token = _encode_token(offset + query.max_results) if more else None
        return RunPage(tuple(runs), token)

    # artifacts and datasets ----------------------------------------------------------

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        path = v.artifact_path(path)
        with self.metadata.read() as conn:
            self._check_run(conn, run_id)
        blob = self.artifacts.put_stream(source)
        created = now_ms()

        def work(conn: Connection) -> Artifact:
            self._check_run(conn, run_id)
            existing = conn.execute(
                select(A.c.digest, A.c.created_at).where(A.c.run_id == run_id, A.c.path == path)
            ).first()
            if existing is not None:
                if existing.digest != blob.digest:
                    raise Conflict(
                        f"run {run_id} already has a different artifact at {path!r}; "
                        "artifacts are immutable: log it under another path"
                    )
                return Artifact(path, blob.digest, blob.size, existing.created_at)
            conn.execute(
                A.insert().values(
                    run_id=run_id, path=path, digest=blob.digest, size=blob.size, created_at=created
                )
            )
            return Artifact(path, blob.digest, blob.size, created)

        return self.metadata.write(work)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        with self.metadata.read() as conn:
            self._check_run(conn, run_id, allow_deleted=True)
            rows = conn.execute(select(A).where(A.c.run_id == run_id).order_by(A.c.path)).all()
        return [Artifact(r.path, r.digest, r.size, r.created_at) for r in rows]

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        v.run_id(run_id)
        path = v.artifact_path(path)
        with self.metadata.read() as conn:
            row = conn.execute(select(A).where(A.c.run_id == run_id, A.c.path == path)).first()
        if row is None:
            raise NotFound(f"run {run_id!r} has no artifact {path!r}")
        return Artifact(row.path, row.digest, row.size, row.created_at)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self.artifacts.read_bytes(self.get_artifact(run_id, path).digest)

    def download_artifact(self, run_id: str, path: str, dest: str) -> None:
        self.artifacts.download(self.get_artifact(run_id, path).digest, dest)

    def log_dataset(self, run_id: str, dataset: DatasetInput) -> None:
        v.check_name("dataset", dataset.name)
        v.check_key("dataset role", dataset.role)
        if dataset.source is not None:
            v.check_text("dataset source", dataset.source)
        if len(dataset.digest) != 64:
            raise InvalidInput(
                f"dataset digest must be a sha256 hex digest, got {dataset.digest!r}"
            )

        def work(conn: Connection) -> None:
            self._check_run(conn, run_id)
            conn.execute(
                self.metadata.insert(D)
                .values(
                    digest=dataset.digest,
                    schema_json=orjson.dumps(dataset.schema).decode(),
                    num_rows=dataset.num_rows,
                    num_columns=dataset.num_columns,
                    source=dataset.source,
                    created_at=now_ms(),
                )
                .on_conflict_do_nothing()
            )
            existing = conn.execute(
                select(RD.c.dataset_digest).where(
                    RD.c.run_id == run_id, RD.c.name == dataset.name, RD.c.role == dataset.role
                )
            ).first()
            if existing is None:
                conn.execute(
                    RD.insert().values(
                        run_id=run_id,
                        name=dataset.name,
                        role=dataset.role,
                        dataset_digest=dataset.digest,
                        logged_at=now_ms(),
                    )
                )
            elif existing.dataset_digest != dataset.digest:
                raise Conflict(
                    f"run {run_id} already logged a different {dataset.role} dataset named "
                    f"{dataset.name!r}; give this one another name"
                )

        self.metadata.write(work)

    def info(self) -> dict[str, Any]:
        return {
            "mode": "local",
            "db_url": self.metadata.display_url,
            "dialect": self.metadata.dialect,
            "schema_revision": self.metadata.schema_revision(),
            "artifacts": self.artifacts.url,
        }

    def close(self) -> None:
        self.metadata.close()

    # internals -------------------------------------------------------------------------

    def _set_lifecycle(self, table: Table, key: object, deleted: bool, what: str) -> None:
        """Soft delete (or restore) the row of `table` whose id is `key`."""

        def work(conn: Connection) -> None:
            result = conn.execute(
                update(table)
                .where(table.c.id == key)
                .values(
                    lifecycle=DELETED if deleted else ACTIVE,
                    deleted_at=now_ms() if deleted else None,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"{what} does not exist")

        self.metadata.write(work)

    def _check_run(self, conn: Connection, run_id: str, *, allow_deleted: bool = False) -> None:
        v.run_id(run_id)
        cursor = self._sql.run_lifecycle.execute(conn, {"run_id": run_id})
        row = cursor.fetchone()
        cursor.close()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        if row[0] != ACTIVE and not allow_deleted:
            raise Conflict(f"run {run_id} is deleted; restore it before changing it")

    def _insert_params(self, conn: Connection, run_id: str, params: dict[str, str]) -> None:
        for _attempt in range(2):  # twice when another writer inserts the same keys meanwhile
            cursor = self._sql.params_of.execute(conn, {"run_id": run_id})
            existing = {key: value for key, value in cursor.fetchall() if key in params}
            cursor.close()
            for key, old in existing.items():
                if old != params[key]:
                    raise Conflict(
                        f"param {key!r} of run {run_id} is already {old!r}; cannot change it "
                        f"to {params[key]!r} (params are immutable: start a new run to change "
                        "them)"
                    )
            new = [
                {"run_id": run_id, "key": k, "value": val}
                for k, val in params.items()
                if k not in existing
            ]
            if self._sql.insert_param.execute_many(conn, new) == len(new):
                return


class _Statements:
    """The hot-path statements, compiled once for this database's dialect."""

    def __init__(self, metadata: MetadataStore) -> None:
        dialect = metadata.engine.dialect
        self.run_lifecycle = Prepared(
            select(R.c.lifecycle).where(R.c.id == bindparam("run_id")), dialect
        )
        self.experiment = Prepared(
            select(E.c.name, E.c.lifecycle).where(E.c.id == bindparam("id")), dialect
        )
        self.insert_run = Prepared(
            insert_values(
                R,
                [
                    "id",
                    "experiment_id",
                    "name",
                    "status",
                    "lifecycle",
                    "user",
                    "start_time",
                    "parent_id",
                    "environment_digest",
                ],
            ),
            dialect,
        )
        self.finish_run = Prepared(
            update(R)
            .where(R.c.id == bindparam("run_id"))
            .values(status=bindparam("status"), end_time=bindparam("end_time")),
            dialect,
        )
        env = metadata.insert(ENV).values(digest=bindparam("digest"), data=bindparam("data"))
        self.insert_environment = Prepared(env.on_conflict_do_nothing(), dialect)
        tag = metadata.insert(RT).values(
            run_id=bindparam("run_id"), key=bindparam("key"), value=bindparam("value")
        )
        self.upsert_tag = Prepared(
            tag.on_conflict_do_update(
                index_elements=["run_id", "key"], set_={"value": tag.excluded.value}
            ),
            dialect,
        )
        chunk_columns = ["run_id", "key", "count", "steps", "timestamps", "values"]
        run_is_active = exists().where(R.c.id == bindparam("run_id"), R.c.lifecycle == ACTIVE)
        self.insert_chunk = Prepared(
            insert(MC).from_select(
                chunk_columns,
                select(*(bindparam(c, type_=MC.c[c].type) for c in chunk_columns)).where(
                    run_is_active
                ),
            ),
            dialect,
        )
        latest = metadata.insert(LM).values(
            {c: bindparam(c) for c in ("run_id", "key", "value", "step", "timestamp")}
        )
        newer = or_(
            latest.excluded.step > LM.c.step,
            and_(latest.excluded.step == LM.c.step, latest.excluded.timestamp >= LM.c.timestamp),
        )
        self.upsert_latest = Prepared(
            latest.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={
                    "value": latest.excluded.value,
                    "step": latest.excluded.step,
                    "timestamp": latest.excluded.timestamp,
                },
                where=newer,
            ),
            dialect,
        )
        self.params_of = Prepared(
            select(P.c.key, P.c.value).where(P.c.run_id == bindparam("run_id")), dialect
        )
        param = metadata.insert(P).values(
            run_id=bindparam("run_id"), key=bindparam("key"), value=bindparam("value")
        )
        self.insert_param = Prepared(param.on_conflict_do_nothing(), dialect)


def _experiment(row: Any, tags: dict[str, str]) -> Experiment:
    return Experiment(row.id, row.name, row.lifecycle, row.created_at, row.description, tags)


def _environment_record(environment: dict[str, Any] | None) -> tuple[str | None, str | None]:
    if environment is None:
        return None, None
    data = orjson.dumps(environment, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest(), data.decode()


def _encode_token(offset: int) -> str:
    import base64

    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    import base64

    try:
        offset = orjson.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception:
        raise InvalidInput(
            f"invalid page token {token!r}: pass the token a search returned"
        ) from None
    if not isinstance(offset, int) or not 0 <= offset <= v.INT64_MAX:
        raise InvalidInput(f"invalid page token {token!r}")
    return offset
