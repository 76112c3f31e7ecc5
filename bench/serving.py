"""Serving benchmark: modelyard's model server against MLflow's and two bare FastAPI floors.

    .venv/bin/python bench/serving.py [--skip-mlflow] [--skip-batch] [--duration S] [--quick]

One scikit-learn logistic regression (breast cancer, 30 named features) served four ways
on 127.0.0.1, one after the other, each loaded by `wrk` (2 threads, 32 connections) with
the same single-row MLflow-style JSON request, after a warm-up: (1) a FastAPI endpoint
returning a constant, (2) a FastAPI endpoint calling `predict_proba`, (3) `mlflow models
serve` from MLflow's venv (`bench/.venvs/mlflow`, shared with `tracking.py`), (4)
`modelyard serve` with prediction logging on. Then batch scoring of a Parquet file: a
plain pandas loop against modelyard's `score`, in-process and on a local Dask cluster.
Results go to stdout as tables and to `bench/.work/serving.json`; server logs stay in
`bench/.work/serving/`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from registry import library_versions, match_libraries
from tracking import BENCH, MLFLOW_VENV, WorkerError, mlflow_side, render, save_report, worker_env

RESULTS_FILE = BENCH / ".work" / "serving.json"
WORK = BENCH / ".work" / "serving"
HOST = "127.0.0.1"
MODEL = "bc"
THREADS, CONNECTIONS, WARMUP_S = 2, 32, 2
READY_TIMEOUT_S = 180
WORKER_TIMEOUT_S = 1800
WORKERS = 1  # server processes, for every server
PROBABILITY_TOLERANCE = 1e-3  # ONNX Runtime computes in float32


@dataclass(frozen=True)
class Sizes:
    """How long each server is loaded and how many rows the batch scores."""

    duration_s: int = 10
    rows: int = 1_000_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(duration_s=3, rows=100_000)


# ---- the servers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """One server under test: how to start it and how to tell it is ready."""

    key: str
    label: str
    command: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=worker_env)
    workers: int = WORKERS
    info_path: str | None = None  # answers with the runtime the model is served on
    metrics_path: str | None = None  # Prometheus text with the prediction log's drops


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def floor_server(key: str, app: str, label: str) -> Server:
    """A bare FastAPI app of `_serving_apps.py` under uvicorn, with uvicorn's defaults."""
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH)]
    command += ["--workers", str(WORKERS), f"_serving_apps:{app}"]
    return Server(key, label, command, "/health")


def mlflow_server(version: str, tracking_uri: str) -> Server:
    """`mlflow models serve` on the registered model; MLflow 3 runs it under uvicorn."""
    bin_dir = MLFLOW_VENV / "bin"
    env = worker_env()
    env.update(
        # MLflow starts `uvicorn` through the shell: it must be the one of MLflow's venv.
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_TRACKING_URI=tracking_uri,
        # MLflow refuses to deserialize any model, skops included, unless this is set.
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
    )
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion"]
    command += ["--env-manager", "local", "--workers", str(WORKERS)]
    return Server("mlflow", f"(3) mlflow models serve {version}", command, "/ping", env)


def modelyard_server(version: str, home: Path) -> Server:
    """`modelyard serve` on the champion, prediction logging on (its default)."""
    command = [str(Path(sys.executable).parent / "modelyard"), "--home", str(home), "serve"]
    command += [f"{MODEL}@champion", "--workers", str(WORKERS)]
    label = f"(4) modelyard serve {version}, logging on"
    ready, info = "/v2/health/ready", f"/v2/models/{MODEL}"
    return Server("modelyard", label, command, ready, info_path=info, metrics_path="/metrics")


class ServerError(RuntimeError):
    """A server did not start, or did not answer the check request correctly."""


@contextmanager
def running(server: Server, work: Path = WORK) -> Iterator[str]:
    """Start `server` on a free port of 127.0.0.1 and yield its URL; always stop it after.
    Its log goes to `work`, its working folder."""
    import httpx

    port = free_port()
    command = [*server.command, "--host", HOST, "--port", str(port)]
    log_path = work / f"{server.key}.log"
    url = f"http://{HOST}:{port}"
    with log_path.open("w") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        # Its own session, so the whole tree (MLflow's CLI starts uvicorn) can be stopped.
        process = subprocess.Popen(
            command,
            cwd=work,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise ServerError(
                    f"exited {process.returncode} before it was ready; see {log_path}"
                )
            try:
                if httpx.get(url + server.ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"not ready after {READY_TIMEOUT_S} s; see {log_path}")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it does not stop in 10 s."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# ---- the request and the check -------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """The one body every server gets, and the probabilities the model gives for it."""

    body: bytes
    probabilities: list[float]


def make_request() -> Request:
    """One row of the training data, as MLflow's `dataframe_split` JSON."""
    from _serving_worker import fitted_model, request_row

    model, features, _ = fitted_model()
    row = request_row(model, features)
    split = {"columns": list(features.columns), "data": [features.iloc[row].tolist()]}
    body = json.dumps({"dataframe_split": split}).encode()
    return Request(body, model.predict_proba(features.iloc[row : row + 1])[0].tolist())


def numbers(payload: Any) -> list[float]:
    """Every number in a JSON document, depth first."""
    if isinstance(payload, bool):
        return []
    if isinstance(payload, int | float):
        return [float(payload)]
    if isinstance(payload, dict):
        payload = list(payload.values())
    if isinstance(payload, list):
        return [n for item in payload for n in numbers(item)]
    return []


def check_answer(url: str, request: Request) -> str:
    """POST the request once: status 200 and the model's answer (label or probabilities)."""
    import httpx

    headers = {"Content-Type": "application/json"}
    response = httpx.post(f"{url}/invocations", content=request.body, headers=headers, timeout=30)
    if response.status_code != 200 or not right_answer(response.json(), request):
        label = int(request.probabilities[1] > 0.5)
        raise ServerError(
            f"answered {response.status_code} {response.text[:300]!r}; expected the label "
            f"{label} or the probabilities {[round(p, 4) for p in request.probabilities]}"
        )
    return response.text


def right_answer(payload: Any, request: Request) -> bool:
    """`predictions` holds the label, or probabilities matching the model's."""
    found = numbers(payload.get("predictions") if isinstance(payload, dict) else payload)
    label = float(request.probabilities[1] > 0.5)
    return found == [label] or (
        bool(found)
        and all(
            any(abs(n - p) < PROBABILITY_TOLERANCE for p in request.probabilities) for n in found
        )
    )


def runtime_of(url: str, server: Server) -> str | None:
    """The runtime the server says it runs the model on, when it says."""
    import httpx

    if server.info_path is None:
        return None
    try:
        parameters = httpx.get(url + server.info_path, timeout=5).json().get("parameters") or {}
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    runtime = parameters.get("runtime") if isinstance(parameters, dict) else None
    return str(runtime) if runtime is not None else None


def log_dropped(url: str, server: Server) -> int | None:
    """Prediction log rows the server dropped (its queue was full), when it says."""
    import httpx

    if server.metrics_path is None:
        return None
    text = httpx.get(url + server.metrics_path, timeout=5).text
    pattern = r"^modelyard_prediction_log_dropped_rows_total(?:\{.*\})? (\S+)$"
    counts = re.findall(pattern, text, re.M)
    return int(sum(float(count) for count in counts))


# ---- load ----------------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests_per_s: float
    p50_s: float
    p99_s: float
    requests: int
    non_2xx: int
    socket_errors: int  # connect, read, write and timeout (no answer within wrk's 2 s)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk not found: install wrk (apt-get install wrk)")
    return path


def load(url: str, script: Path, seconds: int) -> tuple[Load, str]:
    """`wrk` against `url/invocations` for `seconds`; the figures and wrk's own output."""
    command = [wrk_path(), f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script), f"{url}/invocations"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerError(f"wrk exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse_wrk(done.stdout), done.stdout


def parse_wrk(output: str) -> Load:
    def duration(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        if found is None:
            raise ServerError(f"no {percent}% latency in wrk's output:\n{output}")
        return float(found[1]) * _UNITS[found[2]]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise ServerError(f"no request rate in wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Load(
        float(rate[1]),
        duration("50"),
        duration("99"),
        int(total[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def measure(
    server: Server, request: Request, script: Path, sizes: Sizes, work: Path = WORK
) -> dict[str, Any]:
    """Start, check, warm up and load one server; a failure is reported, not raised. Its log
    and wrk's output go to `work`."""
    import httpx

    print(f"  {server.label}", file=sys.stderr)
    try:
        with running(server, work) as url:
            answer = check_answer(url, request)
            runtime = runtime_of(url, server)
            load(url, script, WARMUP_S)
            figures, output = load(url, script, sizes.duration_s)
            check_answer(url, request)  # still right after the load
            dropped = log_dropped(url, server)
    except (ServerError, httpx.HTTPError, ValueError) as exc:  # ValueError: not JSON
        print(f"    FAILED: {exc}", file=sys.stderr)
        return {"label": server.label, "workers": server.workers, "failed": str(exc)}
    (work / f"{server.key}.wrk.txt").write_text(output)
    return {
        "label": server.label,
        "workers": server.workers,
        "runtime": runtime,
        "log_dropped": dropped,
        "answer": answer[:300],
        **asdict(figures),
        "errors": figures.errors,
    }


# ---- batch ---------------------------------------------------------------------------


def run_worker(python: str, worker: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One step in a fresh process; its JSON answer, or WorkerError with its stderr."""
    done = subprocess.run(
        [python, str(worker), json.dumps(spec)],
        cwd=WORK,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise WorkerError(f"{worker.name} {spec['workload']!r} exited {done.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def project_worker(spec: dict[str, Any]) -> dict[str, Any]:
    return run_worker(sys.executable, BENCH / "_serving_worker.py", spec)


def batch_input(rows: int) -> Path:
    """The batch input file, written once per size and reused."""
    import pyarrow.parquet as pq

    path = BENCH / ".work" / f"serving-rows-{rows}.parquet"
    if not path.exists() or pq.ParquetFile(path).metadata.num_rows != rows:
        print(f"  writing {rows:,} rows to {path.relative_to(BENCH.parent)}", file=sys.stderr)
        project_worker({"workload": "rows", "rows": rows, "path": str(path)})
    return path


def run_batch(home: Path, sizes: Sizes) -> dict[str, Any]:
    """The pandas loop, then modelyard's `score` in-process and on a local Dask cluster."""
    path = batch_input(sizes.rows)
    results: dict[str, Any] = {}
    floor = None
    for name, dask in {"pandas": None, "modelyard": None, "modelyard-dask": "local"}.items():
        out = WORK / f"batch-{name}.parquet"
        spec = {"path": str(path), "out": str(out), "home": str(home), "dask": dask}
        spec["workload"] = "pandas" if name == "pandas" else "score"
        print(f"  batch: {name}", file=sys.stderr)
        try:
            result = project_worker(spec)
        except WorkerError as exc:
            print(f"    FAILED: {exc}", file=sys.stderr)
            results[name] = {"failed": str(exc).strip().splitlines()[-1]}
            continue
        got = predictions(out)
        result["rows"] = len(got)
        if len(got) != sizes.rows:
            result["failed"] = f"wrote {len(got):,} predictions for {sizes.rows:,} rows"
        elif name == "pandas":
            floor = got
        elif floor is not None:
            result["agree"] = float((got == floor).mean())
        results[name] = result
    return results


def predictions(out: Path) -> Any:
    """The `prediction` column written to `out`, in input order (by `row_id` if present)."""
    import numpy as np
    import pyarrow.parquet as pq

    if not out.exists():
        return np.empty(0)
    table = pq.read_table(out)
    if "row_id" in table.column_names:
        table = table.sort_by("row_id")
    return table.column("prediction").to_numpy()


# ---- reporting -----------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def server_lines(servers: dict[str, dict[str, Any]]) -> list[list[str]]:
    lines = [["server", "workers", "req/s", "p50", "p99", "errors"]]
    for result in servers.values():
        label = result["label"]
        if result.get("runtime"):
            label += f" (runtime: {result['runtime']})"
        if "failed" in result:
            lines.append([label, str(result["workers"]), "—", "—", "—", "FAILED"])
            continue
        errors = error_text(result)
        rate = f"{result['requests_per_s']:,.0f}"
        row = [label, str(result["workers"]), rate, ms(result["p50_s"]), ms(result["p99_s"])]
        lines.append([*row, errors])
    return lines


def error_text(result: dict[str, Any]) -> str:
    kinds = [(result["non_2xx"], "non-2xx"), (result["socket_errors"], "socket/timeout")]
    found = [f"{count:,} {kind}" for count, kind in kinds if count]
    return f"{', '.join(found)} of {result['requests']:,}" if found else "0"


# check line: label, the other server, figure compared, target (at least / at most), text
CHECKS = [
    ("modelyard / mlflow throughput", "mlflow", "requests_per_s", 3.0, ">= 3x"),
    ("modelyard / mlflow p99", "mlflow", "p99_s", 1 / 3, "<= 1/3x"),
    ("modelyard / naive floor throughput", "naive", "requests_per_s", 1.0, ">= 1x"),
]


def verdict_lines(servers: dict[str, dict[str, Any]]) -> list[list[str]]:
    """modelyard against MLflow (throughput, p99) and against the naive floor."""
    mine = servers.get("modelyard")
    lines = [["check", "value", "target", "result"]]
    for label, other_key, figure, target, target_text in CHECKS:
        other = servers.get(other_key)
        ratio, result = verdict(mine, other, figure, target)
        lines.append([label, ratio, target_text, result])
    return lines


def verdict(
    mine: dict[str, Any] | None, other: dict[str, Any] | None, figure: str, target: float
) -> tuple[str, str]:
    """The ratio modelyard / other for `figure`, and PASS, MISS or why there is none."""
    if mine is None or other is None:
        return "—", "— (not run)"
    if "failed" in mine or mine["errors"]:
        return "—", "MISS (modelyard failed or had errors)"
    if mine.get("log_dropped"):
        return "—", f"MISS (the prediction log dropped {mine['log_dropped']:,} rows)"
    if "failed" in other:
        return "—", "— (the other server failed)"
    ratio = mine[figure] / other[figure]
    passed = ratio <= target if figure == "p99_s" else ratio >= target
    text = "PASS" if passed else "MISS"
    if other["errors"]:
        # wrk leaves failed requests out of its latencies: the other server looks better.
        text += f" (the other server had {other['errors']:,} errors)"
    return f"{ratio:.2f}x", text


def batch_lines(batch: dict[str, Any], rows: int) -> list[list[str]]:
    labels = {
        "pandas": "pandas loop, model.predict (floor)",
        "modelyard": "modelyard score, in-process",
        "modelyard-dask": "modelyard score, Dask local cluster",
    }
    floor = batch.get("pandas", {})
    header = [f"batch, {rows:,} rows from Parquet", "seconds", "rows/s", "vs pandas loop"]
    lines = [[*header, "same labels as pandas"]]
    for name, label in labels.items():
        result = batch.get(name, {})
        if "failed" in result or "seconds" not in result:
            failed = f"FAILED: {result.get('failed', 'not run')}"[:100]
            lines.append([label, "—", "—", failed, "—"])
            continue
        runtime = f" (runtime: {result['runtime']})" if result.get("runtime") else ""
        seconds = result["seconds"]
        ratio = "—"
        if "seconds" in floor and "failed" not in floor:
            ratio = f"{floor['seconds'] / seconds:.2f}x"
        agree = f"{result['agree']:.4%}" if "agree" in result else "—"
        lines.append([label + runtime, f"{seconds:.2f}", f"{rows / seconds:,.0f}", ratio, agree])
    return lines


def log_lines(servers: dict[str, dict[str, Any]]) -> list[str]:
    """What became of the prediction log under load, for the servers that keep one."""
    lines = []
    for result in servers.values():
        dropped = result.get("log_dropped")
        if dropped is not None:
            note = "every request logged" if dropped == 0 else f"{dropped:,} rows DROPPED"
            lines.append(f"{result['label']}: prediction log queue: {note}")
    return lines


def report_text(results: dict[str, Any], sizes: Sizes) -> str:
    servers = results["servers"]
    parts = [
        f"single-row JSON requests, wrk -t{THREADS} -c{CONNECTIONS}, {sizes.duration_s} s "
        f"after {WARMUP_S} s of warm-up, on {os.cpu_count()} CPUs shared by wrk and the server "
        f"(load average {results['load_average']:.2f} before the first server)",
        render(server_lines(servers)),
        *log_lines(servers),
        "",
        render(verdict_lines(servers)),
    ]
    if "batch" in results:
        parts += ["", render(batch_lines(results["batch"], sizes.rows))]
    return "\n".join(parts)


# ---- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow server, no install")
    parser.add_argument("--skip-batch", action="store_true", help="servers only")
    parser.add_argument("--quick", action="store_true", help="3 s of load, 100,000 batch rows")
    parser.add_argument("--duration", type=int, help="seconds of load per server (default 10)")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration < 1:
        parser.error("--duration must be at least 1")
    return args


def register_models(mlflow_python: str | None, root: Path) -> tuple[Path, str | None]:
    """The model in a fresh modelyard home and, when asked, in a fresh MLflow store."""
    print("registering the model", file=sys.stderr)
    home = root / "modelyard-home"
    project_worker({"workload": "log", "home": str(home)})
    if mlflow_python is None:
        return home, None
    folder = root / "mlflow"
    folder.mkdir()
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    spec = {"folder": str(folder), "db_url": tracking_uri, "workload": "log"}
    run_worker(mlflow_python, BENCH / "_serving_mlflow_worker.py", spec)
    return home, tracking_uri


def main(argv: list[str] | None = None) -> None:
    import modelyard

    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.duration is not None:
        sizes = Sizes(args.duration, sizes.rows)
    wrk_path()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    libraries = {"modelyard": library_versions(sys.executable)}
    mlflow = None
    if not args.skip_mlflow:
        mlflow, _ = mlflow_side()
        libraries["mlflow"] = match_libraries(mlflow, libraries["modelyard"])

    request = make_request()
    script = WORK / "request.lua"
    script.write_text(WRK_SCRIPT.format(body=request.body.decode()))
    home, tracking_uri = register_models(mlflow.python if mlflow else None, WORK)
    servers = [
        floor_server("constant", "constant", "(1) FastAPI constant (HTTP floor)"),
        floor_server("naive", "naive", "(2) FastAPI predict_proba (naive floor)"),
    ]
    if mlflow is not None and tracking_uri is not None:
        servers.append(mlflow_server(mlflow.version, tracking_uri))
    servers.append(modelyard_server(modelyard.__version__, home))

    print("serving", file=sys.stderr)
    # Other processes take CPU from the server and wrk alike: the table says how busy it was.
    results: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    results |= {"servers": {s.key: measure(s, request, script, sizes) for s in servers}}
    if not args.skip_batch:
        results["batch"] = run_batch(home, sizes)

    text = report_text(results, sizes)
    print(f"\n{text}")
    versions = {"modelyard": modelyard.__version__}
    if mlflow is not None:
        versions["mlflow"] = mlflow.version
    report = {
        "quick": args.quick,
        "sizes": asdict(sizes),
        "load": {"threads": THREADS, "connections": CONNECTIONS, "warmup_s": WARMUP_S},
        "versions": versions,
        "libraries": libraries,
        "request": json.loads(request.body),
        "results": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


if __name__ == "__main__":
    main()
