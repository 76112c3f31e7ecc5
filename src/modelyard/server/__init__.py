"""The HTTP interface: the REST API (and, later, the web UI)."""

from modelyard.server._app import check_bind_address, create_app, serve

__all__ = ["check_bind_address", "create_app", "serve"]
