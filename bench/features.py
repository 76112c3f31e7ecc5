"""Feature-store benchmark: modelyard's point-in-time join, materialization and online reads
against Feast's, every training-frame row checked against a brute-force reference.

    .venv/bin/python bench/features.py [--quick] [--skip-feast] [--skip-redis]

1,010,000 feature rows (10,000 entities x 100 event times over 90 days, plus 1 % of rows
again on the same event time with a later created time and other values) and 100,000 label
rows are written once to Parquet in `bench/.work/features/`; both tools read the same files,
each measurement in a fresh process. Feast is installed into its own venv
(`bench/.venvs/feast`), never into the project's. Results go to stdout as tables and to
`bench/.work/features.json`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _features_data import (
    DATA,
    DAYS,
    SEED,
    START,
    TTLS,
    Sizes,
    compare_frame,
    compare_online,
    literal_check,
    load_inputs,
    online_reference,
    reference,
    write_data,
)

from tracking import BENCH, pip_install, probe, render, save_report, venv_python, worker_env

RESULTS_FILE = BENCH / ".work" / "features.json"
FEAST_VENV = BENCH / ".venvs" / "feast"
FEAST_REQUIREMENTS = ("feast[redis]>=0.67",)
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 0
WORKER_TIMEOUT_S = 1800
ROUND_S = 0.5  # one side's turn at online reads
JOIN_TARGET, FLOOR_TARGET, ONLINE_TARGET = 10.0, 1.5, 3.0
_QUIET_ENV = {"FEAST_USAGE": "False", "DO_NOT_TRACK": "1"}


# ---- the two sides -------------------------------------------------------------------


def feast_python(skip: bool) -> tuple[str | None, str | None, str | None]:
    """Feast's interpreter and version (installing it into its own venv when needed), or
    why it is missing."""
    if skip:
        return None, None, "--skip-feast"
    python = venv_python(FEAST_VENV)
    version = probe(python, "feast")
    if version is None:
        print(f"installing {FEAST_REQUIREMENTS[0]} into {FEAST_VENV.relative_to(BENCH.parent)}")
        started = time.perf_counter()
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
        if not pip_install(python, *FEAST_REQUIREMENTS):
            return None, None, f"pip install {FEAST_REQUIREMENTS[0]} failed (output above)"
        version = probe(python, "feast")
        if version is None:
            return None, None, f"feast is not importable from {python} after installing it"
        print(f"installed feast {version} in {time.perf_counter() - started:.0f} s")
    return str(python), version, None


def redis_missing(skip: bool) -> str | None:
    """Why Redis is not used, or None when the server answers."""
    if skip:
        return "--skip-redis"
    try:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Redis at {REDIS_HOST}:{REDIS_PORT}: {type(exc).__name__}"
    return None


def drop_redis_prefix(prefix: str) -> None:
    """Delete whatever modelyard's worker left under its own key prefix (never anything
    else: no FLUSHALL)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for first in range(0, len(names), 1000):
            client.delete(*names[first : first + 1000])
    finally:
        client.close()


class WorkerFailed(Exception):
    """A worker died, or did not answer in time; the message says why."""


class Worker:
    """A measurement in a fresh process group, started with its spec, answering in JSON lines
    on stdout (lines that are not JSON objects are ignored); the parent may ask it for more
    (`ask`, a JSON line on its stdin). Its stderr goes to a file, shown when it fails; on
    `close` the whole group is killed."""

    def __init__(self, python: str, script: str, spec: dict[str, Any], name: str) -> None:
        self.name = name
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by close()
        self._process = subprocess.Popen(
            [python, str(BENCH / script), json.dumps(spec)],
            cwd=DATA,
            env={**worker_env(), **_QUIET_ENV},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("{"):
                self._lines.put(line)
        self._lines.put(None)

    def answer(self, timeout_s: float = WORKER_TIMEOUT_S) -> dict[str, Any]:
        """The worker's next JSON line; WorkerFailed when it exits or times out first."""
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise WorkerFailed(f"timeout after {timeout_s:g} s") from None
        if line is None:
            raise self._failure()
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _failure(self) -> WorkerFailed:
        code = self._process.wait()
        self._err.seek(0)
        err = self._err.read().strip()
        print(f"    FAILED ({self.name}): {err[-2000:]}", file=sys.stderr)
        tail = err.splitlines()[-1:] or [f"exit code {code}"]
        return WorkerFailed("killed (out of memory?)" if code == -signal.SIGKILL else tail[0][:200])

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died: `answer` says why
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        return self.answer()

    def finish(self) -> None:
        """Wait for the worker to exit by itself; WorkerFailed unless it exits cleanly."""
        try:
            code = self._process.wait(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise WorkerFailed(f"timeout after {WORKER_TIMEOUT_S} s") from None
        if code != 0:
            raise self._failure()

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._err.close()


def run_worker(python: str, script: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a worker of its own: its answer, or why it failed."""
    worker = Worker(python, script, spec, Path(script).stem)
    try:
        result = worker.answer()
        worker.finish()
    except WorkerFailed as exc:
        return {"failed": str(exc)}
    finally:
        worker.close()
    return result


# ---- running -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    python: str
    worker: str


def run_joins(
    tools: list[Tool], spec: dict[str, Any], repeat: int, check: Callable[[str, Path], Any]
) -> dict[str, Any]:
    """Each tool's training frame at each TTL, then the two floors, each in a fresh process,
    `repeat` rounds: the fastest round's figures, the most mismatches of any round."""
    results: dict[str, Any] = {}
    for round_ in range(1, repeat + 1):
        for ttl, ttl_s in TTLS.items():
            for tool in tools:
                print(f"  join, ttl {ttl}: {tool.name} ({round_}/{repeat})", file=sys.stderr)
                out = DATA / f"frame-{tool.name}-{ttl}.parquet"
                out.unlink(missing_ok=True)
                job = {**spec, "workload": "join", "ttl_s": ttl_s, "out": str(out)}
                result = run_worker(tool.python, tool.worker, job)
                if "failed" not in result:
                    result["check"] = check(ttl, out)
                keep(results, f"{tool.name}/{ttl}", result)
        for floor in ("floor_duckdb", "floor_pandas"):
            print(f"  {floor} ({round_}/{repeat})", file=sys.stderr)
            job = {**spec, "workload": floor, "ttl_s": None}
            keep(results, floor, run_worker(sys.executable, "_features_worker.py", job))
    return results


def keep(results: dict[str, Any], key: str, result: dict[str, Any]) -> None:
    """Keep the faster of two rounds (a failure always), and the worse of their checks."""
    kept = results.get(key)
    rounds = [*(kept or {}).get("rounds_s", []), result.get("seconds")]
    if (
        kept is None
        or "failed" in result
        or ("failed" not in kept and result["seconds"] < kept["seconds"])
    ):
        best = result
    else:
        best = kept
    checks = [r["check"] for r in (kept, result) if r and "check" in r]
    if checks:
        best["check"] = max(checks, key=lambda c: c["mismatches"])
    results[key] = {**best, "rounds_s": rounds}


def run_online(tools: list[Tool], spec: dict[str, Any], redis: bool) -> dict[str, Any]:
    """On SQLite (and Redis), TTL 30 days: each tool's worker materializes in turn, then all
    are timed in turns (`time_reads`), then each dumps what it serves and exits."""
    results: dict[str, Any] = {}
    for store in ("sqlite", "redis") if redis else ("sqlite",):
        prefix = f"bench-features-{uuid.uuid4().hex[:12]}"
        workers: dict[str, Worker] = {}
        try:
            for tool in tools:
                print(f"  online, {store}: {tool.name} materializes", file=sys.stderr)
                url = None
                if store == "redis" and tool.name == "modelyard":
                    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={prefix}"
                elif store == "redis":
                    url = f"{REDIS_HOST}:{REDIS_PORT},db={REDIS_DB}"  # a project of its own
                out = DATA / f"online-{tool.name}-{store}.parquet"
                out.unlink(missing_ok=True)
                job = {**spec, "workload": "online", "ttl_s": TTLS["30d"], "online_url": url}
                job["out"] = str(out)
                worker = Worker(tool.python, tool.worker, job, tool.name)
                workers[tool.name] = worker
                results[f"{tool.name}/{store}"] = {"out": str(out)}
                turn(workers, results, store, tool.name, None)
            time_reads(workers, results, store, spec)
            for name in list(workers):
                print(f"  online, {store}: {name} dumps its values", file=sys.stderr)
                if turn(workers, results, store, name, {"stop": True}) is not None:
                    try:
                        workers[name].finish()
                    except WorkerFailed as exc:
                        results[f"{name}/{store}"] = {"failed": str(exc)}
        finally:
            for worker in workers.values():
                worker.close()
            if store == "redis":
                drop_redis_prefix(prefix)
    return results


def turn(
    workers: dict[str, Worker],
    results: dict[str, Any],
    store: str,
    name: str,
    request: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """`workers[name]`'s answer to `request` (None: its first answer), its figures added to
    its results; when it fails, the failure is its result and it leaves `workers`."""
    key = f"{name}/{store}"
    try:
        answer = workers[name].answer() if request is None else workers[name].ask(request)
    except WorkerFailed as exc:
        workers.pop(name).close()
        results[key] = {"failed": str(exc)}
        return None
    results[key].update({k: v for k, v in answer.items() if k != "samples"})
    return answer


def time_reads(
    workers: dict[str, Worker], results: dict[str, Any], store: str, spec: dict[str, Any]
) -> None:
    """p50 and p99 of each tool's reads, 1 entity per call then 100 (and on Redis the floor,
    1 per call), timed in turns of about ROUND_S until each has read for `read_s`: the turns
    alternate, in reverse order every other round, so a slow spell of the machine falls on
    every side alike; each side's calls in all its turns are its samples."""
    rounds = max(4, round(spec["read_s"] / ROUND_S))
    for width in (1, 100):
        turns = [(name, "get_online") for name in workers]
        if store == "redis" and width == 1 and "modelyard" in workers:
            turns.append(("modelyard", "floor"))
        print(f"  online, {store}: {width} per call, {rounds} rounds", file=sys.stderr)
        samples: dict[tuple[str, str], list[float]] = {t: [] for t in turns}
        for round_ in range(rounds):
            for name, call in turns if round_ % 2 == 0 else turns[::-1]:
                if name not in workers:
                    continue
                ask = {"call": call, "width": width, "seconds": spec["read_s"] / rounds}
                answer = turn(workers, results, store, name, ask)
                if answer is not None:
                    samples[name, call] += answer["samples"]
        for (name, call), times in samples.items():
            if name not in workers:
                continue
            cuts = statistics.quantiles(times, n=100, method="inclusive")
            figures = {"calls": len(times), "p50_ms": cuts[49] * 1e3, "p99_ms": cuts[98] * 1e3}
            result = results[f"{name}/{store}"]
            if call == "floor":
                result["floor"] = figures
            else:
                result.setdefault("reads", {})[f"x{width}"] = figures


def check_online(online: dict[str, Any], online_ref: Any) -> None:
    """Every online dump against the reference, in place."""
    for result in online.values():
        if "failed" not in result:
            result["check"] = compare_online(Path(result["out"]), online_ref)


# ---- reporting -----------------------------------------------------------------------


def seconds(result: dict[str, Any] | None) -> str:
    if result is None:
        return "—"
    if "failed" in result:
        return f"FAILED: {result['failed']}"
    return f"{result['seconds']:.2f}"


def ratio(
    top: dict[str, Any] | None, bottom: dict[str, Any] | None, key: str = "seconds"
) -> float | None:
    if not top or not bottom or "failed" in top or "failed" in bottom:
        return None
    return top[key] / bottom[key]


def x(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def mismatch_text(result: dict[str, Any] | None) -> str:
    if not result or "check" not in result:
        return "—"
    check = result["check"]
    parts = [f"{check['mismatches']:,}"]
    if check["dropped"]:
        parts.append(f"{check['dropped']:,} label rows dropped")
    if check["repeated"]:
        parts.append(f"{check['repeated']:,} repeated")
    parts += [f"{v:,} {k}" for k, v in check["kinds"].items()]
    if not check["in_order"]:
        parts.append("order not kept")
    return "; ".join(parts)


def join_lines(joins: dict[str, Any]) -> list[list[str]]:
    header = [
        "training frame",
        "tool",
        "seconds",
        "peak MB",
        "+MB in run",
        "rows",
        "feast/modelyard",
        "modelyard/duckdb floor",
        "mismatches",
    ]
    lines = [header]
    for ttl in TTLS:
        mine = joins.get(f"modelyard/{ttl}")
        for tool in ("modelyard", "feast"):
            result = joins.get(f"{tool}/{ttl}")
            if result is None:
                continue
            ok = "failed" not in result
            lines.append(
                [
                    f"ttl {ttl}",
                    tool,
                    seconds(result),
                    f"{result['peak_mb']:,.0f}" if ok else "—",
                    f"{result['increase_mb']:,.0f}"
                    if ok and result["increase_mb"] is not None
                    else "—",
                    f"{result['rows']:,}" if ok else "—",
                    x(ratio(result, mine)) if tool == "feast" else "",
                    x(ratio(result, joins.get("floor_duckdb"))) if tool == "modelyard" else "",
                    mismatch_text(result),
                ]
            )
    for floor, label in (
        ("floor_duckdb", "DuckDB ASOF LEFT JOIN"),
        ("floor_pandas", "pandas merge_asof"),
    ):
        result = joins[floor]
        ok = "failed" not in result
        lines.append(
            [
                "no ttl, no ties",
                f"floor: {label}",
                seconds(result),
                f"{result['peak_mb']:,.0f}" if ok else "—",
                f"{result['increase_mb']:,.0f}"
                if ok and result["increase_mb"] is not None
                else "—",
                f"{result['rows']:,}" if ok else "—",
                "",
                "",
                "(not checked)",
            ]
        )
    return lines


def online_lines(online: dict[str, Any], sizes: Sizes) -> list[list[str]]:
    header = [
        "online store",
        "tool",
        "materialize s",
        "written",
        f"1 entity p50/p99 ms (calls in {sizes.read_s:g} s)",
        f"100 entities p50/p99 ms (calls in {sizes.read_s:g} s)",
        "feast/modelyard p99 (1 | 100)",
        "values wrong",
    ]
    lines = [header]
    for key, result in online.items():
        store, tool = key.split("/")[1], key.split("/")[0]
        if "failed" in result:
            lines.append([store, tool, f"FAILED: {result['failed']}", "", "", "", "", ""])
            continue
        reads = result["reads"]
        mine = online.get(f"modelyard/{store}")
        ratios = ""
        if tool == "feast" and mine and "failed" not in mine:
            ratios = " | ".join(
                x(reads[w]["p99_ms"] / mine["reads"][w]["p99_ms"]) for w in ("x1", "x100")
            )
        check = result.get("check", {})
        lines.append(
            [
                store,
                tool,
                f"{result['materialize']['seconds']:.2f}",
                f"{result['written']:,}" if "written" in result else "—",
                reads_text(reads["x1"]),
                reads_text(reads["x100"]),
                ratios,
                f"{check.get('mismatches', '—')} of {check.get('entities', '—')}",
            ]
        )
    return lines


def reads_text(reads: dict[str, Any]) -> str:
    return f"{reads['p50_ms']:.2f} / {reads['p99_ms']:.2f} ({reads['calls']:,})"


def check_lines(
    joins: dict[str, Any], online: dict[str, Any], feast_missing: str | None
) -> list[list[str]]:
    lines = [["check", "value", "target", "result"]]
    not_run = f"— (feast not run: {feast_missing})" if feast_missing else "— (feast failed)"
    for ttl in TTLS:
        mine, theirs = joins.get(f"modelyard/{ttl}"), joins.get(f"feast/{ttl}")
        speed = ratio(theirs, mine)
        verdict = not_run if speed is None else pass_fail(speed >= JOIN_TARGET)
        lines.append(
            [f"join ttl {ttl}: feast / modelyard time", x(speed), f">= {JOIN_TARGET:.0f}x", verdict]
        )
        floor = ratio(mine, joins.get("floor_duckdb"))
        lines.append(
            [
                f"join ttl {ttl}: modelyard / duckdb floor",
                x(floor),
                f"<= {FLOOR_TARGET}x",
                "FAIL" if floor is None else pass_fail(floor <= FLOOR_TARGET),
            ]
        )
        count = mine.get("check", {}).get("mismatches") if mine else None
        lines.append(
            [
                f"join ttl {ttl}: modelyard mismatches",
                "—" if count is None else f"{count:,}",
                "0",
                pass_fail(count == 0),
            ]
        )
    stores = sorted({key.split("/")[1] for key in online})
    for store in stores:
        mine, theirs = online.get(f"modelyard/{store}"), online.get(f"feast/{store}")
        count = mine.get("check", {}).get("mismatches") if mine else None
        lines.append(
            [
                f"online {store}: modelyard values wrong",
                "—" if count is None else f"{count:,}",
                "0",
                pass_fail(count == 0),
            ]
        )
        for width in ("x1", "x100"):
            label = f"online {store}, {width[1:]} per call: feast / modelyard p99"
            if not theirs or "failed" in theirs or not mine or "failed" in mine:
                lines.append([label, "—", f">= {ONLINE_TARGET:.0f}x", not_run])
                continue
            value = theirs["reads"][width]["p99_ms"] / mine["reads"][width]["p99_ms"]
            lines.append(
                [label, x(value), f">= {ONLINE_TARGET:.0f}x", pass_fail(value >= ONLINE_TARGET)]
            )
    return lines


def pass_fail(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def edge_lines(joins: dict[str, Any]) -> list[str]:
    """Where each tool's wrong rows are, by kind of label row."""
    out = []
    for key, result in joins.items():
        check = result.get("check")
        if not check or not check["mismatches"]:
            continue
        where = ", ".join(f"{k}: {v:,}" for k, v in check["by_edge"].items())
        out.append(
            f"{key}: wrong rows by kind of label: {where}; rows differing where the reference "
            f"row had a same-time twin: {check['differ_on_tied_rows']:,} "
            f"(of {check['tied_rows']:,} such label rows)"
        )
    return out


def report_text(results: dict[str, Any], sizes: Sizes) -> str:
    parts = [
        "training frame: seconds = the join only (labels in memory, features read from Parquet "
        "inside the clock); peak MB = the process's peak RSS; +MB in run = how far the join "
        "raised it",
        render(join_lines(results["join"])),
        f"fastest of {results['repeat']} rounds, each in a fresh process (all: rounds_s in the "
        "JSON); mismatches: the worst round",
        *edge_lines(results["join"]),
        "",
        render(online_lines(results["online"], sizes)),
    ]
    floor = results["online"].get("modelyard/redis", {}).get("floor")
    if floor:
        parts.append(
            "redis floor: one HMGET of a stored row on a plain socket, parsed by hiredis (no "
            f"client library), same entities, in the same rounds: p50 {floor['p50_ms']:.2f} / "
            f"p99 {floor['p99_ms']:.2f} ms"
        )
        feast = results["online"].get("feast/redis", {}).get("reads")
        if feast:
            parts.append(
                "  Feast / floor, 1 entity: the most any client could show here: p50 "
                f"{x(feast['x1']['p50_ms'] / floor['p50_ms'])}, "
                f"p99 {x(feast['x1']['p99_ms'] / floor['p99_ms'])}"
            )
    if results.get("redis_missing"):
        parts.append(f"Redis: not run ({results['redis_missing']})")
    if results.get("feast_missing"):
        parts.append(f"Feast: not run ({results['feast_missing']})")
    parts += [
        "",
        render(check_lines(results["join"], results["online"], results.get("feast_missing"))),
    ]
    return "\n".join(parts)


# ---- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 feature rows, 10,000 labels")
    parser.add_argument("--skip-feast", action="store_true", help="modelyard only, no install")
    parser.add_argument("--skip-redis", action="store_true", help="SQLite online store only")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every join; the fastest counts"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    import modelyard

    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    feast, feast_version, feast_missing = feast_python(args.skip_feast)
    if feast_missing and not args.skip_feast:
        print(f"Feast is missing: {feast_missing}; measuring modelyard only", file=sys.stderr)
    missing_redis = redis_missing(args.skip_redis)
    features_path, labels_path = write_data(sizes)

    print("reference", file=sys.stderr)
    started = time.perf_counter()
    features, labels = load_inputs(features_path, labels_path)
    refs = {ttl: reference(features, labels, ttl_s) for ttl, ttl_s in TTLS.items()}
    reference_s = time.perf_counter() - started
    literal_wrong = literal_check(features, labels, refs)
    if literal_wrong:
        raise SystemExit(
            f"the vectorised reference disagrees with the loop on {literal_wrong} rows"
        )
    online_ref = online_reference(features, sizes, TTLS["30d"])

    tools = [Tool("modelyard", sys.executable, "_features_worker.py")]
    if feast is not None:
        tools.append(Tool("feast", feast, "_features_feast_worker.py"))
    end = pd.Timestamp(START) + pd.Timedelta(days=DAYS)
    spec = {
        **asdict(sizes),
        "features": str(features_path),
        "labels": str(labels_path),
        "folder": str(DATA / "stores" / uuid.uuid4().hex[:8]),
        "seed": SEED,
        "start": (pd.Timestamp(START) - pd.Timedelta(days=1)).isoformat(),
        "end": end.isoformat(),
    }
    Path(spec["folder"]).mkdir(parents=True)
    print("training frames", file=sys.stderr)

    def check(ttl: str, out: Path) -> Any:
        return compare_frame(out, refs[ttl], labels)

    joins = run_joins(tools, spec, args.repeat, check)
    print("online", file=sys.stderr)
    online = run_online(tools, spec, missing_redis is None)
    check_online(online, online_ref)

    results = {
        "repeat": args.repeat,
        "join": joins,
        "online": online,
        "redis_missing": missing_redis,
        "feast_missing": feast_missing,
    }
    text = report_text(results, sizes)
    print(f"\n{text}")
    print(
        f"\n(reference: {reference_s:.1f} s for both TTLs; the loop agreed on 2,000 sampled rows)"
    )
    report = {
        "quick": args.quick,
        "repeat": args.repeat,
        "sizes": asdict(sizes),
        "rows": {"features": len(features), "labels": len(labels)},
        "versions": {"modelyard": modelyard.__version__, "feast": feast_version},
        "feast_requirements": list(FEAST_REQUIREMENTS),
        "results": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


if __name__ == "__main__":
    main()
