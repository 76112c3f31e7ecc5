"""Tracking benchmark: the same workloads on modelyard and on MLflow, on one machine, in one go.

    .venv/bin/python bench/tracking.py [--skip-mlflow] [--repeat N] [--quick]

MLflow is installed into its own throw-away venv (`bench/.venvs/mlflow`), never into the
project's. Each workload runs in a fresh process, in a fresh folder, on a fresh store
(a SQLite file, then a PostgreSQL database when one answers); the clock covers only the
tracking calls, after the store and the experiment exist. Results go to stdout as a
table and to `bench/.work/tracking.json`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MLFLOW_VENV = BENCH / ".venvs" / "mlflow"
RESULTS_FILE = BENCH / ".work" / "tracking.json"
MLFLOW_REQUIREMENT = "mlflow>=3,<4"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASES = {"modelyard": "modelyard_bench", "mlflow": "mlflow_bench"}
WORKER_TIMEOUT_S = 1800
IMPORT_SAMPLES = 5

# Only these variables reach the workers: settings of either tool must come from the spec.
_DROPPED_ENV_PREFIXES = ("MODELYARD_", "MLFLOW_", "PYTHON", "VIRTUAL_ENV")
_QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; `--quick` divides every count by ten."""

    calls: int = 1_000  # (a) single log_metric calls
    keys: int = 10  # (b) metric keys ...
    steps: int = 10_000  # ... times steps, sent through log_batch ...
    chunk: int = 1_000  # ... this many points per call (MLflow's limit)
    runs: int = 200  # (c) runs, each with `width` params and `width` metrics
    width: int = 10
    search_repeats: int = 5  # (d) best of this many searches

    @property
    def threshold(self) -> int:
        """`metrics.m3 > threshold` matches about half the runs (m_j = i + j)."""
        return self.runs // 2

    @classmethod
    def quick(cls) -> Sizes:
        return cls(calls=100, steps=1_000, runs=20)


@dataclass(frozen=True)
class Row:
    """One workload as the table shows it: label, figure, how to compare, target."""

    key: str
    label: str
    figure: str  # key in a suite's results
    target: float  # minimum mlflow/modelyard ratio
    target_text: str


def rows_for(sizes: Sizes) -> list[Row]:
    points = sizes.keys * sizes.steps
    return [
        Row("a", f"(a) {sizes.calls:,} log_metric calls", "single", 10, ">= 10x"),
        Row("b", f"(b) {points:,} points via log_batch", "batch", 10, ">= 10x"),
        Row("c", f"(c) {sizes.runs} runs x {sizes.width} params+metrics", "runs", 10, ">= 10x"),
        Row("d", f"(d) search metrics.m3 > {sizes.threshold}", "search", 3, ">= 3x"),
    ]


# ---- the two sides -----------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker process exited non-zero or printed no JSON."""


@dataclass(frozen=True)
class Side:
    """One tool under test: the interpreter that has it and the worker that drives it."""

    name: str
    python: str
    worker: Path
    version: str

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        command = [self.python, str(self.worker), json.dumps(spec)]
        done = subprocess.run(
            command,
            cwd=spec["folder"],
            env=worker_env(),
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT_S,
            check=False,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise WorkerError(
                f"{self.name} worker for {spec['workload']!r} exited {done.returncode}:\n{tail}"
            )
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env.update(_QUIET_ENV)
    return env


def modelyard_side() -> Side:
    import modelyard

    return Side("modelyard", sys.executable, BENCH / "_modelyard_worker.py", modelyard.__version__)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def probe(python: Path, module: str) -> str | None:
    """The version of `module` importable by `python`, or None."""
    if not python.exists():
        return None
    code = f"import {module}; print(getattr({module}, '__version__', '?'))"
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=worker_env(), check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def mlflow_side() -> tuple[Side, float | None]:
    """MLflow's side, installing it into its own venv first when needed (with the time taken)."""
    python = venv_python(MLFLOW_VENV)
    version = probe(python, "mlflow")
    install_s = None
    if version is None or not version.startswith("3."):
        print(f"installing {MLFLOW_REQUIREMENT} into {MLFLOW_VENV.relative_to(BENCH.parent)} ...")
        start = time.perf_counter()
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        pip_install(python, MLFLOW_REQUIREMENT)
        install_s = time.perf_counter() - start
        version = probe(python, "mlflow")
        if version is None:
            raise SystemExit(f"mlflow is still not importable from {python} after installing it")
        print(f"installed mlflow {version} in {install_s:.0f} s")
    return Side("mlflow", str(python), BENCH / "_mlflow_worker.py", version), install_s


def pip_install(python: Path, *requirements: str) -> bool:
    """Install quietly; pip's output is shown only when it fails."""
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*command, *requirements], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"pip install {' '.join(requirements)} failed:\n{done.stderr[-3000:]}")
    return done.returncode == 0


def mlflow_can_use_postgres(side: Side) -> bool:
    """MLflow talks to PostgreSQL through psycopg2: add it to MLflow's venv if missing."""
    python = Path(side.python)
    return probe(python, "psycopg2") is not None or (
        pip_install(python, "psycopg2-binary") and probe(python, "psycopg2") is not None
    )


# ---- stores --------------------------------------------------------------------------


class Postgres:
    """The PostgreSQL server the benchmark makes its own databases on."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin = make_url(admin_url)

    def _connect(self) -> Any:
        import psycopg

        url = self.admin
        return psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def unreachable(self) -> str | None:
        """Why the server cannot be used, or None when it can."""
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        return None

    def fresh(self, database: str, driver: str) -> str:
        """An empty database named `database`, as a URL for the SQLAlchemy `driver`."""
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        url = self.admin.set(drivername=driver, database=database)
        return url.render_as_string(hide_password=False)

    def drop(self, database: str) -> None:
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


StoreFactory = Callable[[Side, Path], str | None]


def sqlite_store(side: Side, folder: Path) -> str | None:
    """modelyard keeps `<home>/modelyard.db`; MLflow gets `mlflow.db` in the same folder."""
    return None if side.name == "modelyard" else f"sqlite:///{folder / 'mlflow.db'}"


def postgres_store(pg: Postgres) -> StoreFactory:
    def factory(side: Side, folder: Path) -> str | None:
        # Named explicitly: SQLAlchemy 2.1 (in MLflow's venv) defaults to psycopg 3.
        driver = "postgresql+psycopg" if side.name == "modelyard" else "postgresql+psycopg2"
        return pg.fresh(PG_DATABASES[side.name], driver)

    return factory


# ---- running -------------------------------------------------------------------------


def run_suite(side: Side, store: StoreFactory, sizes: Sizes, repeat: int, root: Path) -> dict:
    """Figures (a)-(d) for one side on one kind of store: the best of `repeat` rounds."""
    best: dict[str, float] = {}
    counts: set[int] = set()
    for round_ in range(repeat):
        for workload in ("single", "batch", "runs"):
            folder = Path(tempfile.mkdtemp(prefix=f"{side.name}-{workload}-", dir=root))
            spec = {**asdict(sizes), "threshold": sizes.threshold, "workload": workload}
            spec.update(folder=str(folder), db_url=store(side, folder))
            print(f"  {side.name}: {workload} (round {round_ + 1}/{repeat})", file=sys.stderr)
            result = side.run(spec)
            figures = {workload: result["seconds"]}
            if "search_seconds" in result:
                figures["search"] = result["search_seconds"]
                counts.add(result["search_count"])
            for name, seconds in figures.items():
                best[name] = min(best.get(name, float("inf")), seconds)
    if len(counts) != 1:
        raise WorkerError(f"{side.name}: the search found {sorted(counts)} runs across rounds")
    return {**best, "search_count": counts.pop()}


def import_seconds(side: Side, module: str, root: Path) -> float:
    """Median wall time of `import module` in a fresh interpreter (after one warm-up)."""
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    samples = []
    for _ in range(IMPORT_SAMPLES + 1):
        done = subprocess.run(
            [side.python, "-c", code],
            cwd=root,
            env=worker_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples[1:])


# ---- reporting -----------------------------------------------------------------------


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def compare(row: Row, mine: dict | None, theirs: dict | None) -> list[str]:
    """One table line: figures, ratio, target and verdict."""
    my_s = mine.get(row.figure) if mine else None
    their_s = theirs.get(row.figure) if theirs else None
    if my_s is None or their_s is None:
        return [row.label, seconds_text(my_s), seconds_text(their_s), "—", row.target_text, "—"]
    ratio = their_s / my_s
    verdict = "PASS" if ratio >= row.target else "MISS"
    return [
        row.label,
        seconds_text(my_s),
        seconds_text(their_s),
        f"{ratio:.1f}x",
        row.target_text,
        verdict,
    ]


def import_line(mine: float, theirs: float | None) -> list[str]:
    label, target = "(e) import time (median of 5)", "modelyard <= 0.5x mlflow"
    if theirs is None:
        return [label, seconds_text(mine), "—", "—", target, "—"]
    fraction = mine / theirs
    verdict = "PASS" if fraction <= 0.5 else "MISS"
    ratio = f"{theirs / mine:.1f}x (modelyard = {fraction:.2f}x mlflow)"
    return [label, seconds_text(mine), seconds_text(theirs), ratio, target, verdict]


def render(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    rule = "-+-".join("-" * w for w in widths)
    text = [
        " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join([text[0], rule, *text[1:]])


HEADER = ["workload", "modelyard", "mlflow", "mlflow/modelyard", "target", "result"]


def table(sizes: Sizes, results: dict[str, Any]) -> str:
    sqlite, pg, imports = results["sqlite"], results.get("postgresql"), results["import"]
    lines = [["SQLite", *HEADER[1:]]]
    lines += [compare(r, sqlite["modelyard"], sqlite.get("mlflow")) for r in rows_for(sizes)]
    lines.append(import_line(imports["modelyard"], imports.get("mlflow")))
    out = render(lines)
    if pg is None:
        return out + f"\n\nPostgreSQL: skipped ({results['postgresql_skipped']})"
    pg_lines = [["PostgreSQL", *HEADER[1:]]]
    pg_lines += [compare(r, pg["modelyard"], pg.get("mlflow")) for r in rows_for(sizes)]
    out += "\n\n" + render(pg_lines)
    if "mlflow_skipped" in pg:
        out += f"\nMLflow on PostgreSQL: skipped ({pg['mlflow_skipped']})"
    return out


# ---- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mlflow", action="store_true", help="modelyard only, no install")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per workload; best counts")
    parser.add_argument("--quick", action="store_true", help="10x smaller workloads (smoke test)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("MODELYARD_BENCH_PG_URL", PG_ADMIN_URL),
        help="a PostgreSQL server to create the bench databases on "
        "(default: $MODELYARD_BENCH_PG_URL, else %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run_postgres(sides: list[Side], pg: Postgres, sizes: Sizes, repeat: int, root: Path) -> dict:
    results: dict[str, Any] = {}
    for side in sides:
        if side.name == "mlflow" and not mlflow_can_use_postgres(side):
            results["mlflow_skipped"] = "psycopg2 could not be installed into MLflow's venv"
            continue
        print(f"PostgreSQL: {side.name} {side.version}", file=sys.stderr)
        try:
            results[side.name] = run_suite(side, postgres_store(pg), sizes, repeat, root)
        except WorkerError as exc:
            if side.name == "modelyard":
                raise
            results["mlflow_skipped"] = f"MLflow failed on PostgreSQL: {exc}"
        finally:
            pg.drop(PG_DATABASES[side.name])
    return results


def check_searches_agree(results: dict[str, Any]) -> None:
    for store in ("sqlite", "postgresql"):
        counts = {
            name: suite["search_count"]
            for name, suite in results.get(store, {}).items()
            if isinstance(suite, dict)
        }
        if len(set(counts.values())) > 1:
            raise SystemExit(f"{store}: the searches disagree on the number of runs: {counts}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    sides = [modelyard_side()]
    install_s = None
    if not args.skip_mlflow:
        mlflow, install_s = mlflow_side()
        sides.append(mlflow)
    results: dict[str, Any] = {"sqlite": {}, "import": {}}

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        root = Path(tmp)
        for side in sides:
            print(f"SQLite: {side.name} {side.version}", file=sys.stderr)
            results["sqlite"][side.name] = run_suite(side, sqlite_store, sizes, args.repeat, root)
            results["import"][side.name] = import_seconds(side, side.name, root)
        pg = Postgres(args.pg_url)
        reason = pg.unreachable()
        if reason is None:
            results["postgresql"] = run_postgres(sides, pg, sizes, args.repeat, root)
        else:
            results["postgresql_skipped"] = f"{pg.admin.render_as_string()} unreachable: {reason}"
    check_searches_agree(results)

    text = table(sizes, results)
    print(f"\n{text}")
    if install_s is not None:
        print(f"\n(MLflow was installed in this run: {install_s:.0f} s, not part of any figure)")
    write_results(args, sizes, sides, install_s, results, text=text)


def write_results(
    args: argparse.Namespace,
    sizes: Sizes,
    sides: list[Side],
    install_s: float | None,
    results: dict[str, Any],
    *,
    text: str,
) -> None:
    report = {
        "quick": args.quick,
        "repeat": args.repeat,
        "sizes": {**asdict(sizes), "threshold": sizes.threshold},
        "versions": {side.name: side.version for side in sides},
        "mlflow_install_s": install_s,
        "seconds": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


def save_report(path: Path, report: dict[str, Any]) -> None:
    """Write `report`, stamped with the time and the machine, as JSON to `path`."""
    stamped = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **report,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    print(f"results: {path.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
