"""One request through a deployment: route it, answer it, mirror it.

The body is read once and decoded as the primary reads it (from entity keys: its features
read online): the primary is the contract, so a bad request gets the same 4xx whichever
variant it would have gone to. A variant that reads requests otherwise (another signature,
another feature service, or none) decodes the body again for itself, with the same function
as a model served by name. The router picks the variant (sticky by the policy's field or
header, an entity key included). A candidate that raises, refuses the input (or cannot read
its features) or takes longer than `candidate_timeout_ms` is answered for by the primary;
its failure is logged as a row of its own (`outputs: {"error": ...}`, `parent_id`: the id
the client got) and counted, so a rollout never fails a client. After the answer is built,
shadows and challengers get the same request on a thread of each variant's (`_mirror`; at
most `mirror_capacity` waiting at once, beyond that they are dropped and counted), logged
with the client's ids as `parent_id`. Every variant's rows keep the input it read: from
entity keys, the keys and the features it was served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import Response

from modelyard.errors import ModelyardError, NotFound
from modelyard.rollout._router import assign, mirrors, request_key
from modelyard.serving._ids import new_ids
from modelyard.serving._mirror import Mirrored, failure_of, outcome_of, record_failure
from modelyard.serving._server import (
    Decoded,
    Payload,
    decode_request,
    encode_answer,
    error_response,
    label,
    logged_batch,
    model_error,
    pick,
    read_payload,
)

if TYPE_CHECKING:
    from fastapi import Request

    from modelyard.serving._deployed import Routes, ServedDeployments
    from modelyard.serving._inputs import Batch, Reader
    from modelyard.serving._served import Loaded
    from modelyard.serving._server import Protocol

_log = logging.getLogger("modelyard.serving")


async def predict(
    deployments: ServedDeployments,
    request: Request,
    name: str,
    protocol: Protocol,
    version: str | None,
) -> Response:
    """Answer one prediction request for the deployment `name`."""
    started = time.perf_counter()
    server = deployments.server
    answered: Loaded | None = None
    try:
        routes = deployments.find(name)
        if version is not None:
            raise NotFound(
                f"deployment {name!r} chooses the version per request; ask /v2/models/{name}/infer"
            )
        primary = routes.loaded[routes.primary]
        deployment = routes.deployment
        sticky: str | None = deployment.policy.get("sticky")
        in_body = sticky if sticky is not None and sticky.startswith("field:") else None
        # Routed before the body is read unless the key is in the body: then the batcher
        # of the variant that will answer knows a request is coming and may wait for it.
        variant = ""
        if in_body is None:
            variant = assign(deployment, request_key(sticky, {}, request.headers), deployments.rng)
        batcher = deployments.batcher(name, variant or routes.primary)
        batcher.arriving += 1
        try:
            payload = await read_payload(request, protocol, server.options.max_body_bytes)
            decoded = await decode_request(payload, primary, server.features)
        finally:
            batcher.arriving -= 1
        batch = decoded.batch
        deployments.remember(name, primary, batch)
        if in_body is not None:
            fields = _fields(in_body, payload, decoded.logged, primary.reader)
            key = request_key(in_body, fields, request.headers)
            variant = assign(deployment, key, deployments.rng)
        ids = new_ids(batch.rows)
        found = None
        if variant != routes.primary:
            found = await _candidate(deployments, routes, variant, payload, decoded, ids)
        if found is None:
            variant, answered, read = routes.primary, primary, decoded.logged
            outputs = await _primary(deployments, routes, batch, decoded.wanted)
        else:
            outputs, read = found
            answered = routes.loaded[variant]
        request_id = decoded.request_id
        body = encode_answer(protocol, name, answered.version, request_id, outputs, ids, variant)
        elapsed = time.perf_counter() - started
        server.record(
            logged_batch(answered, read, outputs, ids, elapsed, deployment=name, variant=variant)
        )
        server.count(name, answered, protocol, 200, elapsed, batch.rows)
        server.metrics.variant_requests.labels(name, variant, label(answered.version)).inc()
        _mirror(deployments, routes, payload, decoded, ids)
        return Response(
            body,
            media_type="application/json",
            headers={
                "x-model-name": name,
                "x-model-version": label(answered.version),
                "x-model-variant": variant,
            },
        )
    except ModelyardError as exc:
        known = name in deployments.served
        version_label = label(answered.version) if answered is not None else ""
        server.metrics.requests.labels(
            name if known else "", version_label, protocol, str(exc.status_code)
        ).inc()
        return error_response(protocol, exc.message, exc.status_code)


async def _primary(
    deployments: ServedDeployments, routes: Routes, batch: Batch, wanted: list[str] | None
) -> dict[str, Any]:
    """The primary's answer; its failures are the client's to see, as for a model."""
    primary = routes.loaded[routes.primary]
    batcher = deployments.batcher(routes.deployment.name, routes.primary)
    try:
        outputs: dict[str, Any] = await batcher.submit(primary, batch, batch.rows)
    except Exception as exc:
        raise model_error(routes.deployment.name, primary, exc) from None
    return outputs if wanted is None else pick(outputs, wanted, primary)


async def _candidate(
    deployments: ServedDeployments,
    routes: Routes,
    variant: str,
    payload: Payload,
    primary: Decoded,
    ids: Sequence[str],
) -> tuple[dict[str, Any], Batch] | None:
    """The candidate's answer and what the log keeps of its input; None (logged and counted)
    if it failed."""
    started = time.perf_counter()
    name = routes.deployment.name
    loaded = routes.loaded[variant]
    own: Decoded | None = primary if variant in routes.same_input else None
    try:
        if own is None:
            own = await decode_request(payload, loaded, deployments.server.features)
        outputs = await _within(deployments, name, variant, loaded, own.batch)
        wanted = primary.wanted
        return (outputs if wanted is None else pick(outputs, wanted, loaded)), own.logged
    except Exception as exc:
        failure = failure_of(exc)
        deployments.server.metrics.fallbacks.labels(name, variant, outcome_of(failure)).inc()
        _log.debug("%s: candidate %s failed (%s); the primary answers", name, variant, failure)
        record_failure(deployments.server, routes, variant, own, primary, failure, ids, started)
        return None


async def _within(
    deployments: ServedDeployments, name: str, variant: str, loaded: Loaded, batch: Batch
) -> dict[str, Any]:
    """`variant`'s outputs on `batch`, or TimeoutError after `candidate_timeout_ms`."""
    timeout = deployments.server.options.candidate_timeout_ms / 1000
    outputs: dict[str, Any] = await deployments.batcher(name, variant).submit(
        loaded, batch, batch.rows, timeout_s=timeout
    )
    return outputs


# -- mirroring ------------------------------------------------------------------------------


def _mirror(
    deployments: ServedDeployments,
    routes: Routes,
    payload: Payload,
    primary: Decoded,
    parents: Sequence[str],
) -> None:
    """Queue the mirrored requests of this one; never waits, drops what does not fit."""
    targets = mirrors(routes.deployment, deployments.rng)
    if not targets:
        return
    name = routes.deployment.name
    capacity = deployments.server.options.mirror_capacity
    started = time.perf_counter()
    for variant in targets:
        if deployments.mirroring >= capacity:
            deployments.server.metrics.mirror_dropped.labels(name, variant).inc()
            continue
        own = primary if variant in routes.same_input else None
        job = Mirrored(routes, variant, payload, primary, own, parents, started)
        deployments.mirror(name, variant).submit(job)


# -- the sticky key -------------------------------------------------------------------------


def _fields(sticky: str, payload: Payload, batch: Batch, reader: Reader) -> dict[str, Any]:
    """The request field a `field:NAME` policy sticks by: a top-level field of the JSON body
    (or of OIP `parameters`), else the column NAME of the first row of `batch`, the input as
    logged (from entity keys: the keys, then the features)."""
    field = sticky.removeprefix("field:")
    body = payload.parsed
    if isinstance(body, dict):
        if field in body:
            return {field: body[field]}
        parameters = body.get("parameters")
        if isinstance(parameters, dict) and field in parameters:
            return {field: parameters[field]}
    return {field: _first(batch, reader, field)}


def _first(batch: Batch, reader: Reader, column: str) -> Any:
    data = batch.data
    if batch.rows == 0 or not reader.is_table:
        return None
    if isinstance(data, np.ndarray):  # the fast path: columns in the signature's order
        return data[0, reader.names.index(column)] if column in reader.names else None
    columns = getattr(data, "columns", None)
    if columns is not None and column in columns:
        return data[column].iloc[0]
    return None
