"""`modelyard models …`: registered models, versions, aliases, approvals and history,
and the queries across them: lineage, search, compare, model cards."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt, fmt_time, print_json, print_table
from modelyard.registry import (
    Lineage,
    ModelVersion,
    RegisteredModel,
    Registry,
    RegistryEvent,
    VersionComparison,
)
from modelyard.tracking._environment import current_user

models_app = typer.Typer(
    help="Registered models: versions, aliases, approvals, rollback, history, lineage, "
    "search, compare and model cards.",
    no_args_is_help=True,
)

Reason = Annotated[str | None, typer.Option(help="Why, for the history.")]
Description = Annotated[str | None, typer.Option(help='What it is for ("" clears it on update).')]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="key=value (repeatable).")]
DeleteTags = Annotated[
    list[str] | None, typer.Option("--delete-tag", help="Tag key to remove (repeatable).")
]


@contextmanager
def _registry(ctx: typer.Context) -> Iterator[Registry]:
    from modelyard.registry import open_registry

    registry = open_registry(settings_of(ctx))
    try:
        yield registry
    finally:
        registry.close()


@models_app.command("list")
def list_models(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Registered models with their latest version and aliases."""
    with _registry(ctx) as registry:
        models = registry.list_models()
    if as_json:
        print_json(models, list[RegisteredModel])
        return
    print_table(
        "models",
        ["name", "versions", "aliases", "protected", "description"],
        [
            (
                m.name,
                m.latest_version,
                ", ".join(f"{a}→{ver}" for a, ver in sorted(m.aliases.items())),
                ", ".join(m.protected_aliases),
                m.description,
            )
            for m in models
        ],
    )


@models_app.command("create")
def create_model(
    ctx: typer.Context, name: str, description: Description = None, tag: Tags = None
) -> None:
    """Register a model before its first version (versions also create it)."""
    with _registry(ctx) as registry:
        registry.create_model(name, description=description, tags=_tags(tag))
    console.print(f"created model {name}", markup=False, highlight=False)


@models_app.command("update")
def update_model(
    ctx: typer.Context,
    name: str,
    description: Description = None,
    tag: Tags = None,
    delete_tag: DeleteTags = None,
) -> None:
    """Change a model's description and tags."""
    with _registry(ctx) as registry:
        registry.update_model(
            name, description=description, tags=_tags(tag), delete_tags=delete_tag or []
        )
    console.print(f"updated model {name}", markup=False, highlight=False)


@models_app.command("show")
def show_model(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """A model's description, tags, aliases and versions."""
    with _registry(ctx) as registry:
        model = registry.get_model(name)
        versions = registry.list_versions(name)
    if as_json:
        print_json(model, RegisteredModel)
        return
    archived = sum(ver.status == "archived" for ver in versions)
    print_table(
        f"model {name}",
        ["field", "value"],
        [
            ("description", model.description),
            ("created", fmt_time(model.created_at)),
            ("versions", f"{len(versions)} ({archived} archived)" if archived else len(versions)),
            ("latest version", model.latest_version or None),
            ("aliases", ", ".join(f"{a}→{ver}" for a, ver in sorted(model.aliases.items()))),
            ("protected aliases", ", ".join(model.protected_aliases)),
            *((f"tag {k}", val) for k, val in sorted(model.tags.items())),
        ],
    )


@models_app.command("tag")
def tag_version(
    ctx: typer.Context,
    name: str,
    version: int,
    tags: Annotated[list[str] | None, typer.Argument(help="key=value tags to set.")] = None,
    delete_tag: DeleteTags = None,
) -> None:
    """Set (and with --delete-tag remove) tags of VERSION of NAME."""
    with _registry(ctx) as registry:
        updated = registry.update_version(
            name, version, tags=_tags(tags), delete_tags=delete_tag or []
        )
    shown = ", ".join(f"{k}={val}" for k, val in sorted(updated.tags.items())) or "none"
    console.print(f"tags of {name} version {version}: {shown}", markup=False, highlight=False)


@models_app.command("versions")
def list_versions(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Every version of a model."""
    with _registry(ctx) as registry:
        versions = registry.list_versions(name)
    if as_json:
        print_json(versions, list[ModelVersion])
        return
    print_table(
        f"versions of {name}",
        ["version", "status", "aliases", "run", "created", "by"],
        [
            (
                ver.version,
                ver.status,
                ", ".join(ver.aliases),
                ver.run_id,
                fmt_time(ver.created_at),
                ver.created_by,
            )
            for ver in versions
        ],
    )


@models_app.command("alias")
def set_alias(
    ctx: typer.Context, name: str, alias: str, version: int, reason: Reason = None
) -> None:
    """Point ALIAS of NAME at VERSION (recorded in the history)."""
    with _registry(ctx) as registry:
        registry.set_alias(name, alias, version, actor=current_user(), reason=reason)
    console.print(f"{name}@{alias} → version {version}")


@models_app.command("unalias")
def delete_alias(ctx: typer.Context, name: str, alias: str, reason: Reason = None) -> None:
    """Remove ALIAS from NAME (recorded in the history)."""
    with _registry(ctx) as registry:
        registry.delete_alias(name, alias, actor=current_user(), reason=reason)
    console.print(f"removed {name}@{alias}")


@models_app.command("rollback")
def rollback(ctx: typer.Context, name: str, alias: str, reason: Reason = None) -> None:
    """Move ALIAS back to the version that held it before."""
    with _registry(ctx) as registry:
        version = registry.rollback(name, alias, actor=current_user(), reason=reason)
    console.print(f"{name}@{alias} rolled back to version {version.version}")


@models_app.command("protect")
def protect(ctx: typer.Context, name: str, aliases: list[str]) -> None:
    """Only approved versions may take these aliases (replaces the protected list)."""
    with _registry(ctx) as registry:
        model = registry.set_protected_aliases(name, aliases)
    console.print(f"protected aliases of {name}: {', '.join(model.protected_aliases) or 'none'}")


@models_app.command("approve")
def approve(
    ctx: typer.Context,
    name: str,
    version: int,
    comment: Annotated[str | None, typer.Option(help="Why.")] = None,
) -> None:
    """Approve VERSION of NAME, so it may take protected aliases."""
    with _registry(ctx) as registry:
        registry.review(name, version, approved=True, approver=current_user(), comment=comment)
    console.print(f"approved {name} version {version}")


@models_app.command("reject")
def reject(
    ctx: typer.Context,
    name: str,
    version: int,
    comment: Annotated[str, typer.Option(help="Why (required).")],
) -> None:
    """Reject VERSION of NAME: it may not take protected aliases."""
    with _registry(ctx) as registry:
        registry.review(name, version, approved=False, approver=current_user(), comment=comment)
    console.print(f"rejected {name} version {version}")


@models_app.command("archive")
def archive(ctx: typer.Context, name: str, version: int) -> None:
    """Archive a version (refused while it holds an alias)."""
    with _registry(ctx) as registry:
        registry.set_version_status(name, version, "archived")
    console.print(f"archived {name} version {version}")


@models_app.command("history")
def history(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Alias moves, rollbacks and approvals of a model, oldest first."""
    with _registry(ctx) as registry:
        events = registry.history(name)
    if as_json:
        print_json(events, list[RegistryEvent])
        return
    print_table(
        f"history of {name}",
        ["when", "what", "alias", "from", "to", "version", "who", "why"],
        [
            (
                fmt_time(e.at),
                e.kind,
                e.alias,
                e.from_version,
                e.to_version,
                e.version if e.alias is None else None,
                e.actor,
                e.reason,
            )
            for e in events
        ],
    )


@models_app.command("lineage")
def lineage(ctx: typer.Context, name: str, version: int, as_json: JsonFlag = False) -> None:
    """The run VERSION of NAME came from, its code commit and the datasets it used."""
    with _registry(ctx) as registry:
        found = registry.lineage(name, version)
    if as_json:
        print_json(found, Lineage)
        return
    _print_lineage(found)


def _print_lineage(lineage: Lineage) -> None:
    commit = lineage.git_commit
    if commit and lineage.git_dirty:
        commit += " (uncommitted changes)"
    print_table(
        f"lineage of {lineage.version.name} version {lineage.version.version}",
        ["field", "value"],
        [
            ("run", lineage.run_id),
            ("run name", lineage.run_name),
            ("experiment", lineage.experiment_name),
            ("run status", lineage.run_status),
            ("parent run", lineage.parent_run_id),
            ("git commit", commit),
            ("git branch", lineage.git_branch),
            ("git remote", lineage.git_remote),
        ],
    )
    if lineage.datasets:
        print_table(
            "datasets (full digests with --json)",
            ["name", "role", "digest", "rows", "source"],
            [(d.name, d.role, f"{d.digest[:12]}…", d.num_rows, d.source) for d in lineage.datasets],
        )


@models_app.command("trained-on")
def trained_on(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="A dataset name or its 64-hex digest.")],
    as_json: JsonFlag = False,
) -> None:
    """Versions whose run used DATASET (in any role)."""
    with _registry(ctx) as registry:
        versions = registry.versions_trained_on(dataset)
    _print_versions(f"versions trained on {dataset}", versions, as_json)


@models_app.command("search")
def search(
    ctx: typer.Context,
    filter: Annotated[
        str | None,
        typer.Argument(help="e.g. \"metrics.auc > 0.9 and flavor = 'sklearn'\"."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Only versions of this model.")] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", help="e.g. 'metrics.auc desc' (repeatable)."),
    ] = None,
    max_results: Annotated[int, typer.Option(help="At most this many versions.")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """Versions matching FILTER, across models or of one.

    FILTER names tags.KEY (the version's), metrics.KEY and params.KEY (its run's), name,
    version, status, alias, flavor, created_at, created_by and run_id.
    """
    with _registry(ctx) as registry:
        versions = registry.search_versions(
            filter, name=name, order_by=order_by, max_results=max_results
        )
    _print_versions("versions", versions, as_json)


def _print_versions(title: str, versions: Sequence[ModelVersion], as_json: bool) -> None:
    if as_json:
        print_json(versions, list[ModelVersion])
        return
    print_table(
        title,
        ["name", "version", "status", "aliases", "flavor", "run", "created"],
        [
            (
                ver.name,
                ver.version,
                ver.status,
                ", ".join(ver.aliases),
                ver.flavor,
                ver.run_id,
                fmt_time(ver.created_at),
            )
            for ver in versions
        ],
    )


@models_app.command("compare")
def compare(ctx: typer.Context, name: str, a: int, b: int, as_json: JsonFlag = False) -> None:
    """Versions A and B of NAME side by side.

    Metrics with their difference, and the params, signature, flavor and requirements that
    differ.
    """
    with _registry(ctx) as registry:
        comparison = registry.compare_versions(name, a, b)
    if as_json:
        print_json(comparison, VersionComparison)
        return
    _print_comparison(comparison)


def _print_comparison(c: VersionComparison) -> None:
    a, b = f"version {c.a.version}", f"version {c.b.version}"
    print_table(
        f"metrics of {c.a.name}",
        ["key", a, b, "b - a"],
        [(m.key, fmt(m.a), fmt(m.b), fmt(m.difference)) for m in c.metrics],
    )
    rows: list[tuple[Any, ...]] = [
        (f"param {key}", va, vb) for key, (va, vb) in sorted(c.params.items())
    ]
    for label, (va, vb) in (("flavor", c.flavor), ("model class", c.model_class)):
        if va != vb:
            rows.append((label, va, vb))
    if c.python != (None, None) and c.python[0] != c.python[1]:
        rows.append(("python", *c.python))
    rows += [(f"package {key}", va, vb) for key, (va, vb) in sorted(c.requirements.items())]
    if rows:
        print_table("differences", ["what", a, b], rows)
    else:
        console.print("no param, flavor or requirement differences", highlight=False)
    if c.signature:
        print_table("signature changes", ["change"], [(line,) for line in c.signature])
    else:
        console.print("signature: no differences", highlight=False)


@models_app.command("card")
def card(
    ctx: typer.Context,
    name: str,
    version: int,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the card to this file.")
    ] = None,
) -> None:
    """A Markdown model card: description, data, metrics, signature, lineage, approvals."""
    with _registry(ctx) as registry:
        text = registry.card(name, version)
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}", markup=False, highlight=False)


@models_app.command("manifest")
def manifest(ctx: typer.Context, name: str, version: int) -> None:
    """The stored manifest of VERSION of NAME (JSON): flavor, files and their SHA-256,
    signature, requirements, metrics, lineage."""
    from modelyard.errors import NotFound

    with _registry(ctx) as registry:
        stored = registry.get_manifest(name, version)
    if stored is None:
        raise NotFound(f"version {version} of {name!r} has no stored model (no manifest)")
    print(stored.to_bytes().decode())


def _tags(items: Sequence[str] | None) -> dict[str, str]:
    tags = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"tags are key=value, got {item!r}")
        tags[key] = value
    return tags
