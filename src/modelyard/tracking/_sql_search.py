"""Compiles a parsed run filter and ordering into one SQL query over the runs table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, and_, exists, false, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement as Column

from modelyard.errors import InvalidInput
from modelyard.store._tables import (
    ExperimentRow,
    LatestMetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
    table_of,
)
from modelyard.tracking._entities import RunQuery
from modelyard.tracking._search import And, Comparison, Expr, OrderKey, parse_filter, parse_order_by
from modelyard.tracking._validate import INT64_MAX

R = table_of(RunRow)
E = table_of(ExperimentRow)
_KEYED = {
    "metric": table_of(LatestMetricRow),
    "param": table_of(ParamRow),
    "tag": table_of(RunTagRow),
}
_ATTRIBUTES = {
    "run_id": R.c.id,
    "run_name": R.c.name,
    "status": R.c.status,
    "start_time": R.c.start_time,
    "end_time": R.c.end_time,
    "experiment_id": R.c.experiment_id,
    "parent_id": R.c.parent_id,
    "user": R.c.user,
    "lifecycle": R.c.lifecycle,
}


def search_run_ids(conn: Connection, query: RunQuery, *, offset: int, limit: int) -> list[str]:
    """Ids of the runs matching `query`, ordered, one page of them."""
    stmt = select(R.c.id).join(E, E.c.id == R.c.experiment_id)
    if query.experiment_ids is not None:
        stmt = stmt.where(R.c.experiment_id.in_(query.experiment_ids))
    if query.view == "active":
        stmt = stmt.where(R.c.lifecycle == "active", E.c.lifecycle == "active")
    elif query.view == "deleted":
        stmt = stmt.where(or_(R.c.lifecycle == "deleted", E.c.lifecycle == "deleted"))
    expr = parse_filter(query.filter)
    if expr is not None:
        stmt = stmt.where(_condition(expr))
    order: list[Any] = []
    for index, key in enumerate(parse_order_by(query.order_by)):
        stmt, column = _order_column(stmt, key, index)
        order += [column.is_(None), column.desc() if key.descending else column.asc()]
    order += [R.c.start_time.desc(), R.c.id]
    return list(conn.scalars(stmt.order_by(*order).offset(offset).limit(limit)))


def _condition(expr: Expr) -> ColumnElement[bool]:
    if isinstance(expr, Comparison):
        return _comparison(expr)
    parts = [_condition(item) for item in expr.items]
    return and_(true(), *parts) if isinstance(expr, And) else or_(false(), *parts)


def _comparison(c: Comparison) -> ColumnElement[bool]:
    _check_literal(c)
    if c.entity == "attribute":
        return apply_operator(_ATTRIBUTES[c.key], c.op, c.value)
    table = _KEYED[c.entity]
    present = and_(table.c.run_id == R.c.id, table.c.key == c.key)
    if c.entity == "metric":  # a NULL metric value stands for NaN: never matches a comparison
        present = and_(present, table.c.value.is_not(None))
    if c.op == "is null":
        return not_(exists().where(present))
    if c.op == "is not null":
        return exists().where(present)
    return exists().where(present, apply_operator(table.c.value, c.op, c.value))


_INTEGER_ATTRIBUTES = frozenset({"start_time", "end_time", "experiment_id"})


def _check_literal(c: Comparison) -> None:
    """Values no stored row can hold are rejected alike on every database."""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"filter value for {c.entity} {c.key!r} contains a NUL character")
        integer = c.entity == "attribute" and c.key in _INTEGER_ATTRIBUTES
        if integer and value is not None and not _in_int64(value):
            raise InvalidInput(
                f"filter value {value!r} for attributes.{c.key} is outside the 64-bit integer range"
            )


def _in_int64(value: object) -> bool:
    return isinstance(value, int | float) and -INT64_MAX - 1 <= value <= INT64_MAX


_OPERATORS: dict[str, Callable[[Column[Any], Any], Any]] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "like": lambda c, v: c.like(v),
    "ilike": lambda c, v: c.ilike(v),
    "not like": lambda c, v: c.not_like(v),
    "not ilike": lambda c, v: c.not_ilike(v),
    "in": lambda c, v: c.in_(list(v)),
    "not in": lambda c, v: c.not_in(list(v)),
    "is null": lambda c, _v: c.is_(None),
    "is not null": lambda c, _v: c.is_not(None),
}


def apply_operator(column: Column[Any], op: str, value: Any) -> ColumnElement[bool]:
    """`column <op> value` for a filter operator (`like`, `not in`, `is null`, …)."""
    return cast(ColumnElement[bool], _OPERATORS[op](column, value))


def _order_column(stmt: Any, key: OrderKey, index: int) -> tuple[Any, Column[Any]]:
    if key.entity == "attribute":
        return stmt, _ATTRIBUTES[key.key]
    table = _KEYED[key.entity].alias(f"order_{index}")
    stmt = stmt.outerjoin(table, and_(table.c.run_id == R.c.id, table.c.key == key.key))
    return stmt, table.c.value
