"""`modelyard deploy create|list|status|history|promote|rollback|pause|resume|split|delete`:
deployments of model versions with a strategy, changed by hand, each change recorded."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from modelyard.cli._app import JsonFlag, settings_of
from modelyard.cli._output import console, fmt, fmt_time, print_json, print_table
from modelyard.errors import InvalidInput
from modelyard.rollout._default import PROMOTED_BY_HAND, ROLLED_BACK_BY_HAND, SPLIT_BY_HAND
from modelyard.rollout._spec import STRATEGIES, STRATEGY_HELP
from modelyard.tracking._environment import current_user

if TYPE_CHECKING:
    from modelyard.rollout._spec import Deployment, Variant
    from modelyard.rollout._store import Deployments

deploy_app = typer.Typer(
    help="Deployments: model versions behind one name with a strategy (shadow, canary, A/B, "
    "blue-green, champion–challenger, bandit), promoted or rolled back with a recorded reason.",
    no_args_is_help=True,
)

Reason = Annotated[str | None, typer.Option(help="Why, for the history.")]
_CREATE_HELP = "\n\n".join(
    [
        "Create deployment NAME: --model is the primary, each --candidate a version it is "
        "tested against. The strategies:",
        *(f"{strategy}: {STRATEGY_HELP[strategy]}" for strategy in STRATEGIES),
        "Options (--policy JSON or --option key=value): see docs/rollout.md.",
    ]
)


@contextmanager
def _deployments(ctx: typer.Context) -> Iterator[Deployments]:
    from modelyard.rollout._default import open_deployments

    with open_deployments(settings_of(ctx)) as deployments:
        yield deployments


@deploy_app.command(
    "create", help=_CREATE_HELP, short_help="Create a deployment of versions with a strategy."
)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name (its endpoint).")],
    strategy: Annotated[str, typer.Option(help=f"One of {', '.join(STRATEGIES)}.")],
    model: Annotated[str, typer.Option(help="The primary version: MODEL@ALIAS or MODEL/VERSION.")],
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            "--candidate",
            help="A version to test, MODEL@ALIAS or MODEL/VERSION; "
            "repeat for several (champion_challenger, bandit).",
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="The strategy's options as JSON: '{\"steps\": [0.1, 1.0]}'.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="One option as key=value (value read as JSON, else "
            "text): min_samples=500, sticky=field:customer_id; repeatable.",
        ),
    ] = None,
    alias: Annotated[str, typer.Option(help="The alias a promotion moves.")] = "champion",
    as_json: JsonFlag = False,
) -> None:
    options = _policy(policy, option or ())
    with _deployments(ctx) as deployments:
        deployment = deployments.create(
            name,
            strategy=strategy,
            model=model,
            candidates=candidate or (),
            policy=options,
            alias=alias,
            actor=current_user(),
        )
    if as_json:
        print_json(deployment.to_dict())
        return
    console.print(f"deployment {deployment.name!r} created: {_describe(deployment)}", markup=False)
    _print_variants(deployment)


def _policy(text: str | None, options: Sequence[str]) -> dict[str, Any] | None:
    """--policy JSON, then each --option key=value over it."""
    policy: dict[str, Any] = {}
    if text is not None:
        try:
            given = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"--policy {text!r} is not JSON: {exc}") from None
        if not isinstance(given, dict):
            raise InvalidInput(f"--policy {text!r} must be a JSON object of options")
        policy |= given
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--option takes key=value, got {item!r}")
        try:
            policy[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            policy[key] = value
    return policy if text is not None or options else None


def _describe(deployment: Deployment) -> str:
    versions = ", ".join(f"{v.name} {deployment.model}/{v.version}" for v in deployment.variants)
    return (
        f"{deployment.strategy} of {versions}; {deployment.status.replace('_', ' ')}, "
        f"split {_split(deployment.split)}, promotes {deployment.model}@{deployment.alias}"
    )


def _split(split: Mapping[str, float]) -> str:
    return " / ".join(f"{name} {100 * share:.4g} %" for name, share in split.items())


def _print_variants(deployment: Deployment) -> None:
    print_table(
        "variants",
        ["name", "role", "version", "named as", "share"],
        [(v.name, v.role, v.version, v.ref, _share(deployment, v)) for v in deployment.variants],
    )


def _share(deployment: Deployment, variant: Variant) -> str:
    if variant in deployment.mirrored:
        return "mirrored"
    return f"{100 * deployment.split.get(variant.name, 0.0):.4g} %"


@deploy_app.command("list")
def list_deployments(
    ctx: typer.Context,
    running: Annotated[
        bool, typer.Option("--running", help="Only running and paused ones.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Deployments with their strategy, status and split."""
    with _deployments(ctx) as deployments:
        found = deployments.all(include_finished=not running)
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    print_table(
        "deployments",
        ["name", "strategy", "model", "versions", "status", "split", "updated"],
        [
            (
                d.name,
                d.strategy,
                d.model,
                ", ".join(f"{v.name} {v.version}" for v in d.variants),
                d.status.replace("_", " "),
                _split(d.split),
                fmt_time(d.updated_at),
            )
            for d in found
        ],
    )


@deploy_app.command("status")
def status(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Deployment NAME: its split and variants, per-variant counts and metrics with their
    intervals, the test, and the decision so far and why."""
    from modelyard.rollout._default import open_traffic
    from modelyard.rollout._status import status_of

    settings = settings_of(ctx)
    with (
        _deployments(ctx) as deployments,
        open_traffic(settings, deployments.metadata) as (log, feedback),
    ):
        found = status_of(deployments, name, log=log, feedback=feedback)
    if as_json:
        print_json(found.to_dict())
        return
    deployment = found.deployment
    console.print(
        f"deployment {deployment.name!r}: {deployment.strategy} of {deployment.model}, "
        f"{deployment.status.replace('_', ' ')} (step {deployment.step}, revision "
        f"{deployment.revision}); promotes {deployment.model}@{deployment.alias}",
        markup=False,
    )
    console.print(f"split: {_split(deployment.split)}", markup=False)
    policy = ", ".join(f"{k}={_option(x)}" for k, x in deployment.policy.items())
    console.print(f"policy: {policy}", markup=False)
    _print_variants(deployment)
    if found.live is not None:
        live = found.live
        console.print(f"now: {live['action']}: {live['reason']}", markup=False)
        _print_look(live)
    decision = found.decision
    if decision is None:
        console.print("latest decision: none yet", markup=False)
        return
    console.print(
        f"latest decision: {decision.kind} by {decision.actor} at {fmt_time(decision.at)}: "
        f"{decision.reason or '(no reason given)'}",
        markup=False,
    )
    if found.live is None or decision.evidence.get("variants") is None:
        _print_look(decision.evidence)


def _print_look(evidence: Mapping[str, Any]) -> None:
    """A decision's evidence: its effect, each variant's numbers, the guardrails, the rest."""
    effect = evidence.get("effect")
    if isinstance(effect, Mapping):
        console.print(
            f"effect: {effect['name']} {_estimate(effect['value'], effect['interval'])}",
            markup=False,
        )
    variants = evidence.get("variants")
    if isinstance(variants, Mapping) and variants:
        metric = next(iter(variants.values())).get("metric") or {}
        print_table(
            "per variant",
            ["variant", "requests", "errors", "error rate", "p50/p99 ms", "labelled",
             str(metric.get("name", "metric"))],
            [
                (
                    name,
                    s.get("requests"),
                    s.get("errors"),
                    _estimate(s.get("error_rate"), s.get("error_interval")),
                    f"{_short(s.get('latency_p50_ms'))}/{_short(s.get('latency_p99_ms'))}",
                    s.get("labelled"),
                    _estimate(*_value_and_interval(s.get("metric"))),
                )
                for name, s in variants.items()
            ],
        )  # fmt: skip
    guardrails = evidence.get("guardrails")
    if isinstance(guardrails, list) and guardrails:
        print_table(
            "guardrails",
            ["guardrail", "verdict", "value", "interval", "limit", "why"],
            [
                (
                    x.get("name"),
                    x.get("verdict"),
                    _short(x.get("value")),
                    _interval(x.get("interval")),
                    _short(x.get("limit")),
                    x.get("reason"),
                )
                for x in guardrails
            ],
        )
    rest = {k: x for k, x in evidence.items() if k not in _SHOWN}
    if items := _key_evidence(rest, limit=30):
        print_table("evidence", ["item", "value"], items)


# shown on their own (or not at all: `carry` is what one look hands to the next)
_SHOWN = frozenset({"action", "reason", "effect", "variants", "guardrails", "carry"})


def _interval(bounds: Any) -> str:
    if not isinstance(bounds, list | tuple) or len(bounds) != 2 or None in bounds:
        return ""
    return f"[{_short(bounds[0])}, {_short(bounds[1])}]"


def _estimate(value: Any, bounds: Any) -> str:
    """`0.5 [0.377, 0.623]`; `-` when there is nothing to estimate yet."""
    return "-" if value is None else f"{_short(value)} {_interval(bounds)}".strip()


def _value_and_interval(metric: Any) -> tuple[Any, Any]:
    if not isinstance(metric, Mapping):
        return None, None
    return metric.get("value"), metric.get("interval")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else fmt(value)


def _key_evidence(evidence: Mapping[str, Any], limit: int) -> list[tuple[str, str]]:
    """The scalar items of `evidence` and of its mappings one level down, a variant as its
    name and version; the policy a deployment was created with is left to `status`."""
    items: list[tuple[str, str]] = []
    for key, value in evidence.items():
        if key == "policy":
            continue
        if isinstance(value, Mapping) and {"name", "version"} <= value.keys():
            items.append((key, f"{value['name']} (version {value['version']})"))
        elif isinstance(value, Mapping):
            items += [(f"{key}.{k}", fmt(x)) for k, x in value.items() if _scalar(x)]
        elif _scalar(value):
            items.append((key, fmt(value)))
    return items[:limit]


def _option(value: Any) -> str:
    """A policy value as `--option` takes it back (JSON)."""
    return orjson.dumps(value).decode()


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


@deploy_app.command("history")
def history(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Every change and decision of deployment NAME, oldest first."""
    with _deployments(ctx) as deployments:
        events = deployments.history(name)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    print_table(
        f"history of {name}",
        ["time", "kind", "actor", "reason", "split", "evidence"],
        [
            (
                fmt_time(e.at),
                e.kind,
                e.actor,
                e.reason or "-",
                _split(e.split),
                ", ".join(f"{k}={x}" for k, x in _key_evidence(e.evidence, limit=6)) or "-",
            )
            for e in events
        ],
    )


def _changed(deployment: Deployment, what: str, as_json: bool) -> None:
    if as_json:
        print_json(deployment.to_dict())
    else:
        console.print(
            f"deployment {deployment.name!r} {what}: {_describe(deployment)}", markup=False
        )


@deploy_app.command("decide")
def decide(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Decide deployment NAME now, as `modelyard serve --deployment` does every
    --decide-every seconds: step, promote, roll back or wait, recorded with the evidence
    (a manual policy only records the recommendation)."""
    from modelyard.rollout._default import open_rollout

    with open_rollout(settings_of(ctx)) as rollout:
        decision = rollout.decide(name, actor=current_user())
    found = decision.to_dict()
    if as_json:
        print_json(found)
        return
    console.print(f"{name}: {found['action']}: {found['reason']}", markup=False)
    _print_look(found)


@deploy_app.command("promote")
def promote(
    ctx: typer.Context,
    name: str,
    variant: Annotated[
        str | None, typer.Option(help="The variant to promote (default: the one candidate).")
    ] = None,
    reason: Reason = None,
    as_json: JsonFlag = False,
) -> None:
    """Move the alias to a variant's version and send it all traffic; the deployment ends.

    The alias moves through the registry: a protected alias still needs its approval."""
    with _deployments(ctx) as deployments:
        deployment = deployments.promote(
            name, variant=variant, reason=reason or PROMOTED_BY_HAND, actor=current_user()
        )
    _changed(deployment, "promoted", as_json)


@deploy_app.command("rollback")
def rollback(
    ctx: typer.Context, name: str, reason: Reason = None, as_json: JsonFlag = False
) -> None:
    """All traffic back to the primary at once; the deployment ends rolled back."""
    with _deployments(ctx) as deployments:
        deployment = deployments.rollback(
            name, reason=reason or ROLLED_BACK_BY_HAND, actor=current_user()
        )
    _changed(deployment, "rolled back", as_json)


@deploy_app.command("pause")
def pause(ctx: typer.Context, name: str, reason: Reason = None, as_json: JsonFlag = False) -> None:
    """Freeze the split and the decisions; traffic keeps flowing as split."""
    with _deployments(ctx) as deployments:
        deployment = deployments.pause(name, reason=reason or "", actor=current_user())
    _changed(deployment, "paused", as_json)


@deploy_app.command("resume")
def resume(ctx: typer.Context, name: str, reason: Reason = None, as_json: JsonFlag = False) -> None:
    """Let a paused deployment's split and decisions move again."""
    with _deployments(ctx) as deployments:
        deployment = deployments.resume(name, reason=reason or "", actor=current_user())
    _changed(deployment, "resumed", as_json)


@deploy_app.command("split")
def split(
    ctx: typer.Context,
    name: str,
    shares: Annotated[
        list[str],
        typer.Argument(
            help="VARIANT=SHARE for each variant that answers clients, as a "
            "fraction (0.9) or a percentage (90%), summing to 100 %."
        ),
    ],
    reason: Reason = None,
    as_json: JsonFlag = False,
) -> None:
    """Set the split of live traffic by hand: `split NAME primary=90% candidate=10%`."""
    given = _shares(shares)
    with _deployments(ctx) as deployments:
        deployment = deployments.set_split(
            name, given, reason=reason or SPLIT_BY_HAND, actor=current_user()
        )
    _changed(deployment, "split", as_json)


def _shares(items: Sequence[str]) -> dict[str, float]:
    shares: dict[str, float] = {}
    for item in items:
        variant, sep, text = item.partition("=")
        percent = text.strip().endswith("%")
        try:
            value = float(text.strip().removesuffix("%"))
        except ValueError:
            value = None
        if not sep or not variant or value is None:
            raise InvalidInput(f"give each share as VARIANT=0.9 or VARIANT=90%, got {item!r}")
        if variant in shares:
            raise InvalidInput(f"variant {variant!r} is given more than one share")
        shares[variant] = value / 100 if percent else value
    return shares


@deploy_app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete deployment NAME and its history (servers stop serving it at their next look)."""
    with _deployments(ctx) as deployments:
        deployments.delete(name, actor=current_user())
    console.print(f"deployment {name!r} deleted", markup=False)
