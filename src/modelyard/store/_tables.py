"""The metadata schema: one typed ORM model per table.

Hot paths write through Core statements on these tables (no unit-of-work overhead);
Alembic migrations in `store/migrations/versions` must produce exactly this schema
(a test compares them).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid).
_BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    lifecycle: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class EnvironmentRow(Base):
    """A captured run environment, stored once per distinct content."""

    __tablename__ = "environments"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index(None, "experiment_id", "start_time"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    lifecycle: Mapped[str] = mapped_column(String(16))
    user: Mapped[str] = mapped_column(String(256))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    environment_digest: Mapped[str | None] = mapped_column(ForeignKey("environments.digest"))
    note: Mapped[str | None] = mapped_column(Text)


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ParamRow(Base):
    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricChunkRow(Base):
    """Metric points logged together under one key, packed as little-endian arrays.

    One row per key per logging call instead of one row per point keeps bulk
    logging fast and the database small; NaN and infinities are stored as they are.
    """

    __tablename__ = "metric_chunks"
    __table_args__ = (Index(None, "run_id", "key"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    count: Mapped[int] = mapped_column(Integer)
    steps: Mapped[bytes] = mapped_column(LargeBinary)  # int64
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)  # int64, Unix ms
    values: Mapped[bytes] = mapped_column(LargeBinary)  # float64


class LatestMetricRow(Base):
    """The final point of each metric (highest step, then latest timestamp), for search.

    A NULL value stands for NaN, which SQLite cannot store and which must never match
    a filter.
    """

    __tablename__ = "latest_metrics"
    __table_args__ = (Index(None, "key", "value"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class DatasetRow(Base):
    """A dataset identified by the hash of its content, with its schema."""

    __tablename__ = "datasets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    schema_json: Mapped[str] = mapped_column(Text)
    num_rows: Mapped[int | None] = mapped_column(BigInteger)
    num_columns: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class RunDatasetRow(Base):
    __tablename__ = "run_datasets"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_digest: Mapped[str] = mapped_column(ForeignKey("datasets.digest"), index=True)
    logged_at: Mapped[int] = mapped_column(BigInteger)


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    protected_aliases: Mapped[str] = mapped_column(Text)  # JSON list of alias names
    latest_version: Mapped[int] = mapped_column(Integer)  # numbering counter, never reused
    created_at: Mapped[int] = mapped_column(BigInteger)


class RegisteredModelTagRow(Base):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    manifest_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    flavor: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AliasRow(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class AliasEventRow(Base):
    """Every alias change, append-only: who moved which alias from where to where, and why."""

    __tablename__ = "model_alias_events"
    __table_args__ = (Index(None, "model_id", "alias", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # set, move, delete, rollback
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


class ApprovalRow(Base):
    __tablename__ = "model_approvals"
    __table_args__ = (Index(None, "model_id", "version", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))  # approved, rejected
    approver: Mapped[str] = mapped_column(String(256))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


def table_of(model: type[Base]) -> Table:
    """The Core table of an ORM model, typed for Core statements."""
    return cast(Table, model.__table__)


# Every (table, column) holding an artifact-store digest: what `gc` must keep.
BLOB_REFERENCES = (
    (table_of(ArtifactRow), "digest"),
    (table_of(ModelVersionRow), "manifest_digest"),
)


class PredictionLogRow(Base):
    """One served prediction (the prediction log in the database); `inputs`/`outputs` are JSON."""

    __tablename__ = "predictions"
    __table_args__ = (Index(None, "model", "version", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # time-ordered
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[float] = mapped_column(Double)
    inputs: Mapped[str] = mapped_column(Text)
    outputs: Mapped[str] = mapped_column(Text)
    # set when a deployment answered: its name, the variant, and for a mirrored request
    # (shadow, challenger) the id of the prediction the client got
    deployment: Mapped[str | None] = mapped_column(String(256))
    variant: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[str | None] = mapped_column(String(32))


class FeedbackRow(Base):
    """The ground truth sent back for one prediction (at most one per prediction)."""

    __tablename__ = "feedback"
    __table_args__ = (Index(None, "model", "version", "at"),)

    # no foreign key: the prediction may live in Parquet files instead of `predictions`
    prediction_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)  # JSON
    at: Mapped[int] = mapped_column(BigInteger)


class MonitorRow(Base):
    """A stored monitor: which model's traffic, cut into which windows, checked how."""

    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    model: Mapped[str] = mapped_column(String(256))
    alias: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int | None] = mapped_column(Integer)
    window_ms: Mapped[int | None] = mapped_column(BigInteger)  # time windows, or
    window_rows: Mapped[int | None] = mapped_column(Integer)  # windows of so many predictions
    checks: Mapped[str] = mapped_column(Text)  # JSON list of check specs
    reference: Mapped[str] = mapped_column(Text)  # JSON: what current windows are compared to
    reference_data: Mapped[bytes | None] = mapped_column(LargeBinary)  # Parquet of a dataset
    label_delay_ms: Mapped[int] = mapped_column(BigInteger)  # wait for labels before judging
    schedule_ms: Mapped[int | None] = mapped_column(BigInteger)  # run every so often
    cursor: Mapped[str] = mapped_column(Text)  # JSON: where the next window starts
    state: Mapped[str] = mapped_column(Text)  # JSON: concept detectors' state and feedback cursor
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_run_at: Mapped[int | None] = mapped_column(BigInteger)


class MonitorWindowRow(Base):
    """One evaluated window of a monitor, with the full evidence of every check as JSON."""

    __tablename__ = "monitor_windows"
    __table_args__ = (Index(None, "monitor_id", "start"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    start: Mapped[int] = mapped_column(BigInteger)  # Unix ms, inclusive
    end: Mapped[int] = mapped_column(BigInteger)  # Unix ms, exclusive
    version: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    labels: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[str] = mapped_column(Text)  # JSON: {check: result dict}
    run_at: Mapped[int] = mapped_column(BigInteger)


class MonitorResultRow(Base):
    """One number of one check for one column (or "" for the whole window): the time series."""

    __tablename__ = "monitor_results"
    __table_args__ = (Index(None, "monitor_id", "check", "metric", "window_start"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    window_id: Mapped[int] = mapped_column(
        ForeignKey("monitor_windows.id", ondelete="CASCADE"), index=True
    )
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    window_start: Mapped[int] = mapped_column(BigInteger)
    check: Mapped[str] = mapped_column(String(64))
    column: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Double)
    lower: Mapped[float | None] = mapped_column(Double)
    upper: Mapped[float | None] = mapped_column(Double)
    flagged: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(32))


class AlertRuleRow(Base):
    """A condition over a monitor's results, and where its alerts go."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    check: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(16))  # value, lower or upper
    column: Mapped[str | None] = mapped_column(String(256))  # None: the window's own ("")
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Double)
    for_windows: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    cooldown_ms: Mapped[int] = mapped_column(BigInteger)
    channels: Mapped[str] = mapped_column(Text)  # JSON list of channel specs
    action: Mapped[str | None] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16))  # ok, firing
    streak: Mapped[int] = mapped_column(Integer)  # consecutive windows meeting the condition
    last_fired_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AlertEventRow(Base):
    """An alert firing or resolving, with the value and window that caused it."""

    __tablename__ = "alert_events"
    __table_args__ = (Index(None, "rule_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # firing, resolved
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Double)
    window_id: Mapped[int | None] = mapped_column(
        ForeignKey("monitor_windows.id", ondelete="SET NULL")
    )
    window_start: Mapped[int | None] = mapped_column(BigInteger)
    window_end: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


class AlertDeliveryRow(Base):
    """One attempt to deliver an alert event over one channel."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index(None, "event_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))  # log, webhook, callback
    target: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


class DeploymentRow(Base):
    """A named endpoint over versions of one model, with a strategy and its live state.

    Servers poll `revision`: every change (split, step, pause, promotion, rollback) bumps it,
    so a change made anywhere reaches every worker within their refresh period.
    """

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    model: Mapped[str] = mapped_column(String(256))
    strategy: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str] = mapped_column(String(128))  # the alias a promotion moves
    variants: Mapped[str] = mapped_column(Text)  # JSON list of {name, role, ref, version}
    split: Mapped[str] = mapped_column(Text)  # JSON {variant: share of live traffic}
    policy: Mapped[str] = mapped_column(Text)  # JSON: the strategy's options
    status: Mapped[str] = mapped_column(String(16))  # running, paused, promoted, rolled_back
    step: Mapped[int] = mapped_column(Integer)  # canary step; 0 otherwise
    step_started_at: Mapped[int] = mapped_column(BigInteger)
    revision: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class DeploymentEventRow(Base):
    """Every change and decision of a deployment, append-only, with its evidence."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index(None, "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # created, step, promote, rollback, pause, ...
    actor: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    split: Mapped[str] = mapped_column(Text)  # JSON: the split after the event
    evidence: Mapped[str] = mapped_column(Text)  # JSON: counts, statistics, p-values, intervals
    at: Mapped[int] = mapped_column(BigInteger)


class FeatureDefinitionRow(Base):
    """One version of an entity, feature view or feature service, as applied; append-only.

    A definition whose spec changes gets the next version; the latest version is the one in
    force. `sha256` is of the canonical spec, so re-applying an unchanged module adds nothing.
    """

    __tablename__ = "feature_definitions"
    __table_args__ = (UniqueConstraint("kind", "name", "version"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # entity, view, service
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)  # JSON
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)


class FeatureDeadLetterRow(Base):
    """A streamed message ingestion could not use, kept whole with the reason: nothing lost."""

    __tablename__ = "feature_dead_letters"
    __table_args__ = (Index(None, "view", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    view: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(512))  # e.g. redis:stream/1700000000000-0
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)


class DatasetVersionRow(Base):
    """One version of a named dataset: its content digest (the one a run's `log_dataset`
    records), inferred schema with ranges, quality profile and what it was derived from."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("name", "version"), Index(None, "digest"))

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    num_rows: Mapped[int] = mapped_column(BigInteger)
    num_columns: Mapped[int] = mapped_column(Integer)
    schema_json: Mapped[str] = mapped_column(Text)  # JSON: signature columns and ranges
    profile: Mapped[str] = mapped_column(Text)  # JSON: `Profile.to_dict()`
    lineage: Mapped[str] = mapped_column(Text)  # JSON object: what it was derived from
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)  # JSON {key: value}
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)
