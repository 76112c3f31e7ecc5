"""Maps the modelyard error tree and request validation onto HTTP responses."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.errors import ModelyardError
from modelyard.tracking._wire import dump


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def wire_json(value: Any, tp: Any, status_code: int = 200) -> Response:
    """`value` in the wire form of type `tp` (the form the REST clients read back)."""
    return Response(dump(value, tp), status_code=status_code, media_type="application/json")


def error_response(kind: str, message: str, status_code: int) -> Response:
    return json_response({"error": {"type": kind, "message": message}}, status_code)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def _modelyard(_request: Request, exc: ModelyardError) -> Response:
        return error_response(type(exc).__name__, exc.message, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        # A bug: still answer in the API's error shape, and leave the traceback in the log.
        import logging

        logging.getLogger("modelyard.server").exception("unexpected error", exc_info=exc)
        return error_response("ModelyardError", f"internal error: {type(exc).__name__}", 500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "NotFound", 403: "PermissionDenied", 409: "Conflict"}.get(
            exc.status_code, "InvalidInput" if exc.status_code < 500 else "ModelyardError"
        )
        return error_response(kind, str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response("InvalidInput", "; ".join(problems), 422)
