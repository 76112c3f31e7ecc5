"""A Dask client for the work that can spread over a cluster (batch scoring, training
frames): of a scheduler at an address, or of a new cluster on this machine ("local")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelyard.errors import MissingDependency, StoreUnavailable


@contextmanager
def dask_client(address: str, what: str = "this") -> Iterator[Any]:
    """A client of the scheduler at `address`, or of a new cluster on this machine ("local");
    `what` names the work in the error when `distributed` is missing."""
    try:
        import distributed
    except ImportError:
        raise MissingDependency(
            f"{what} on Dask needs the distributed package: pip install 'modelyard[dask]'"
        ) from None
    dask: Any = distributed
    cluster = None
    if address == "local":
        cluster = dask.LocalCluster(
            n_workers=min(4, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
    try:
        client = dask.Client(cluster if cluster is not None else address, timeout="10s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise StoreUnavailable(
            f"cannot reach the Dask scheduler at {address!r} ({exc}); check the address, or "
            "pass dask='local' for a cluster on this machine"
        ) from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
