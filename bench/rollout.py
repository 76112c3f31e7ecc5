"""Rollout benchmark: what routing and shadowing cost a model server, against one version.

    .venv/bin/python bench/rollout.py [--rounds N] [--duration S] [--quick]

One scikit-learn logistic regression (breast cancer, as in `serving.py`) registered twice
(versions 1 and 2, the same model), served as three deployments at once, each by
`modelyard serve --deployment NAME --workers 1 --decide-every 0`: `single` (version 1),
`canary` (version 2 at 50 %, version 1 the rest) and `shadow` (version 1 answers, version 2
scores a copy of every request off the request path). In each round every server gets, in
turn, `wrk` at full speed (`serving.py`'s set-up: what it can take) and then paced load
(every connection waits `PACE_MS` between requests: the latency clients see at a steady
rate the server handles); the order of the servers turns from round to round. A ratio
against `single` is taken within each round, and the median over the rounds is reported.
Results go to stdout as a table and to `bench/.work/rollout.json`; server logs and wrk's
output stay in `bench/.work/rollout/`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import serving
from serving import MODEL, WORKERS, Load, Server, make_request, ms, project_worker
from tracking import BENCH, render, save_report, worker_env

RESULTS_FILE = BENCH / ".work" / "rollout.json"
WORK = BENCH / ".work" / "rollout"
MODELYARD = str(Path(sys.executable).parent / "modelyard")
# deployment: strategy, options, label
DEPLOYMENTS = {
    "single": ("single", [], "single: version 1"),
    "canary": ("canary", ["--option", "steps=[0.5,1.0]"], "canary: version 2 at 50 %"),
    "shadow": ("shadow", [], "shadow: version 1, version 2 mirrored"),
}
ROUNDS, DURATION_S = 5, 5  # --quick: 2 rounds of 2 s
PACE_MS = 20  # paced load: each of wrk's connections waits this long between requests
LOADS = ("full", "paced")
# check: deployment, load, figure, target ratio against single (at least / at most), text
CHECKS = [
    ("canary", "full", "requests_per_s", 0.9, "canary / single req/s, full load", ">= 0.90x"),
    ("shadow", "paced", "p99_s", 1.1, "shadow / single p99, paced load", "<= 1.10x"),
]


def register(home: Path) -> None:
    """The model as versions 1 and 2 of `bc`, and the three deployments over them."""
    print("registering the model twice and creating the deployments", file=sys.stderr)
    for _ in range(2):
        project_worker({"workload": "log", "home": str(home)})
    for name, (strategy, options, _) in DEPLOYMENTS.items():
        command = [MODELYARD, "--home", str(home), "deploy", "create", name]
        command += ["--strategy", strategy, "--model", f"{MODEL}/1", *options]
        if strategy != "single":
            command += ["--candidate", f"{MODEL}/2"]
        subprocess.run(command, check=True, capture_output=True, env=worker_env())


def deployment_server(home: Path, name: str) -> Server:
    """`modelyard serve --deployment NAME`, logging on, no decisions (the split stays put)."""
    command = [MODELYARD, "--home", str(home), "serve", "--deployment", name]
    command += ["--workers", str(WORKERS), "--decide-every", "0"]
    label = DEPLOYMENTS[name][2]
    return Server(name, label, command, "/v2/health/ready", info_path=None, metrics_path="/metrics")


def scripts() -> dict[str, Path]:
    """wrk's scripts: the request at full speed, and the same request paced."""
    request = make_request().body.decode()
    full = serving.WRK_SCRIPT.format(body=request)
    texts = {"full": full, "paced": f"{full}function delay()\n  return {PACE_MS}\nend\n"}
    paths = {load: WORK / f"{load}.lua" for load in LOADS}
    for load, path in paths.items():
        path.write_text(texts[load])
    return paths


def measure_all(home: Path, rounds: int, duration_s: int) -> dict[str, dict[str, Any]]:
    """Every deployment served at once; `rounds` rounds of full and paced load on each, the
    servers in a turning order; the answer checked before and after."""
    request = make_request()
    paths = scripts()
    names = list(DEPLOYMENTS)
    loads: dict[str, dict[str, list[Load]]] = {name: {load: [] for load in LOADS} for name in names}
    with ExitStack() as stack:
        servers = {name: deployment_server(home, name) for name in names}
        urls = {name: stack.enter_context(serving.running(servers[name], WORK)) for name in names}
        for url in urls.values():
            serving.check_answer(url, request)
            serving.load(url, paths["full"], serving.WARMUP_S)
        for round_ in range(rounds):
            print(f"  round {round_ + 1} of {rounds}", file=sys.stderr)
            turn = round_ % len(names)
            for name in names[turn:] + names[:turn]:
                for load in LOADS:
                    figures, output = serving.load(urls[name], paths[load], duration_s)
                    loads[name][load].append(figures)
                    (WORK / f"{name}.{load}.wrk.txt").write_text(output)
        results = {}
        for name, url in urls.items():
            serving.check_answer(url, request)  # still right after the load
            results[name] = {
                "label": servers[name].label,
                "log_dropped": serving.log_dropped(url, servers[name]),
                "rounds": {load: [asdict(x) for x in loads[name][load]] for load in LOADS},
            }
    return results


def median(result: dict[str, Any], load: str, figure: str) -> float:
    return statistics.median(x[figure] for x in result["rounds"][load])


def ratio(results: dict[str, dict[str, Any]], name: str, load: str, figure: str) -> float:
    """The median over the rounds of `name`'s figure over `single`'s in the same round."""
    pairs = zip(results[name]["rounds"][load], results["single"]["rounds"][load], strict=True)
    return statistics.median(mine[figure] / base[figure] for mine, base in pairs)


def errors(result: dict[str, Any]) -> int:
    return sum(x["non_2xx"] + x["socket_errors"] for load in LOADS for x in result["rounds"][load])


def ratio_lines(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    lines = [["deployment", "req/s", "p50", "p99", "paced req/s", "paced p50", "paced p99",
              "errors", "req/s vs single", "p99 vs single", "paced p99 vs single"]]  # fmt: skip
    for name, result in results.items():
        requests = sum(x["requests"] for load in LOADS for x in result["rounds"][load])
        lines.append([
            result["label"],
            f"{median(result, 'full', 'requests_per_s'):,.0f}",
            ms(median(result, "full", "p50_s")),
            ms(median(result, "full", "p99_s")),
            f"{median(result, 'paced', 'requests_per_s'):,.0f}",
            ms(median(result, "paced", "p50_s")),
            ms(median(result, "paced", "p99_s")),
            f"{errors(result):,} of {requests:,}",
            f"{ratio(results, name, 'full', 'requests_per_s'):.2f}x",
            f"{ratio(results, name, 'full', 'p99_s'):.2f}x",
            f"{ratio(results, name, 'paced', 'p99_s'):.2f}x",
        ])  # fmt: skip
    return lines


def verdict_lines(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    lines = [["check", "value", "target", "result"]]
    for name, load, figure, target, label, target_text in CHECKS:
        value = ratio(results, name, load, figure)
        passed = value <= target if figure == "p99_s" else value >= target
        if errors(results[name]) or results[name]["log_dropped"]:
            passed = False
        lines.append([label, f"{value:.2f}x", target_text, "PASS" if passed else "FAIL"])
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s of each load")
    parser.add_argument("--rounds", type=int, help=f"rounds of load ({ROUNDS})")
    parser.add_argument("--duration", type=int, help=f"seconds of each load ({DURATION_S})")
    args = parser.parse_args(argv)
    for option in ("rounds", "duration"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    import httpx

    import modelyard

    args = parse_args(argv)
    rounds = args.rounds or (2 if args.quick else ROUNDS)
    duration_s = args.duration or (2 if args.quick else DURATION_S)
    serving.wrk_path()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    serving.WORK.mkdir(parents=True, exist_ok=True)  # the folder `project_worker` runs in
    home = WORK / "modelyard-home"
    register(home)
    print("serving", file=sys.stderr)
    load_average = os.getloadavg()[0]
    try:
        results = measure_all(home, rounds, duration_s)
    except (serving.ServerError, httpx.HTTPError, ValueError) as exc:  # ValueError: not JSON
        raise SystemExit(f"rollout benchmark FAILED: {exc}") from None
    text = "\n".join(
        [
            f"single-row JSON requests to /invocations, wrk -t{serving.THREADS} "
            f"-c{serving.CONNECTIONS}; {rounds} rounds of {duration_s} s at full speed and "
            f"{duration_s} s paced ({PACE_MS} ms between a connection's requests), after "
            f"{serving.WARMUP_S} s of warm-up; one worker per server, the three servers up at "
            f"once, on {os.cpu_count()} CPUs shared with wrk (load average {load_average:.2f} "
            "before); medians over the rounds, ratios taken within each round",
            render(ratio_lines(results)),
            *serving.log_lines(results),
            "",
            render(verdict_lines(results)),
        ]
    )
    print(f"\n{text}")
    report = {
        "quick": args.quick,
        "rounds": rounds,
        "duration_s": duration_s,
        "pace_ms": PACE_MS,
        "versions": {"modelyard": modelyard.__version__},
        "load_average": load_average,
        "results": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


if __name__ == "__main__":
    main()
