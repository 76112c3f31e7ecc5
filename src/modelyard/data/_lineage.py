"""Lineage graphs: where a model version came from and where it serves, or where a dataset
version came from and what it trained.

A model version links to its run; the run to the datasets it logged (by digest) and to the
dataset versions with those digests; a dataset version, through its `lineage` JSON, to the
feature views, features and label or parent datasets it was derived from. Forward, a model
version links to the deployments whose variants serve it. Edges point away from the root
and are named for the relation as seen from the root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, select

from modelyard.data._versions import DatasetVersion, DatasetVersions, parse_ref
from modelyard.errors import InvalidInput, NotFound
from modelyard.store import MetadataStore
from modelyard.store._tables import (
    DeploymentRow,
    ModelVersionRow,
    RegisteredModelRow,
    RunDatasetRow,
    RunRow,
    table_of,
)

NodeKind = Literal[
    "model_version",
    "run",
    "dataset",
    "dataset_version",
    "feature_view",
    "feature",
    "feature_service",
    "deployment",
]
M = table_of(RegisteredModelRow)
V = table_of(ModelVersionRow)
R = table_of(RunRow)
RD = table_of(RunDatasetRow)
D = table_of(DeploymentRow)
_PARENT_KEYS = ("labels", "datasets", "parents")  # lineage keys naming dataset versions


@dataclass(frozen=True)
class LineageNode:
    kind: NodeKind
    id: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "label": self.label, "attrs": self.attrs}


@dataclass(frozen=True)
class LineageEdge:
    source: str
    target: str
    kind: str  # trained_by, used, derived_from, deployed_in, used_by, produced

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "kind": self.kind}


@dataclass
class LineageGraph:
    """Nodes (unique by id) and edges from the root outwards."""

    root: str
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)

    def add(self, node: LineageNode, source: str | None = None, kind: str = "") -> bool:
        """Add `node` (and an edge to it from `source`); False if the node was known."""
        new = node.id not in self.nodes
        self.nodes.setdefault(node.id, node)
        edge = LineageEdge(source, node.id, kind) if source is not None else None
        if edge is not None and edge not in self.edges:
            self.edges.append(edge)
        return new

    def of_kind(self, kind: NodeKind) -> list[LineageNode]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
        }

    def render(self) -> str:
        """The graph as an indented tree from the root, for people."""
        lines: list[str] = []
        seen: set[str] = set()

        def walk(node_id: str, depth: int, via: str) -> None:
            node = self.nodes[node_id]
            arrow = f"{via} → " if via else ""
            again = " (see above)" if node_id in seen else ""
            lines.append(f"{'  ' * depth}{arrow}{node.kind} {node.label}{again}")
            if node_id in seen:
                return
            seen.add(node_id)
            for edge in self.edges:
                if edge.source == node_id:
                    walk(edge.target, depth + 1, edge.kind)

        walk(self.root, 0, "")
        return "\n".join(lines)


def feature_binding(registry: Any, model: str, version: int) -> dict[str, Any] | None:
    """The feature binding in the manifest of `model`/`version` (what `model_lineage` takes),
    or None; an unknown version is left for `model_lineage` to report."""
    try:
        manifest = registry.get_manifest(model, version)
    except NotFound:
        return None
    if manifest is None or manifest.features is None:
        return None
    binding: dict[str, Any] = manifest.features.model_dump()
    return binding


def model_lineage(
    metadata: MetadataStore,
    model: str,
    version: int,
    features: Mapping[str, Any] | None = None,
) -> LineageGraph:
    """From model version `model`/`version` back to its data and forward to deployments;
    `features` is the feature binding of its manifest (the service and view versions it
    reads online), when it has one."""
    versions = DatasetVersions(metadata)
    with metadata.read() as conn:
        row = conn.execute(
            select(V.c.run_id, V.c.status, V.c.created_at)
            .join(M, M.c.id == V.c.model_id)
            .where(M.c.name == model, V.c.version == version)
        ).first()
        if row is None:
            raise NotFound(f"no model version {model}/{version}")
        root = _model_node(model, version, row.status)
        graph = LineageGraph(root.id)
        graph.add(root)
        if features is not None:
            _reads(graph, root.id, features)
        if row.run_id is not None:
            _run_upstream(conn, graph, versions, root.id, row.run_id)
        _deployments(conn, graph, root.id, model, version)
    return graph


def dataset_lineage(metadata: MetadataStore, name: str, version: int | None = None) -> LineageGraph:
    """From a dataset version back to what it was derived from, and forward to the runs that
    used its content, the model versions they produced and their deployments."""
    versions = DatasetVersions(metadata)
    dataset = versions.get(name, version)
    node = _dataset_version_node(dataset)
    graph = LineageGraph(node.id)
    graph.add(node)
    _derived_from(graph, versions, dataset, depth=0)
    with metadata.read() as conn:
        runs = conn.execute(
            select(RD.c.run_id, R.c.name)
            .join(R, R.c.id == RD.c.run_id)
            .where(RD.c.dataset_digest == dataset.digest)
            .order_by(RD.c.logged_at)
        ).all()
        for run_id, run_name in runs:
            run = LineageNode("run", f"run:{run_id}", f"{run_name} ({run_id})")
            graph.add(run, node.id, "used_by")
            produced = conn.execute(
                select(M.c.name, V.c.version, V.c.status)
                .join(M, M.c.id == V.c.model_id)
                .where(V.c.run_id == run_id)
                .order_by(M.c.name, V.c.version)
            ).all()
            for model, model_version, status in produced:
                target = _model_node(model, model_version, status)
                graph.add(target, run.id, "produced")
                _deployments(conn, graph, target.id, model, model_version)
    return graph


def _model_node(model: str, version: int, status: str) -> LineageNode:
    return LineageNode(
        "model_version",
        f"model_version:{model}/{version}",
        f"{model}/{version}",
        {"model": model, "version": version, "status": status},
    )


def _dataset_version_node(dataset: DatasetVersion) -> LineageNode:
    return LineageNode(
        "dataset_version",
        f"dataset_version:{dataset.ref}",
        dataset.ref,
        {
            "name": dataset.name,
            "version": dataset.version,
            "digest": dataset.digest,
            "num_rows": dataset.num_rows,
        },
    )


def _run_upstream(
    conn: Connection, graph: LineageGraph, versions: DatasetVersions, source: str, run_id: str
) -> None:
    name = conn.scalar(select(R.c.name).where(R.c.id == run_id)) or ""
    run = LineageNode("run", f"run:{run_id}", f"{name} ({run_id})", {"run_id": run_id})
    graph.add(run, source, "trained_by")
    logged = conn.execute(
        select(RD.c.name, RD.c.role, RD.c.dataset_digest)
        .where(RD.c.run_id == run_id)
        .order_by(RD.c.logged_at, RD.c.name)
    ).all()
    matches = versions.with_digests(sorted({digest for _, _, digest in logged}))
    for logged_name, role, digest in logged:
        found = [d for d in matches if d.digest == digest]
        if not found:
            what = LineageNode(
                "dataset",
                f"dataset:{digest}",
                f"{logged_name} ({role}, {digest[:12]})",
                {"name": logged_name, "role": role, "digest": digest},
            )
            graph.add(what, run.id, "used")
        for dataset in found:
            graph.add(_dataset_version_node(dataset), run.id, "used")
            _derived_from(graph, versions, dataset, depth=0)


def _derived_from(
    graph: LineageGraph, versions: DatasetVersions, dataset: DatasetVersion, depth: int
) -> None:
    """Add what `dataset`'s lineage JSON names, following stored parent versions."""
    source = f"dataset_version:{dataset.ref}"
    lineage = dataset.lineage
    for view in _items(lineage.get("feature_views")):
        name, version = _name_version(view)
        label = name if version is None else f"{name}@{version}"
        node = LineageNode("feature_view", f"feature_view:{label}", label, _attrs(view))
        graph.add(node, source, "derived_from")
    for feature in _items(lineage.get("features")):
        label = str(feature.get("name", feature)) if isinstance(feature, dict) else str(feature)
        graph.add(LineageNode("feature", f"feature:{label}", label), source, "derived_from")
    if (service := lineage.get("feature_service")) is not None:
        label = str(service.get("name", service)) if isinstance(service, dict) else str(service)
        node = LineageNode("feature_service", f"feature_service:{label}", label)
        graph.add(node, source, "derived_from")
    for key in _PARENT_KEYS:
        for parent in _items(lineage.get(key)):
            _parent(graph, versions, source, parent, key, depth)


def _parent(
    graph: LineageGraph,
    versions: DatasetVersions,
    source: str,
    parent: Any,
    key: str,
    depth: int,
) -> None:
    name, version = _name_version(parent)
    try:
        stored = versions.get(*parse_ref(name)) if version is None else versions.get(name, version)
    except (NotFound, InvalidInput):  # a free-form reference to data not stored here
        label = name if version is None else f"{name}@{version}"
        node = LineageNode("dataset", f"dataset:{label}", label, {"role": key, **_attrs(parent)})
        graph.add(node, source, "derived_from")
        return
    node = _dataset_version_node(stored)
    new = graph.add(
        LineageNode(node.kind, node.id, node.label, node.attrs | {"role": key}),
        source,
        "derived_from",
    )
    if new and depth < 10:
        _derived_from(graph, versions, stored, depth + 1)


def _reads(graph: LineageGraph, source: str, binding: Mapping[str, Any]) -> None:
    """The feature service a model version reads online, and its views at their versions."""
    service = str(binding.get("service"))
    node = LineageNode(
        "feature_service",
        f"feature_service:{service}",
        service,
        {"features": list(binding.get("refs", []))},
    )
    graph.add(node, source, "reads")
    for name, version in dict(binding.get("views", {})).items():
        label = f"{name}@{version}"
        view = LineageNode(
            "feature_view", f"feature_view:{label}", label, {"name": name, "version": version}
        )
        graph.add(view, node.id, "derived_from")


def _deployments(
    conn: Connection, graph: LineageGraph, source: str, model: str, version: int
) -> None:
    rows = conn.execute(
        select(D.c.name, D.c.variants, D.c.status, D.c.strategy)
        .where(D.c.model == model)
        .order_by(D.c.name)
    ).all()
    for name, variants, status, strategy in rows:
        serving = [v["name"] for v in orjson.loads(variants) if v.get("version") == version]
        if serving:
            node = LineageNode(
                "deployment",
                f"deployment:{name}",
                f"{name} ({strategy}, {status}, as {', '.join(serving)})",
                {"name": name, "strategy": strategy, "status": status, "variants": serving},
            )
            graph.add(node, source, "deployed_in")


def _items(value: Any) -> Iterable[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _name_version(item: Any) -> tuple[str, int | None]:
    if isinstance(item, dict):
        version = item.get("version")
        return str(item.get("name", "?")), int(version) if isinstance(version, int) else None
    return str(item), None


def _attrs(item: Any) -> dict[str, Any]:
    return dict(item) if isinstance(item, dict) else {}
