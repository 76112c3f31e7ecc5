"""A drift report as one HTML file: inline CSS and SVG, no scripts, nothing fetched.

It opens offline, from a mail attachment or a CI artifact, and shows the summary first,
then one card per column with reference and current drawn over the same bins.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.monitoring._drift import ColumnDrift, Distribution
    from modelyard.monitoring._report import DriftReport

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#59636e}.summary{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.tile{border:1px solid #d1d9e0;border-radius:8px;padding:10px 14px;min-width:130px}
.tile b{display:block;font-size:20px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6eaef}
td{font-variant-numeric:tabular-nums}
.drifted{color:#b42318;font-weight:600}.ok{color:#1a7f37}.skip{color:#9a6700}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}
.card{border:1px solid #d1d9e0;border-radius:8px;padding:12px}
.card h3{margin:0 0 6px;font-size:15px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
"""
_REFERENCE, _CURRENT = "#8c959f", "#0969da"


def render(report: DriftReport) -> str:
    drifted = report.drifted_columns
    verdict = (
        f'<span class="drifted">drift in {len(drifted)} column(s)</span>'
        if drifted
        else '<span class="ok">no column drifted</span>'
    )
    multi = report.multivariate
    tiles = [
        ("reference rows", f"{report.reference_rows:,}"),
        ("current rows", f"{report.current_rows:,}"),
        ("columns tested", f"{len(report.tested_columns)} of {len(report.columns)}"),
        ("drift share", f"{report.drift_share:.0%}"),
    ]
    if multi is not None:
        tiles.append(("domain classifier AUC", f"{multi.auc:.3f}"))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Drift report: {escape(', '.join(drifted) or 'no drift')}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Drift report</h1><div class='muted'>{verdict}. A column drifts when its test "
        f"is significant after Benjamini–Hochberg correction (α = {report.alpha:g}) and its "
        "effect reaches the minimum shown.</div>",
        "<div class='summary'>",
        *(_tile(k, v) for k, v in tiles),
        "</div>",
    ]
    if report.note:
        parts.append(f"<p class='skip'>{escape(report.note)}</p>")
    parts.append(_multivariate(report))
    parts.append("<h2>Columns</h2>" + _table(report))
    parts.append(
        "<h2>Distributions</h2><div class='legend muted'>"
        f"<span style='background:{_REFERENCE}'></span>reference"
        f"<span style='background:{_CURRENT}'></span>current</div><div class='cards'>"
    )
    parts.extend(_card(c) for c in report.columns.values())
    parts.append("</div></body></html>")
    return "\n".join(parts)


def _tile(label: str, value: str) -> str:
    return (
        f"<div class='tile'><span class='muted'>{escape(label)}</span><b>{escape(value)}</b></div>"
    )


def _multivariate(report: DriftReport) -> str:
    multi = report.multivariate
    if multi is None:
        return ""
    verdict = "drift between columns" if multi.drifted else "no drift between columns"
    css = "drifted" if multi.drifted else "ok"
    drivers = ", ".join(f"{escape(name)} ({weight:.3f})" for name, weight in multi.drivers)
    return (
        f"<h2>Multivariate</h2><p><span class='{css}'>{verdict}</span>: a classifier tells "
        f"current from reference rows with ROC AUC {multi.auc:.3f} "
        f"[{multi.auc_low:.3f}, {multi.auc_high:.3f}] ({escape(multi.method)}); drift is "
        f"declared above {multi.threshold:g}."
        + (f" Driven by: {drivers}." if drivers else "")
        + "</p>"
    )


def _table(report: DriftReport) -> str:
    rows = []
    for c in report.columns.values():
        rows.append(
            "<tr>"
            f"<td>{escape(c.name)}</td><td>{c.kind}</td><td>{_verdict(c)}</td>"
            f"<td>{escape(c.method or '—')}</td><td>{_number(c.statistic)}</td>"
            f"<td>{_number(c.adjusted_p_value if c.adjusted_p_value is not None else c.p_value)}"
            f"</td><td>{escape(c.effect_name or '—')} {_number(c.effect)}</td>"
            f"<td>{_number(c.threshold)}</td><td>{c.reference_missing:.1%} → "
            f"{c.current_missing:.1%}</td></tr>"
        )
    head = (
        "<tr><th>column</th><th>kind</th><th>verdict</th><th>test</th><th>statistic</th>"
        "<th>p (BH)</th><th>effect</th><th>min effect</th><th>missing</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _verdict(column: ColumnDrift) -> str:
    if column.drifted is None:
        return f"<span class='skip'>{escape(column.status.replace('_', ' '))}</span>"
    if column.drifted:
        return "<span class='drifted'>drifted</span>"
    return "<span class='ok'>stable</span>"


def _card(column: ColumnDrift) -> str:
    extra = ""
    if column.unseen_categories:
        plural = "y" if column.unseen_categories == 1 else "ies"
        extra = (
            f" {column.unseen_categories} new categor{plural} ({column.unseen_share:.1%} of "
            "current)."
        )
    detail = escape(column.detail) + escape(extra)
    chart = _chart(column.distribution) if column.distribution is not None else ""
    return (
        f"<div class='card'><h3>{escape(column.name)} · {_verdict(column)}</h3>"
        f"<div class='muted'>{detail}</div>{chart}</div>"
    )


def _chart(distribution: Distribution) -> str:
    """Paired bars per bin: reference (grey) and current (blue) shares."""
    width, height, pad = 400, 150, 20
    count = len(distribution.labels)
    if count == 0:
        return ""
    top = max([*distribution.reference, *distribution.current, 1e-12])
    slot = (width - 2 * pad) / count
    bar = max(slot / 2 - 1, 1)
    shapes = []
    for i, label in enumerate(distribution.labels):
        x = pad + i * slot
        for offset, share, color in (
            (0.0, distribution.reference[i], _REFERENCE),
            (bar, distribution.current[i], _CURRENT),
        ):
            h = (height - 2 * pad) * share / top
            shapes.append(
                f"<rect x='{x + offset:.1f}' y='{height - pad - h:.1f}' width='{bar:.1f}' "
                f"height='{h:.1f}' fill='{color}'><title>{escape(label)}: {share:.1%}"
                "</title></rect>"
            )
    axis = f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' " + (
        "stroke='#d1d9e0'/>"
    )
    return (
        f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
        f"aria-label='reference and current distribution'>{axis}{''.join(shapes)}</svg>"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
