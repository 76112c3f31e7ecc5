"""The REST API as clients meet it: health, docs, error bodies, artifacts, bind checks."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.errors import IntegrityError, PermissionDenied
from modelyard.server import check_bind_address, create_app
from modelyard.store import ArtifactStore, MetadataStore
from modelyard.tracking._sql import SqlTracking

from conftest import start_server, stop_server

API = "/api/v1"


@pytest.fixture(autouse=True)
def _outside_any_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs capture the git state of the working folder: keep it out of this repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def api(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


@pytest.fixture
def run_id(api: httpx.Client) -> str:
    """A running run in a fresh experiment of the live server."""
    experiment = api.post(f"{API}/experiments", json={"name": f"exp-{uuid.uuid4().hex[:10]}"})
    assert experiment.status_code == 201, experiment.text
    created = api.post(
        f"{API}/runs",
        json={
            "experiment_id": experiment.json()["id"],
            "name": "r",
            "user": "tester",
            "start_time": 1_700_000_000_000,
        },
    )
    assert created.status_code == 201, created.text
    rid: str = created.json()["id"]
    return rid


def error_of(response: httpx.Response, status: int, kind: str) -> str:
    """The message of a JSON error body `{"error": {"type", "message"}}` with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == kind, error
    message: str = error["message"]
    return message


# -- health and docs ---------------------------------------------------------------------


def test_health_says_ok_with_the_version(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": my.__version__}


def test_docs_are_served_as_html(api: httpx.Client) -> None:
    response = api.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text


def test_openapi_schema_lists_the_tracking_routes(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    assert schema["info"]["title"] == "modelyard"
    for path in (
        f"{API}/runs",
        f"{API}/runs/search",
        f"{API}/runs/{{run_id}}/log-batch",
        f"{API}/runs/{{run_id}}/artifacts/{{path}}",
    ):
        assert path in schema["paths"], path


# -- bad requests get a 4xx JSON error that names the field --------------------------------


def test_creating_a_run_without_experiment_id_names_the_missing_field(api: httpx.Client) -> None:
    response = api.post(f"{API}/runs", json={"name": "r", "user": "u", "start_time": 1})
    message = error_of(response, 422, "InvalidInput")
    assert "experiment_id" in message and "required" in message.lower()


def test_a_metric_value_that_is_not_a_number_names_the_field(
    api: httpx.Client, run_id: str
) -> None:
    response = api.post(
        f"{API}/runs/{run_id}/log-batch",
        json={"metrics": [{"key": "auc", "value": "abc", "step": 0, "timestamp": 1}]},
    )
    message = error_of(response, 422, "InvalidInput")
    assert "metrics.0.value" in message
    assert api.get(f"{API}/runs/{run_id}").json()["metrics"] == {}


def test_nan_metric_values_travel_as_the_string_nan(api: httpx.Client, run_id: str) -> None:
    response = api.post(
        f"{API}/runs/{run_id}/log-batch",
        json={"metrics": [{"key": "ece", "value": "NaN", "step": 0, "timestamp": 1}]},
    )
    assert response.status_code == 204, response.text
    assert api.get(f"{API}/runs/{run_id}").json()["metrics"]["ece"]["value"] == "NaN"


def test_a_malformed_filter_is_a_400_that_gives_the_position(api: httpx.Client) -> None:
    response = api.post(f"{API}/runs/search", json={"filter": "metrics.auc >> 0.9"})
    message = error_of(response, 400, "InvalidInput")
    assert "position 12" in message


def test_an_unknown_run_is_a_404_not_found(api: httpx.Client) -> None:
    unknown = uuid.uuid4().hex
    message = error_of(api.get(f"{API}/runs/{unknown}"), 404, "NotFound")
    assert unknown in message


def test_changing_a_param_is_a_409_conflict(api: httpx.Client, run_id: str) -> None:
    first = api.post(f"{API}/runs/{run_id}/log-batch", json={"params": {"lr": "0.1"}})
    assert first.status_code == 204, first.text
    again = api.post(f"{API}/runs/{run_id}/log-batch", json={"params": {"lr": "0.1"}})
    assert again.status_code == 204, again.text
    changed = api.post(f"{API}/runs/{run_id}/log-batch", json={"params": {"lr": "0.2"}})
    message = error_of(changed, 409, "Conflict")
    assert "'lr'" in message
    assert api.get(f"{API}/runs/{run_id}").json()["params"] == {"lr": "0.1"}


def test_an_unknown_route_is_a_json_404(api: httpx.Client) -> None:
    error_of(api.get(f"{API}/no-such-thing"), 404, "NotFound")


def _offset_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


TOO_BIG = 10**30


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/runs",
            {"experiment_id": TOO_BIG, "name": "r", "user": "u", "start_time": 1},
            "experiment_id",
        ),
        (
            "POST",
            "/runs",
            {"experiment_id": 1, "name": "r", "user": "u", "start_time": TOO_BIG},
            "start_time",
        ),
        ("POST", "/runs/search", {"experiment_ids": [TOO_BIG]}, "experiment_ids"),
        ("POST", "/runs/search", {"page_token": _offset_token(2**63)}, "page token"),
        ("POST", "/runs/search", {"filter": f"attributes.start_time > {TOO_BIG}"}, "filter"),
        ("GET", f"/experiments/{TOO_BIG}", None, "experiment"),
    ],
    ids=[
        "run-experiment-id",
        "run-start-time",
        "search-experiment-ids",
        "page-token",
        "filter-integer",
        "experiment-ref",
    ],
)
def test_integers_beyond_64_bits_are_a_4xx_not_a_500(
    api: httpx.Client, method: str, path: str, body: Any, field: str
) -> None:
    response = api.request(method, f"{API}{path}", json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert field in response.json()["error"]["message"]


# -- arbitrary bodies never crash the server, on SQLite and PostgreSQL ---------------------


@pytest.fixture
def fresh_api(db_url: str) -> Iterator[TestClient]:
    """The app over a fresh metadata DB (SQLite or PostgreSQL) with one experiment, id 1."""
    backend = SqlTracking(MetadataStore(db_url), ArtifactStore(f"memory://{uuid.uuid4().hex}"))
    with TestClient(create_app(backend), raise_server_exceptions=False) as client:
        assert client.post(f"{API}/experiments", json={"name": "e"}).status_code == 201
        yield client


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
run_bodies = st.fixed_dictionaries(
    {},
    optional={
        "experiment_id": st.integers() | json_values,
        "name": st.text(max_size=20) | json_values,
        "user": st.text(max_size=20),
        "start_time": st.integers(),
        "tags": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        "parent_id": st.text(max_size=32) | st.none(),
        "environment": json_values,
    },
)
search_bodies = st.fixed_dictionaries(
    {},
    optional={
        "experiment_ids": st.lists(st.integers(), max_size=3) | json_values,
        "filter": st.text(max_size=40)
        | st.sampled_from(
            [
                "metrics.auc > 0.5",
                "params.a = 'x'",
                "tags.t like '%a%'",
                "attributes.status = 'x'",
                "metrics.auc > 1 and (",
                "attributes.start_time < 5",
            ]
        ),
        "order_by": st.lists(
            st.text(max_size=20)
            | st.sampled_from(["metrics.auc desc", "attributes.start_time", "params.a asc"]),
            max_size=2,
        ),
        "max_results": st.integers(),
        "page_token": st.text(max_size=20) | st.none(),
        "view": st.sampled_from(["active", "deleted", "all"]) | st.text(max_size=5),
    },
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=run_bodies | json_values)
def test_arbitrary_run_bodies_never_get_a_5xx(fresh_api: TestClient, body: Any) -> None:
    response = fresh_api.post(f"{API}/runs", json=body)
    assert response.status_code < 500, (body, response.text)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=search_bodies | json_values)
def test_arbitrary_search_bodies_never_get_a_5xx(fresh_api: TestClient, body: Any) -> None:
    response = fresh_api.post(f"{API}/runs/search", json=body)
    assert response.status_code < 500, (body, response.text)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/experiments", {"name": "a\x00b"}),
        ("POST", "/runs", {"experiment_id": 1, "name": "a\x00b", "user": "u", "start_time": 1}),
        ("POST", "/runs/search", {"filter": "params.a = '\x00'"}),
        ("GET", "/runs/a%00b", None),
    ],
    ids=["experiment-name", "run-name", "filter-literal", "run-id"],
)
def test_nul_characters_never_get_a_5xx_on_any_database(
    fresh_api: TestClient, method: str, path: str, body: Any
) -> None:
    response = fresh_api.request(method, f"{API}{path}", json=body)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.json()["error"]["type"] in {"InvalidInput", "NotFound"}


# -- artifacts -------------------------------------------------------------------------------


def test_uploaded_artifact_downloads_byte_for_byte_with_its_digest(
    api: httpx.Client, run_id: str
) -> None:
    content = bytes(range(256)) * 50 + uuid.uuid4().bytes
    digest = hashlib.sha256(content).hexdigest()
    put = api.put(
        f"{API}/runs/{run_id}/artifacts/data/blob.bin",
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 201, put.text
    assert put.json()["digest"] == digest and put.json()["size"] == len(content)
    got = api.get(f"{API}/runs/{run_id}/artifacts/data/blob.bin")
    assert got.status_code == 200
    assert got.content == content
    assert got.headers["X-Modelyard-Digest"] == digest
    listed = api.get(f"{API}/runs/{run_id}/artifacts").json()
    assert [(a["path"], a["digest"]) for a in listed] == [("data/blob.bin", digest)]


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A `modelyard server` whose home (and so whose blobs) the test can reach."""
    home = tmp_path_factory.mktemp("own-server")
    process, url = start_server(home)
    yield home, url
    stop_server(process)


@pytest.fixture
def remote_sdk(own_server: tuple[Path, str], tmp_path: Path) -> Iterator[Path]:
    """The SDK in remote mode on `own_server`; gives the server's home."""
    home, url = own_server
    my.configure(tracking_uri=url)
    yield home
    my.configure(home=tmp_path / "unused")


@pytest.mark.parametrize("tamper", ["flip-a-byte", "truncate", "append"])
def test_a_tampered_blob_fails_the_remote_download_with_integrity_error(
    remote_sdk: Path, tmp_path: Path, tamper: str
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(uuid.uuid4().bytes * 64)
    with my.start_run("tamper", tamper) as run:
        artifact = run.log_artifact(source)
    blob = remote_sdk / "artifacts" / "blobs" / "sha256" / artifact.digest[:2] / artifact.digest
    data = blob.read_bytes()
    if tamper == "flip-a-byte":
        blob.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    elif tamper == "truncate":
        blob.write_bytes(data[:-10])
    else:
        blob.write_bytes(data + b"extra")
    dest = tmp_path / "downloaded.bin"
    with pytest.raises(IntegrityError):
        my.download_artifact(run.id, "model.bin", dest)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


# -- bind address --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_addresses_may_be_bound_without_authentication(host: str) -> None:
    check_bind_address(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::", ""])
def test_other_addresses_are_refused_until_there_is_authentication(host: str) -> None:
    with pytest.raises(PermissionDenied, match="authentication"):
        check_bind_address(host)
