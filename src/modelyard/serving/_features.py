"""Serving from entity keys: a version logged with a feature service reads its features online.

A request carries `"entities"` (`{"driver_id": 42}`, `{"driver_id": [1, 2]}` or a list of
such objects) instead of inputs — at the top level of a /v1 or /invocations body, or in
OIP v2 `parameters`. The server reads the service's features for those keys from the online
store (the TTL honoured), and the model gets them as its input. The prediction log keeps
the entity keys with the values actually served, so the skew check can rebuild the same
rows offline and compare them value for value. Through a deployment, every variant reads the
request with its own binding (`_routed`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.features._store import FeatureStore
    from modelyard.models._manifest import FeatureBinding
    from modelyard.serving._server import Payload

# what a binding reads; its `service` name and `views` versions are lineage
_READ = {"refs", "join_keys", "full_feature_names"}


def entities_of(payload: Payload) -> Any:
    """The entity rows a request carries, or None when it carries inputs."""
    body = payload.parsed
    if not isinstance(body, dict):
        return None
    if "entities" in body:
        return body["entities"]
    parameters = body.get("parameters")
    if isinstance(parameters, dict) and "entities" in parameters:
        return parameters["entities"]
    return None


def reads_alike(a: FeatureBinding | None, b: FeatureBinding | None) -> bool:
    """Whether two versions read the same features for the same entity keys (the view
    versions they were logged with are lineage, not what is read)."""
    if a is None or b is None:
        return a is b
    return a.model_dump(include=_READ) == b.model_dump(include=_READ)


class FeatureLookup:
    """Reads the features of a binding for entity rows from a feature store.

    The store is opened at the first read (or by `open`): a server whose versions read no
    features never opens the online store, and one that a deployment change or an alias move
    brings in later finds it all the same.
    """

    def __init__(self, open_store: Callable[[], FeatureStore]) -> None:
        self._open_store = open_store
        self._store: FeatureStore | None = None
        self._lock = threading.Lock()

    def open(self) -> FeatureStore:
        """The feature store, opened now if it is not yet."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open_store()
                store = self._store
        return store

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def read(self, binding: FeatureBinding, entities: Any) -> pd.DataFrame:
        """One row per entity row: its keys, then the features in the binding's order.

        An entity with no online value (missing, or expired past the view's TTL) is refused:
        the model would otherwise predict on nulls it never saw in training.
        """
        import pandas as pd

        if not isinstance(entities, Mapping | Sequence) or isinstance(entities, str):
            raise InvalidInput('"entities" must be an object of key values or a list of them')
        found = self.open().get_online(
            entities, binding.refs, full_feature_names=binding.full_feature_names
        )
        for row, status in zip(found.rows, found.status, strict=True):
            if unusable := {view: state for view, state in status.items() if state != "ok"}:
                keys = {k: row.get(k) for k in binding.join_keys}
                raise InvalidInput(f"no online features for {keys}: {_states(unusable)}")
        return pd.DataFrame(found.rows, columns=[*_keys(found.rows, binding), *binding.columns])


def _keys(rows: Sequence[Mapping[str, Any]], binding: FeatureBinding) -> list[str]:
    given = list(rows[0]) if rows else []
    return [k for k in given if k not in binding.columns]


def _states(states: Mapping[str, str]) -> str:
    return ", ".join(f"{view} is {state}" for view, state in states.items())
