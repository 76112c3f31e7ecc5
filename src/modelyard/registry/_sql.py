"""The registry over the metadata database: versions, aliases and their history, approvals."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from modelyard.registry._entities import ModelVersion, RegisteredModel, RegistryEvent
from modelyard.store import MetadataStore
from modelyard.store._tables import (
    AliasEventRow,
    AliasRow,
    ApprovalRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
    RunRow,
    table_of,
)
from modelyard.tracking import _validate as v
from modelyard.tracking._entities import now_ms

M = table_of(RegisteredModelRow)
MT = table_of(RegisteredModelTagRow)
V = table_of(ModelVersionRow)
VT = table_of(ModelVersionTagRow)
AL = table_of(AliasRow)
EV = table_of(AliasEventRow)
AP = table_of(ApprovalRow)
R = table_of(RunRow)

READY, ARCHIVED = "ready", "archived"
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))$")


def check_alias(alias: str) -> str:
    """Alias names start with a letter: `champion`, `challenger`, `prod-eu` (not `3`)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, _ or -"
        )
    return alias


def parse_model_uri(uri: str) -> tuple[str, int | None, str | None]:
    """`models:/name/3` or `models:/name@alias` into (name, version, alias)."""
    match = _URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise InvalidInput(f"not a model URI: {uri!r}; use models:/name/3 or models:/name@alias")
    version = match["version"]
    return match["name"], int(version) if version else None, match["alias"]


class SqlRegistry:
    """Registered models and their versions, in the metadata database."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    # models ----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        protected_aliases: Sequence[str] = (),
    ) -> RegisteredModel:
        self.metadata.write(
            lambda conn: self._insert_model(conn, name, description, tags, protected_aliases)
        )
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.metadata.read() as conn:
            row = self._model_row(conn, name)
            tags = dict(
                conn.execute(select(MT.c.key, MT.c.value).where(MT.c.model_id == row.id)).all()
            )
            aliases = dict(
                conn.execute(select(AL.c.alias, AL.c.version).where(AL.c.model_id == row.id)).all()
            )
        return _model(row, tags, aliases)

    def list_models(self) -> list[RegisteredModel]:
        with self.metadata.read() as conn:
            rows = conn.execute(select(M).order_by(M.c.name)).all()
            tags: dict[int, dict[str, str]] = {}
            for model_id, key, value in conn.execute(select(MT.c.model_id, MT.c.key, MT.c.value)):
                tags.setdefault(model_id, {})[key] = value
            aliases: dict[int, dict[str, int]] = {}
            for model_id, alias, version in conn.execute(
                select(AL.c.model_id, AL.c.alias, AL.c.version)
            ):
                aliases.setdefault(model_id, {})[alias] = version
        return [_model(r, tags.get(r.id, {}), aliases.get(r.id, {})) for r in rows]

    def set_protected_aliases(self, name: str, aliases: Sequence[str]) -> RegisteredModel:
        """Aliases only an approved version may take."""
        clean = sorted({check_alias(a) for a in aliases})

        def work(conn: Connection) -> None:
            model_id = self._model_row(conn, name).id
            conn.execute(
                update(M)
                .where(M.c.id == model_id)
                .values(protected_aliases=orjson.dumps(clean).decode())
            )

        self.metadata.write(work)
        return self.get_model(name)

    # versions --------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        created_by: str,
        run_id: str | None = None,
        manifest_digest: str | None = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """The next version of `name` (the model is created on first use); numbers never repeat."""
        v.check_name("model", name)
        v.check_name("user", created_by)
        if run_id is not None:
            v.run_id(run_id)
        if description is not None:
            v.check_text("description", description)
        clean_tags = v.string_map("tag", tags)

        def work(conn: Connection) -> int:
            model_id = self._model_id_creating(conn, name)
            if (
                run_id is not None
                and conn.execute(select(R.c.id).where(R.c.id == run_id)).first() is None
            ):
                raise NotFound(f"run {run_id!r} does not exist")
            # The counter row is locked by this update until commit: concurrent
            # registrations queue here and each gets the next number.
            version: int = conn.execute(
                update(M)
                .where(M.c.id == model_id)
                .values(latest_version=M.c.latest_version + 1)
                .returning(M.c.latest_version)
            ).scalar_one()
            conn.execute(
                V.insert().values(
                    model_id=model_id,
                    version=version,
                    status=READY,
                    run_id=run_id,
                    manifest_digest=manifest_digest,
                    flavor=flavor,
                    description=description,
                    created_by=created_by,
                    created_at=now_ms(),
                )
            )
            if clean_tags:
                conn.execute(
                    VT.insert(),
                    [
                        {"model_id": model_id, "version": version, "key": k, "value": val}
                        for k, val in clean_tags.items()
                    ],
                )
            return version

        return self.get_version(name, self.metadata.write(work))

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.metadata.read() as conn:
            versions = self._versions(conn, name, version)
        if not versions:
            model = self.get_model(name)
            raise NotFound(
                f"model {name!r} has no version {version}; versions run 1..{model.latest_version}"
            )
        return versions[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.metadata.read() as conn:
            return self._versions(conn, name, None)

    def resolve(self, uri: str) -> ModelVersion:
        """The version a `models:/name/3` or `models:/name@alias` URI names now."""
        name, version, alias = parse_model_uri(uri)
        if version is not None:
            return self.get_version(name, version)
        assert alias is not None
        model = self.get_model(name)
        if alias not in model.aliases:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise NotFound(f"model {name!r} has no alias {alias!r}; aliases: {known}")
        return self.get_version(name, model.aliases[alias])

    def set_version_status(self, name: str, version: int, status: str) -> ModelVersion:
        """Archive (or restore to ready) a version; one holding an alias cannot be archived."""
        if status not in (READY, ARCHIVED):
            raise InvalidInput(f"version status is {READY!r} or {ARCHIVED!r}, not {status!r}")

        def work(conn: Connection) -> None:
            model_id = self._version_exists(conn, name, version)
            held = self._aliases_of(conn, model_id, version)
            if status == ARCHIVED and held:
                raise Conflict(
                    f"version {version} of {name!r} holds alias(es) {', '.join(held)}; "
                    "move them first"
                )
            conn.execute(
                update(V)
                .where(V.c.model_id == model_id, V.c.version == version)
                .values(status=status)
            )

        self.metadata.write(work)
        return self.get_version(name, version)

    # aliases ---------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> ModelVersion:
        """Point `alias` at `version`; recorded with who, when, from, to and why."""
        check_alias(alias)
        self.metadata.write(
            lambda conn: self._move_alias(conn, name, alias, version, actor, reason, None)
        )
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str | None = None) -> None:
        def work(conn: Connection) -> None:
            model_id = self._model_row(conn, name).id
            current = self._alias_version(conn, model_id, alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(delete(AL).where(AL.c.model_id == model_id, AL.c.alias == alias))
            self._record(conn, model_id, alias, "delete", current, None, actor, reason)

        self.metadata.write(work)

    def rollback(
        self, name: str, alias: str, *, actor: str, reason: str | None = None
    ) -> ModelVersion:
        """Move `alias` back to the version that held it before; repeated rollbacks go
        further back, like undo."""

        def work(conn: Connection) -> int:
            model_id = self._model_row(conn, name).id
            moves = conn.execute(
                select(EV.c.kind, EV.c.from_version)
                .where(EV.c.model_id == model_id, EV.c.alias == alias)
                .order_by(EV.c.id)
            ).all()
            previous = _undo_stack(moves)
            if not previous:
                raise NotFound(
                    f"alias {alias!r} of {name!r} has no earlier version to roll back to"
                )
            self._move_alias(conn, name, alias, previous[-1], actor, reason, "rollback")
            return previous[-1]

        return self.get_version(name, self.metadata.write(work))

    def alias_at(self, name: str, alias: str, at: int) -> int | None:
        """Which version `alias` pointed at, at Unix-ms time `at` (None: it pointed nowhere)."""
        v.check_int64("time", at)
        with self.metadata.read() as conn:
            model_id = self._model_row(conn, name).id
            return conn.execute(
                select(EV.c.to_version)
                .where(EV.c.model_id == model_id, EV.c.alias == alias, EV.c.at <= at)
                .order_by(EV.c.id.desc())
                .limit(1)
            ).scalar()

    # approvals ---------------------------------------------------------------------------

    def review(
        self, name: str, version: int, *, approved: bool, approver: str, comment: str | None = None
    ) -> RegistryEvent:
        """Record an approval or rejection of a version; the latest decision counts."""
        v.check_name("approver", approver)
        if comment is not None:
            v.check_text("comment", comment)
        decision = "approved" if approved else "rejected"
        at = now_ms()

        def work(conn: Connection) -> None:
            model_id = self._version_exists(conn, name, version)
            conn.execute(
                AP.insert().values(
                    model_id=model_id,
                    version=version,
                    decision=decision,
                    approver=approver,
                    comment=comment,
                    at=at,
                )
            )

        self.metadata.write(work)
        return RegistryEvent(at, decision, approver, version=version, reason=comment)

    def history(self, name: str) -> list[RegistryEvent]:
        """Alias moves and approval decisions, oldest first."""
        with self.metadata.read() as conn:
            model_id = self._model_row(conn, name).id
            events = [
                RegistryEvent(
                    r.at,
                    r.kind,
                    r.actor,
                    r.alias,
                    r.from_version,
                    r.to_version,
                    r.to_version,
                    r.reason,
                )
                for r in conn.execute(select(EV).where(EV.c.model_id == model_id).order_by(EV.c.id))
            ]
            events += [
                RegistryEvent(r.at, r.decision, r.approver, version=r.version, reason=r.comment)
                for r in conn.execute(select(AP).where(AP.c.model_id == model_id).order_by(AP.c.id))
            ]
        return sorted(events, key=lambda e: e.at)

    # internals ---------------------------------------------------------------------------

    def _insert_model(
        self,
        conn: Connection,
        name: str,
        description: str | None,
        tags: Mapping[str, Any] | None,
        protected: Sequence[str],
    ) -> int:
        v.check_name("model", name)
        if description is not None:
            v.check_text("description", description)
        clean_tags = v.string_map("tag", tags)
        protected_json = orjson.dumps(sorted({check_alias(a) for a in protected})).decode()
        try:
            with conn.begin_nested():
                key = conn.execute(
                    M.insert().values(
                        name=name,
                        description=description,
                        protected_aliases=protected_json,
                        latest_version=0,
                        created_at=now_ms(),
                    )
                ).inserted_primary_key
        except DbIntegrityError:
            raise AlreadyExists(f"model {name!r} already exists") from None
        assert key is not None
        model_id = int(key[0])
        if clean_tags:
            conn.execute(
                MT.insert(),
                [{"model_id": model_id, "key": k, "value": val} for k, val in clean_tags.items()],
            )
        return model_id

    def _model_id_creating(self, conn: Connection, name: str) -> int:
        """The id of model `name`, created if missing (also when another writer races us)."""
        for _attempt in range(2):
            row = conn.execute(select(M.c.id).where(M.c.name == name)).first()
            if row is not None:
                return int(row.id)
            try:
                return self._insert_model(conn, name, None, None, ())
            except AlreadyExists:  # created meanwhile and committed: visible on re-read
                continue
        raise Conflict(f"model {name!r} could not be created; try again")

    @staticmethod
    def _model_row(conn: Connection, name: str) -> Any:
        v.check_name("model", name)
        row = conn.execute(select(M).where(M.c.name == name)).first()
        if row is None:
            raise NotFound(f"model {name!r} does not exist")
        return row

    def _version_exists(self, conn: Connection, name: str, version: int) -> int:
        model = self._model_row(conn, name)
        self._version_status(conn, model, version)
        return int(model.id)

    @staticmethod
    def _version_status(conn: Connection, model: Any, version: int) -> str:
        """The status of `version` of the model row `model`; NotFound when it has none."""
        v.check_int64("version", version)
        status = conn.execute(
            select(V.c.status).where(V.c.model_id == model.id, V.c.version == version)
        ).scalar()
        if status is None:
            raise NotFound(
                f"model {model.name!r} has no version {version}; "
                f"versions run 1..{model.latest_version}"
            )
        return str(status)

    @staticmethod
    def _alias_version(conn: Connection, model_id: int, alias: str) -> int | None:
        return conn.execute(
            select(AL.c.version).where(AL.c.model_id == model_id, AL.c.alias == alias)
        ).scalar()

    @staticmethod
    def _aliases_of(conn: Connection, model_id: int, version: int) -> list[str]:
        return sorted(
            conn.scalars(
                select(AL.c.alias).where(AL.c.model_id == model_id, AL.c.version == version)
            )
        )

    def _move_alias(
        self,
        conn: Connection,
        name: str,
        alias: str,
        version: int,
        actor: str,
        reason: str | None,
        kind: str | None,
    ) -> None:
        v.check_name("user", actor)
        if reason is not None:
            v.check_text("reason", reason)
        model = self._model_row(conn, name)
        if self._version_status(conn, model, version) == ARCHIVED:
            raise Conflict(f"version {version} of {name!r} is archived; it cannot take an alias")
        if alias in orjson.loads(model.protected_aliases):
            decision = conn.execute(
                select(AP.c.decision)
                .where(and_(AP.c.model_id == model.id, AP.c.version == version))
                .order_by(AP.c.id.desc())
                .limit(1)
            ).scalar()
            if decision != "approved":
                state = "was rejected" if decision == "rejected" else "has no approval"
                raise PermissionDenied(
                    f"alias {alias!r} of {name!r} is protected and version {version} {state}; "
                    f"approve it first"
                )
        current = self._alias_version(conn, model.id, alias)
        if current == version:
            return
        if current is None:
            conn.execute(AL.insert().values(model_id=model.id, alias=alias, version=version))
        else:
            conn.execute(
                update(AL)
                .where(AL.c.model_id == model.id, AL.c.alias == alias)
                .values(version=version)
            )
        event = kind or ("set" if current is None else "move")
        self._record(conn, model.id, alias, event, current, version, actor, reason)

    @staticmethod
    def _record(
        conn: Connection,
        model_id: int,
        alias: str,
        kind: str,
        from_version: int | None,
        to_version: int | None,
        actor: str,
        reason: str | None,
    ) -> None:
        conn.execute(
            EV.insert().values(
                model_id=model_id,
                alias=alias,
                kind=kind,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                reason=reason,
                at=now_ms(),
            )
        )

    def _versions(self, conn: Connection, name: str, version: int | None) -> list[ModelVersion]:
        model_id = self._model_row(conn, name).id
        query = select(V).where(V.c.model_id == model_id).order_by(V.c.version)
        if version is not None:
            query = query.where(V.c.version == v.check_int64("version", version))
        rows = conn.execute(query).all()
        tags: dict[int, dict[str, str]] = {}
        for ver, key, value in conn.execute(
            select(VT.c.version, VT.c.key, VT.c.value).where(VT.c.model_id == model_id)
        ):
            tags.setdefault(ver, {})[key] = value
        aliases: dict[int, list[str]] = {}
        for alias, ver in conn.execute(
            select(AL.c.alias, AL.c.version).where(AL.c.model_id == model_id)
        ):
            aliases.setdefault(ver, []).append(alias)
        return [
            ModelVersion(
                name,
                r.version,
                r.status,
                r.created_at,
                r.created_by,
                r.run_id,
                r.manifest_digest,
                r.flavor,
                r.description,
                tags.get(r.version, {}),
                tuple(sorted(aliases.get(r.version, []))),
            )
            for r in rows
        ]


def _undo_stack(moves: Sequence[Any]) -> list[int]:
    """Versions an alias can roll back to, most recent last, from its recorded moves."""
    stack: list[int] = []
    for kind, from_version in moves:
        if kind == "rollback":
            stack.pop()
        elif kind == "delete":
            stack.clear()
        elif from_version is not None:
            stack.append(from_version)
    return stack


def _model(row: Any, tags: dict[str, str], aliases: dict[str, int]) -> RegisteredModel:
    return RegisteredModel(
        row.name,
        row.created_at,
        row.latest_version,
        row.description,
        tags,
        aliases,
        tuple(orjson.loads(row.protected_aliases)),
    )
