"""The one exception tree of modelyard.

Every error a user can cause or meet derives from `ModelyardError`. The REST layer maps
each class to an HTTP status (`status_code`) and the CLI prints the message on one line
and exits non-zero, so messages say what went wrong and what to do about it.
"""

from __future__ import annotations


class ModelyardError(Exception):
    """Base class of every modelyard error."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ModelyardError):
    """The named thing does not exist (or is deleted and not asked for)."""

    status_code = 404


class AlreadyExists(ModelyardError):
    """Creating something whose name or key is taken."""

    status_code = 409


class InvalidInput(ModelyardError):
    """An argument, filter, payload or file is malformed."""

    status_code = 400


class PayloadTooLarge(InvalidInput):
    """A request body is larger than the server accepts."""

    status_code = 413


class UnsupportedMediaType(InvalidInput):
    """A request body comes in a format the endpoint does not read."""

    status_code = 415


class PredictionFailed(InvalidInput):
    """The model raised on an input that passed its signature; the input is at fault."""

    status_code = 422


class PermissionDenied(ModelyardError):
    """The caller may not do this."""

    status_code = 403


class Conflict(ModelyardError):
    """The request contradicts stored state (an immutable value, a finished run, …)."""

    status_code = 409


class NoActiveRun(ModelyardError):
    """A run-scoped call was made with no run active in this thread or task."""

    status_code = 409


class IntegrityError(ModelyardError):
    """Stored bytes do not match their recorded hash."""

    status_code = 500


class SchemaTooNew(ModelyardError):
    """The metadata database was written by a newer modelyard."""

    status_code = 500


class StoreUnavailable(ModelyardError):
    """A database, object store or tracking server cannot be reached."""

    status_code = 503


class MissingDependency(ModelyardError):
    """A library the operation needs (a model's flavor, an extra) is not installed."""

    status_code = 500


_BY_NAME: dict[str, type[ModelyardError]] = {
    cls.__name__: cls
    for cls in (
        ModelyardError,
        NotFound,
        AlreadyExists,
        InvalidInput,
        PayloadTooLarge,
        UnsupportedMediaType,
        PredictionFailed,
        PermissionDenied,
        Conflict,
        NoActiveRun,
        IntegrityError,
        SchemaTooNew,
        StoreUnavailable,
        MissingDependency,
    )
}


def error_from_name(name: str, message: str) -> ModelyardError:
    """Rebuild an error sent over the wire by its class name (unknown names give the base)."""
    return _BY_NAME.get(name, ModelyardError)(message)


__all__ = [
    "AlreadyExists",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "ModelyardError",
    "NoActiveRun",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "PredictionFailed",
    "SchemaTooNew",
    "StoreUnavailable",
    "UnsupportedMediaType",
    "error_from_name",
]
