"""Model cards: Markdown rendered from what the registry knows about a version.

Pure: the registry gathers the values (model, lineage, manifest, metrics, events) and
this module only formats them, so a card can be tested without a database.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.registry._entities import Lineage, RegisteredModel, RegistryEvent

if TYPE_CHECKING:
    from modelyard.models import Manifest, Signature

MAX_CATEGORIES = 8
"""Categories listed per column before the rest are summarised as a count."""


def render_card(
    model: RegisteredModel,
    lineage: Lineage,
    *,
    manifest: Manifest | None,
    metrics: Mapping[str, float],
    events: Sequence[RegistryEvent],
) -> str:
    """The Markdown card of `lineage.version` of `model`.

    `metrics` are the version's final metric values; `events` the approvals and alias
    moves that concern this version.
    """
    version = lineage.version
    sections = [
        f"# {model.name} — version {version.version}",
        _intended_use(model, lineage),
        _facts(lineage, manifest),
        _training_data(lineage),
        _metrics(metrics),
        _signature(None if manifest is None else manifest.signature),
        _requirements(manifest),
        _lineage(lineage),
        _history(events),
    ]
    return "\n\n".join(sections) + "\n"


def escape_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks as `<br>`."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return "<br>".join(text.splitlines()) if text else ""


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(escape_cell(h) for h in header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class _Code(str):
    """A cell shown as inline code (digests, ids)."""


def _cell(value: object) -> str:
    if isinstance(value, _Code):
        return f"`{value}`" if "`" not in value and "|" not in value else escape_cell(value)
    if isinstance(value, float):
        return _number(value)
    return escape_cell("-" if value is None or value == "" else value)


def _number(value: float) -> str:
    return str(value) if math.isnan(value) or math.isinf(value) else f"{value:.6g}"


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _none(what: str) -> str:
    return f"_{what}_"


def _intended_use(model: RegisteredModel, lineage: Lineage) -> str:
    parts = ["## Intended use"]
    if model.description:
        parts.append(model.description)
    if lineage.version.description:
        parts.append(f"**This version:** {lineage.version.description}")
    if len(parts) == 1:
        parts.append(_none("No description recorded; add one with `modelyard models update`."))
    return "\n\n".join(parts)


def _facts(lineage: Lineage, manifest: Manifest | None) -> str:
    v = lineage.version
    rows: list[tuple[str, object]] = [
        ("URI", _Code(v.uri)),
        ("status", v.status),
        ("aliases", ", ".join(v.aliases)),
        ("created", f"{_time(v.created_at)} by {v.created_by}"),
        ("flavor", v.flavor or (manifest.flavor if manifest else None)),
        ("model class", _Code(manifest.model_class) if manifest else None),
        ("manifest", _Code(v.manifest_digest) if v.manifest_digest else None),
    ]
    rows += [(f"tag `{k}`", val) for k, val in sorted(v.tags.items())]
    return "## Version\n\n" + table(["field", "value"], rows)


def _training_data(lineage: Lineage) -> str:
    if not lineage.datasets:
        return "## Training data\n\n" + _none("No datasets recorded for this version's run.")
    rows = [
        (d.name, d.role, _Code(d.digest), d.num_rows, d.num_columns, d.source)
        for d in lineage.datasets
    ]
    header = ["name", "role", "digest", "rows", "columns", "source"]
    return "## Training data\n\n" + table(header, rows)


def _metrics(metrics: Mapping[str, float]) -> str:
    if not metrics:
        return "## Metrics\n\n" + _none("No metrics recorded.")
    rows = [(key, float(value)) for key, value in sorted(metrics.items())]
    return "## Metrics\n\n" + table(["metric", "value"], rows)


def _signature(signature: Signature | None) -> str:
    if signature is None:
        return "## Signature\n\n" + _none("No signature recorded: inputs are not checked.")
    parts = ["## Signature", "### Inputs"]
    if signature.columns is not None:
        rows = [
            (
                _Code(c.name),
                c.dtype,
                "yes" if c.nullable else "no",
                _categories(c.categories),
                "yes" if c.pii else "no",
            )
            for c in signature.columns
        ]
        parts.append(table(["column", "dtype", "nullable", "categories", "PII"], rows))
    elif signature.tensor is not None:
        t = signature.tensor
        rows_t = [(t.dtype, _shape(t.shape), "yes" if t.nullable else "no")]
        parts.append(table(["tensor dtype", "shape", "nullable"], rows_t))
    else:
        parts.append(_none("Not described."))
    parts.append("### Outputs")
    if signature.outputs:
        rows_o = [(_Code(o.name), o.dtype, _shape(o.shape)) for o in signature.outputs]
        parts.append(table(["output", "dtype", "shape"], rows_o))
    else:
        parts.append(_none("Not described."))
    return "\n\n".join(parts)


def _categories(categories: Sequence[Any] | None) -> str:
    if not categories:
        return ""
    shown = ", ".join(str(c) for c in categories[:MAX_CATEGORIES])
    rest = len(categories) - MAX_CATEGORIES
    return f"{shown}, … (+{rest} more)" if rest > 0 else shown


def _shape(shape: Sequence[Any] | None) -> str:
    if shape is None:
        return ""
    return "(" + ", ".join("any" if d is None or d == -1 else str(d) for d in shape) + ")"


def _requirements(manifest: Manifest | None) -> str:
    if manifest is None:
        return "## Requirements\n\n" + _none("No manifest stored with this version.")
    parts = ["## Requirements", f"Python {escape_cell(manifest.python)}"]
    if manifest.requirements:
        rows = sorted(manifest.requirements.items())
        parts.append(table(["package", "version"], rows))
    return "\n\n".join(parts)


def _lineage(lineage: Lineage) -> str:
    if lineage.run_id is None:
        return "## Lineage\n\n" + _none("Registered without a run.")
    commit: object = None
    if lineage.git_commit:
        details = [f"branch {lineage.git_branch}"] if lineage.git_branch else []
        if lineage.git_dirty:
            details.append("with uncommitted changes")
        commit = lineage.git_commit + (f" ({', '.join(details)})" if details else "")
    rows: list[tuple[str, object]] = [
        ("run", f"{lineage.run_name} ({lineage.run_id})"),
        ("experiment", lineage.experiment_name),
        ("run status", lineage.run_status),
        ("parent run", lineage.parent_run_id),
        ("git commit", commit),
        ("git remote", lineage.git_remote),
    ]
    return "## Lineage\n\n" + table(["field", "value"], rows)


def _history(events: Sequence[RegistryEvent]) -> str:
    title = "## Approvals and alias history"
    if not events:
        return f"{title}\n\n" + _none("No approvals or alias changes.")
    rows = [
        (_time(e.at), e.kind, e.alias, e.from_version, e.to_version, e.actor, e.reason)
        for e in events
    ]
    header = ["when", "event", "alias", "from", "to", "who", "why"]
    return f"{title}\n\n" + table(header, rows)
