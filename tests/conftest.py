"""Shared fixtures: real stores on SQLite and PostgreSQL, and a live tracking server.

Service URLs come from the environment (defaults: the local services). Outside CI a
missing service skips its tests with the reason; in CI (`CI=true`) it fails them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

import modelyard as my

PG_URL = os.environ.get(
    "MODELYARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/modelyard_test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(what: str, why: object) -> None:
    """Skip (locally) or fail (in CI) a test whose service is unreachable."""
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_database() -> str:
    """The URL of a PostgreSQL database for tests, created if needed."""
    from sqlalchemy.engine import make_url

    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - [postgres] extra missing
        service_missing("PostgreSQL driver", exc)
    url = make_url(PG_URL)
    try:
        with psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            dbname="postgres",
            password=url.password,
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{url.database}"')
    except psycopg.Error as exc:
        service_missing(f"PostgreSQL at {url.render_as_string(hide_password=True)}", exc)
    return PG_URL


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(pg_database)
    params = dict(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        dbname=url.database,
        password=url.password,
        autocommit=True,
    )
    with psycopg.connect(**params) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    with psycopg.connect(**params) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata database URL, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    home: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A `modelyard server` subprocess on 127.0.0.1, ready to serve."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    env.pop("MODELYARD_TRACKING_URI", None)
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "--home", str(home), "server", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (home / "server.log").read_text(errors="replace")
            raise RuntimeError(f"modelyard server exited early: {output}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("modelyard server did not become ready in 30 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def live_server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The home folder of `live_server` (its database and artifacts), for tests that
    reach behind the server into its stores."""
    return tmp_path_factory.mktemp("server-home")


@pytest.fixture(scope="session")
def live_server(live_server_home: Path) -> Iterator[str]:
    """URL of one live `modelyard server` on 127.0.0.1 for the whole session."""
    process, url = start_server(live_server_home)
    yield url
    stop_server(process)


@pytest.fixture(params=["local-sqlite", "local-postgresql", "remote"])
def sdk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModuleType]:
    """`modelyard` on local stores, or on the live server (loaded models cached in `home`)."""
    if request.param == "local-sqlite":
        my.configure(home=tmp_path / "home")
    elif request.param == "local-postgresql":
        my.configure(home=tmp_path / "home", db_url=request.getfixturevalue("pg_url"))
    else:
        my.configure(home=tmp_path / "home", tracking_uri=request.getfixturevalue("live_server"))
    yield my
    my.configure(home=tmp_path / "unused")
