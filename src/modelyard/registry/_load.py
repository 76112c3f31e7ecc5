"""Versions read back by key, across models, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select, tuple_

from modelyard.registry._entities import ModelVersion
from modelyard.store._tables import (
    AliasRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    table_of,
)

M = table_of(RegisteredModelRow)
V = table_of(ModelVersionRow)
VT = table_of(ModelVersionTagRow)
AL = table_of(AliasRow)

Key = tuple[int, int]  # (model id, version)
_BATCH = 500  # keys per query: far below any database's limit on bound parameters


def load_versions(conn: Connection, keys: Sequence[Key]) -> list[ModelVersion]:
    """The versions with these (model id, version) keys, in this order (missing ones left out)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Key, ModelVersion] = {}
    for start in range(0, len(wanted), _BATCH):
        found.update(_load_batch(conn, wanted[start : start + _BATCH]))
    return [found[key] for key in wanted if key in found]


def _load_batch(conn: Connection, wanted: list[Key]) -> dict[Key, ModelVersion]:
    rows = {
        (r.model_id, r.version): r
        for r in conn.execute(
            select(V, M.c.name)
            .join(M, M.c.id == V.c.model_id)
            .where(tuple_(V.c.model_id, V.c.version).in_(wanted))
        )
    }
    tags: dict[Key, dict[str, str]] = {}
    for model_id, version, tag, value in conn.execute(
        select(VT.c.model_id, VT.c.version, VT.c.key, VT.c.value).where(
            tuple_(VT.c.model_id, VT.c.version).in_(wanted)
        )
    ):
        tags.setdefault((model_id, version), {})[tag] = value
    aliases: dict[Key, list[str]] = {}
    for model_id, version, alias in conn.execute(
        select(AL.c.model_id, AL.c.version, AL.c.alias).where(
            tuple_(AL.c.model_id, AL.c.version).in_(wanted)
        )
    ):
        aliases.setdefault((model_id, version), []).append(alias)
    return {
        key: ModelVersion(
            r.name,
            r.version,
            r.status,
            r.created_at,
            r.created_by,
            r.run_id,
            r.manifest_digest,
            r.flavor,
            r.description,
            tags.get(key, {}),
            tuple(sorted(aliases.get(key, []))),
        )
        for key, r in rows.items()
    }
