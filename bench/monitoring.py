"""Monitoring benchmark: modelyard's drift report against Evidently's, then profiling on Dask.

    .venv/bin/python bench/monitoring.py [--skip-evidently] [--quick]

Reference and current samples of 100,000 and 1,000,000 rows (20 numeric columns of mixed
shapes, 5 categorical), once unchanged and once with 6 changed columns, are written once to
Parquet in `bench/.work/monitoring/`; both tools read the same files, each measurement in a
fresh process, and only the drift computation is timed. Evidently is installed into its own
venv (`bench/.venvs/evidently`), never into the project's. Then a 10,000,000-row Parquet
file is profiled with `profile_parquet` on a local Dask cluster. Results go to stdout as
tables and to `bench/.work/monitoring.json`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _drift_scenario import CHANGED, frame

from tracking import BENCH, pip_install, probe, render, save_report, venv_python, worker_env

RESULTS_FILE = BENCH / ".work" / "monitoring.json"
DATA = BENCH / ".work" / "monitoring"
EVIDENTLY_VENV = BENCH / ".venvs" / "evidently"
# Evidently 0.7.23, the latest, imports a pandas internal that pandas 3 removed.
EVIDENTLY_REQUIREMENTS = ("evidently", "pandas<3", "pyarrow")
WORKER_TIMEOUT_S = 900
SEEDS = {"reference": 1, "changed": 2, "unchanged": 3}  # as the tests use them
PROFILE_GROUP_ROWS = 500_000  # rows per row group of the profiling file, written one at a time
SPEED_TARGET, MEMORY_TARGET = 10.0, 0.5
_QUIET_ENV = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}


@dataclass(frozen=True)
class Sizes:
    """Rows of each drift sample, the size of the multivariate run, rows to profile."""

    drift_rows: tuple[int, ...] = (100_000, 1_000_000)
    multivariate_rows: int = 100_000
    profile_rows: int = 10_000_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls((10_000, 100_000), 10_000, 1_000_000)


# ---- data ----------------------------------------------------------------------------


def sample(rows: int, name: str) -> Path:
    """One sample of the scenario as Parquet, written once per size and seed and reused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = DATA / f"{name}-{rows}-seed{SEEDS[name]}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    print(f"  writing {path.relative_to(BENCH.parent)}", file=sys.stderr)
    DATA.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(
        frame(rows, seed=SEEDS[name], changed=name == "changed"), preserve_index=False
    )
    # Without pandas' metadata each side reads the strings with its own pandas' default.
    pq.write_table(table.replace_schema_metadata(None), path)
    return path


def profile_input(rows: int) -> Path:
    """The file to profile: unchanged samples, one row group at a time, never all in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = DATA / f"profile-{rows}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    print(f"  writing {path.relative_to(BENCH.parent)}", file=sys.stderr)
    DATA.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    writer = None
    try:
        for i, first in enumerate(range(0, rows, PROFILE_GROUP_ROWS)):
            part = frame(min(PROFILE_GROUP_ROWS, rows - first), seed=1000 + i)
            table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
            if writer is None:
                writer = pq.ParquetWriter(temp, table.schema)
            writer.write_table(table, row_group_size=PROFILE_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()
    temp.replace(path)
    return path


# ---- the two sides -------------------------------------------------------------------


def evidently_python(skip: bool) -> tuple[str | None, str | None]:
    """Evidently's interpreter and version, installing it into its own venv when needed."""
    if skip:
        return None, None
    python = venv_python(EVIDENTLY_VENV)
    version = probe(python, "evidently")
    if version is None:
        print(f"installing evidently into {EVIDENTLY_VENV.relative_to(BENCH.parent)} ...")
        start = time.perf_counter()
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        pip_install(python, *EVIDENTLY_REQUIREMENTS)
        version = probe(python, "evidently")
        if version is None:
            raise SystemExit(f"evidently is still not importable from {python} after installing")
        print(f"installed evidently {version} in {time.perf_counter() - start:.0f} s")
    return str(python), version


def run_worker(python: str, worker: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh process group; on a timeout, a failure or an interrupt the
    whole group (Dask's worker processes included) is killed, and the answer says why."""
    env = {**worker_env(), **_QUIET_ENV}
    process = subprocess.Popen(
        [python, str(BENCH / worker), json.dumps(spec)],
        cwd=DATA,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"failed": f"timeout after {WORKER_TIMEOUT_S} s"}
    finally:
        _kill_group(process)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = err.strip().splitlines()[-1:] or [f"exit code {process.returncode}"]
        print(f"    FAILED ({worker}): {err.strip()[-2000:]}", file=sys.stderr)
        reason = "killed (out of memory?)" if process.returncode == -signal.SIGKILL else tail[0]
        return {"failed": reason[:200]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill the worker's process group, whatever is left of it, and reap the worker."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_drift(sizes: Sizes, evidently: str | None) -> dict[str, Any]:
    """Every size x scenario x tool, then modelyard's multivariate run."""
    sides = {"modelyard": (sys.executable, "_monitoring_worker.py")}
    if evidently is not None:
        sides["evidently"] = (evidently, "_evidently_worker.py")
    results: dict[str, Any] = {}
    for rows in sizes.drift_rows:
        reference = sample(rows, "reference")
        for scenario in ("unchanged", "changed"):
            spec = {"reference": str(reference), "current": str(sample(rows, scenario))}
            spec |= {"workload": "drift", "multivariate": False}
            for tool, (python, worker) in sides.items():
                print(f"  {rows:,} rows, {scenario}: {tool}", file=sys.stderr)
                results[f"{rows}/{scenario}/{tool}"] = run_worker(python, worker, spec)
    rows = sizes.multivariate_rows
    spec = {"reference": str(sample(rows, "reference")), "current": str(sample(rows, "changed"))}
    print(f"  {rows:,} rows, changed: modelyard, multivariate", file=sys.stderr)
    spec |= {"workload": "drift", "multivariate": True}
    results["multivariate"] = run_worker(sys.executable, "_monitoring_worker.py", spec)
    return results


def run_profiles(rows: int) -> dict[str, Any]:
    """`profile_parquet` on a local Dask cluster, and streamed in one process for scale."""
    path = profile_input(rows)
    results = {}
    for name, dask in {"dask": "local", "in-process": None}.items():
        print(f"  profile {rows:,} rows: {name}", file=sys.stderr)
        spec = {"workload": "profile", "path": str(path), "dask": dask}
        results[name] = run_worker(sys.executable, "_monitoring_worker.py", spec)
    return results


# ---- reporting -----------------------------------------------------------------------


def flags_text(result: dict[str, Any], scenario: str) -> str:
    """What a tool flagged, against what changed."""
    flagged = result["flagged"]
    expected = set(CHANGED) if scenario == "changed" else set()
    if set(flagged) == expected:
        return "exactly the 6 changed" if expected else "none"
    parts = [f"{len(flagged)} flagged"]
    if missed := [c for c in CHANGED if c in expected and c not in flagged]:
        parts.append(f"missed {', '.join(missed)}")
    if wrong := [c for c in flagged if c not in expected]:
        parts.append(f"wrongly {', '.join(wrong)}")
    return "; ".join(parts)


def mb(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def drift_lines(results: dict[str, Any], sizes: Sizes) -> list[list[str]]:
    header = ["rows", "scenario", "tool", "seconds", "peak MB", "+MB in run", "flags"]
    lines = [header]
    for rows in sizes.drift_rows:
        for scenario in ("unchanged", "changed"):
            for tool in ("modelyard", "evidently"):
                result = results.get(f"{rows}/{scenario}/{tool}")
                if result is None:
                    continue
                head = [f"{rows:,}", scenario, tool]
                if "failed" in result:
                    lines.append([*head, "—", "—", "—", f"FAILED: {result['failed']}"])
                    continue
                figures = [f"{result['seconds']:.2f}", mb(result["peak_mb"])]
                figures.append(mb(result["increase_mb"]))
                lines.append([*head, *figures, flags_text(result, scenario)])
    multi = results["multivariate"]
    head = [f"{sizes.multivariate_rows:,}", "changed", "modelyard, multivariate=True"]
    if "failed" in multi:
        lines.append([*head, "—", "—", "—", f"FAILED: {multi['failed']}"])
    else:
        figures = [f"{multi['seconds']:.2f}", mb(multi["peak_mb"]), mb(multi["increase_mb"])]
        verdict = "drifted" if multi.get("multivariate_drifted") else "no drift"
        lines.append([*head, *figures, f"{flags_text(multi, 'changed')}; multivariate: {verdict}"])
    return lines


def check_lines(results: dict[str, Any], sizes: Sizes) -> list[list[str]]:
    """Speed and memory against Evidently, and modelyard's flags, per size and scenario."""
    lines = [["check", "value", "target", "result"]]
    for rows in sizes.drift_rows:
        for scenario in ("unchanged", "changed"):
            mine = results[f"{rows}/{scenario}/modelyard"]
            theirs = results.get(f"{rows}/{scenario}/evidently")
            where = f"{rows:,} {scenario}"
            lines += ratio_checks(where, mine, theirs)
            if "failed" in mine:
                lines.append([f"{where}: modelyard flags", "—", "", "MISS (failed)"])
                continue
            target = "the 6 changed" if scenario == "changed" else "none"
            right = flags_text(mine, scenario) in ("exactly the 6 changed", "none")
            value = flags_text(mine, scenario)
            lines.append([f"{where}: modelyard flags", value, target, "PASS" if right else "MISS"])
    return lines


def ratio_checks(
    where: str, mine: dict[str, Any], theirs: dict[str, Any] | None
) -> list[list[str]]:
    speed_target, memory_target = f">= {SPEED_TARGET:.0f}x", f"<= {MEMORY_TARGET}x"
    speed, memory = f"{where}: evidently / modelyard time", f"{where}: modelyard / evidently +MB"
    if theirs is None:
        return [[speed, "—", speed_target, "— (not run)"], [memory, "—", memory_target, "—"]]
    if "failed" in mine:
        return [[speed, "—", speed_target, "MISS"], [memory, "—", memory_target, "MISS"]]
    if "failed" in theirs:
        note = f"— (evidently: {theirs['failed']})"
        return [[speed, "—", speed_target, note], [memory, "—", memory_target, note]]
    ratio = theirs["seconds"] / mine["seconds"]
    lines = [[speed, f"{ratio:.1f}x", speed_target, pass_miss(ratio >= SPEED_TARGET)]]
    if mine["increase_mb"] is None or not theirs["increase_mb"]:
        return [*lines, [memory, "—", memory_target, "— (no reading)"]]
    share = mine["increase_mb"] / theirs["increase_mb"]
    return [*lines, [memory, f"{share:.2f}x", memory_target, pass_miss(share <= MEMORY_TARGET)]]


def pass_miss(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def profile_lines(profiles: dict[str, Any], rows: int) -> list[list[str]]:
    lines = [[f"profile_parquet, {rows:,} rows x 25 columns", "seconds", "rows/s"]]
    labels = {"dask": "local Dask cluster (2 worker processes)", "in-process": "in-process"}
    for name, label in labels.items():
        result = profiles[name]
        if "failed" in result:
            lines.append([label, "—", f"FAILED: {result['failed']}"])
        elif result["rows"] != rows:
            lines.append([label, f"{result['seconds']:.2f}", f"MISS: {result['rows']:,} rows"])
        else:
            seconds = result["seconds"]
            lines.append([label, f"{seconds:.2f}", f"{rows / seconds:,.0f}"])
    return lines


def report_text(results: dict[str, Any], sizes: Sizes) -> str:
    drift = results["drift"]
    return "\n".join(
        [
            "drift: seconds = the drift computation only; peak MB = the process's peak RSS; "
            "+MB in run = how far the run raised it",
            render(drift_lines(drift, sizes)),
            "",
            render(check_lines(drift, sizes)),
            "",
            render(profile_lines(results["profile"], sizes.profile_rows)),
        ]
    )


# ---- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-evidently", action="store_true", help="modelyard only")
    parser.add_argument(
        "--quick", action="store_true", help="10,000 and 100,000 rows; profile 1,000,000"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import modelyard

    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    evidently, evidently_version = evidently_python(args.skip_evidently)
    print("drift", file=sys.stderr)
    results = {"drift": run_drift(sizes, evidently)}
    print("profiling", file=sys.stderr)
    results["profile"] = run_profiles(sizes.profile_rows)

    text = report_text(results, sizes)
    print(f"\n{text}")
    versions = {"modelyard": modelyard.__version__, "evidently": evidently_version}
    evidently_runs = [r for k, r in results["drift"].items() if k.endswith("/evidently")]
    methods = next((r["methods"] for r in evidently_runs if "methods" in r), None)
    report = {
        "quick": args.quick,
        "sizes": asdict(sizes),
        "versions": versions,
        "evidently_methods": methods,
        "results": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


if __name__ == "__main__":
    main()
