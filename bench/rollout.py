"""Rollout benchmark: what routing and shadowing cost a model server, against one version.

    .venv/bin/python bench/rollout.py [--duration S] [--quick]

One scikit-learn logistic regression (breast cancer, as in `serving.py`) registered twice
(versions 1 and 2, the same model), then served as three deployments, one after the other,
each by `modelyard serve --deployment NAME --workers 1 --decide-every 0` and loaded by
`wrk` exactly as `serving.py` loads its servers: `single` (version 1), `canary` (version 2
at 50 %, version 1 the rest) and `shadow` (version 1 answers, version 2 scores a copy of
every request off the request path). Results go to stdout as a table with the ratios
against `single` and to `bench/.work/rollout.json`; server logs stay in
`bench/.work/rollout/`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import serving
from serving import MODEL, WORKERS, Server, Sizes, make_request, measure, ms, project_worker
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
# check: deployment, figure, target ratio against single (at least / at most), text
CHECKS = [
    ("canary", "requests_per_s", 0.9, "canary / single req/s", ">= 0.90x"),
    ("shadow", "p99_s", 1.1, "shadow / single p99", "<= 1.10x"),
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


def ratio_lines(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    lines = [["deployment", "workers", "req/s", "p50", "p99", "errors", "req/s vs single",
              "p99 vs single"]]  # fmt: skip
    base = results.get("single", {})
    for result in results.values():
        if "failed" in result:
            lines.append([result["label"], str(result["workers"]), *["—"] * 3, "FAILED", "—", "—"])
            continue
        rate, p99 = "—", "—"
        if "failed" not in base and base:
            rate = f"{result['requests_per_s'] / base['requests_per_s']:.2f}x"
            p99 = f"{result['p99_s'] / base['p99_s']:.2f}x"
        errors = serving.error_text(result)
        lines.append([
            result["label"], str(result["workers"]), f"{result['requests_per_s']:,.0f}",
            ms(result["p50_s"]), ms(result["p99_s"]), errors, rate, p99,
        ])  # fmt: skip
    return lines


def verdict_lines(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    lines = [["check", "value", "target", "result"]]
    base = results.get("single", {})
    for name, figure, target, label, target_text in CHECKS:
        mine = results.get(name, {})
        if "failed" in mine or "failed" in base or not mine or not base:
            lines.append([label, "—", target_text, "FAIL (a server failed)"])
            continue
        ratio = mine[figure] / base[figure]
        passed = ratio <= target if figure == "p99_s" else ratio >= target
        if mine["errors"] or mine.get("log_dropped"):
            passed = False
        lines.append([label, f"{ratio:.2f}x", target_text, "PASS" if passed else "FAIL"])
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s of load per deployment")
    parser.add_argument("--duration", type=int, help="seconds of load per deployment (10)")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration < 1:
        parser.error("--duration must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    import modelyard

    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.duration is not None:
        sizes = Sizes(args.duration, sizes.rows)
    serving.wrk_path()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    serving.WORK.mkdir(parents=True, exist_ok=True)  # the folder `project_worker` runs in
    home = WORK / "modelyard-home"
    register(home)
    request = make_request()
    script = WORK / "request.lua"
    script.write_text(serving.WRK_SCRIPT.format(body=request.body.decode()))

    print("serving", file=sys.stderr)
    load_average = os.getloadavg()[0]
    results = {
        name: measure(deployment_server(home, name), request, script, sizes, WORK)
        for name in DEPLOYMENTS
    }
    text = "\n".join(
        [
            f"single-row JSON requests to /invocations, wrk -t{serving.THREADS} "
            f"-c{serving.CONNECTIONS}, {sizes.duration_s} s after {serving.WARMUP_S} s of "
            f"warm-up, one worker, on {os.cpu_count()} CPUs shared by wrk and the server "
            f"(load average {load_average:.2f} before the first server)",
            render(ratio_lines(results)),
            *serving.log_lines(results),
            "",
            render(verdict_lines(results)),
        ]
    )
    print(f"\n{text}")
    report = {
        "quick": args.quick,
        "duration_s": sizes.duration_s,
        "versions": {"modelyard": modelyard.__version__},
        "request": json.loads(request.body),
        "load_average": load_average,
        "results": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


if __name__ == "__main__":
    main()
