"""Settings: built once at the edge (CLI, server, `modelyard.configure`) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where modelyard keeps its state, from arguments, then `MODELYARD_*`, then defaults.

    With only `home` set, the metadata DB is `sqlite:///<home>/modelyard.db` and
    artifacts live in `<home>/artifacts`. `tracking_uri` (an `http(s)://` URL) sends
    tracking calls to a `modelyard server` instead of the local stores.
    """

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="forbid", frozen=True)

    home: Path = Field(default=Path(".modelyard"))
    db_url: str | None = None
    artifacts_url: str | None = None
    redis_url: str | None = None
    # where online feature values live: `sqlite:///…` or `redis://…`; unset: Redis at
    # `redis_url` when that is set, else SQLite at `<home>/online.db`
    online_url: str | None = None
    tracking_uri: str | None = None
    sqlite_busy_timeout_s: float = Field(default=60.0, gt=0)
    gc_grace_s: float = Field(default=3600.0, ge=0)
    # where served predictions are recorded: the metadata database, or Parquet files under
    # `prediction_log_url` (default `<home>/predictions`); feedback always goes to the database
    prediction_log: Literal["db", "parquet"] = "db"
    prediction_log_url: str | None = None

    @field_validator("tracking_uri")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"tracking_uri must be an http:// or https:// URL of a modelyard server, "
                f"got {value!r}; leave it unset to use the local stores"
            )
        return value.rstrip("/") if value else value

    @property
    def resolved_db_url(self) -> str:
        """The metadata DB URL, defaulting to a SQLite file under `home`."""
        return self.db_url or f"sqlite:///{(self.home / 'modelyard.db').absolute()}"

    @property
    def resolved_prediction_log_url(self) -> str:
        """Where the Parquet prediction log lives, defaulting to a folder under `home`."""
        return self.prediction_log_url or (self.home / "predictions").absolute().as_uri()

    @property
    def resolved_artifacts_url(self) -> str:
        """The artifact store URL, defaulting to a folder under `home`."""
        return self.artifacts_url or (self.home / "artifacts").absolute().as_uri()
