"""The `modelyard` command."""

from __future__ import annotations

import sys

from modelyard.errors import ModelyardError


def main() -> None:
    """Entry point: modelyard errors are printed on one line and exit non-zero."""
    from pydantic import ValidationError

    from modelyard.cli._app import app

    try:
        app()
    except ModelyardError as exc:
        _fail(exc.message, 1)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}", 2)


def _fail(message: str, code: int) -> None:
    from rich.markup import escape

    from modelyard.cli._output import errors

    first_line = message.splitlines()[0] if message else "unknown error"
    errors.print(f"[red]error:[/red] {escape(first_line)}", soft_wrap=True, highlight=False)
    sys.exit(code)


__all__ = ["main"]
