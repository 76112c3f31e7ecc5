"""The rollout part of `modelyard demo`: a canary of a deliberately worse version (trained on
shuffled labels) that its guardrails roll back, then an A/B of the champion and the
challenger settled by a sequential test. Each deployment is served over HTTP in this
process, sent requests and their labels, and decided between batches of traffic."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from modelyard.cli._demo_serving import served
from modelyard.cli._output import console, fmt

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.registry import Registry
    from modelyard.rollout._decide import Decision
    from modelyard.rollout._store import Deployments
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog
    from modelyard.tracking import Tracker

EXPERIMENT = "demo-rollout"
CANARY = "demo-canary"
AB = "demo-ab"
SEED = 7
USER = "x-demo-user"  # requests stick to a variant by this header: the demo runs the same
# Half the traffic from the first look, and few samples per verdict, so the canary is
# judged within a few batches; a failing guardrail needs no minimum at all.
CANARY_POLICY = {"steps": [0.5, 1.0], "min_samples": 30, "sticky": f"header:{USER}"}
# Two sound versions rarely differ by much: a small planned maximum ends the test quickly.
AB_POLICY = {"mde": 0.05, "max_samples": 300, "min_samples": 50, "sticky": f"header:{USER}"}
BATCH = {CANARY: 40, AB: 100}
MAX_BATCHES = 8


def roll_out(
    tracker: Tracker,
    registry: Registry,
    settings: Settings,
    model: str,
    champion: Any,
    train: tuple[pd.DataFrame, pd.Series],
    test: tuple[pd.DataFrame, pd.Series],
) -> None:
    """Log a worse version, canary it against the champion until it is rolled back, then
    A/B test the champion against the challenger until the test decides."""
    import numpy as np

    from modelyard.rollout._default import open_traffic
    from modelyard.rollout._store import Deployments

    metadata = getattr(tracker.backend, "metadata", None)
    if settings.tracking_uri or metadata is None:
        console.print("\n[bold]rollout[/bold] skipped: deployments live in the local database")
        return
    console.print(f"\n[bold]rollout[/bold] of {model}: a canary, then an A/B test")
    worse = _log_worse(tracker, registry, model, champion, train, test)
    deployments = Deployments(metadata, registry)
    rng = np.random.default_rng(SEED)
    with open_traffic(settings, metadata) as (log, feedback):
        primary = f"{model}@champion"
        _create(deployments, CANARY, "canary", primary, f"{model}/{worse}", CANARY_POLICY)
        decision = _drive(deployments, log, feedback, settings, CANARY, test, rng)
        _show(f"canary {CANARY}", decision)
        _create(deployments, AB, "ab", primary, f"{model}@challenger", AB_POLICY)
        decision = _drive(deployments, log, feedback, settings, AB, test, rng)
        _show(f"A/B test {AB}", decision)
        _show_test(decision)
    console.print(
        f"  try: modelyard --home {settings.home} deploy history {CANARY}; "
        f"modelyard --home {settings.home} deploy status {AB}",
        markup=False,
    )


def _log_worse(
    tracker: Tracker,
    registry: Registry,
    model: str,
    champion: Any,
    train: tuple[pd.DataFrame, pd.Series],
    test: tuple[pd.DataFrame, pd.Series],
) -> int:
    """The champion's estimator refitted on the same features with shuffled labels, logged
    as a new version of `model`; its version number."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score

    from modelyard.models._package import ModelSpec, log_model

    (x_train, y_train), (x_test, y_test) = train, test
    labels = np.random.default_rng(SEED).permutation(y_train.to_numpy())
    shuffled = pd.Series(labels, index=y_train.index, name=y_train.name)
    worse = clone(champion).fit(x_train, shuffled)
    accuracy = float(accuracy_score(y_test, worse.predict(x_test)))
    with tracker.start_run(EXPERIMENT, "shuffled-labels", tags={"demo": "true"}) as run:
        run.log_params({"labels": "shuffled", "seed": SEED})
        run.log_metric("accuracy", accuracy)
        spec = ModelSpec(
            name=model,
            artifact_path="model",
            training_data=(x_train, shuffled),
            trusted=("sklearn.tree._tree.Tree",),  # as in the demo's registration
            description="Deliberately worse: trained on shuffled labels, for the rollout demo.",
        )
        version = log_model(worse, spec, run_id=run.id, tracker=tracker, registry=registry)
    reference = float(accuracy_score(y_test, champion.predict(x_test)))
    console.print(
        f"  logged {model} version {version.version}, trained on shuffled labels: test "
        f"accuracy {fmt(accuracy)} (the champion's: {fmt(reference)})"
    )
    return version.version


def _create(
    deployments: Deployments,
    name: str,
    strategy: str,
    model: str,
    candidate: str,
    policy: dict[str, Any],
) -> None:
    from modelyard.tracking._environment import current_user

    if name in deployments.revisions():
        deployments.delete(name, actor=current_user())  # a demo run again starts afresh
    created = deployments.create(
        name,
        strategy=strategy,
        model=model,
        candidates=[candidate],
        policy=policy,
        actor=current_user(),
    )
    versions = ", ".join(f"{v.name} version {v.version}" for v in created.variants)
    options = ", ".join(f"{k}={v}" for k, v in policy.items())
    console.print(f"\n  deployment {name}: {strategy} of {versions}; {options}", markup=False)


def _drive(
    deployments: Deployments,
    log: PredictionLog,
    feedback: FeedbackStore,
    settings: Settings,
    name: str,
    test: tuple[pd.DataFrame, pd.Series],
    rng: np.random.Generator,
) -> Decision:
    """Serve deployment `name`, send batches of test rows and their labels, and decide after
    each batch (here, not on a server thread, so the demo runs the same every time)."""
    from modelyard.rollout._engine import evaluate
    from modelyard.serving import ServeOptions, create_app

    x_test, y_test = test
    records, labels = x_test.to_dict("records"), [int(y) for y in y_test]
    app = create_app(deployments=[name], settings=settings, options=ServeOptions())
    sent = 0
    with served(app) as http:
        for _ in range(MAX_BATCHES):
            answered: Counter[str] = Counter()
            items: list[dict[str, Any]] = []
            for row in rng.integers(0, len(records), BATCH[name]):
                response = http.post(
                    f"/v1/deployments/{name}:predict",
                    json={"instances": [records[row]]},
                    headers={USER: f"user-{sent + len(items)}"},
                )
                response.raise_for_status()
                answer = response.json()
                answered[answer["variant"]] += 1
                items.append({"prediction_id": answer["prediction_ids"][0], "label": labels[row]})
            http.post("/v1/feedback", json={"feedback": items}).raise_for_status()
            sent += len(items)
            decision = evaluate(deployments, log, feedback, name, act=True)
            split = ", ".join(f"{k} {n}" for k, n in sorted(answered.items()))
            console.print(
                f"  {sent} requests ({split}), labels sent: {decision.action}: {decision.reason}",
                markup=False,
            )
            if decision.changes:
                http.post(f"/v2/repository/models/{name}/load")  # route by the new split now
            if deployments.get(name).status != "running":
                break
    return decision


def _show(what: str, decision: Decision) -> None:
    """The decision and the evidence it rests on, as `modelyard deploy status` prints it."""
    from modelyard.cli._deploy import _print_look

    console.print(f"  {what}: [bold]{decision.action}[/bold]")
    # the A/B test's numbers are shown on their own, by `_show_test`
    _print_look({k: v for k, v in decision.to_dict().items() if k != "sequential"})


def _show_test(decision: Decision) -> None:
    """The A/B test's headline: the effect, its interval and the always-valid p-value."""
    test = decision.evidence.get("sequential")
    if decision.effect is None or not isinstance(test, dict):
        return
    effect = decision.effect
    console.print(
        f"  {effect.name}: {fmt(effect.value)} [{fmt(effect.low)}, {fmt(effect.high)}], "
        f"always-valid p {test['p_value']:.3g}, on {test['n_a'] + test['n_b']} labelled "
        f"answers of the {decision.evidence.get('planned_total')} planned",
        markup=False,
    )
