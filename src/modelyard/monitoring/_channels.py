"""Where alert events go: the log, webhooks, and functions registered in this process.

A channel is stored with its rule as a small dict (`{"type": "webhook", "url": ...}`).
Sending never raises for a failing channel: it yields a failed `Attempt` with the status
and error, which `deliver` records, so one dead webhook cannot stop a monitor run and the
history says why an alert did not arrive.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import orjson

from modelyard.errors import InvalidInput
from modelyard.tracking._validate import check_name

if TYPE_CHECKING:
    from modelyard.monitoring._alerts import AlertEvent

LOGGER = logging.getLogger("modelyard.alerts")
Handler = Callable[["AlertEvent"], object]

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_WEBHOOK_DEFAULTS: dict[str, Any] = {"retries": 3, "backoff_s": 0.5, "timeout_s": 5.0}
_KEYS = {
    "log": {"type"},
    "webhook": {"type", "url", *_WEBHOOK_DEFAULTS},
    "callback": {"type", "name"},
}
_MAX_RETRIES = 10
_FORMS = (
    'use "log", an http(s) URL (a webhook), "callback:NAME", or a dict such as '
    '{"type": "webhook", "url": "https://...", "retries": 3, "backoff_s": 0.5, "timeout_s": 5}'
)
_HUGE = 1e300  # beyond this an int does not convert to float
_SHOWN_BODY = 200  # characters of a failed webhook's answer kept in the error


def channel_spec(item: object) -> dict[str, Any]:
    """The stored form of a channel given as "log", a URL, "callback:NAME" or a dict."""
    if isinstance(item, str):
        if item == "log":
            return {"type": "log"}
        if item.startswith("callback:"):
            return _from_dict({"type": "callback", "name": item.removeprefix("callback:")})
        if item.startswith(("http://", "https://")):
            return _from_dict({"type": "webhook", "url": item})
        raise InvalidInput(f"unknown alert channel {item!r}: {_FORMS}")
    if isinstance(item, Mapping):
        return _from_dict(item)
    raise InvalidInput(f"an alert channel is text or a dict, got {type(item).__name__}: {_FORMS}")


def _from_dict(spec: Mapping[Any, Any]) -> dict[str, Any]:
    kind = spec.get("type")
    if kind not in _KEYS:
        raise InvalidInput(f"unknown alert channel type {kind!r}: {_FORMS}")
    unknown = sorted(str(key) for key in spec if key not in _KEYS[kind])
    if unknown:
        raise InvalidInput(
            f"a {kind} channel does not take {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(_KEYS[kind]))}"
        )
    if kind == "webhook":
        return _webhook({**_WEBHOOK_DEFAULTS, **spec})
    if kind == "callback":
        return {"type": "callback", "name": check_name("callback", spec.get("name"))}
    return {"type": "log"}


def _webhook(spec: Mapping[str, Any]) -> dict[str, Any]:
    url = spec.get("url")
    if not isinstance(url, str) or not _is_http_url(url):
        raise InvalidInput(f"webhook url must be an http(s) URL with a host, got {url!r}")
    retries = spec["retries"]
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise InvalidInput(f"webhook retries must be an integer, got {retries!r}")
    if not 0 <= retries <= _MAX_RETRIES:
        raise InvalidInput(f"webhook retries must be from 0 to {_MAX_RETRIES}, got {retries}")
    return {
        "type": "webhook",
        "url": url,
        "retries": retries,
        "backoff_s": seconds("webhook backoff_s", spec["backoff_s"], allow_zero=True),
        "timeout_s": seconds("webhook timeout_s", spec["timeout_s"], allow_zero=False),
    }


def _is_http_url(url: str) -> bool:
    if any(c.isspace() for c in url) or "\x00" in url:
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:  # a malformed port or IPv6 address
        return False


def seconds(what: str, value: object, *, allow_zero: bool) -> float:
    """A finite number of seconds, more than 0 (or 0 or more with `allow_zero`)."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if abs(value) < _HUGE else math.inf
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "more than 0"
        raise InvalidInput(f"{what} must be a finite number of seconds, {bound}: {value!r}")
    return number


class _Registry:
    """Functions registered under a name in this process; safe from any thread."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def add(self, name: str, handler: Handler) -> None:
        check_name(self.kind, name)
        if not callable(handler):
            raise InvalidInput(f"{self.kind} {name!r} must be a function of the alert event")
        with self._lock:
            self._handlers[name] = handler

    def remove(self, name: str) -> None:
        with self._lock:
            self._handlers.pop(name, None)

    def get(self, name: str) -> Handler | None:
        with self._lock:
            return self._handlers.get(name)


_CALLBACKS = _Registry("callback")
_ACTIONS = _Registry("action")


def register_callback(name: str, fn: Handler) -> None:
    """Call `fn(event)` for every event of rules with the channel "callback:NAME"."""
    _CALLBACKS.add(name, fn)


def unregister_callback(name: str) -> None:
    """Forget the callback `name` (nothing happens if none is registered)."""
    _CALLBACKS.remove(name)


def register_action(name: str, fn: Handler) -> None:
    """Call `fn(event)` when a rule with `action=name` fires (retraining, a rollback, ...)."""
    _ACTIONS.add(name, fn)


def unregister_action(name: str) -> None:
    """Forget the action `name` (nothing happens if none is registered)."""
    _ACTIONS.remove(name)


class Attempt(NamedTuple):
    """One try at sending an event over one channel, as `alert_deliveries` records it."""

    channel: str  # log, webhook, callback, action
    target: str
    number: int
    ok: bool
    status_code: int | None = None
    error: str | None = None


def send(
    channel: Mapping[str, Any],
    event: AlertEvent,
    client: httpx.Client,
    sleep: Callable[[float], object],
) -> Iterator[Attempt]:
    """The attempts at sending `event` over `channel`, each yielded before the next begins."""
    kind = channel["type"]
    if kind == "log":
        level = _LEVELS.get(event.severity, logging.WARNING)
        LOGGER.log(level, "alert %s %s: %s", event.rule, event.state, event.message)
        yield Attempt("log", LOGGER.name, 1, ok=True)
    elif kind == "callback":
        yield _call(_CALLBACKS, channel["name"], event)
    else:
        yield from _post(channel, event, client, sleep)


def run_action(name: str, event: AlertEvent) -> Attempt:
    """Call the action registered as `name` with the event."""
    return _call(_ACTIONS, name, event)


def _post(
    channel: Mapping[str, Any],
    event: AlertEvent,
    client: httpx.Client,
    sleep: Callable[[float], object],
) -> Iterator[Attempt]:
    payload = orjson.dumps(event.to_dict())
    for number in range(1, channel["retries"] + 2):
        attempt = _post_once(client, channel, payload, number)
        yield attempt
        if attempt.ok or number > channel["retries"]:
            return
        sleep(channel["backoff_s"] * 2 ** (number - 1))


def _post_once(
    client: httpx.Client, channel: Mapping[str, Any], payload: bytes, number: int
) -> Attempt:
    url = channel["url"]
    headers = {"content-type": "application/json"}
    try:
        response = client.post(url, content=payload, headers=headers, timeout=channel["timeout_s"])
    except Exception as exc:  # any failure to reach the receiver is a failed attempt
        return Attempt("webhook", url, number, ok=False, error=f"{type(exc).__name__}: {exc}")
    code = response.status_code
    if response.is_success:
        return Attempt("webhook", url, number, ok=True, status_code=code)
    error = f"HTTP {code}: {response.text[:_SHOWN_BODY]}"
    return Attempt("webhook", url, number, ok=False, status_code=code, error=error)


def _call(registry: _Registry, name: str, event: AlertEvent) -> Attempt:
    handler = registry.get(name)
    if handler is None:
        error = f"no {registry.kind} named {name!r} is registered in this process"
        return Attempt(registry.kind, name, 1, ok=False, error=error)
    try:
        handler(event)
    except Exception as exc:  # a broken handler is a failed delivery, not a failed run
        return Attempt(registry.kind, name, 1, ok=False, error=f"{type(exc).__name__}: {exc}")
    return Attempt(registry.kind, name, 1, ok=True)
