"""Model cards: Markdown from what the registry knows about a version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from modelyard.errors import NotFound
from modelyard.models import ColumnSpec, Manifest, OutputSpec, Signature, TensorSpec
from modelyard.registry import (
    Lineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    render_card,
)
from modelyard.tracking import DatasetInput

if TYPE_CHECKING:
    from tests.registry.conftest import Stores

DAY = 1_714_521_600_000  # 2024-05-01 00:00:00 UTC


def version(**changes: object) -> ModelVersion:
    values: dict[str, object] = {
        "name": "churn",
        "version": 3,
        "status": "ready",
        "created_at": DAY,
        "created_by": "ana",
        "flavor": "sklearn",
        "aliases": ("champion",),
    }
    return ModelVersion(**(values | changes))  # type: ignore[arg-type]


def manifest(signature: Signature | None) -> Manifest:
    return Manifest(
        flavor="sklearn",
        model_class="sklearn.ensemble:RandomForestClassifier",
        files=[],
        signature=signature,
        python="3.11.9",
        requirements={"scikit-learn": "1.5.0"},
        run_id="f" * 32,
        artifact_path="model",
        created_at=DAY,
        created_by="ana",
    )


def card(
    lineage: Lineage,
    signature: Signature | None = None,
    *,
    description: str | None = "Predicts who cancels next month.",
    metrics: dict[str, float] | None = None,
    events: tuple[RegistryEvent, ...] = (),
) -> str:
    model = RegisteredModel("churn", DAY, 3, description=description)
    return render_card(
        model,
        lineage,
        manifest=manifest(signature) if signature else None,
        metrics=metrics or {},
        events=events,
    )


def test_a_card_renders_every_section_from_the_values_it_is_given() -> None:
    data = DatasetInput("customers", "training", "d" * 64, {}, 1200, 3, "s3://d/may.parquet")
    lineage = Lineage(
        version(description="Retrained on May."),
        run_id="r" * 32,
        run_name="sweep-7",
        experiment_name="churn",
        run_status="finished",
        git_commit="c" * 40,
        git_branch="main",
        git_dirty=True,
        datasets=(data,),
    )
    signature = Signature(
        columns=[
            ColumnSpec(name="email", dtype="string", pii=True),
            ColumnSpec(name="plan", dtype="string", categories=[f"p{i}" for i in range(12)]),
            ColumnSpec(name="age", dtype="float64", nullable=True),
        ],
        outputs=[OutputSpec(name="predict_proba", dtype="float64", shape=[-1, 2])],
    )
    events = (
        RegistryEvent(DAY, "approved", "lead", version=3, reason="ok"),
        RegistryEvent(DAY + 1, "move", "ana", "champion", 2, 3, 3, "better auc"),
    )
    text = card(lineage, signature, metrics={"auc": 0.912345678}, events=events)
    assert text.startswith("# churn — version 3\n")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# churn — version 3",
        "## Intended use",
        "## Version",
        "## Training data",
        "## Metrics",
        "## Signature",
        "### Inputs",
        "### Outputs",
        "## Requirements",
        "## Lineage",
        "## Approvals and alias history",
    ]
    assert "Predicts who cancels next month." in text
    assert "**This version:** Retrained on May." in text
    assert "| created | 2024-05-01 00:00:00 UTC by ana |" in text
    assert "| model class | `sklearn.ensemble:RandomForestClassifier` |" in text
    assert f"| customers | training | `{'d' * 64}` | 1200 | 3 | s3://d/may.parquet |" in text
    assert "| auc | 0.912346 |" in text
    assert "| `email` | string | no | - | yes |" in text
    assert "p0, p1, p2, p3, p4, p5, p6, p7, … (+4 more)" in text
    assert "| `predict_proba` | float64 | (any, 2) |" in text
    assert "Python 3.11.9" in text and "| scikit-learn | 1.5.0 |" in text
    assert f"| git commit | {'c' * 40} (branch main, with uncommitted changes) |" in text
    assert "| 2024-05-01 00:00:00 UTC | approved | - | - | - | lead | ok |" in text
    assert "| move | champion | 2 | 3 | ana | better auc |" in text


def test_table_cells_escape_pipes_newlines_and_html() -> None:
    lineage = Lineage(version(tags={"note": "a|b\nc <script>"}))
    text = card(lineage)
    assert "| tag `note` | a\\|b<br>c &lt;script&gt; |" in text


def test_a_card_says_what_is_missing_instead_of_leaving_gaps() -> None:
    text = card(Lineage(version(flavor=None, aliases=())), description=None)
    assert "_No description recorded" in text
    assert "_No datasets recorded" in text
    assert "_No metrics recorded._" in text
    assert "_No signature recorded" in text
    assert "_No manifest stored" in text
    assert "_Registered without a run._" in text
    assert "_No approvals or alias changes._" in text


def test_a_tensor_signature_is_shown_with_its_shape() -> None:
    signature = Signature(tensor=TensorSpec(dtype="float32", shape=[-1, 28, 28]))
    text = card(Lineage(version()), signature)
    assert "| float32 | (any, 28, 28) | no |" in text


def test_the_registry_renders_the_card_of_a_stored_version(stores: Stores) -> None:
    registry = stores.registry
    registry.create_model("churn", description="Who leaves | and why")
    data = stores.dataset(1)
    run_id = stores.run(name="sweep-7", metrics={"auc": 0.9}, datasets=(data,))
    stores.register("churn", run_id, stores.manifest(run_id), description="May retrain")
    stores.register("churn", None, None)
    registry.review("churn", 1, approved=True, approver="lead", comment="fine")
    registry.set_alias("churn", "champion", 1, actor="ana", reason="first")
    registry.set_alias("churn", "champion", 2, actor="ana", reason="other")
    text = registry.card("churn", 1)
    assert "Who leaves | and why" in text  # prose stays Markdown, only cells are escaped
    assert "**This version:** May retrain" in text
    assert data.digest in text and "| auc | 0.9 |" in text
    assert f"| run | sweep-7 ({run_id}) |" in text
    assert "| `plan` | string | no | basic, pro | no |" in text
    history = text.split("## Approvals and alias history")[1]
    assert [row.split(" | ")[1] for row in history.strip().splitlines()[2:]] == [
        "approved",
        "set",
        "move",
    ]
    assert "_No approvals or alias changes._" not in registry.card("churn", 2).split("Lineage")[1]
    with pytest.raises(NotFound):
        registry.card("churn", 3)
