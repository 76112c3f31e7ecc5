"""Registry benchmark: register, then load by alias warm and cold, on modelyard and on MLflow.

    .venv/bin/python bench/registry.py [--skip-mlflow] [--repeat N] [--quick]

The same fitted scikit-learn logistic regression is logged and registered as 100 versions,
`champion` is pointed at the last, then loaded by alias warm (in one process) and cold (a
new process, from spawn to its first prediction). MLflow runs in its own venv
(`bench/.venvs/mlflow`, shared with `tracking.py`), both with its defaults and with
`pip_requirements` given. Each workload runs in a fresh process; each tool on a fresh store
(a SQLite file and a local artifact folder). Results go to stdout as a table and to
`bench/.work/registry.json`. See `bench/README.md` for what is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tracking import (
    BENCH,
    WORKER_TIMEOUT_S,
    Side,
    WorkerError,
    import_seconds,
    mlflow_side,
    modelyard_side,
    pip_install,
    render,
    save_report,
    seconds_text,
    sqlite_store,
    worker_env,
)

RESULTS_FILE = BENCH / ".work" / "registry.json"
# What a scikit-learn model needs on both sides; skops is the format both store it in.
LIBRARIES = ("scikit-learn", "skops", "numpy", "scipy")
MLFLOW_LOADERS = ("sklearn", "pyfunc")  # mlflow.sklearn.load_model, mlflow.pyfunc.load_model
TIMINGS = ("seconds", "first_seconds", "rest_median_seconds", "warm", "cold")


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; `--quick` makes every count smaller."""

    versions: int = 100  # (r1) log_model + register calls in one run
    default_versions: int = 10  # (r1) the same with MLflow's defaults (seconds per version)
    loads: int = 20  # (r2) warm loads in one process, median, after one warm-up
    starts: int = 5  # (r3) new processes, median

    @classmethod
    def quick(cls) -> Sizes:
        return cls(versions=10, default_versions=3, loads=5, starts=3)


# ---- one round -----------------------------------------------------------------------


def run_round(sides: dict[str, Side], sizes: Sizes, root: Path) -> dict[str, Any]:
    """Every figure once: each tool registers on a fresh store, then loads from it."""
    figures: dict[str, Any] = {}
    for name, side in sides.items():
        registered, folder = register(side, sizes.versions, root, pin=True)
        loaders = MLFLOW_LOADERS if name == "mlflow" else ("load", "onnx")
        figures[name] = {"register": registered}
        for loader in loaders:
            figures[name][loader] = run_loads(side, folder, registered, loader, sizes)
    if "mlflow" in sides:
        registered, _ = register(sides["mlflow"], sizes.default_versions, root, pin=False)
        figures["mlflow-defaults"] = {"register": registered}
    return figures


def register(side: Side, versions: int, root: Path, *, pin: bool) -> tuple[dict[str, Any], Path]:
    """(r1) on a fresh store; `pin=False` leaves MLflow to infer the requirements itself."""
    setting = "" if side.name == "modelyard" else (" (pip_requirements)" if pin else " (defaults)")
    print(f"  {side.name}: register {versions} versions{setting}", file=sys.stderr)
    folder = fresh_folder(root, f"{side.name}-register")
    spec = {"workload": "register", "folder": str(folder), "versions": versions, "pin": pin}
    spec["db_url"] = sqlite_store(side, folder)
    return side.run(spec), folder


def fresh_folder(root: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))


def run_loads(
    side: Side, folder: Path, registered: dict[str, Any], loader: str, sizes: Sizes
) -> dict[str, Any]:
    """(r2) warm loads in one new process, then (r3) `starts` new processes, on one store."""
    spec = {"folder": str(folder), "db_url": sqlite_store(side, folder), "loader": loader}
    spec["row"] = registered["row"]
    print(f"  {side.name}: load by alias ({loader}), warm and cold", file=sys.stderr)
    warm = side.run({**spec, "workload": "warm", "loads": sizes.loads})
    check_prediction(side, "warm", warm["prediction"], registered)
    cold = []
    for _ in range(sizes.starts):
        # Start as a new machine would: no local copy of the model from earlier loads.
        shutil.rmtree(folder / "cache", ignore_errors=True)
        seconds, prediction = first_prediction(side, {**spec, "workload": "cold"})
        check_prediction(side, "cold", prediction, registered)
        cold.append(seconds)
    return {"warm": warm["seconds"], "cold": statistics.median(cold), "cold_samples": cold}


def first_prediction(side: Side, spec: dict[str, Any]) -> tuple[float, list[Any]]:
    """Seconds from spawning the worker to the line with its prediction, and the prediction."""
    command = [side.python, str(side.worker), json.dumps(spec)]
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        with subprocess.Popen(
            command,
            cwd=spec["folder"],
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        ) as process:
            assert process.stdout is not None
            seconds, output = None, ""
            for output in process.stdout:
                if output.startswith("{"):
                    seconds = time.perf_counter() - start
                    break
            process.stdout.read()
            code = process.wait(timeout=WORKER_TIMEOUT_S)
        if code != 0 or seconds is None:
            errors.seek(0)
            tail = "\n".join(errors.read().strip().splitlines()[-15:])
            raise WorkerError(f"{side.name} cold start exited {code}:\n{tail}")
    prediction: list[Any] = json.loads(output)["prediction"]
    return seconds, prediction


def check_prediction(side: Side, workload: str, got: list[Any], registered: dict) -> None:
    if got != registered["row_prediction"]:
        raise SystemExit(
            f"{side.name} {workload}: the model loaded by alias predicts {got} for the first "
            f"row; the original predicts {registered['row_prediction']}"
        )


def best_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each timing at its best across rounds; everything else from the first round."""
    best = json.loads(json.dumps(rounds[0]))
    for other in rounds[1:]:
        for tool, parts in other.items():
            for part, figures in parts.items():
                for key, value in figures.items():
                    if key in TIMINGS:
                        mine = best[tool][part]
                        mine[key] = min(mine[key], value)
    return best


# ---- the environments ----------------------------------------------------------------


def library_versions(python: str) -> dict[str, str | None]:
    """Installed versions of LIBRARIES, plus whether torch is installed, for `python`."""
    code = (
        "import json, importlib.metadata as m, importlib.util as u\n"
        "def v(n):\n"
        "    try:\n"
        "        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        f"print(json.dumps({{**{{n: v(n) for n in {LIBRARIES!r}}}, "
        "'torch': v('torch') if u.find_spec('torch') else None}))"
    )
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=worker_env(), check=True
    )
    versions: dict[str, str | None] = json.loads(done.stdout)
    return versions


def match_libraries(mlflow: Side, wanted: dict[str, str | None]) -> dict[str, str | None]:
    """Give MLflow's venv the project's versions of LIBRARIES, so both load the same code."""
    found = library_versions(mlflow.python)
    if all(found[name] == wanted[name] for name in LIBRARIES):
        return found
    pins = [f"{name}=={wanted[name]}" for name in LIBRARIES if wanted[name]]
    print(f"installing {' '.join(pins)} into MLflow's venv ...", file=sys.stderr)
    pip_install(Path(mlflow.python), *pins)
    return library_versions(mlflow.python)


# ---- reporting -----------------------------------------------------------------------

HEADER = ["workload", "modelyard", "mlflow", "mlflow/modelyard", "target", "result"]


def line(label: str, mine: float | None, theirs: float | None, target: float | None) -> list[str]:
    """One table line: figures, ratio, target and verdict (`—` where there is no target)."""
    target_text = f">= {target:g}x" if target else "—"
    if mine is None or theirs is None:
        return [label, seconds_text(mine), seconds_text(theirs), "—", target_text, "—"]
    ratio = theirs / mine
    verdict = "—" if target is None else ("PASS" if ratio >= target else "MISS")
    return [label, seconds_text(mine), seconds_text(theirs), f"{ratio:.1f}x", target_text, verdict]


def per_version(results: dict[str, Any], tool: str) -> float | None:
    register = results.get(tool, {}).get("register")
    return register["seconds"] / register["versions"] if register else None


def fastest_loader(mlflow: dict[str, Any] | None, figure: str) -> str | None:
    if mlflow is None:
        return None
    return min(MLFLOW_LOADERS, key=lambda loader: float(mlflow[loader][figure]))


def load_lines(sizes: Sizes, results: dict[str, Any], figure: str) -> list[list[str]]:
    """(r2) or (r3): modelyard against MLflow's faster loader, then the other loader."""
    mine = results["modelyard"]["load"][figure]
    mlflow = results.get("mlflow")
    fast = fastest_loader(mlflow, figure)
    if figure == "warm":
        label, target = f"(r2) load by alias + predict, warm, median of {sizes.loads}", None
    else:
        label, target = f"(r3) new process to first prediction, median of {sizes.starts}", 3.0
    if mlflow is None or fast is None:
        return [line(label, mine, None, target)]
    slow = next(loader for loader in MLFLOW_LOADERS if loader != fast)
    onnx = results["modelyard"]["onnx"][figure]
    return [
        line(f"{label} (mlflow.{fast})", mine, mlflow[fast][figure], target),
        line(f"     same, mlflow.{slow}.load_model", mine, mlflow[slow][figure], None),
        line(
            f"     modelyard load_model(onnx=True) vs mlflow.{fast}",
            onnx,
            mlflow[fast][figure],
            None,
        ),
    ]


def requirements_exact(results: dict[str, Any]) -> bool:
    register = results["modelyard"]["register"]
    recorded, installed = register["requirements"], register["installed"]
    return all(recorded.get(name) == installed[name] for name in LIBRARIES)


def table(sizes: Sizes, results: dict[str, Any]) -> str:
    mine = per_version(results, "modelyard")
    r1 = line(
        f"(r1) log + register {sizes.versions} versions, per version (mlflow: pip_requirements)",
        mine,
        per_version(results, "mlflow"),
        5.0,
    )
    if not requirements_exact(results):
        r1[-1] = "MISS (requirements not exact)"
    lines = [HEADER, r1]
    if "mlflow-defaults" in results:
        label = f"     same, mlflow defaults ({sizes.default_versions} versions), per version"
        lines.append(line(label, mine, per_version(results, "mlflow-defaults"), None))
    lines += [
        *load_lines(sizes, results, "warm"),
        *load_lines(sizes, results, "cold"),
    ]
    skops = results["import_skops"]
    lines.append(
        line("(i) import skops.io, new process", skops["modelyard"], skops.get("mlflow"), None)
    )
    return render(lines)


def checks(results: dict[str, Any], libraries: dict[str, dict[str, str | None]]) -> list[str]:
    """The lines that say the figures compare like with like."""
    tools = [tool for tool in ("modelyard", "mlflow", "mlflow-defaults") if tool in results]
    out = [requirements_line(tool, results[tool]["register"]) for tool in tools]
    digests = {results[tool]["register"]["predictions"] for tool in tools}
    agree = "the same" if len(digests) == 1 else "DIFFERENT"
    out.append(
        "predictions: every model loaded back predicted as the original did; the originals "
        f"predict {agree} labels in every store"
    )
    for tool, versions in libraries.items():
        text = ", ".join(
            f"{name} {version or 'not installed'}" for name, version in versions.items()
        )
        out.append(f"libraries, {tool} venv: {text}")
    for tool in tools:
        register = results[tool]["register"]
        out.append(
            f"(r1) {tool}: first call {seconds_text(register['first_seconds'])}, "
            f"median of the others {seconds_text(register['rest_median_seconds'])}"
        )
    return out


def requirements_line(tool: str, register: dict[str, Any]) -> str:
    recorded, installed = register["requirements"], register["installed"]
    exact = all(recorded.get(name) == installed[name] for name in LIBRARIES)
    where = "manifest.json" if tool == "modelyard" else "requirements.txt"
    pins = ", ".join(f"{name}=={recorded.get(name)}" for name in LIBRARIES)
    verdict = (
        "exact"
        if exact
        else "NOT exact: installed " + ", ".join(f"{name}=={installed[name]}" for name in LIBRARIES)
    )
    return f"requirements, {tool} {where} of version 1: {pins} -> {verdict}"


# ---- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mlflow", action="store_true", help="modelyard only, no install")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each figure's best counts")
    parser.add_argument(
        "--quick", action="store_true", help="10 versions, fewer loads (smoke test)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    sides = {"modelyard": replace(modelyard_side(), worker=BENCH / "_registry_modelyard_worker.py")}
    libraries = {"modelyard": library_versions(sys.executable)}
    install_s = None
    if not args.skip_mlflow:
        mlflow, install_s = mlflow_side()
        sides["mlflow"] = replace(mlflow, worker=BENCH / "_registry_mlflow_worker.py")
        libraries["mlflow"] = match_libraries(sides["mlflow"], libraries["modelyard"])

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        root = Path(tmp)
        rounds = []
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr)
            rounds.append(run_round(sides, sizes, root))
        results = best_of(rounds)
        results["import_skops"] = {
            name: import_seconds(side, "skops.io", root) for name, side in sides.items()
        }

    text = "\n".join([table(sizes, results), "", *checks(results, libraries)])
    print(f"\n{text}")
    if install_s is not None:
        print(f"\n(MLflow was installed in this run: {install_s:.0f} s, not part of any figure)")
    write_results(args, sizes, sides, libraries, install_s, results, text)


def write_results(
    args: argparse.Namespace,
    sizes: Sizes,
    sides: dict[str, Side],
    libraries: dict[str, dict[str, str | None]],
    install_s: float | None,
    results: dict[str, Any],
    text: str,
) -> None:
    report = {
        "quick": args.quick,
        "repeat": args.repeat,
        "sizes": asdict(sizes),
        "versions": {side.name: side.version for side in sides.values()},
        "libraries": libraries,
        "mlflow_install_s": install_s,
        "seconds": results,
        "table": text.splitlines(),
    }
    save_report(RESULTS_FILE, report)


if __name__ == "__main__":
    main()
