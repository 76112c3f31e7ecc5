"""Prediction ids: 32 hex digits, time-ordered, so logs sort and prune by id."""

from __future__ import annotations

import os
import random
import re
import time

ID_LENGTH = 32
_ID = re.compile(f"[0-9a-f]{{{ID_LENGTH}}}")

# The random part only needs to be unique, not secret, and `random` costs far less per call
# than the OS's source, once per request on the serving hot path. Seeded from the OS, and
# again in every forked child so that two workers never share a sequence.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)


def new_ids(count: int, at_ms: int | None = None) -> list[str]:
    """`count` fresh ids: 12 hex digits of the time in ms, then 80 random bits."""
    stamp = f"{(time.time_ns() // 1_000_000 if at_ms is None else at_ms):012x}"
    bits = _random.getrandbits
    return [f"{stamp}{bits(80):020x}" for _ in range(count)]


def is_id(value: object) -> bool:
    """Whether `value` has the form of a prediction id."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
