"""The client side of the REST API, shared by remote tracking and the remote registry:
one httpx client on a server's `/api/v1`, and the server's errors raised again here."""

from __future__ import annotations

from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from modelyard.errors import ModelyardError, StoreUnavailable, error_from_name

_JSON = {"Content-Type": "application/json"}


class ServerApi:
    """Requests to the REST API of the modelyard server at `base_url`."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=f"{self.base_url}/api/v1", timeout=timeout_s)

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request; an error answer is raised as the modelyard error the server
        raised, and an unreachable server as `StoreUnavailable`."""
        if "content" in kwargs and "headers" not in kwargs:
            kwargs["headers"] = _JSON
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(
                f"cannot reach the modelyard server at {self.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise_for(response)
        return response

    def close(self) -> None:
        self.http.close()


def raise_for(response: httpx.Response) -> NoReturn:
    """Raise the error an error answer of the server carries."""
    try:
        error = response.json()["error"]
        raise error_from_name(str(error["type"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        raise ModelyardError(
            f"server answered {response.status_code}: {response.text[:500]}"
        ) from None


def seg(value: str) -> str:
    """`value` quoted as one URL path segment (a `/` in it included)."""
    return quote(value, safe="")
