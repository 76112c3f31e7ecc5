"""`modelyard runs …` and `modelyard experiments …`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt, fmt_duration, fmt_time, print_json, print_table
from modelyard.tracking import Artifact, Experiment, Run, RunComparison, Tracker
from modelyard.tracking._entities import View
from modelyard.tracking._environment import requirements, rerun_instructions

runs_app = typer.Typer(
    help="List, inspect, compare, delete and restore runs.", no_args_is_help=True
)
experiments_app = typer.Typer(
    help="List, create, delete and restore experiments.", no_args_is_help=True
)


class ViewChoice(StrEnum):
    active = "active"
    deleted = "deleted"
    all = "all"


ViewOption = Annotated[ViewChoice, typer.Option(help="Which lifecycle to show.")]


@contextmanager
def _tracker(ctx: typer.Context) -> Iterator[Tracker]:
    from modelyard.tracking import open_tracker

    tracker = open_tracker(settings_of(ctx))
    try:
        yield tracker
    finally:
        tracker.close()


def _view(value: ViewChoice) -> View:
    return value.value


@experiments_app.command("list")
def list_experiments(
    ctx: typer.Context, view: ViewOption = ViewChoice.active, as_json: JsonFlag = False
) -> None:
    """Experiments, oldest first."""
    with _tracker(ctx) as tracker:
        experiments = tracker.list_experiments(_view(view))
    if as_json:
        print_json(experiments, list[Experiment])
        return
    print_table(
        "experiments",
        ["id", "name", "lifecycle", "created", "tags"],
        [
            (
                e.id,
                e.name,
                e.lifecycle,
                fmt_time(e.created_at),
                ", ".join(f"{k}={v}" for k, v in e.tags.items()),
            )
            for e in experiments
        ],
    )


@experiments_app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: str,
    description: Annotated[str | None, typer.Option(help="What the experiment is for.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value (repeatable).")] = None,
) -> None:
    """Create an experiment (runs also create theirs on first use)."""
    tags = dict(_key_value(item) for item in tag or [])
    with _tracker(ctx) as tracker:
        created = tracker.create_experiment(name, description=description, tags=tags)
    console.print(f"created experiment {created.name} ({created.id})")


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise typer.BadParameter(f"tags are key=value, got {item!r}")
    return key, value


@experiments_app.command("delete")
def delete_experiment(ctx: typer.Context, experiment: str) -> None:
    """Soft-delete an experiment: its runs leave searches until it is restored."""
    with _tracker(ctx) as tracker:
        tracker.delete_experiment(experiment)
    console.print(f"deleted experiment {experiment}")


@experiments_app.command("restore")
def restore_experiment(ctx: typer.Context, experiment: str) -> None:
    """Bring back a deleted experiment and its runs."""
    with _tracker(ctx) as tracker:
        tracker.restore_experiment(experiment)
    console.print(f"restored experiment {experiment}")


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Name or id (repeatable).")
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.penalty = 'l2'\""),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.auc desc' (repeatable)."),
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n")] = 100,
    page_token: Annotated[
        str | None, typer.Option(help="Token printed by the previous page.")
    ] = None,
    view: ViewOption = ViewChoice.active,
    as_json: JsonFlag = False,
) -> None:
    """Runs matching a filter, newest first unless ordered otherwise."""
    with _tracker(ctx) as tracker:
        runs = tracker.search_runs(
            experiment or None, filter_, order_by, max_results, page_token, _view(view)
        )
    if as_json:
        print_json(
            {"runs": list(runs), "next_page_token": runs.next_page_token},
            dict[str, list[Run] | str | None],
        )
        return
    metric_keys = sorted({k for run in runs for k in run.metrics})[:6]
    print_table(
        None,
        ["run id", "name", "experiment", "status", "started", "duration", *metric_keys],
        [
            (
                run.id,
                run.name,
                run.experiment_name,
                run.status.value,
                fmt_time(run.start_time),
                fmt_duration(run.duration_ms),
                *(fmt(run.metrics[k].value) if k in run.metrics else "-" for k in metric_keys),
            )
            for run in runs
        ],
    )
    if runs.next_page_token:
        console.print(f"more: --page-token {runs.next_page_token}")


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: str,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print the recorded uncommitted diff.")
    ] = False,
    reqs: Annotated[bool, typer.Option("--requirements", help="Print pinned packages.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Everything about one run, and how to re-run it."""
    with _tracker(ctx) as tracker:
        run = tracker.get_run(run_id)
        artifacts = tracker.list_artifacts(run_id)
    environment = run.environment or {}
    if diff:
        git = environment.get("git") or {}
        print(git.get("diff", ""), end="")
        return
    if reqs:
        print("\n".join(requirements(environment)))
        return
    if as_json:
        print_json({"run": run, "artifacts": artifacts}, dict[str, Run | list[Artifact]])
        return
    _print_run(run, artifacts)


def _print_run(run: Run, artifacts: list[Artifact]) -> None:
    environment = run.environment or {}
    git = environment.get("git") or {}
    print_table(
        f"run {run.id}",
        ["field", "value"],
        [
            ("name", run.name),
            ("experiment", f"{run.experiment_name} ({run.experiment_id})"),
            ("status", run.status.value),
            ("lifecycle", run.lifecycle),
            ("user", run.user),
            ("started", fmt_time(run.start_time)),
            ("ended", fmt_time(run.end_time)),
            ("duration", fmt_duration(run.duration_ms)),
            ("parent", run.parent_id),
            ("note", run.note),
            (
                "git",
                f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}" if git else None,
            ),
            ("python", (environment.get("python") or {}).get("version")),
        ],
    )
    if run.params:
        print_table("params", ["key", "value"], sorted(run.params.items()))
    if run.metrics:
        print_table(
            "metrics (final)",
            ["key", "value", "step"],
            [
                (m.key, fmt(m.value), m.step)
                for m in sorted(run.metrics.values(), key=lambda m: m.key)
            ],
        )
    if run.tags:
        print_table("tags", ["key", "value"], sorted(run.tags.items()))
    if run.datasets:
        print_table(
            "datasets",
            ["name", "role", "digest", "rows", "columns"],
            [(d.name, d.role, d.digest[:16], d.num_rows, d.num_columns) for d in run.datasets],
        )
    if artifacts:
        print_table(
            "artifacts",
            ["path", "bytes", "sha256"],
            [(a.path, a.size, a.digest[:16]) for a in artifacts],
        )
    console.print("[bold]re-run[/bold]")
    for line in rerun_instructions(run.environment, run.id):
        console.print(f"  {line}", markup=False, highlight=False)


@runs_app.command("compare")
def compare_runs(ctx: typer.Context, run_ids: list[str], as_json: JsonFlag = False) -> None:
    """Params and final metrics side by side; differing rows are marked."""
    with _tracker(ctx) as tracker:
        comparison = tracker.compare_runs(run_ids)
    if as_json:
        print_json(_comparison_json(comparison))
        return
    names = [f"{r.name}\n{r.id[:8]}" for r in comparison.runs]
    rows: list[tuple[Any, ...]] = []
    for section, table, differing in (
        ("param", comparison.params, comparison.differing_params),
        ("metric", comparison.metrics, comparison.differing_metrics),
    ):
        for key, values in table.items():
            mark = Text("≠", style="bold yellow") if key in differing else Text("")
            style = "yellow" if key in differing else ""
            rows.append(
                (
                    mark,
                    Text(f"{section}.{key}", style=style),
                    *(Text(fmt(val), style=style) for val in values),
                )
            )
    print_table("comparison (≠ marks differences)", ["", "key", *names], rows)


def _comparison_json(comparison: RunComparison) -> dict[str, Any]:
    return {
        "runs": [{"id": r.id, "name": r.name} for r in comparison.runs],
        "params": comparison.params,
        "metrics": comparison.metrics,
        "differing_params": sorted(comparison.differing_params),
        "differing_metrics": sorted(comparison.differing_metrics),
    }


@runs_app.command("delete")
def delete_run(ctx: typer.Context, run_id: str) -> None:
    """Soft-delete a run (restore brings it back)."""
    with _tracker(ctx) as tracker:
        tracker.delete_run(run_id)
    console.print(f"deleted run {run_id}")


@runs_app.command("restore")
def restore_run(ctx: typer.Context, run_id: str) -> None:
    """Bring back a deleted run."""
    with _tracker(ctx) as tracker:
        tracker.restore_run(run_id)
    console.print(f"restored run {run_id}")


@runs_app.command("artifacts")
def artifacts(ctx: typer.Context, run_id: str, as_json: JsonFlag = False) -> None:
    """The files stored with a run."""
    with _tracker(ctx) as tracker:
        stored = tracker.list_artifacts(run_id)
    if as_json:
        print_json(stored, list[Artifact])
        return
    print_table(
        f"artifacts of {run_id}",
        ["path", "bytes", "sha256"],
        [(a.path, a.size, a.digest) for a in stored],
    )


@runs_app.command("download")
def download(
    ctx: typer.Context,
    run_id: str,
    path: str,
    dest: Annotated[str, typer.Argument(help="File or folder.")] = ".",
) -> None:
    """Copy one artifact of a run to a local file (hash verified)."""
    with _tracker(ctx) as tracker:
        target = tracker.download_artifact(run_id, path, dest)
    console.print(f"wrote {target}")
