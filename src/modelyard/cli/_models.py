"""`modelyard models …`: registered models, versions, aliases, approvals and history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt_time, print_json, print_table
from modelyard.registry import ModelVersion, RegisteredModel, RegistryEvent, SqlRegistry
from modelyard.tracking._environment import current_user

models_app = typer.Typer(
    help="Registered models: versions, aliases, approvals, rollback, history.",
    no_args_is_help=True,
)

Reason = Annotated[str | None, typer.Option(help="Why, for the history.")]


@contextmanager
def _registry(ctx: typer.Context) -> Iterator[SqlRegistry]:
    from modelyard.registry import open_registry

    registry = open_registry(settings_of(ctx))
    try:
        yield registry
    finally:
        registry.metadata.close()


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
