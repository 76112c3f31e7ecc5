"""The serving part of `modelyard demo`: the champion as an HTTP service on 127.0.0.1, real
requests over three protocols, feedback, an alias move and its rollback, a batch score."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.cli._output import console, print_table

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.registry import Registry
    from modelyard.tracking import Tracker


def serve_and_score(
    tracker: Tracker,
    registry: Registry,
    settings: Settings,
    model: str,
    x_test: pd.DataFrame,
    y_test: pd.Series,
) -> None:
    from modelyard.tracking._environment import current_user

    with serving(settings, model) as http:
        base = str(http.base_url).rstrip("/")
        console.print(f"\n[bold]serving[/bold] {model}@champion on {base}")
        ids = _predict(http, model, x_test, y_test)
        _feedback(http, ids, y_test)
        user = current_user()
        before = registry.get_model(model).aliases["champion"]
        challenger = registry.get_model(model).aliases["challenger"]
        registry.set_alias(model, "champion", challenger, actor=user, reason="demo: swap")
        _show_swap(http, model, x_test, "moved champion to the challenger")
        registry.rollback(model, "champion", actor=user, reason="demo: roll back")
        _show_swap(http, model, x_test, f"rolled champion back to version {before}")
        _metrics(http, model)
    _score(tracker, registry, settings, model, x_test)


@contextmanager
def serving(settings: Settings, model: str) -> Iterator[httpx.Client]:
    """`model@champion` served in this process, and a client of it (see `served`)."""
    from modelyard.serving import ServeOptions, create_app

    app = create_app([f"{model}@champion"], settings=settings, options=ServeOptions())
    with served(app) as http:
        yield http


@contextmanager
def served(app: Any) -> Iterator[httpx.Client]:
    """`app` served in this process on a free 127.0.0.1 port, and a client of it; on exit the
    server stops, which writes out its prediction log."""
    import httpx
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    try:
        _wait_ready(server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(server: Any) -> None:
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the demo server did not start in 30 s")
        time.sleep(0.05)


def _predict(http: httpx.Client, model: str, x_test: pd.DataFrame, y_test: pd.Series) -> list[str]:
    rows = x_test.iloc[:5]
    v1 = http.post(f"/v1/models/{model}:predict", json={"instances": rows.to_dict("records")})
    answer = v1.json()
    print_table(
        f"POST /v1/models/{model}:predict (version {answer['model_version']})",
        ["prediction id", "predicted", "P(benign)", "actual"],
        [
            (pid, label, f"{proba[1]:.3f}", int(actual))
            for pid, label, proba, actual in zip(
                answer["prediction_ids"],
                answer["predictions"],
                answer["probabilities"],
                y_test.iloc[:5],
                strict=True,
            )
        ],
    )
    one = x_test.iloc[:1]
    tensor = {"name": "input-0", "shape": [1, one.shape[1]], "datatype": "FP64",
              "data": one.to_numpy().ravel().tolist()}  # fmt: skip
    v2 = http.post(f"/v2/models/{model}/infer", json={"inputs": [tensor]}).json()
    console.print(
        f"  OIP v2 /infer: {[(o['name'], o['data']) for o in v2['outputs']]}".replace("'", "")
    )
    split = {"columns": list(one.columns), "data": one.to_numpy().tolist()}
    mlflow = http.post("/invocations", json={"dataframe_split": split}).json()
    console.print(f"  MLflow /invocations: predictions {mlflow['predictions']}")
    wrong = {**one.iloc[0].to_dict(), "mean radius": "big"}
    bad = http.post(f"/v1/models/{model}:predict", json={"instances": [wrong]})
    console.print(f"  a bad request gets {bad.status_code}: {bad.json()['error']}")
    ids: list[str] = answer["prediction_ids"]
    return ids


def _feedback(http: httpx.Client, ids: list[str], y_test: pd.Series) -> None:
    items = [{"prediction_id": i, "label": int(y)} for i, y in zip(ids, y_test, strict=False)]
    stored = http.post("/v1/feedback", json={"feedback": items})
    again = http.post("/v1/feedback", json=items[0])
    console.print(
        f"  POST /v1/feedback: {stored.status_code}, {len(stored.json()['feedback'])} labels "
        f"stored; the same label again gets {again.status_code}"
    )


def _show_swap(http: httpx.Client, model: str, x_test: pd.DataFrame, what: str) -> None:
    loaded = http.post(f"/v2/repository/models/{model}/load").json()
    answer = http.post(
        f"/v1/models/{model}:predict", json={"instances": x_test.iloc[:1].to_dict("records")}
    ).json()
    console.print(
        f"  {what}: the server now answers with version {answer['model_version']} "
        f"(swapped: {loaded['swapped']}, no restart)"
    )


def _metrics(http: httpx.Client, model: str) -> None:
    lines = [
        line
        for line in http.get("/metrics").text.splitlines()
        if line.startswith("modelyard_requests_total{") and f'model="{model}"' in line
    ]
    console.print("  GET /metrics:\n    " + "\n    ".join(lines))


def _score(
    tracker: Tracker, registry: Registry, settings: Settings, model: str, x_test: pd.DataFrame
) -> None:
    import pandas as pd

    from modelyard.serving._scoring import ScoreJob, run_job

    folder = Path(tempfile.mkdtemp(prefix="modelyard-demo-"))
    source = folder / "to_score.parquet"
    bad = x_test.iloc[:2].copy()
    bad["mean radius"] = None  # rows the signature refuses go to a rejects file
    pd.concat([x_test, bad], ignore_index=True).to_parquet(source)
    job = ScoreJob(model=f"{model}@champion", source=source, destination=folder / "scored.parquet")
    report = run_job(job, tracker=tracker, registry=registry,
                     cache_dir=settings.home / "cache" / "models")  # fmt: skip
    console.print(f"\n[bold]batch[/bold] modelyard score: {report.summary()}")
    scored = pd.read_parquet(report.destination)
    console.print(scored.head(3).to_string(index=False))
