"""Version search: the run filter language over model versions, compiled to one SQL query.

    metrics.auc > 0.9 and flavor = 'sklearn' and alias = 'champion'

Version tags, the run's final metrics and params, and the attributes of
`VERSION_GRAMMAR` (named bare or as `attributes.…`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    cast,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)

from modelyard.errors import InvalidInput
from modelyard.registry._load import Key
from modelyard.store._tables import (
    AliasRow,
    LatestMetricRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ParamRow,
    RegisteredModelRow,
    table_of,
)
from modelyard.tracking._search import (
    And,
    Attribute,
    Comparison,
    Expr,
    Grammar,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelyard.tracking._sql_search import apply_operator
from modelyard.tracking._validate import INT64_MAX

M = table_of(RegisteredModelRow)
V = table_of(ModelVersionRow)
VT = table_of(ModelVersionTagRow)
AL = table_of(AliasRow)
LM = table_of(LatestMetricRow)
P = table_of(ParamRow)

VERSION_GRAMMAR = Grammar(
    attributes={
        "name": Attribute("string"),
        "version": Attribute("integer"),
        "status": Attribute("choice", ("ready", "archived")),
        "alias": Attribute("string"),
        "flavor": Attribute("string"),
        "created_at": Attribute("time"),
        "created_by": Attribute("string"),
        "run_id": Attribute("string"),
    },
    aliases={"model": "name"},
    bare=True,
)
"""Attributes of version search, besides tags. (the version's), metrics. and params. (its run's)."""

_COLUMNS = {
    "name": M.c.name,
    # The column is 32-bit; compared as 64-bit so any integer literal is a valid filter.
    "version": cast(V.c.version, BigInteger),
    "status": V.c.status,
    "flavor": V.c.flavor,
    "created_at": V.c.created_at,
    "created_by": V.c.created_by,
    "run_id": V.c.run_id,
}
_INTEGERS = frozenset({"version", "created_at"})
_NEGATED = {"!=": "=", "not like": "like", "not ilike": "ilike", "not in": "in"}


def search_version_keys(
    conn: Connection,
    filter: str | None,
    *,
    model_id: int | None,
    order_by: Sequence[str] | None,
    limit: int,
) -> list[Key]:
    """(model id, version) of the versions matching `filter`, ordered, at most `limit`."""
    stmt: Any = select(V.c.model_id, V.c.version).join(M, M.c.id == V.c.model_id)
    if model_id is not None:
        stmt = stmt.where(V.c.model_id == model_id)
    expr = parse_filter(filter, VERSION_GRAMMAR)
    if expr is not None:
        stmt = stmt.where(_condition(expr))
    order: list[Any] = []
    for index, key in enumerate(parse_order_by(order_by, VERSION_GRAMMAR)):
        stmt, column = _order_column(stmt, key, index)
        order += [column.is_(None), column.desc() if key.descending else column.asc()]
    order += [M.c.name, V.c.version]
    return [(int(m), int(v)) for m, v in conn.execute(stmt.order_by(*order).limit(limit))]


def _condition(expr: Expr) -> ColumnElement[bool]:
    if isinstance(expr, Comparison):
        _check_literal(expr)
        return _comparison(expr)
    parts = [_condition(item) for item in expr.items]
    return and_(true(), *parts) if isinstance(expr, And) else or_(false(), *parts)


def _comparison(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "attribute" and c.key == "alias":
        return _alias(c)
    if c.entity == "attribute":
        return apply_operator(_COLUMNS[c.key], c.op, c.value)
    present = _keyed(c.entity, c.key)
    if c.op == "is null":
        return not_(exists().where(present))
    if c.op == "is not null":
        return exists().where(present)
    value = _value_column(c.entity)
    return exists().where(present, apply_operator(value, c.op, c.value))


def _alias(c: Comparison) -> ColumnElement[bool]:
    """A version holds many aliases: `alias = 'x'` holds when one matches, `!=` when none."""
    held = and_(AL.c.model_id == V.c.model_id, AL.c.version == V.c.version)
    if c.op == "is null":
        return not_(exists().where(held))
    if c.op == "is not null":
        return exists().where(held)
    if c.op in _NEGATED:
        return not_(exists().where(held, apply_operator(AL.c.alias, _NEGATED[c.op], c.value)))
    return exists().where(held, apply_operator(AL.c.alias, c.op, c.value))


def _keyed(entity: str, key: str) -> ColumnElement[bool]:
    if entity == "tag":
        return and_(VT.c.model_id == V.c.model_id, VT.c.version == V.c.version, VT.c.key == key)
    if entity == "param":
        return and_(P.c.run_id == V.c.run_id, P.c.key == key)
    # A NULL latest value stands for NaN: it never matches a comparison.
    return and_(LM.c.run_id == V.c.run_id, LM.c.key == key, LM.c.value.is_not(None))


def _value_column(entity: str) -> Any:
    return {"tag": VT.c.value, "param": P.c.value, "metric": LM.c.value}[entity]


def _check_literal(c: Comparison) -> None:
    """Values no stored row can hold are rejected alike on every database."""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"filter value for {c.entity} {c.key!r} contains a NUL character")
        integer = c.entity == "attribute" and c.key in _INTEGERS
        if integer and isinstance(value, int | float) and not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise InvalidInput(
                f"filter value {value!r} for {c.key} is outside the 64-bit integer range"
            )


def _order_column(stmt: Any, key: OrderKey, index: int) -> tuple[Any, Any]:
    if key.entity == "attribute":
        if key.key not in _COLUMNS:
            known = ", ".join(_COLUMNS)
            raise InvalidInput(
                f"versions cannot be ordered by {key.key}: a version holds any number of "
                f"them; order by {known}, metrics.<key>, params.<key> or tags.<key>"
            )
        return stmt, _COLUMNS[key.key]
    if key.entity == "tag":
        tags = VT.alias(f"order_{index}")
        on = and_(
            tags.c.model_id == V.c.model_id, tags.c.version == V.c.version, tags.c.key == key.key
        )
        return stmt.outerjoin(tags, on), tags.c.value
    table = (LM if key.entity == "metric" else P).alias(f"order_{index}")
    on = and_(table.c.run_id == V.c.run_id, table.c.key == key.key)
    return stmt.outerjoin(table, on), table.c.value
