"""The run-search language: filters and order-by keys parsed into a small typed AST.

Pure (no SQL, no I/O): the store turns the AST into a query. Every mistake a user can
make (syntax, an unknown attribute, comparing a param with '<') is caught here and
reported with its position and a caret under the offending token. Runs are the default
vocabulary; another store passes a `Grammar` naming its own attributes (model versions).

    metrics.auc > 0.9 and (params.penalty = 'l2' or tags."team name" like 'ml-%')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias

from modelyard.errors import InvalidInput

Entity = Literal["metric", "param", "tag", "attribute"]
Scalar: TypeAlias = float | int | str


@dataclass(frozen=True)
class Comparison:
    """One condition, e.g. `metrics.auc > 0.9`.

    `value` is a tuple for in / not in and None for is null / is not null.
    """

    entity: Entity
    key: str
    op: str
    value: Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True)
class And:
    """All items hold (never nested directly in another `And`)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Any item holds (never nested directly in another `Or`)."""

    items: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


@dataclass(frozen=True)
class OrderKey:
    """One sort key, e.g. `metrics.auc desc`."""

    entity: Entity
    key: str
    descending: bool


_KEYED: dict[str, Entity] = {
    **dict.fromkeys(("metrics", "metric"), "metric"),
    **dict.fromkeys(("params", "param"), "param"),
    **dict.fromkeys(("tags", "tag"), "tag"),
}
_PREFIXES = "metrics., params., tags. or attributes."
_STATUSES = ("running", "finished", "failed", "killed")
_SYMBOL_OPS = {"==": "=", "<>": "!="} | {op: op for op in ("=", "!=", "<", "<=", ">", ">=")}
_NULL_OPS = ("is null", "is not null")
_LIST_OPS = ("in", "not in")
_LIKE_OPS = ("like", "ilike", "not like", "not ilike")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=", *_LIST_OPS, *_NULL_OPS)
_STRING_OPS = ("=", "!=", *_LIKE_OPS, *_LIST_OPS, *_NULL_OPS)
_SET_OPS = ("=", "!=", *_LIST_OPS)
_ALL_OPS = (
    "use =, !=, <, <=, >, >=, like, ilike, not like, not ilike, in, is null or their not forms"
)
_KEYWORDS = frozenset({"and", "or", "not", "like", "ilike", "in", "is", "null", "asc", "desc"})
_MAX_DEPTH = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./:]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_SYMBOL = re.compile(r"[=!<>~&|^]+")


class _ParseError(Exception):
    """A mistake at a position; the entry points turn it into `InvalidInput` with a caret."""

    def __init__(self, reason: str, pos: int, hint: str = "", *, malformed: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.pos, self.hint, self.malformed = reason, pos, hint, malformed


def _invalid(what: str, text: str, error: _ParseError) -> InvalidInput:
    label = "malformed" if error.malformed else "invalid"
    hint = f"; {error.hint}" if error.hint else ""
    shown = re.sub(r"\s", " ", text)
    return InvalidInput(
        f"{label} {what}: {error.reason} at position {error.pos}{hint}\n"
        f"  {shown}\n  {' ' * error.pos}^"
    )


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "ident", "name", "number", "string", "symbol", "punct", "end"]
    text: str
    pos: int
    value: Scalar = ""  # decoded: lower-cased word, ident key, number, string contents


def _show(tok: _Token) -> str:
    return "end of input" if tok.kind == "end" else repr(tok.text)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            tokens.append(_Token("end", "", pos))
            return tokens
        char = text[pos]
        if char in "(),":
            tok = _Token("punct", char, pos)
        elif char in "'\"`":
            tok = _quoted(text, pos, "name" if char == "`" else "string")
        elif match := _NUMBER.match(text, pos):
            tok = _number(text, match)
        elif match := _WORD.match(text, pos):
            tok = _word(text, match)
        elif match := _SYMBOL.match(text, pos):
            tok = _Token("symbol", match.group(), pos)
        else:
            raise _ParseError(f"unexpected character {char!r}", pos)
        tokens.append(tok)
        pos = tok.pos + len(tok.text)


def _quoted(text: str, start: int, kind: Literal["string", "name"]) -> _Token:
    """A quoted string or name; the quote is escaped by doubling it or with a backslash."""
    quote, chars, pos = text[start], [], start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and text[pos + 1 : pos + 2] in (quote, "\\"):
            chars.append(text[pos + 1])
            pos += 2
        elif char == quote and text[pos + 1 : pos + 2] == quote:
            chars.append(quote)
            pos += 2
        elif char == quote:
            return _Token(kind, text[start : pos + 1], start, "".join(chars))
        else:
            chars.append(char)
            pos += 1
    what = "string" if kind == "string" else "quoted name"
    raise _ParseError(f"unterminated {what} {text[start : start + 20]!r}", start)


def _number(text: str, match: re.Match[str]) -> _Token:
    raw, pos = match.group(), match.start()
    tail = _NUMBER_TAIL.match(text, match.end())
    if tail and tail.group():
        raise _ParseError(f"malformed number {raw + tail.group()!r}", pos)
    try:
        value: Scalar = float(raw) if any(c in raw for c in ".eE") else int(raw)
    except ValueError:  # more digits than int() accepts
        raise _ParseError(f"number {raw[:20]!r}… is too long", pos) from None
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        value = float(value)  # beyond what a database integer holds
    if isinstance(value, float) and not math.isfinite(value):
        raise _ParseError(f"number {raw!r} is out of range", pos)
    return _Token("number", raw, pos, value)


def _word(text: str, match: re.Match[str]) -> _Token:
    """A keyword or bare word, or `<entity>.<key>` (the key may be quoted after the dot)."""
    word, pos = match.group(), match.start()
    if "." not in word:
        return _Token("word", word, pos, word.lower())
    key = word.split(".", 1)[1]
    if word.endswith(".") and text[match.end() : match.end() + 1] in ("`", '"'):
        name = _quoted(text, match.end(), "name")
        return _Token("ident", word + name.text, pos, key + str(name.value))
    return _Token("ident", word, pos, key)


# Value converters return None when the value does not fit; the parser reports it.


def _to_number(tok: _Token) -> Scalar | None:
    return tok.value if tok.kind == "number" else None


def _to_string(tok: _Token) -> Scalar | None:
    return tok.text if tok.kind == "number" else tok.value  # a number as written: 1.0 -> '1.0'


def _to_time(tok: _Token) -> Scalar | None:
    if tok.kind == "number":
        value = tok.value
        return int(value) if isinstance(value, float) and value.is_integer() else value
    try:
        moment = datetime.fromisoformat(str(tok.value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    except (ValueError, OverflowError):
        return None


def _to_integer(tok: _Token) -> Scalar | None:
    value = tok.value
    if tok.kind == "number" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value if tok.kind == "number" and isinstance(value, int) else None


def _to_choice(choices: tuple[str, ...]) -> Callable[[_Token], Scalar | None]:
    def convert(tok: _Token) -> Scalar | None:
        choice = str(tok.value).lower()
        return choice if tok.kind == "string" and choice in choices else None

    return convert


def _to_id(tok: _Token) -> Scalar | None:
    if isinstance(tok.value, int):
        return tok.value
    if tok.kind == "string" and re.fullmatch(r"\s*[0-9]{1,18}\s*", str(tok.value)):
        return int(str(tok.value))
    return None


@dataclass(frozen=True)
class _Rule:
    """What an identifier holds: a description, the allowed operators, a value converter."""

    what: str
    ops: tuple[str, ...]
    convert: Callable[[_Token], Scalar | None]


_RULES: dict[Entity, _Rule] = {
    "metric": _Rule("metrics are numbers", _NUMBER_OPS, _to_number),
    "param": _Rule("params are strings", _STRING_OPS, _to_string),
    "tag": _Rule("tags are strings", _STRING_OPS, _to_string),
}
_TIME = "a time (unix milliseconds or an ISO-8601 date string)"

AttributeType = Literal["string", "integer", "id", "time", "choice"]


@dataclass(frozen=True)
class Attribute:
    """A filterable attribute; its type decides the operators and how values are read.

    `integer` compares with <, >, …; `id` is an integer matched with =, != and in (a
    quoted number works too); `choice` is one of `choices`.
    """

    type: AttributeType
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grammar:
    """What a filter may name besides metrics., params. and tags.: its attributes.

    `aliases` maps other spellings onto attribute names; `prefixes` introduce an
    attribute (`attributes.status`); with `bare` an attribute may also be named alone
    (`status = 'ready'`).
    """

    attributes: Mapping[str, Attribute]
    aliases: Mapping[str, str] = field(default_factory=dict)
    prefixes: tuple[str, ...] = ("attributes", "attribute", "attr")
    bare: bool = False


RUN_GRAMMAR = Grammar(
    attributes={
        "run_id": Attribute("string"),
        "run_name": Attribute("string"),
        "status": Attribute("choice", _STATUSES),
        "start_time": Attribute("time"),
        "end_time": Attribute("time"),
        "experiment_id": Attribute("id"),
        "parent_id": Attribute("string"),
        "user": Attribute("string"),
        "lifecycle": Attribute("string"),
    },
    aliases={"id": "run_id", "name": "run_name"},
    prefixes=("attributes", "attribute", "attr", "run"),
)
"""The attributes of run search."""


def _rule(label: str, attribute: Attribute) -> _Rule:
    if attribute.type == "string":
        return _Rule(f"{label} is a string", _STRING_OPS, _to_string)
    if attribute.type == "time":
        return _Rule(f"{label} is {_TIME}", _NUMBER_OPS, _to_time)
    if attribute.type == "integer":
        return _Rule(f"{label} is an integer", _NUMBER_OPS, _to_integer)
    if attribute.type == "id":
        return _Rule(f"{label} is an integer", _SET_OPS, _to_id)
    choices = ", ".join(attribute.choices)
    return _Rule(f"{label} is one of {choices}", _SET_OPS, _to_choice(attribute.choices))


def _attribute_rules(grammar: Grammar) -> dict[str, _Rule]:
    return {
        name: _rule(name if grammar.bare else f"attributes.{name}", attribute)
        for name, attribute in grammar.attributes.items()
    }


def _attribute_list(grammar: Grammar) -> str:
    return ", ".join(
        name + "".join(f" (or {alias})" for alias, to in grammar.aliases.items() if to == name)
        for name in grammar.attributes
    )


def _join(kind: type[And] | type[Or], items: list[Expr]) -> Expr:
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


class _Parser:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*; and_expr := primary ('and' …)*."""

    def __init__(self, text: str, grammar: Grammar) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.grammar = grammar
        self.attributes = _attribute_rules(grammar)

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        tok = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return tok

    def at(self, kind: str, *values: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and (tok.value if kind == "word" else tok.text) in values

    def parse_or(self, after: _Token | None = None) -> Expr:
        items = [self.parse_and(after)]
        while self.at("word", "or"):
            items.append(self.parse_and(self.advance()))
        return _join(Or, items)

    def parse_and(self, after: _Token | None) -> Expr:
        items = [self.parse_primary(after)]
        while self.at("word", "and"):
            items.append(self.parse_primary(self.advance()))
        return _join(And, items)

    def parse_primary(self, after: _Token | None) -> Expr:
        if not self.at("punct", "("):
            return self.parse_comparison(after)
        opening = self.advance()
        if self.at("punct", ")"):
            raise _ParseError("empty parentheses '()'", self.peek().pos, "put a condition inside")
        if self.depth >= _MAX_DEPTH:
            raise _ParseError(f"parentheses nested deeper than {_MAX_DEPTH}", opening.pos)
        self.depth += 1
        expr = self.parse_or(opening)
        self.depth -= 1
        closing = self.advance()
        if closing.text != ")" or closing.kind != "punct":
            reason = f"expected ')' to close the '(' at position {opening.pos}"
            raise _ParseError(f"{reason}, found {_show(closing)}", closing.pos)
        return expr

    def parse_identifier(self, expected: str, after: _Token | None = None) -> tuple[Entity, str]:
        tok = self.advance()
        if tok.kind == "ident":
            prefix = tok.text.split(".", 1)[0]
            entity = _KEYED.get(prefix.lower())
            if entity is None and prefix.lower() not in self.grammar.prefixes:
                raise _ParseError(f"unknown entity {prefix!r}", tok.pos, f"use {_PREFIXES}")
            if not tok.value:
                hint = f"quote unusual keys with backquotes, e.g. {prefix}.`my key`"
                raise _ParseError(f"expected a key after {tok.text!r}", tok.pos, hint)
            if entity is not None:
                return entity, str(tok.value)
            return "attribute", self.attribute_name(tok, "")
        if tok.kind == "word" and tok.value == "not":
            hint = "'not' only works as 'not like', 'not ilike' or 'not in'"
            raise _ParseError(f"unexpected {_show(tok)}", tok.pos, hint)
        if self.grammar.bare and tok.kind == "word" and tok.value not in _KEYWORDS:
            hint = f"; metrics, params and tags need their prefix, e.g. 'metrics.{tok.text}'"
            return "attribute", self.attribute_name(tok, hint)
        if tok.kind == "name" or (tok.kind == "word" and tok.value not in _KEYWORDS):
            hint = f"use {_PREFIXES}, e.g. 'metrics.{tok.text}'"
            raise _ParseError(f"{tok.text!r} needs an entity prefix", tok.pos, hint)
        context = f" after {after.text!r}" if after else ""
        raise _ParseError(f"expected {expected}{context}, found {_show(tok)}", tok.pos)

    def attribute_name(self, tok: _Token, hint: str) -> str:
        name = str(tok.value).lower()
        name = self.grammar.aliases.get(name, name)
        if name not in self.attributes:
            hint = f"attributes are {_attribute_list(self.grammar)}{hint}"
            raise _ParseError(f"unknown attribute {tok.value!r}", tok.pos, hint, malformed=False)
        return name

    def parse_comparison(self, after: _Token | None) -> Comparison:
        ident = self.peek()
        entity, key = self.parse_identifier("a condition", after)
        op, op_tok = self.parse_operator(ident)
        rule = _RULES.get(entity) or self.attributes[key]
        if op not in rule.ops:
            reason, hint = f"{rule.what}, so {op!r} does not apply", f"use {', '.join(rule.ops)}"
            raise _ParseError(reason, op_tok.pos, hint, malformed=False)
        if op in _NULL_OPS:
            return Comparison(entity, key, op, None)
        if op in _LIST_OPS:
            values = tuple(self.convert(rule, op, tok) for tok in self.parse_list(op))
            return Comparison(entity, key, op, values)
        return Comparison(entity, key, op, self.convert(rule, op, self.parse_value(op)))

    def parse_operator(self, ident: _Token) -> tuple[str, _Token]:
        tok = self.advance()
        if tok.kind == "symbol":
            if tok.text not in _SYMBOL_OPS:
                raise _ParseError(f"unknown operator {tok.text!r}", tok.pos, _ALL_OPS)
            return _SYMBOL_OPS[tok.text], tok
        if tok.kind == "word" and tok.value in ("like", "ilike", "in"):
            return str(tok.value), tok
        if tok.kind == "word" and tok.value == "not":
            nxt = self.advance()
            if nxt.kind == "word" and nxt.value in ("like", "ilike", "in"):
                return f"not {nxt.value}", tok
            reason = f"expected like, ilike or in after 'not', found {_show(nxt)}"
            raise _ParseError(reason, nxt.pos)
        if tok.kind == "word" and tok.value == "is":
            negated = self.at("word", "not")
            if negated:
                self.advance()
            null = self.advance()
            if null.kind == "word" and null.value == "null":
                return ("is not null" if negated else "is null"), tok
            reason = f"expected null or not null after 'is', found {_show(null)}"
            raise _ParseError(reason, null.pos)
        if tok.kind == "word" and tok.value not in _KEYWORDS:
            raise _ParseError(f"unknown operator {tok.text!r}", tok.pos, _ALL_OPS)
        reason = f"expected an operator after {ident.text!r}, found {_show(tok)}"
        raise _ParseError(reason, tok.pos)

    def parse_value(self, op: str) -> _Token:
        tok = self.advance()
        if tok.kind in ("number", "string"):
            return tok
        hint = ""
        if tok.kind == "name":
            hint = "backquotes quote keys; quote values with ' or \""
        elif tok.kind == "word" and tok.value == "null":
            hint = "use 'is null' for missing values"
        reason = f"expected a number or a quoted string after {op!r}, found {_show(tok)}"
        raise _ParseError(reason, tok.pos, hint)

    def parse_list(self, op: str) -> list[_Token]:
        opening = self.advance()
        if opening.kind != "punct" or opening.text != "(":
            raise _ParseError(f"expected '(' after {op!r}, found {_show(opening)}", opening.pos)
        if self.at("punct", ")"):
            raise _ParseError(f"{op!r} needs at least one value, found ')'", self.peek().pos)
        values = [self.parse_value(op)]
        while self.at("punct", ","):
            self.advance()
            values.append(self.parse_value(op))
        closing = self.advance()
        if closing.kind != "punct" or closing.text != ")":
            reason = f"expected ',' or ')' in the {op!r} list, found {_show(closing)}"
            raise _ParseError(reason, closing.pos)
        return values

    def convert(self, rule: _Rule, op: str, tok: _Token) -> Scalar:
        if op in _LIKE_OPS and tok.kind != "string":
            raise _ParseError(f"{op!r} needs a quoted pattern, found {tok.text!r}", tok.pos)
        value = rule.convert(tok)
        if value is None:
            raise _ParseError(f"{rule.what}, not {tok.text}", tok.pos, malformed=False)
        return value


def parse_filter(text: str | None, grammar: Grammar = RUN_GRAMMAR) -> Expr | None:
    """Parse a search filter (of runs, or what `grammar` names); None or blank means none."""
    if text is None or not text.strip():
        return None
    try:
        parser = _Parser(text, grammar)
        expr = parser.parse_or()
        tail = parser.peek()
        if parser.at("punct", ")"):
            raise _ParseError("unexpected ')' without a matching '('", tail.pos)
        if tail.kind != "end":
            hint = "join conditions with 'and' or 'or'"
            raise _ParseError(
                f"unexpected {_show(tail)} after a complete condition", tail.pos, hint
            )
    except _ParseError as error:
        raise _invalid("filter", text, error) from None
    return expr


def parse_order_by(
    items: Sequence[str] | None, grammar: Grammar = RUN_GRAMMAR
) -> tuple[OrderKey, ...]:
    """Parse order-by items such as `metrics.auc desc` or `attributes.start_time` (ascending)."""
    if items is None:
        return ()
    return tuple(
        _parse_order_key(item, grammar) for item in ([items] if isinstance(items, str) else items)
    )


def _parse_order_key(text: str, grammar: Grammar) -> OrderKey:
    try:
        parser = _Parser(text, grammar)
        ident = parser.peek()
        if ident.kind == "end":
            raise _ParseError("empty item", ident.pos, "expected e.g. 'metrics.auc desc'")
        entity, key = parser.parse_identifier("an identifier")
        descending = parser.at("word", "desc")
        if parser.at("word", "asc", "desc"):
            parser.advance()
        elif parser.peek().kind != "end":
            reason = f"expected asc or desc after {ident.text!r}, found {_show(parser.peek())}"
            raise _ParseError(reason, parser.peek().pos)
        if parser.peek().kind != "end":
            tail = parser.peek()
            raise _ParseError(f"unexpected {_show(tail)}", tail.pos, "give one key per item")
    except _ParseError as error:
        raise _invalid("order_by item", text, error) from None
    return OrderKey(entity, key, descending)
