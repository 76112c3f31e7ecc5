"""The registry over the metadata database: versions, aliases and their history, approvals,
and the queries across them (lineage, search, compare, model cards)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, Table, and_, delete, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import (
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from modelyard.models import Manifest
from modelyard.registry._card import render_card
from modelyard.registry._compare import compare
from modelyard.registry._entities import (
    Lineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionComparison,
)
from modelyard.registry._lineage import dataset_digests, keys_trained_on, lineage_of
from modelyard.registry._load import load_versions
from modelyard.registry._search import search_version_keys
from modelyard.store import ArtifactStore, MetadataStore
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
from modelyard.tracking._entities import Run, now_ms
from modelyard.tracking._sql_load import load_runs

if TYPE_CHECKING:
    from modelyard.registry._backend import Registry

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


def resolve_uri(registry: Registry, uri: str) -> ModelVersion:
    """The version `uri` names now in `registry`: by number, or by the alias's target."""
    name, version, alias = parse_model_uri(uri)
    if version is not None:
        return registry.get_version(name, version)
    assert alias is not None
    model = registry.get_model(name)
    if alias not in model.aliases:
        known = ", ".join(sorted(model.aliases)) or "none"
        raise NotFound(f"model {name!r} has no alias {alias!r}; aliases: {known}")
    return registry.get_version(name, model.aliases[alias])


class SqlRegistry:
    """Registered models and their versions, in the metadata database; manifests are read
    from the artifact store."""

    def __init__(self, metadata: MetadataStore, artifacts: ArtifactStore) -> None:
        self.metadata = metadata
        self.artifacts = artifacts

    def close(self) -> None:
        """Release the metadata database's connections."""
        self.metadata.close()

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

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        """Change a model's description (None leaves it, "" clears it), set `tags` (adding
        or overwriting) and remove `delete_tags` (each must exist)."""
        if description is not None:
            v.check_text("description", description)
        clean_tags, deleted = _tag_changes(tags, delete_tags)

        def work(conn: Connection) -> None:
            model_id = self._model_row(conn, name).id
            if description is not None:
                conn.execute(
                    update(M).where(M.c.id == model_id).values(description=description or None)
                )
            self._change_tags(
                conn, MT, {"model_id": model_id}, clean_tags, deleted, f"model {name!r}"
            )

        self.metadata.write(work)
        return self.get_model(name)

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
        """The next version of `name` (the model is created on first use); numbers never repeat.

        `manifest_digest` must name a manifest in the artifact store, of run `run_id` if
        given.
        """
        v.check_name("model", name)
        v.check_name("user", created_by)
        if run_id is not None:
            v.run_id(run_id)
        if description is not None:
            v.check_text("description", description)
        clean_tags = v.string_map("tag", tags)
        if manifest_digest is not None:
            self._check_manifest(manifest_digest, run_id)

        created_at = now_ms()

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
                    created_at=created_at,
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

        version = self.metadata.write(work)
        return ModelVersion(
            name,
            version,
            READY,
            created_at,
            created_by,
            run_id,
            manifest_digest,
            flavor,
            description,
            clean_tags,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.metadata.read() as conn:
            return self._version(conn, name, version)

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        """Change a version's description (None leaves it, "" clears it) and tags; its
        files, manifest, run and flavor never change."""
        if description is not None:
            v.check_text("description", description)
        clean_tags, deleted = _tag_changes(tags, delete_tags)

        def work(conn: Connection) -> None:
            model_id = self._version_exists(conn, name, version)
            keys = {"model_id": model_id, "version": version}
            if description is not None:
                conn.execute(
                    update(V)
                    .where(V.c.model_id == model_id, V.c.version == version)
                    .values(description=description or None)
                )
            what = f"version {version} of {name!r}"
            self._change_tags(conn, VT, keys, clean_tags, deleted, what)

        self.metadata.write(work)
        return self.get_version(name, version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.metadata.read() as conn:
            return self._versions(conn, name)

    def resolve(self, uri: str) -> ModelVersion:
        """The version a `models:/name/3` or `models:/name@alias` URI names now."""
        return resolve_uri(self, uri)

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

    def get_manifest(self, name: str, version: int) -> Manifest | None:
        """The manifest of a version, read and verified from the artifact store (None for
        a version registered without one)."""
        return self._manifest(self.get_version(name, version))

    # queries -----------------------------------------------------------------------------

    def lineage(self, name: str, version: int) -> Lineage:
        """The run a version came from, the run's code commit and the datasets it used."""
        with self.metadata.read() as conn:
            found = self._version(conn, name, version)
            return lineage_of(found, self._run(conn, found.run_id))

    def versions_trained_on(self, dataset: str) -> list[ModelVersion]:
        """Versions whose run used `dataset` in any role, by model name and version.

        `dataset` is a dataset digest (64 hex) or a dataset name (every digest logged
        under that name).
        """
        v.check_name("dataset", dataset)
        with self.metadata.read() as conn:
            return load_versions(conn, keys_trained_on(conn, dataset_digests(conn, dataset)))

    def search_versions(
        self,
        filter: str | None = None,
        *,
        name: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[ModelVersion]:
        """Versions matching `filter` (see `VERSION_GRAMMAR`), of every model or of `name`;
        ordered by `order_by` items (e.g. `metrics.auc desc`), then name and version."""
        if isinstance(max_results, bool) or not 1 <= max_results <= 50_000:
            raise InvalidInput(f"max_results must be between 1 and 50000, got {max_results}")
        with self.metadata.read() as conn:
            model_id = None if name is None else int(self._model_row(conn, name).id)
            keys = search_version_keys(
                conn, filter, model_id=model_id, order_by=order_by, limit=max_results
            )
            return load_versions(conn, keys)

    def compare_versions(self, name: str, a: int, b: int) -> VersionComparison:
        """Versions `a` and `b` of `name` side by side: metrics, params, signature,
        flavor and requirements."""
        with self.metadata.read() as conn:
            versions = (self._version(conn, name, a), self._version(conn, name, b))
            runs = (self._run(conn, versions[0].run_id), self._run(conn, versions[1].run_id))
        manifests = (self._manifest(versions[0]), self._manifest(versions[1]))
        return compare(versions, runs, manifests)

    def card(self, name: str, version: int) -> str:
        """A Markdown model card of a version, from everything the registry knows."""
        with self.metadata.read() as conn:
            found = self._version(conn, name, version)
            run = self._run(conn, found.run_id)
        model = self.get_model(name)
        events = [
            e for e in self.history(name) if version in (e.version, e.from_version, e.to_version)
        ]
        return render_card(
            model,
            lineage_of(found, run),
            manifest=self._manifest(found),
            metrics={} if run is None else {k: m.value for k, m in run.metrics.items()},
            events=events,
        )

    # aliases ---------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> ModelVersion:
        """Point `alias` at `version`; recorded with who, when, from, to and why."""
        self.metadata.write(
            lambda conn: self.set_alias_in(conn, name, alias, version, actor=actor, reason=reason)
        )
        return self.get_version(name, version)

    def set_alias_in(
        self,
        conn: Connection,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str | None = None,
    ) -> None:
        """`set_alias` inside the caller's write transaction on this registry's database, for
        a change that must commit or fail with the move (a deployment's promotion)."""
        check_alias(alias)
        self._move_alias(conn, name, alias, version, actor, reason, None)

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
        status = None
        if 0 < version <= model.latest_version:  # also keeps huge numbers off the int column
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

    def _versions(self, conn: Connection, name: str) -> list[ModelVersion]:
        model_id = int(self._model_row(conn, name).id)
        query = select(V.c.version).where(V.c.model_id == model_id).order_by(V.c.version)
        return load_versions(conn, [(model_id, number) for number in conn.scalars(query)])

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        """Version `version` of `name`; NotFound saying which versions exist."""
        model_id = self._version_exists(conn, name, version)
        return load_versions(conn, [(model_id, version)])[0]

    def _check_manifest(self, digest: str, run_id: str | None) -> None:
        """Refuse a digest that names no stored manifest, or the manifest of another run."""
        try:
            data = self.artifacts.read_bytes(digest)
        except NotFound:
            raise NotFound(
                f"no stored manifest with digest {digest}; store the manifest first "
                "(my.log_model stores it and registers the version)"
            ) from None
        try:
            manifest = Manifest.from_bytes(data)
        except (IntegrityError, ValidationError):
            raise InvalidInput(
                f"the blob with digest {digest} is not a model manifest; register the digest "
                "of the manifest.json my.log_model stores"
            ) from None
        if run_id is not None and manifest.run_id != run_id:
            raise InvalidInput(
                f"the manifest {digest} belongs to run {manifest.run_id}, not {run_id}; "
                "register it with its own run (or without run_id)"
            )

    def _manifest(self, version: ModelVersion) -> Manifest | None:
        if version.manifest_digest is None:
            return None
        data = self.artifacts.read_bytes(version.manifest_digest)
        try:
            return Manifest.from_bytes(data)
        except ValidationError as exc:
            first = ".".join(map(str, exc.errors()[0]["loc"]))
            raise IntegrityError(
                f"the manifest of version {version.version} of {version.name!r} "
                f"({version.manifest_digest}) is not a valid manifest: "
                f"{exc.error_count()} problem(s), the first at {first}"
            ) from None

    @staticmethod
    def _run(conn: Connection, run_id: str | None) -> Run | None:
        runs = [] if run_id is None else load_runs(conn, [run_id], with_environment=True)
        return runs[0] if runs else None

    def _change_tags(
        self,
        conn: Connection,
        table: Table,
        owner: dict[str, Any],
        tags: dict[str, str],
        deleted: Sequence[str],
        what: str,
    ) -> None:
        """Upsert `tags` and delete `deleted` keys of the tag table rows of `owner`."""
        where = [table.c[column] == value for column, value in owner.items()]
        for key in deleted:
            if conn.execute(delete(table).where(*where, table.c.key == key)).rowcount == 0:
                known = ", ".join(sorted(conn.scalars(select(table.c.key).where(*where))))
                raise NotFound(f"{what} has no tag {key!r}; tags: {known or 'none'}")
        if tags:
            insert = self.metadata.insert(table).values(
                [{**owner, "key": k, "value": val} for k, val in tags.items()]
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[*owner, "key"], set_={"value": insert.excluded.value}
                )
            )


def _tag_changes(
    tags: Mapping[str, Any] | None, delete_tags: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    clean = v.string_map("tag", tags)
    if isinstance(delete_tags, str):
        raise InvalidInput("delete_tags is a list of tag names, not one string")
    deleted = [v.check_key("tag", key) for key in dict.fromkeys(delete_tags)]
    both = sorted(set(clean) & set(deleted))
    if both:
        raise InvalidInput(f"tag(s) {', '.join(both)} are both set and deleted; choose one")
    return clean, deleted


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
