"""The registry over HTTP: the same calls as `SqlRegistry`, sent to a `modelyard server`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelyard._http import ServerApi, seg
from modelyard.models import Manifest
from modelyard.registry._entities import (
    Lineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionComparison,
)
from modelyard.registry._sql import check_alias, resolve_uri
from modelyard.tracking import _validate as v
from modelyard.tracking._wire import load


class RestRegistry:
    """A `Registry` that talks to the REST API of a modelyard server."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._api = ServerApi(base_url, timeout_s=timeout_s)
        self.base_url = self._api.base_url

    # models ----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        protected_aliases: Sequence[str] = (),
    ) -> RegisteredModel:
        body = {
            "name": name,
            "description": description,
            "tags": v.string_map("tag", tags),
            "protected_aliases": _names(protected_aliases),
        }
        return load(self._api.call("POST", "/models", json=body).content, RegisteredModel)

    def get_model(self, name: str) -> RegisteredModel:
        return load(self._api.call("GET", _model(name)).content, RegisteredModel)

    def list_models(self) -> list[RegisteredModel]:
        return load(self._api.call("GET", "/models").content, list[RegisteredModel])

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        body = _patch(description, tags, delete_tags)
        return load(self._api.call("PATCH", _model(name), json=body).content, RegisteredModel)

    def set_protected_aliases(self, name: str, aliases: Sequence[str]) -> RegisteredModel:
        """Aliases only an approved version may take."""
        response = self._api.call(
            "PUT", f"{_model(name)}/protected-aliases", json={"aliases": _names(aliases)}
        )
        return load(response.content, RegisteredModel)

    # versions --------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        *,
        created_by: str,
        run_id: str | None = None,
        manifest_digest: str | None = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """The next version of `name` (the model is created on first use)."""
        body = {
            "created_by": created_by,
            "run_id": run_id,
            "manifest_digest": manifest_digest,
            "flavor": flavor,
            "description": description,
            "tags": v.string_map("tag", tags),
        }
        response = self._api.call("POST", f"{_model(name)}/versions", json=body)
        return load(response.content, ModelVersion)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return load(self._api.call("GET", _version(name, version)).content, ModelVersion)

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        body = _patch(description, tags, delete_tags)
        response = self._api.call("PATCH", _version(name, version), json=body)
        return load(response.content, ModelVersion)

    def list_versions(self, name: str) -> list[ModelVersion]:
        response = self._api.call("GET", f"{_model(name)}/versions")
        return load(response.content, list[ModelVersion])

    def resolve(self, uri: str) -> ModelVersion:
        """The version a `models:/name/3` or `models:/name@alias` URI names now."""
        return resolve_uri(self, uri)

    def set_version_status(self, name: str, version: int, status: str) -> ModelVersion:
        """Archive (or restore to ready) a version; one holding an alias cannot be archived."""
        response = self._api.call(
            "POST", f"{_version(name, version)}/status", json={"status": status}
        )
        return load(response.content, ModelVersion)

    def get_manifest(self, name: str, version: int) -> Manifest | None:
        """The manifest of a version, verified by the server (None for a version
        registered without one)."""
        if self.get_version(name, version).manifest_digest is None:
            return None
        response = self._api.call("GET", f"{_version(name, version)}/manifest")
        return Manifest.model_validate_json(response.content)

    # queries -----------------------------------------------------------------------------

    def lineage(self, name: str, version: int) -> Lineage:
        """The run a version came from, the run's code commit and the datasets it used."""
        response = self._api.call("GET", f"{_version(name, version)}/lineage")
        return load(response.content, Lineage)

    def versions_trained_on(self, dataset: str) -> list[ModelVersion]:
        """Versions whose run used `dataset` (a dataset name or digest) in any role."""
        dataset = v.check_name("dataset", dataset)
        response = self._api.call("GET", f"/datasets/{seg(dataset)}/versions")
        return load(response.content, list[ModelVersion])

    def search_versions(
        self,
        filter: str | None = None,
        *,
        name: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[ModelVersion]:
        """Versions matching `filter` (see `VERSION_GRAMMAR`), of every model or of `name`."""
        params: dict[str, Any] = {"max_results": max_results}
        if filter is not None:
            params["filter"] = filter
        if name is not None:
            params["name"] = name
        if order_by is not None:
            params["order_by"] = _names(order_by)
        response = self._api.call("GET", "/model-versions", params=params)
        return load(response.content, list[ModelVersion])

    def compare_versions(self, name: str, a: int, b: int) -> VersionComparison:
        """Versions `a` and `b` of `name` side by side."""
        response = self._api.call("GET", f"{_model(name)}/compare", params={"a": a, "b": b})
        return load(response.content, VersionComparison)

    def card(self, name: str, version: int) -> str:
        """A Markdown model card of a version, rendered by the server."""
        return self._api.call("GET", f"{_version(name, version)}/card").text

    # aliases ---------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> ModelVersion:
        """Point `alias` at `version`; recorded with who, when, from, to and why."""
        body = {"version": version, "actor": actor, "reason": reason}
        response = self._api.call("PUT", _alias(name, check_alias(alias)), json=body)
        return load(response.content, ModelVersion)

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str | None = None) -> None:
        params = {"actor": actor} if reason is None else {"actor": actor, "reason": reason}
        self._api.call("DELETE", _alias(name, alias), params=params)

    def rollback(
        self, name: str, alias: str, *, actor: str, reason: str | None = None
    ) -> ModelVersion:
        """Move `alias` back to the version that held it before."""
        body = {"actor": actor, "reason": reason}
        response = self._api.call("POST", f"{_alias(name, alias)}/rollback", json=body)
        return load(response.content, ModelVersion)

    def alias_at(self, name: str, alias: str, at: int) -> int | None:
        """Which version `alias` pointed at, at Unix-ms time `at` (None: it pointed nowhere)."""
        response = self._api.call("GET", f"{_alias(name, alias)}/at", params={"time": at})
        return load(response.content, dict[str, int | None])["version"]

    # approvals ---------------------------------------------------------------------------

    def review(
        self, name: str, version: int, *, approved: bool, approver: str, comment: str | None = None
    ) -> RegistryEvent:
        """Record an approval or rejection of a version; the latest decision counts."""
        body = {"approved": approved, "approver": approver, "comment": comment}
        response = self._api.call("POST", f"{_version(name, version)}/reviews", json=body)
        return load(response.content, RegistryEvent)

    def history(self, name: str) -> list[RegistryEvent]:
        """Alias moves and approval decisions, oldest first."""
        response = self._api.call("GET", f"{_model(name)}/history")
        return load(response.content, list[RegistryEvent])

    def close(self) -> None:
        self._api.close()


def _model(name: str) -> str:
    return f"/models/{seg(v.check_name('model', name))}"


def _version(name: str, version: int) -> str:
    return f"{_model(name)}/versions/{_number(version)}"


def _alias(name: str, alias: str) -> str:
    return f"{_model(name)}/aliases/{seg(v.check_name('alias', alias))}"


def _number(version: int) -> str:
    """A version number for a URL path (refused here, as locally, when not an integer)."""
    return str(v.check_int64("version", version))


def _names(items: Sequence[str]) -> Any:
    """A list of names for a JSON body (a lone string is sent as is, so the server refuses
    it rather than splitting it into letters)."""
    return items if isinstance(items, str) else list(items)


def _patch(
    description: str | None, tags: Mapping[str, Any] | None, delete_tags: Sequence[str]
) -> dict[str, Any]:
    return {
        "description": description,
        "tags": v.string_map("tag", tags),
        "delete_tags": _names(delete_tags),
    }
