"""Deployments in the metadata store: created, changed and decided with a recorded event each.

Every change bumps the deployment's `revision` in the same transaction as its event, so a
server polling revisions sees each change once, and the history is complete. State changes
check the status they start from inside the transaction: two people promoting and rolling
back at once cannot both succeed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from modelyard.registry import SqlRegistry, check_alias
from modelyard.rollout._spec import (
    CANDIDATE_ROLE,
    Deployment,
    DeploymentEvent,
    Revision,
    Strategy,
    Variant,
    check_policy,
    check_split,
    check_strategy,
    initial_split,
)
from modelyard.store._tables import DeploymentEventRow, DeploymentRow, table_of
from modelyard.tracking import _validate as v
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from modelyard.registry import Registry
    from modelyard.store import MetadataStore

D = table_of(DeploymentRow)
E = table_of(DeploymentEventRow)
_NEEDS = {  # how many candidates each strategy takes: (at least, at most)
    "single": (0, 0),
    "shadow": (1, 1),
    "canary": (1, 1),
    "ab": (1, 1),
    "blue_green": (1, 1),
    "champion_challenger": (1, 10),
    "bandit": (1, 10),
}
_LIVE = ("running", "paused")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*")


class Deployments:
    """The deployments of one metadata store; promotions go through `registry`."""

    def __init__(self, metadata: MetadataStore, registry: Registry) -> None:
        self.metadata = metadata
        self.registry = registry

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> Deployment:
        with self.metadata.read() as conn:
            return _get(conn, name)

    def all(self, *, include_finished: bool = True) -> list[Deployment]:
        query = select(D).order_by(D.c.name)
        if not include_finished:
            query = query.where(D.c.status.in_(_LIVE))
        with self.metadata.read() as conn:
            return [_deployment(row) for row in conn.execute(query).mappings()]

    def revisions(self) -> dict[str, Revision]:
        """Every deployment's revision: what a server polls to notice changes."""
        query = select(D.c.name, D.c.id, D.c.created_at, D.c.revision)
        with self.metadata.read() as conn:
            return {name: Revision(*rest) for name, *rest in conn.execute(query)}

    def history(self, name: str) -> list[DeploymentEvent]:
        """Every change and decision, oldest first."""
        with self.metadata.read() as conn:
            deployment = _get(conn, name)
            rows = conn.execute(
                select(E).where(E.c.deployment_id == deployment.id).order_by(E.c.id)
            ).mappings()
            return [_event(row, name) for row in rows]

    # -- creating and deleting -------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        strategy: str,
        model: str,
        candidates: Sequence[str] = (),
        policy: Mapping[str, Any] | None = None,
        alias: str = "champion",
        actor: str,
    ) -> Deployment:
        """A deployment of `model` (`churn@champion`, `churn/3`) and its `candidates`."""
        if isinstance(candidates, str):  # one candidate, not a sequence of letters
            candidates = (candidates,)
        check_deployment_name(name)
        check_alias(alias)
        _check_actor(actor)
        chosen = check_strategy(strategy)
        low, high = _NEEDS[chosen]
        if not low <= len(candidates) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise InvalidInput(
                f"strategy {chosen!r} takes {wanted} candidate(s), got {len(candidates)}"
            )
        variants = self._variants(chosen, model, candidates)
        checked = check_policy(chosen, policy)
        if self._is_model(name):
            raise InvalidInput(
                f"{name!r} names a registered model; give the deployment another name, so a "
                "request for it cannot mean either"
            )
        split = initial_split(chosen, variants, checked)
        at = now_ms()
        row = {
            "name": name,
            "model": self.registry.resolve(_uri(model)).name,
            "strategy": chosen,
            "alias": alias,
            "variants": _json([x.to_dict() for x in variants]),
            "split": _json(split),
            "policy": _json(checked),
            "status": "running",
            "step": 0,
            "step_started_at": at,
            "revision": 1,
            "created_by": actor,
            "created_at": at,
            "updated_at": at,
        }

        def work(conn: Connection) -> None:
            deployment_id = conn.execute(insert(D).values(**row)).inserted_primary_key
            assert deployment_id is not None
            conn.execute(
                insert(E).values(
                    deployment_id=deployment_id[0],
                    kind="created",
                    actor=actor,
                    reason=f"{chosen} of {', '.join(x.ref for x in variants)}",
                    split=row["split"],
                    evidence=_json({"policy": checked}),
                    at=at,
                )
            )

        try:
            self.metadata.write(work)
        except DbIntegrityError:
            raise AlreadyExists(f"a deployment named {name!r} exists; pick another name") from None
        return self.get(name)

    def delete(self, name: str, *, actor: str) -> None:
        """Delete a deployment and its history (servers stop serving it at their next look)."""
        deployment = self.get(name)
        self.metadata.write(lambda conn: conn.execute(delete(D).where(D.c.id == deployment.id)))

    # -- changing --------------------------------------------------------------------------

    def set_split(
        self,
        name: str,
        split: Mapping[str, float],
        *,
        actor: str,
        reason: str,
        kind: str = "split",
        step: int | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Change the live split (a canary step, a bandit update, a blue-green switch)."""

        def change(deployment: Deployment) -> dict[str, Any]:
            _require_status(deployment, ("running",), "change the split of")
            values: dict[str, Any] = {"split": check_split(split, deployment.variants)}
            if step is not None and step != deployment.step:
                values |= {"step": step, "step_started_at": now_ms()}
            return values

        return self._change(name, change, kind=kind, actor=actor, reason=reason, evidence=evidence)

    def pause(self, name: str, *, actor: str, reason: str = "") -> Deployment:
        """Freeze the split and the decisions (traffic keeps flowing as split)."""

        def change(deployment: Deployment) -> dict[str, Any]:
            _require_status(deployment, ("running",), "pause")
            return {"status": "paused"}

        return self._change(name, change, kind="pause", actor=actor, reason=reason)

    def resume(self, name: str, *, actor: str, reason: str = "") -> Deployment:
        def change(deployment: Deployment) -> dict[str, Any]:
            _require_status(deployment, ("paused",), "resume")
            return {"status": "running", "step_started_at": now_ms()}

        return self._change(name, change, kind="resume", actor=actor, reason=reason)

    def rollback(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """All traffic back to the primary at once; the deployment ends rolled back."""

        def change(deployment: Deployment) -> dict[str, Any]:
            _require_status(deployment, _LIVE, "roll back")
            return {"status": "rolled_back", "split": {deployment.primary.name: 1.0}}

        return self._change(
            name, change, kind="rollback", actor=actor, reason=reason, evidence=evidence
        )

    def promote(
        self,
        name: str,
        *,
        actor: str,
        reason: str,
        variant: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Move the deployment's alias to `variant` (default: the one candidate) through the
        registry — a protected alias still needs its approval — and send it all traffic.

        The alias moves in the same transaction as the deployment's state, so a refused
        alias changes nothing, and of a promotion and a rollback racing only one happens."""
        deployment = self.get(name)
        _require_status(deployment, ("running",), "promote")
        winner = self._winner(deployment, variant)
        move_alias = self._alias_mover(deployment, winner, actor=actor, reason=reason)

        def change(current: Deployment) -> dict[str, Any]:
            _require_status(current, ("running",), "promote")
            # a promoted deployment serves its winner, a mirrored one (shadow, challenger) too
            return {"status": "promoted", "split": {winner.name: 1.0}}

        facts = {**(evidence or {}), "winner": winner.to_dict()}
        return self._change(
            name,
            change,
            kind="promote",
            actor=actor,
            reason=reason,
            evidence=facts,
            also=move_alias,
        )

    def record(
        self,
        name: str,
        kind: str,
        *,
        actor: str,
        reason: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> DeploymentEvent:
        """A decision or look that changes nothing (e.g. "continue: not enough samples")."""
        _check_actor(actor, reason)
        deployment = self.get(name)
        at = now_ms()
        values = {
            "deployment_id": deployment.id,
            "kind": kind,
            "actor": actor,
            "reason": reason,
            "split": _json(deployment.split),
            "evidence": _json(dict(evidence or {})),
            "at": at,
        }
        event_id = self.metadata.write(
            lambda conn: conn.execute(insert(E).values(**values)).inserted_primary_key
        )
        assert event_id is not None
        return DeploymentEvent(
            event_id[0], name, kind, actor, reason, dict(deployment.split), dict(evidence or {}), at
        )

    # -- internals -------------------------------------------------------------------------

    def _change(
        self,
        name: str,
        change: Callable[[Deployment], dict[str, Any]],
        *,
        kind: str,
        actor: str,
        reason: str,
        evidence: Mapping[str, Any] | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> Deployment:
        """Apply `change` to the current state and record it; `also` runs in the same
        transaction, after the state is checked."""
        _check_actor(actor, reason)

        def work(conn: Connection) -> None:
            current = _get(conn, name)
            values = change(current)
            if also is not None:
                also(conn)
            split = values.get("split", current.split)
            at = now_ms()
            stored = {k: _json(x) if k == "split" else x for k, x in values.items()}
            moved = conn.execute(
                update(D)
                .where(D.c.id == current.id, D.c.revision == current.revision)
                .values(**stored, revision=current.revision + 1, updated_at=at)
            )
            if moved.rowcount != 1:
                raise Conflict(f"deployment {name!r} changed meanwhile; look again and retry")
            conn.execute(
                insert(E).values(
                    deployment_id=current.id,
                    kind=kind,
                    actor=actor,
                    reason=reason,
                    split=_json(split),
                    evidence=_json(dict(evidence or {})),
                    at=at,
                )
            )

        self.metadata.write(work)
        return self.get(name)

    def _variants(
        self, strategy: Strategy, model: str, candidates: Sequence[str]
    ) -> tuple[Variant, ...]:
        refs = [model, *candidates]
        found = [self.registry.resolve(_uri(ref)) for ref in refs]
        names = {f.name for f in found}
        if len(names) > 1:
            raise InvalidInput(
                "every version of a deployment belongs to one model; got "
                f"{', '.join(sorted(names))}"
            )
        versions = [f.version for f in found]
        if repeated := sorted({x for x in versions if versions.count(x) > 1}):
            raise InvalidInput(
                f"version(s) {', '.join(map(str, repeated))} named twice: a deployment compares "
                "different versions"
            )
        role = CANDIDATE_ROLE.get(strategy, "candidate")
        numbered = len(candidates) > 1
        variants = [Variant("primary", "primary", model, versions[0])]
        for index, (ref, version) in enumerate(zip(candidates, versions[1:], strict=True), 1):
            variants.append(Variant(f"{role}-{index}" if numbered else role, role, ref, version))
        return tuple(variants)

    def _alias_mover(
        self, deployment: Deployment, winner: Variant, *, actor: str, reason: str
    ) -> Callable[[Connection], None] | None:
        """What moves the alias inside the promotion's transaction when the registry lives in
        this database; a registry elsewhere is asked first, outside it (None)."""
        registry = self.registry
        model, alias, version = deployment.model, deployment.alias, winner.version
        if isinstance(registry, SqlRegistry) and registry.metadata is self.metadata:
            return lambda conn: registry.set_alias_in(
                conn, model, alias, version, actor=actor, reason=reason
            )
        registry.set_alias(model, alias, version, actor=actor, reason=reason)
        return None

    def _is_model(self, name: str) -> bool:
        try:
            self.registry.get_model(name)
        except NotFound:
            return False
        return True

    def _winner(self, deployment: Deployment, variant: str | None) -> Variant:
        if variant is not None:
            return deployment.variant(variant)
        others = deployment.variants[1:]
        if not others:
            raise InvalidInput(
                f"deployment {deployment.name!r} has no candidate to promote; name the variant "
                "(primary) to promote its version"
            )
        if len(others) != 1:
            raise InvalidInput(
                f"deployment {deployment.name!r} has {len(others)} candidates: name the one to "
                f"promote ({', '.join(x.name for x in others)})"
            )
        return others[0]


def check_deployment_name(name: str) -> str:
    """Deployment names go into URLs (`/v2/models/NAME`, `/api/v1/deployments/NAME`)."""
    v.check_name("deployment", name, max_len=128)
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid deployment name {name!r}: start with a letter or digit, then letters, "
            "digits, '.', '_' or '-'"
        )
    return name


def _check_actor(actor: str, reason: str = "") -> None:
    v.check_name("user", actor)
    v.check_text("reason", reason)


def _uri(ref: str) -> str:
    """`churn@champion` or `churn/3` as a models:/ URI."""
    if ref.startswith("models:/"):
        return ref
    if "@" not in ref and "/" not in ref:
        raise InvalidInput(f"name a version: {ref}@ALIAS or {ref}/VERSION, not {ref!r}")
    return f"models:/{ref}"


def _require_status(deployment: Deployment, allowed: Sequence[str], action: str) -> None:
    if deployment.status not in allowed:
        status = deployment.status.replace("_", " ")
        raise Conflict(f"cannot {action} deployment {deployment.name!r}: it is {status}")


def _get(conn: Connection, name: str) -> Deployment:
    row = conn.execute(select(D).where(D.c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"no deployment named {name!r}; `modelyard deploy list` shows them")
    return _deployment(row)


def _deployment(row: Any) -> Deployment:
    return Deployment(
        id=row["id"],
        name=row["name"],
        model=row["model"],
        strategy=row["strategy"],
        alias=row["alias"],
        variants=tuple(Variant(**x) for x in orjson.loads(row["variants"])),
        split=orjson.loads(row["split"]),
        policy=orjson.loads(row["policy"]),
        status=row["status"],
        step=row["step"],
        step_started_at=row["step_started_at"],
        revision=row["revision"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _event(row: Any, name: str) -> DeploymentEvent:
    return DeploymentEvent(
        id=row["id"],
        deployment=name,
        kind=row["kind"],
        actor=row["actor"],
        reason=row["reason"],
        split=orjson.loads(row["split"]),
        evidence=orjson.loads(row["evidence"]),
        at=row["at"],
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
