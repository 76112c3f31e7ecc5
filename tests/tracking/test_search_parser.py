"""The run-search language: filters and order-by keys parse to a typed AST or fail with a caret."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.errors import InvalidInput
from modelyard.tracking._search import (
    And,
    Comparison,
    Entity,
    Expr,
    Or,
    OrderKey,
    Scalar,
    parse_filter,
    parse_order_by,
)

Value = Scalar | tuple[Scalar, ...] | None


def metric(key: str, op: str, value: Value) -> Comparison:
    return Comparison("metric", key, op, value)


def param(key: str, op: str, value: Value) -> Comparison:
    return Comparison("param", key, op, value)


def attr(key: str, op: str, value: Value) -> Comparison:
    return Comparison("attribute", key, op, value)


def error_of(text: str) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    return info.value.message


def assert_points_at(message: str, pos: int, token: str) -> None:
    first, _, caret = message.split("\n")
    assert f"at position {pos}" in first
    assert token in first
    assert caret.index("^") == pos + 2


# --- valid filters ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_blank_filter_means_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


def test_docs_example_parses_to_and_of_metric_and_param() -> None:
    assert parse_filter("metrics.auc > 0.9 and params.penalty = 'l2'") == And(
        (metric("auc", ">", 0.9), param("penalty", "=", "l2"))
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metric.auc >= 1", metric("auc", ">=", 1)),
        ("METRICS.auc < -1.5e-3", metric("auc", "<", -0.0015)),
        ("metrics.val.auc = .5", metric("val.auc", "=", 0.5)),
        ("metrics.`my key` != 2", metric("my key", "!=", 2)),
        ('tags."team name" = "ml"', Comparison("tag", "team name", "=", "ml")),
        ("tag.a/b:c-d = 'x'", Comparison("tag", "a/b:c-d", "=", "x")),
        ("metrics.a == 1", metric("a", "=", 1)),
        ("metrics.a <> 1", metric("a", "!=", 1)),
        ("metrics.a>-1", metric("a", ">", -1)),
        ("params.a LIKE 'x%'", param("a", "like", "x%")),
        ("params.a Not ILike 'x%'", param("a", "not ilike", "x%")),
        ("params.a in ('x', \"y\")", param("a", "in", ("x", "y"))),
        ("metrics.a NOT IN (1, 2.5)", metric("a", "not in", (1, 2.5))),
        ("metrics.a is null", metric("a", "is null", None)),
        ("param.a IS NOT NULL", param("a", "is not null", None)),
        ("params.a = 'it''s'", param("a", "=", "it's")),
        (r"params.a = 'it\'s'", param("a", "=", "it's")),
        (r"params.a = 'C:\\'", param("a", "=", "C:\\")),
        (r"params.a like 'a\_b'", param("a", "like", r"a\_b")),
    ],
)
def test_comparisons_parse_to_canonical_form(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [("params.C = 1.0", "1.0"), ("params.C = 1", "1"), ("params.C = -2e3", "-2e3")],
)
def test_number_literal_for_a_param_is_kept_as_written(text: str, value: str) -> None:
    assert parse_filter(text) == param("C", "=", value)


def test_number_literals_keep_int_or_float() -> None:
    expr = parse_filter("metrics.a in (1, 1.0, 1e2)")
    assert isinstance(expr, Comparison)
    assert isinstance(expr.value, tuple)
    assert [type(v) for v in expr.value] == [int, float, float]


def test_integers_beyond_64_bits_become_floats() -> None:
    assert parse_filter("metrics.a = 99999999999999999999") == metric("a", "=", 1e20)
    expr = parse_filter("metrics.a = 99999999999999999999")
    assert isinstance(expr, Comparison)
    assert isinstance(expr.value, float)


def test_and_binds_tighter_than_or() -> None:
    a, b, c = metric("a", "=", 1), metric("b", "=", 2), metric("c", "=", 3)
    assert parse_filter("metrics.a = 1 or metrics.b = 2 and metrics.c = 3") == Or((a, And((b, c))))
    assert parse_filter("(metrics.a = 1 or metrics.b = 2) and metrics.c = 3") == And(
        (Or((a, b)), c)
    )


def test_nested_groups_of_the_same_kind_are_flattened() -> None:
    a, b, c = metric("a", "=", 1), metric("b", "=", 2), metric("c", "=", 3)
    assert parse_filter("((metrics.a = 1)) and (metrics.b = 2 and metrics.c = 3)") == And((a, b, c))
    assert parse_filter("metrics.a = 1 or (metrics.b = 2 or (metrics.c = 3))") == Or((a, b, c))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attributes.id = 'r1'", attr("run_id", "=", "r1")),
        ("attr.NAME like 'exp-%'", attr("run_name", "like", "exp-%")),
        ("run.user = 'ada'", attr("user", "=", "ada")),
        ("attribute.parent_id is null", attr("parent_id", "is null", None)),
        ("attributes.lifecycle != 'deleted'", attr("lifecycle", "!=", "deleted")),
        ("attributes.status = 'RUNNING'", attr("status", "=", "running")),
        (
            "attributes.status not in ('failed', 'Killed')",
            attr("status", "not in", ("failed", "killed")),
        ),
        ("attributes.experiment_id = 7", attr("experiment_id", "=", 7)),
        ("attributes.experiment_id in ('7', 8)", attr("experiment_id", "in", (7, 8))),
        ("attributes.start_time >= 1700000000000", attr("start_time", ">=", 1700000000000)),
        ("attributes.start_time > 1.7e12", attr("start_time", ">", 1700000000000)),
        ("attributes.start_time > '2024-01-01'", attr("start_time", ">", 1704067200000)),
        ("attributes.end_time < '2024-01-01T01:00:00'", attr("end_time", "<", 1704070800000)),
        ("attributes.end_time < '2024-01-01T02:00:00+01:00'", attr("end_time", "<", 1704070800000)),
        ("attributes.end_time is null", attr("end_time", "is null", None)),
    ],
)
def test_attributes_are_normalised(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


# --- errors ----------------------------------------------------------------------------------


def test_error_message_points_at_the_offending_token_with_a_caret() -> None:
    assert error_of("metrics.auc 0.9") == (
        "malformed filter: expected an operator after 'metrics.auc', found '0.9' at position 12\n"
        "  metrics.auc 0.9\n"
        "              ^"
    )


@pytest.mark.parametrize(
    ("text", "pos", "token", "reason"),
    [
        ("()", 1, "'()'", "empty parentheses"),
        ("metrics.a = 1 and", 17, "end of input", "after 'and'"),
        ("metrics.a = 1 or ", 17, "end of input", "after 'or'"),
        ("params.a = 'abc", 11, "'abc", "unterminated string"),
        ("params.`abc = 1", 7, "`abc", "unterminated quoted name"),
        ("metrics.a ~ 1", 10, "'~'", "unknown operator"),
        ("metrics.a between 1", 10, "'between'", "unknown operator"),
        ("metrics.a = 1 foo", 14, "'foo'", "after a complete condition"),
        ("(metrics.a = 1", 14, "end of input", "expected ')' to close the '(' at position 0"),
        ("metrics.a = 1)", 13, "')'", "without a matching '('"),
        ("metrics.a in ()", 14, "')'", "'in' needs at least one value"),
        ("metrics.a in (1,)", 16, "')'", "expected a number or a quoted string"),
        ("metrics.a in 1", 13, "'1'", "expected '('"),
        ("metrics.a in (1 2)", 16, "'2'", "expected ',' or ')'"),
        ("metrics.a = inf", 12, "'inf'", "expected a number or a quoted string"),
        ("metrics.a = nan", 12, "'nan'", "expected a number or a quoted string"),
        ("metrics.a = null", 12, "'null'", "is null"),
        ("metrics.a = `x`", 12, "'`x`'", "backquotes quote keys"),
        ("metrics.a = 1e999", 12, "'1e999'", "out of range"),
        ("metrics.a = 1.2.3", 12, "'1.2.3'", "malformed number"),
        ("metrics.a is nul", 13, "'nul'", "expected null or not null"),
        ("metrics.a not between", 14, "'between'", "expected like, ilike or in"),
        ("not metrics.a = 1", 0, "'not'", "only works as 'not like'"),
        ("metrics.a = 1 $", 14, "'$'", "unexpected character"),
        ("metrics.a = \u0663", 12, "'\u0663'", "unexpected character"),
        ("metrics.a", 9, "end of input", "expected an operator"),
        ("metrics. = 1", 0, "'metrics.'", "expected a key"),
        ("auc > 0.9", 0, "'auc'", "metrics., params., tags. or attributes."),
        ("`my key` = 1", 0, "'`my key`'", "needs an entity prefix"),
        ("foo.bar = 1", 0, "'foo'", "unknown entity"),
        ("and", 0, "'and'", "expected a condition"),
        ("params.a like 1", 14, "'1'", "needs a quoted pattern"),
    ],
)
def test_malformed_filters_are_rejected_with_position(
    text: str, pos: int, token: str, reason: str
) -> None:
    message = error_of(text)
    assert message.startswith("malformed filter: ")
    assert reason in message
    assert_points_at(message, pos, token)


@pytest.mark.parametrize(
    ("text", "pos", "token", "reason"),
    [
        ("metrics.auc like 'x'", 12, "'like'", "metrics are numbers"),
        ("metrics.auc = 'a'", 14, "'a'", "metrics are numbers"),
        ("metrics.auc in (1, 'a')", 19, "'a'", "metrics are numbers"),
        ("params.C < 1", 9, "'<'", "params are strings"),
        ("tags.t >= 'a'", 7, "'>='", "tags are strings"),
        ("attributes.foo = 1", 0, "'foo'", "run_id (or id), run_name (or name), status"),
        ("attributes.status = 'done'", 20, "'done'", "one of running, finished, failed, killed"),
        ("attributes.status like 'r%'", 18, "'like'", "use =, !=, in, not in"),
        ("attributes.status is null", 18, "'is null'", "attributes.status"),
        ("attributes.start_time > 'yesterday'", 24, "'yesterday'", "ISO-8601"),
        ("attributes.start_time like '2024%'", 22, "'like'", "unix milliseconds"),
        ("attributes.experiment_id = 1.5", 27, "1.5", "is an integer"),
        ("attributes.experiment_id = 'abc'", 27, "'abc'", "is an integer"),
        ("attributes.experiment_id > 1", 25, "'>'", "use =, !=, in, not in"),
    ],
)
def test_type_mismatches_are_rejected_with_reason(
    text: str, pos: int, token: str, reason: str
) -> None:
    message = error_of(text)
    assert message.startswith("invalid filter: ")
    assert reason in message
    assert_points_at(message, pos, token)


def test_caret_stays_aligned_in_multi_line_filters() -> None:
    message = error_of("metrics.a = 1\nand\tmetrics.b ?")
    assert_points_at(message, 28, "'?'")


def test_deep_nesting_is_refused_instead_of_overflowing_the_stack() -> None:
    message = error_of("(" * 1000 + "metrics.a = 1" + ")" * 1000)
    assert "nested deeper than" in message


# --- order by --------------------------------------------------------------------------------


def test_order_by_parses_direction_and_defaults_to_ascending() -> None:
    items = ["metrics.auc desc", "attributes.start_time", "params.C ASC", "run.name", "tags.`a b`"]
    assert parse_order_by(items) == (
        OrderKey("metric", "auc", descending=True),
        OrderKey("attribute", "start_time", descending=False),
        OrderKey("param", "C", descending=False),
        OrderKey("attribute", "run_name", descending=False),
        OrderKey("tag", "a b", descending=False),
    )


def test_no_order_by_gives_no_keys() -> None:
    assert parse_order_by(None) == ()
    assert parse_order_by([]) == ()


def test_a_single_string_is_one_order_by_item() -> None:
    assert parse_order_by("metrics.auc DESC") == (OrderKey("metric", "auc", descending=True),)


@pytest.mark.parametrize(
    ("item", "pos", "token", "reason"),
    [
        ("metrics.auc up", 12, "'up'", "expected asc or desc"),
        ("metrics.auc desc, params.C", 16, "','", "one key per item"),
        ("auc desc", 0, "'auc'", "needs an entity prefix"),
        ("", 0, "empty item", "metrics.auc desc"),
        ("attributes.color", 0, "'color'", "unknown attribute"),
        ("metrics.'auc'", 0, "'metrics.'", "expected a key"),
    ],
)
def test_malformed_order_by_items_are_rejected_with_position(
    item: str, pos: int, token: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_order_by(["metrics.ok", item])
    message = info.value.message
    assert "order_by item: " in message
    assert reason in message
    assert_points_at(message, pos, token)


# --- properties ------------------------------------------------------------------------------

PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")
SPELLINGS: dict[str, tuple[str, ...]] = {
    "metric": ("metrics", "metric", "Metrics"),
    "param": ("params", "param", "PARAMS"),
    "tag": ("tags", "tag"),
    "attribute": ("attributes", "attribute", "attr", "run", "Attributes"),
}
ATTRIBUTE_KINDS = {
    **dict.fromkeys(("run_id", "run_name", "parent_id", "user", "lifecycle"), "string"),
    **{"status": "status", "experiment_id": "experiment"},
    **dict.fromkeys(("start_time", "end_time"), "time"),
}
ATTRIBUTE_SPELLINGS = {"run_id": ("run_id", "id", "ID"), "run_name": ("run_name", "name")}
NULL = ("is null", "is not null")
LIST = ("in", "not in")
OPS = {
    "number": ("=", "!=", "<", "<=", ">", ">=", *LIST, *NULL),
    "time": ("=", "!=", "<", "<=", ">", ">=", *LIST, *NULL),
    "string": ("=", "!=", "like", "ilike", "not like", "not ilike", *LIST, *NULL),
    "status": ("=", "!=", *LIST),
    "experiment": ("=", "!=", *LIST),
}
VALUES: dict[str, st.SearchStrategy[Scalar]] = {
    "number": st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False),
    "time": st.integers(-(10**12), 4 * 10**12),
    "string": st.text(max_size=8) | st.text("0123.ab%_", max_size=4),
    "status": st.sampled_from(["running", "finished", "failed", "killed"]),
    "experiment": st.integers(0, 10**12),
}
SYMBOL_SPELLINGS = {"=": ("=", "=="), "!=": ("!=", "<>")}
SPACES = (" ", "  ", "\n", "\t ")


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    entity: Entity = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    if entity == "attribute":
        key = draw(st.sampled_from(sorted(ATTRIBUTE_KINDS)))
        kind = ATTRIBUTE_KINDS[key]
    else:
        key = draw(st.text("abcXYZ019_-./:", min_size=1, max_size=8) | st.text(min_size=1))
        kind = "number" if entity == "metric" else "string"
    op = draw(st.sampled_from(OPS[kind]))
    if op in NULL:
        return Comparison(entity, key, op, None)
    if op in LIST:
        return Comparison(
            entity, key, op, tuple(draw(st.lists(VALUES[kind], min_size=1, max_size=3)))
        )
    return Comparison(entity, key, op, draw(VALUES[kind]))


def combine(kind: type[And] | type[Or], items: list[Expr]) -> Expr:
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else [item])
    return kind(tuple(flat))


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> Expr:
    if depth == 2 or draw(st.booleans()):
        return draw(comparisons())
    items = [draw(expressions(depth + 1)) for _ in range(draw(st.integers(2, 3)))]
    kind: type[And] | type[Or] = And if draw(st.booleans()) else Or
    return combine(kind, items)


class Renderer:
    """Writes an AST back as filter text, varying spelling, case, quoting, spacing and parens."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def quote(self, text: str, quotes: str) -> str:
        mark = self.rnd.choice(quotes)
        escaped = self.rnd.choice([mark + mark, "\\" + mark])
        return mark + text.replace("\\", "\\\\").replace(mark, escaped) + mark

    def word(self, word: str) -> str:
        return self.rnd.choice([word, word.upper(), word.title()])

    def space(self) -> str:
        return self.rnd.choice(SPACES)

    def value(self, comparison: Comparison, value: Scalar) -> str:
        kind = ATTRIBUTE_KINDS[comparison.key] if comparison.entity == "attribute" else None
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, int) and kind == "time" and self.rnd.random() < 0.5:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
            return self.quote(moment.isoformat(timespec="milliseconds"), "'\"")
        if isinstance(value, int):
            quoted = kind == "experiment" and self.rnd.random() < 0.5
            return self.quote(str(value), "'") if quoted else str(value)
        bare_ok = kind != "status" and "like" not in comparison.op
        if bare_ok and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value) and self.rnd.random() < 0.5:
            return value  # an unquoted number literal stands for its text
        return self.quote(value.upper() if kind == "status" else value, "'\"")

    def comparison(self, comparison: Comparison) -> str:
        entity, key, op = comparison.entity, comparison.key, comparison.op
        if entity == "attribute":
            name = self.rnd.choice(ATTRIBUTE_SPELLINGS.get(key, (key,)))
        elif PLAIN_KEY.fullmatch(key) and self.rnd.random() < 0.5:
            name = key
        else:
            name = self.quote(key, '`"')
        if op in SYMBOL_SPELLINGS:
            op = self.rnd.choice(SYMBOL_SPELLINGS[op])
        elif op[0].isalpha():
            op = " ".join(self.word(word) for word in op.split())
        text = f"{self.rnd.choice(SPELLINGS[entity])}.{name}{self.space()}{op}{self.space()}"
        value = comparison.value
        if isinstance(value, tuple):
            return f"{text}({', '.join(self.value(comparison, v) for v in value)})"
        return text if value is None else text + self.value(comparison, value)

    def render(self, expr: Expr) -> str:
        if isinstance(expr, Comparison):
            text = self.comparison(expr)
        else:
            joiner = f"{self.space()}{self.word('and' if isinstance(expr, And) else 'or')} "
            text = joiner.join(
                f"({self.render(item)})" if isinstance(item, Or) else self.render(item)
                for item in expr.items
            )
        return f"({text})" if self.rnd.random() < 0.2 else text


@st.composite
def rendered(draw: st.DrawFn) -> tuple[Expr, str]:
    expr = draw(expressions())
    return expr, Renderer(draw(st.randoms(use_true_random=False))).render(expr)


@given(rendered())
def test_rendered_filters_parse_back_to_the_same_ast(case: tuple[Expr, str]) -> None:
    expr, text = case
    assert parse_filter(text) == expr


SOUP = st.lists(
    st.sampled_from(
        [
            *("metrics.a", "params.`b c`", 'tags."d"', "attributes.status", "attr.start_time"),
            *("attributes.experiment_id", "auc", "=", "!=", "<", ">=", "~", "like", "not", "in"),
            *("is", "null", "and", "or", "(", ")", ",", "1", "-2.5e3", "'x'", '"y', "'2024-01-01'"),
            *("'running'", "inf", "`", "\\", "'", "asc", "desc"),
        ]
    ),
    max_size=12,
).map(" ".join)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid filter with one slice replaced: near-misses reach deep into the parser."""
    _, text = draw(rendered())
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 5)))
    return text[:start] + draw(SOUP | st.text(max_size=2)) + text[end:]


def assert_parses_or_fails_cleanly(parse: Callable[[str], object], text: str) -> None:
    try:
        parse(text)
    except InvalidInput as error:
        first, shown, caret = error.message.split("\n")
        pos = int(re.findall(r"at position (\d+)", first)[-1])
        assert 0 <= pos <= len(text)
        assert len(shown) == len(text) + 2
        assert caret == " " * (pos + 2) + "^"


@given(st.text() | SOUP | mutated())
def test_any_text_parses_or_raises_invalid_input(text: str) -> None:
    assert_parses_or_fails_cleanly(parse_filter, text)
    assert_parses_or_fails_cleanly(lambda item: parse_order_by([item]), text)
