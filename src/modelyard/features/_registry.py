"""Versioned feature definitions in the metadata store: what `apply` shows and keeps.

`plan` compares definitions with the latest stored versions; `apply` stores the changed
ones, all or nothing, each as its next version. A breaking change — a feature's type
changed, a feature removed while a service uses it, join keys changed — is refused unless
forced, and nothing is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.features._definitions import Entity, FeatureService, FeatureView
from modelyard.store import MetadataStore
from modelyard.store._tables import FeatureDefinitionRow, table_of
from modelyard.tracking._entities import now_ms

Kind = Literal["entity", "view", "service"]
KINDS: tuple[Kind, ...] = ("entity", "view", "service")
Action = Literal["create", "update", "unchanged"]
Definable = Entity | FeatureView | FeatureService
T = table_of(FeatureDefinitionRow)


@dataclass(frozen=True)
class Definition:
    """One stored version of a definition."""

    kind: Kind
    name: str
    version: int
    spec: dict[str, Any]
    sha256: str
    created_by: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "spec": self.spec,
            "sha256": self.sha256,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Change:
    """What applying one definition does: its new (or current) version and the differences."""

    kind: Kind
    name: str
    action: Action
    version: int
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field: (old, new)
    breaking: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "version": self.version,
            "changes": {k: {"old": old, "new": new} for k, (old, new) in self.changes.items()},
            "breaking": list(self.breaking),
        }


def kind_of(item: object) -> Kind:
    if isinstance(item, Entity):
        return "entity"
    if isinstance(item, FeatureView):
        return "view"
    if isinstance(item, FeatureService):
        return "service"
    raise InvalidInput(
        f"only Entity, FeatureView and FeatureService can be applied, not {type(item).__name__}"
    )


def digest(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()


class FeatureRegistry:
    """The feature definitions of one metadata database."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    # -- reading ---------------------------------------------------------------------------

    def latest(self, kind: Kind | None = None) -> list[Definition]:
        """The version in force of every definition (of `kind`), by kind and name."""
        newest = (
            select(T.c.kind, T.c.name, func.max(T.c.version).label("version"))
            .group_by(T.c.kind, T.c.name)
            .subquery()
        )
        query = select(T).join(
            newest,
            (T.c.kind == newest.c.kind)
            & (T.c.name == newest.c.name)
            & (T.c.version == newest.c.version),
        )
        if kind is not None:
            query = query.where(T.c.kind == _check_kind(kind))
        with self.metadata.read() as conn:
            rows = conn.execute(query.order_by(T.c.kind, T.c.name)).mappings().all()
        return [_definition(dict(row)) for row in rows]

    def get(self, kind: Kind, name: str, version: int | None = None) -> Definition:
        """One definition: the version in force, or `version`."""
        query = select(T).where(T.c.kind == _check_kind(kind), T.c.name == name)
        if version is not None:
            query = query.where(T.c.version == version)
        with self.metadata.read() as conn:
            row = conn.execute(query.order_by(T.c.version.desc()).limit(1)).mappings().first()
        if row is None:
            known = [d.name for d in self.latest(kind)]
            what = f"{kind} {name!r}" + (f" version {version}" if version is not None else "")
            raise NotFound(f"no feature {what}; known: {', '.join(known) or 'none'}")
        return _definition(dict(row))

    def history(self, kind: Kind, name: str) -> list[Definition]:
        """Every version of one definition, oldest first."""
        query = select(T).where(T.c.kind == _check_kind(kind), T.c.name == name)
        with self.metadata.read() as conn:
            rows = conn.execute(query.order_by(T.c.version)).mappings().all()
        if not rows:
            raise NotFound(f"no feature {kind} {name!r}")
        return [_definition(dict(row)) for row in rows]

    # -- applying ----------------------------------------------------------------------------

    def plan(self, items: Iterable[Definable]) -> list[Change]:
        """What `apply(items)` would do; nothing is stored."""
        specs = _specs(items)
        current = {(d.kind, d.name): d for d in self.latest()}
        _check_references(current, specs)
        services = _services_after(current, specs)
        return [
            _change(kind, name, spec, current.get((kind, name)), services)
            for (kind, name), spec in specs.items()
        ]

    def apply(
        self, items: Iterable[Definable], *, force: bool = False, actor: str = ""
    ) -> list[Change]:
        """Store every changed definition as its next version, all or nothing.

        Breaking changes are refused (InvalidInput, nothing stored) unless `force`.
        """
        items = list(items)
        changes = self.plan(items)
        breaking = [f"{c.kind} {c.name}: {why}" for c in changes for why in c.breaking]
        if breaking and not force:
            raise InvalidInput(
                "breaking changes (apply with force=True / --force to store them anyway): "
                + "; ".join(breaking)
            )
        specs = _specs(items)
        at = now_ms()
        rows = [
            {
                "kind": c.kind,
                "name": c.name,
                "version": c.version,
                "spec": orjson.dumps(specs[(c.kind, c.name)]).decode(),
                "sha256": digest(specs[(c.kind, c.name)]),
                "created_by": actor,
                "created_at": at,
            }
            for c in changes
            if c.action != "unchanged"
        ]
        if rows:
            try:
                self.metadata.write(lambda conn: conn.execute(insert(T), rows))
            except DbIntegrityError:
                raise Conflict(
                    "the feature definitions changed while applying; plan and apply again"
                ) from None
        return changes


def _check_kind(kind: object) -> Kind:
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _definition(row: Mapping[str, Any]) -> Definition:
    return Definition(
        kind=row["kind"],
        name=row["name"],
        version=row["version"],
        spec=orjson.loads(row["spec"]),
        sha256=row["sha256"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def _specs(items: Iterable[Definable]) -> dict[tuple[Kind, str], dict[str, Any]]:
    specs: dict[tuple[Kind, str], dict[str, Any]] = {}
    for item in items:
        key = (kind_of(item), item.name)
        spec = item.spec()
        if key in specs and specs[key] != spec:
            raise InvalidInput(f"two different definitions of {key[0]} {key[1]!r} in one apply")
        specs[key] = spec
    if not specs:
        raise InvalidInput("nothing to apply: pass entities, feature views and services")
    return specs


def _check_references(
    current: Mapping[tuple[Kind, str], Definition],
    specs: Mapping[tuple[Kind, str], dict[str, Any]],
) -> None:
    """Every entity a view names and every feature a service names exists as it will be
    after the apply."""
    entities = {name for kind, name in [*current, *specs] if kind == "entity"}
    for (kind, name), spec in specs.items():
        if kind == "view" and (missing := [e for e in spec["entities"] if e not in entities]):
            raise InvalidInput(f"feature view {name!r} uses entities {missing}: apply them too")
    views = {name: d.spec for (kind, name), d in current.items() if kind == "view"}
    views |= {name: spec for (kind, name), spec in specs.items() if kind == "view"}
    for (kind, name), spec in specs.items():
        if kind != "service":
            continue
        for ref in spec["features"]:
            view, feature = ref.split(":")
            if view not in views:
                raise InvalidInput(f"service {name!r} uses {ref!r}: no feature view {view!r}")
            if feature not in {f["name"] for f in views[view]["features"]}:
                raise InvalidInput(
                    f"service {name!r} uses {ref!r}: view {view!r} has no feature {feature!r}"
                )


def _services_after(
    current: Mapping[tuple[Kind, str], Definition],
    specs: Mapping[tuple[Kind, str], dict[str, Any]],
) -> dict[str, list[str]]:
    """The features each service will use after the apply: name -> ["view:feature", ...]."""
    services = {n: d.spec["features"] for (kind, n), d in current.items() if kind == "service"}
    services |= {n: spec["features"] for (kind, n), spec in specs.items() if kind == "service"}
    return services


def _change(
    kind: Kind,
    name: str,
    spec: dict[str, Any],
    stored: Definition | None,
    services: Mapping[str, Sequence[str]],
) -> Change:
    if stored is None:
        return Change(kind, name, "create", 1)
    if stored.sha256 == digest(spec):
        return Change(kind, name, "unchanged", stored.version)
    changes = {
        key: (stored.spec.get(key), spec.get(key))
        for key in sorted(set(stored.spec) | set(spec))
        if stored.spec.get(key) != spec.get(key)
    }
    breaking = _breaking(kind, name, stored.spec, spec, services)
    return Change(kind, name, "update", stored.version + 1, changes, tuple(breaking))


def _breaking(
    kind: Kind,
    name: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    services: Mapping[str, Sequence[str]],
) -> list[str]:
    reasons: list[str] = []
    if kind in ("entity", "view") and old.get("join_keys") != new.get("join_keys"):
        reasons.append(f"join keys change from {old.get('join_keys')} to {new.get('join_keys')}")
    if kind != "view":
        return reasons
    before = {f["name"]: f["dtype"] for f in old["features"]}
    after = {f["name"]: f["dtype"] for f in new["features"]}
    for feature, dtype in before.items():
        if feature in after and after[feature] != dtype:
            reasons.append(f"feature {feature!r} changes type from {dtype} to {after[feature]}")
        if feature not in after:
            users = sorted(s for s, refs in services.items() if f"{name}:{feature}" in refs)
            if users:
                reasons.append(f"feature {feature!r} is removed but services {users} use it")
    return reasons
