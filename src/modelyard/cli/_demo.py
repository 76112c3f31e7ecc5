"""`modelyard demo`: real models on a real dataset, tracked, searched, compared, registered,
then served, sent feedback, swapped, scored in batch, monitored and rolled out; then
features defined, joined for training and served online."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from modelyard.cli._output import console, fmt, print_table
from modelyard.config import Settings
from modelyard.tracking import Tracker, open_tracker

EXPERIMENT = "demo-breast-cancer"
MODEL = "breast-cancer"


@dataclass(frozen=True)
class Trained:
    model: Any
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any


def run_demo(settings: Settings) -> None:
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        raise SystemExit("the demo needs scikit-learn: pip install 'modelyard[sklearn]'") from None

    started = time.perf_counter()
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    tracker = open_tracker(settings)
    try:
        console.print(f"[bold]modelyard demo[/bold]: tracking into {_where(settings)}")
        trained = _train_models(tracker, frame)
        _report(tracker, list(trained))
        _register(tracker, settings, trained)
    finally:
        tracker.close()
    console.print(
        f"done in {time.perf_counter() - started:.1f}s; try: modelyard --home {settings.home} "
        f"runs list -e {EXPERIMENT}; modelyard --home {settings.home} models history {MODEL}; "
        f"modelyard --home {settings.home} serve {MODEL}@champion"
    )


def _where(settings: Settings) -> str:
    return settings.tracking_uri or settings.resolved_db_url


def _train_models(tracker: Tracker, frame: object) -> dict[str, Trained]:
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert isinstance(frame, pd.DataFrame)
    features, target = frame.drop(columns="target"), frame["target"]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=7, stratify=target
    )
    candidates = {
        "logreg-C0.1": (
            make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
            {"model": "logistic_regression", "C": 0.1, "penalty": "l2"},
        ),
        "logreg-C1": (
            make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
            {"model": "logistic_regression", "C": 1.0, "penalty": "l2"},
        ),
        "forest-200": (
            RandomForestClassifier(n_estimators=200, max_depth=6, random_state=7),
            {"model": "random_forest", "n_estimators": 200, "max_depth": 6},
        ),
        "gbm-150": (
            GradientBoostingClassifier(n_estimators=150, learning_rate=0.1, random_state=7),
            {"model": "gradient_boosting", "n_estimators": 150, "learning_rate": 0.1},
        ),
    }
    trained = {}
    with tracker.start_run(EXPERIMENT, "model-selection", tags={"demo": "true"}) as parent:
        parent.log_dataset(x_train.assign(target=y_train), name="breast_cancer", role="training")
        parent.log_dataset(x_test.assign(target=y_test), name="breast_cancer", role="evaluation")
        for name, (model, params) in candidates.items():
            with tracker.start_run(EXPERIMENT, name, nested=True, tags={"demo": "true"}) as run:
                run.log_params(params)
                run.log_dataset(x_train.assign(target=y_train), name="breast_cancer")
                fit_start = time.perf_counter()
                model.fit(x_train, y_train)
                proba = model.predict_proba(x_test)[:, 1]
                predicted = (proba >= 0.5).astype(int)
                run.log_metrics(
                    {
                        "auc": float(roc_auc_score(y_test, proba)),
                        "accuracy": float(accuracy_score(y_test, predicted)),
                        "f1": float(f1_score(y_test, predicted)),
                        "log_loss": float(log_loss(y_test, proba)),
                        "fit_seconds": time.perf_counter() - fit_start,
                    }
                )
                if isinstance(model, GradientBoostingClassifier):
                    for step, staged in enumerate(model.staged_predict_proba(x_test), start=1):
                        run.log_metric(
                            "staged_auc", float(roc_auc_score(y_test, staged[:, 1])), step
                        )
                matrix = pd.crosstab(y_test, predicted).to_dict()
                run.log_dict(
                    {
                        "confusion_matrix": {
                            str(k): {str(i): int(c) for i, c in v.items()}
                            for k, v in matrix.items()
                        }
                    },
                    "evaluation/confusion_matrix.json",
                )
                console.print(f"  trained {name}: auc {fmt(run.info.metrics['auc'].value)}")
                trained[run.id] = Trained(model, x_train, y_train, x_test, y_test)
    return trained


def _report(tracker: Tracker, run_ids: list[str]) -> None:
    best = tracker.search_runs(
        EXPERIMENT,
        "metrics.auc > 0.95 and params.model != ''",
        order_by=["metrics.auc desc"],
        max_results=3,
    )
    print_table(
        "best runs (metrics.auc > 0.95, by auc)",
        ["run", "model", "auc", "f1"],
        [
            (r.name, r.params.get("model"), fmt(r.metrics["auc"].value), fmt(r.metrics["f1"].value))
            for r in best
        ],
    )
    comparison = tracker.compare_runs(run_ids)
    rows = []
    for key, values in {
        **{f"params.{k}": v for k, v in comparison.params.items()},
        **{f"metrics.{k}": v for k, v in comparison.metrics.items()},
    }.items():
        differs = key.split(".", 1)[1] in (
            comparison.differing_params | comparison.differing_metrics
        )
        rows.append(("≠" if differs else "", key, *(fmt(v) for v in values)))
    print_table(
        "comparison (≠ marks differences)", ["", "key", *(r.name for r in comparison.runs)], rows
    )


def _register(tracker: Tracker, settings: Settings, trained: dict[str, Trained]) -> None:
    """Register this demo's best model as champion and the runner-up as challenger."""
    from rich.markdown import Markdown

    from modelyard.models._load import load_model
    from modelyard.models._package import ModelSpec, log_model
    from modelyard.registry._default import registry_of
    from modelyard.tracking._environment import current_user

    registry = registry_of(tracker)
    user = current_user()
    auc = {run_id: tracker.get_run(run_id).metrics["auc"].value for run_id in trained}
    best = sorted(trained, key=auc.__getitem__, reverse=True)
    versions = []
    for run_id, alias in zip(best[:2], ("champion", "challenger"), strict=False):
        chosen = trained[run_id]
        spec = ModelSpec(
            name=MODEL,
            artifact_path="model",
            training_data=(chosen.x_train, chosen.y_train),
            # the demo trained its forests itself, so their tree storage is trusted
            trusted=("sklearn.tree._tree.Tree",),
            description="Flags likely malignant breast tumours from 30 cell-nucleus measurements "
            "(demo data); for trying modelyard, not for diagnosis.",
        )
        version = log_model(chosen.model, spec, run_id=run_id, tracker=tracker, registry=registry)
        registry.set_alias(MODEL, alias, version.version, actor=user, reason=f"demo: {alias}")
        versions.append(version)
        console.print(f"  registered {MODEL} version {version.version} as {alias}")
    champion = load_model(
        f"models:/{MODEL}@champion",
        tracker=tracker,
        registry=registry,
        cache_dir=settings.home / "cache" / "models",
    )
    sample = trained[best[0]].x_test[:3]
    console.print(f"  models:/{MODEL}@champion predicts {champion.predict(sample).tolist()}")
    lineage = registry.lineage(MODEL, versions[0].version)
    print_table(
        f"lineage of {MODEL} version {versions[0].version}",
        ["dataset", "role", "digest", "rows"],
        [(d.name, d.role, d.digest[:12], fmt(d.num_rows)) for d in lineage.datasets],
    )
    console.print(Markdown(registry.card(MODEL, versions[0].version)))
    from modelyard.cli._demo_features import show_features
    from modelyard.cli._demo_monitoring import watch_drift
    from modelyard.cli._demo_rollout import roll_out
    from modelyard.cli._demo_serving import serve_and_score

    best_run = trained[best[0]]
    serve_and_score(tracker, registry, settings, MODEL, best_run.x_test, best_run.y_test)
    watch_drift(tracker, registry, settings, MODEL, best_run.x_test, best_run.y_test)
    train, test = (best_run.x_train, best_run.y_train), (best_run.x_test, best_run.y_test)
    roll_out(tracker, registry, settings, MODEL, best_run.model, train, test)
    show_features(tracker, registry, settings)
