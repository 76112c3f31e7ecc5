"""The deployments a model server serves: every variant loaded, and one routing table each.

A deployment is served from an immutable `Routes`: the deployment as the store had it at
one revision and every variant loaded (and warmed, when the deployment has seen a request).
A background task polls the store's revisions every `refresh_s`; a changed deployment gets
a new table, built off the event loop — new versions loaded and warmed first — and swapped
in with one assignment. A request uses the table it started with, so no request is answered
by a half-loaded version, and a split changed from the CLI reaches every worker within one
refresh. A deleted deployment stops being served (404), and comes back if created again.
The way of one request through a deployment is in `_routed`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from fastapi.concurrency import run_in_threadpool

from modelyard.errors import NotFound
from modelyard.serving import _routed
from modelyard.serving._batcher import Batcher
from modelyard.serving._features import reads_alike
from modelyard.serving._mirror import Mirror
from modelyard.serving._served import Loaded
from modelyard.serving._server import label

if TYPE_CHECKING:
    from fastapi import Request, Response

    from modelyard.models import LoadedModel, Signature
    from modelyard.rollout._spec import Deployment, Revision
    from modelyard.serving._inputs import Batch
    from modelyard.serving._server import ModelServer
    from modelyard.serving._server import Protocol as WireProtocol

_log = logging.getLogger("modelyard.serving")


class DeploymentSource(Protocol):
    """What a server reads of the deployments in the store (`rollout.Deployments`)."""

    def get(self, name: str) -> Deployment: ...

    def revisions(self) -> dict[str, Revision]: ...


@dataclass(frozen=True)
class Routes:
    """One deployment as served at one revision: swapped whole, never changed."""

    deployment: Deployment
    loaded: Mapping[str, Loaded]  # every variant, by name
    # variants that read a request as the primary does (its signature, its features): they
    # take the primary's input rather than decoding the request again
    same_input: frozenset[str]

    @property
    def primary(self) -> str:
        return self.deployment.primary.name


class ServedDeployments:
    """The deployments of one `ModelServer`: their routing tables, batchers and refresh.

    `wanted` are the names `serve` was given; `served` those the store holds now.
    """

    def __init__(
        self,
        server: ModelServer,
        source: DeploymentSource,
        load: Callable[[str], LoadedModel],
        names: Sequence[str],
    ) -> None:
        self.server = server
        self.source = source
        self._load = load
        self.wanted = list(names)
        self.rng = random.Random()  # seeded from the OS: unkeyed requests, shadow fractions
        self._versions: dict[tuple[str, int], Loaded] = {}
        self._batchers: dict[tuple[str, str], Batcher[Loaded]] = {}
        # per deployment, a real input and the signature it was read with: warms new versions up
        self._last_input: dict[str, tuple[Signature | None, Batch]] = {}
        self._refreshing = asyncio.Lock()
        self._mirrors: dict[tuple[str, str], Mirror] = {}
        self.served: dict[str, Routes] = {name: self.routes(source.get(name)) for name in names}

    # -- the routing tables -----------------------------------------------------------------

    def routes(self, deployment: Deployment) -> Routes:
        """The table of `deployment`: its versions loaded (once per process) and warmed."""
        loaded = {
            v.name: self._version(deployment.name, deployment.model, v.version)
            for v in deployment.variants
        }
        primary = loaded[deployment.primary.name].model
        same = frozenset(
            name
            for name, x in loaded.items()
            if x.model.signature == primary.signature
            and reads_alike(x.model.manifest.features, primary.manifest.features)
        )
        return Routes(deployment, loaded, same)

    def _version(self, deployment: str, model: str, version: int) -> Loaded:
        found = self._versions.get((model, version))
        if found is None:
            found = Loaded(self._load(f"models:/{model}/{version}"))
            signature, last = self._last_input.get(deployment, (None, None))
            if last is not None and found.model.signature == signature:
                try:
                    found.warm_up(last)
                except Exception:  # it takes traffic anyway: a candidate's failures fall back
                    _log.warning("%s version %s failed its warm-up", model, version, exc_info=True)
            self._versions[(model, version)] = found
        return found

    def remember(self, name: str, read_by: Loaded, batch: Batch) -> None:
        """A real input of `name`, to warm up the versions loaded later."""
        self._last_input[name] = (read_by.model.signature, batch)

    def batcher(self, name: str, variant: str) -> Batcher[Loaded]:
        """The micro-batcher of one variant: a slow candidate never holds up the primary's
        batches (only a version timed fast runs on the event loop; see `Batcher`)."""
        batcher = self._batchers.get((name, variant))
        if batcher is None:
            batcher = self.server.new_batcher(f"modelyard-{name}-{variant}")
            self._batchers[(name, variant)] = batcher
        return batcher

    def mirror(self, name: str, variant: str) -> Mirror:
        """The thread that scores one variant's mirrored requests: a slow shadow only ever
        holds up itself."""
        mirror = self._mirrors.get((name, variant))
        if mirror is None:
            timeout_s = self.server.options.candidate_timeout_ms / 1000
            mirror = Mirror(self.server, f"{name}-{variant}", timeout_s)
            self._mirrors[(name, variant)] = mirror
        return mirror

    @property
    def mirroring(self) -> int:
        """Mirrored requests queued or being scored, over every mirror."""
        return sum(mirror.pending for mirror in self._mirrors.values())

    def describe(self, name: str) -> dict[str, Any]:
        """The deployment as this server serves it now."""
        routes = self.find(name)
        return {
            **routes.deployment.to_dict(),
            "versions": {v: label(x.version) for v, x in routes.loaded.items()},
        }

    def find(self, name: str) -> Routes:
        routes = self.served.get(name)
        if routes is None:
            served = ", ".join(self.served) or "none"
            raise NotFound(
                f"no deployment named {name!r} is served here; deployments served: {served}"
            )
        return routes

    # -- following the store ----------------------------------------------------------------

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.server.options.refresh_s)
            try:
                await self.refresh()
            except Exception:  # the store may be briefly unreachable: serve on, retry
                _log.exception("could not look up the deployments")

    async def refresh(self) -> list[str]:
        """Apply what changed in the store since the last look; the names that changed."""
        async with self._refreshing:
            revisions = await run_in_threadpool(self.source.revisions)
            changed = [name for name in self.wanted if await self._follow(name, revisions)]
            if changed:
                self._forget_unused()
            return changed

    async def _follow(self, name: str, revisions: Mapping[str, Revision]) -> bool:
        current = self.served.get(name)
        revision = revisions.get(name)
        if current is not None and current.deployment.stamp == revision:
            return False
        if revision is None:
            return self._unserve(name)
        try:
            deployment = await run_in_threadpool(self.source.get, name)
            routes = await run_in_threadpool(self.routes, deployment)
        except NotFound:  # deleted since the revisions were read
            return self._unserve(name)
        except Exception:  # a version that fails to load: keep serving the table we have
            _log.exception("could not apply the changes of deployment %s", name)
            return False
        self.served[name] = routes  # one assignment: a request sees the old or the new table
        d = routes.deployment
        _log.info("deployment %s at revision %d: %s, split %s", name, d.revision, d.status, d.split)
        self.server.metrics.deployment_updates.labels(name).inc()
        return True

    def _unserve(self, name: str) -> bool:
        if self.served.pop(name, None) is None:
            return False
        _log.info("deployment %s was deleted: no longer served", name)
        self.server.metrics.deployment_updates.labels(name).inc()
        return True

    def _forget_unused(self) -> None:
        used = {
            (r.deployment.model, v.version)
            for r in self.served.values()
            for v in r.deployment.variants
        }
        for key in set(self._versions) - used:
            del self._versions[key]

    # -- the request path and shutdown ---------------------------------------------------------

    async def predict(
        self, request: Request, name: str, protocol: WireProtocol, version: str | None
    ) -> Response:
        return await _routed.predict(self, request, name, protocol, version)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Let mirrored requests in flight finish (for at most `timeout_s`), then stop the
        batchers."""
        deadline = time.monotonic() + timeout_s
        for mirror in self._mirrors.values():
            left = max(0.0, deadline - time.monotonic())
            await run_in_threadpool(mirror.close, left)
        for batcher in self._batchers.values():
            await batcher.close()
