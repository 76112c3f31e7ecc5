"""Presentation for the CLI: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelyard.tracking._wire import dump

console = Console()
errors = Console(stderr=True)


def print_json(data: Any, tp: Any = Any) -> None:
    """`data` (of type `tp`) as JSON on stdout; NaN and infinities as strings."""
    print(dump(data, tp, indent=2).decode())


# Identifiers are never folded, so they can be copied or grepped from piped output.
_NO_WRAP = frozenset({"run id", "id", "key", "name", "path", "sha256", "run"})


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Cells are shown verbatim (never read as markup); `Text` cells keep their style."""
    table = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in _NO_WRAP)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(fmt(cell)) for cell in row))
    console.print(table)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"
