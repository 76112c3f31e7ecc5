"""Which variant of a deployment answers a request: pure functions over a `Deployment`.

Sticky requests are placed by a hash of their key: `u`, the first 8 bytes of SHA-256 of
`"{deployment}\\0{key}"` read as a fraction of 2**64, falls in one variant's range of
[0, 1). The ranges are laid end to end in a fixed order: the candidates first, in the
order the deployment lists them, then the primary last. So with one candidate it holds
`[0, share)`, and raising its share only adds keys to it (those the primary held just
above the old share); no key it had ever goes back. The same holds for one arm of several
whose share grows at the primary's expense. A key hashes the same in every process and
after every restart. Requests without a key are placed the same way by a random `u`.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

import orjson

from modelyard.errors import InvalidInput
from modelyard.rollout._spec import MIRRORED_ROLES, Deployment

_SCALE = float(2**64)
_FINISHED = ("promoted", "rolled_back")


def key_fraction(deployment: str, key: str) -> float:
    """The stable place in [0, 1) of `key` within `deployment`."""
    digest = hashlib.sha256(f"{deployment}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def ranges(deployment: Deployment) -> list[tuple[str, float]]:
    """The live variants in routing order, each with the upper end of its range of [0, 1).

    A finished deployment (promoted, rolled back) sends everything to the variant holding
    the largest share of its split (the whole of it, as the store leaves it).
    """
    split = deployment.split
    if deployment.status in _FINISHED:
        return [(max(split, key=lambda name: split[name]), 1.0)]
    primary = deployment.primary.name
    order = [
        v.name
        for v in deployment.variants
        if v.name != primary and v.role not in MIRRORED_ROLES and split.get(v.name, 0.0) > 0
    ]
    if split.get(primary, 0.0) > 0 or not order:
        order.append(primary)
    bounds, total = [], 0.0
    for name in order:
        total += split.get(name, 0.0)
        bounds.append((name, total))
    return bounds


def place(bounds: list[tuple[str, float]], u: float) -> str:
    """The variant whose range holds `u` (the last one takes rounding above the top)."""
    for name, upper in bounds:
        if u < upper:
            return name
    return bounds[-1][0]


def assign(deployment: Deployment, key: str | None, rng: random.Random) -> str:
    """The variant that answers a request with `key` (None: at random, with `rng`).

    Paused deployments keep their split; finished ones send everything to one variant.
    """
    u = key_fraction(deployment.name, key) if key is not None else rng.random()
    return place(ranges(deployment), u)


def mirrors(deployment: Deployment, rng: random.Random) -> list[str]:
    """The mirrored variants that also get this request: every challenger, and a shadow for
    the policy's `fraction` of requests; none once the deployment is finished."""
    if deployment.status in _FINISHED:
        return []
    fraction = float(deployment.policy.get("fraction", 1.0))
    return [
        v.name
        for v in deployment.variants
        if v.role in MIRRORED_ROLES and (v.role != "shadow" or rng.random() < fraction)
    ]


def request_key(
    sticky: str | None, fields: Mapping[str, Any], headers: Mapping[str, str]
) -> str | None:
    """The key a request sticks by, per the policy's `sticky` ("field:NAME", "header:NAME"
    or None); None when the request does not carry it (it is then placed at random)."""
    if sticky is None:
        return None
    kind, _, name = sticky.partition(":")
    if kind == "field":
        return key_text(fields.get(name))
    if kind == "header":
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
        return key_text(value)
    raise InvalidInput(f"sticky must be 'field:NAME' or 'header:NAME', got {sticky!r}")


def key_text(value: Any) -> str | None:
    """One text per value, whichever way it was read: 42, 42.0 and "42"-as-int agree, so a
    key hashes the same on the fast (float) and the general (typed) input path."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # NumPy scalars
        value = value.item()
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
