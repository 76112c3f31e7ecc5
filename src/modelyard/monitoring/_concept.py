"""Concept drift: online change detectors over the stream of per-prediction errors.

Once labels arrive, each prediction has an error (0/1 for a misclassification, a loss or an
absolute residual for regression). A change in that stream means the relation between inputs
and target moved, even when the inputs did not. The detectors wrap river's: ADWIN,
Page–Hinkley and KSWIN take any finite error; DDM takes 0/1 errors only.

Detectors run in batches (one per monitoring run) and their state is stored between runs as a
JSON-able dict, never as a pickle. The guarantee, for a stream split anywhere into runs:

- `PageHinkley`, `Kswin` and `Ddm` store their complete state (running sums, the sliding
  window, KSWIN's random generator): the restored detector continues exactly as if the runs
  were one.
- `Adwin` (river's is native code with no public state) stores the errors seen since its last
  reset (its start or its last change point), at most `replay` of them, and is rebuilt by
  replaying them. With at most `replay` errors since the last reset the restored detector is
  identical; beyond that it continues as an ADWIN that saw only the last `replay` errors (its
  window is cut to them). `state()["memory"]["since_reset"] > replay` says when.

Positions count from the first error the detector ever saw, across runs.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable

from modelyard.errors import InvalidInput, MissingDependency

STATE_SCHEMA = 1

DetectorName = Literal["adwin", "page_hinkley", "kswin", "ddm"]


@runtime_checkable
class ConceptDetector(Protocol):
    """An online detector of change points in a stream of errors."""

    @property
    def name(self) -> str:
        """The detector's name, recorded with each change point."""
        ...

    @property
    def seen(self) -> int:
        """How many errors the detector has taken since it was built or reset."""
        ...

    def update(self, error: float) -> bool:
        """Take the next error; True when a change is detected at this point."""
        ...

    def reset(self) -> None:
        """Forget everything seen, as if just built with the same parameters."""
        ...

    def state(self) -> dict[str, Any]:
        """A JSON-able dict from which `from_state` rebuilds this detector."""
        ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a detector saved with `state()`."""
        ...


@dataclass(frozen=True)
class ChangePoint:
    """A change detected in the error stream, at `position` (0-based, across runs)."""

    detector: str
    position: int
    prediction_id: str | None = None
    at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ConceptResult:
    """The change points of one run and the detector state to store for the next."""

    detector: str
    change_points: tuple[ChangePoint, ...]
    state: dict[str, Any]
    n_errors: int
    seen: int

    @property
    def n_changes(self) -> int:
        """How many change points this run found."""
        return len(self.change_points)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the state included)."""
        return {
            "detector": self.detector,
            "change_points": [c.to_dict() for c in self.change_points],
            "state": self.state,
            "n_errors": self.n_errors,
            "n_changes": self.n_changes,
            "seen": self.seen,
        }


def _river_drift() -> Any:
    try:
        from river import drift
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependency(
            "concept drift detectors need river; pip install 'modelyard[monitoring]'"
        ) from exc
    return drift


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _inf_if_none(value: float | None) -> float:
    return math.inf if value is None else float(value)


class _RiverDetector:
    """What every river-backed detector shares: parameters, counting, input checks, state."""

    name: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        self._params = params
        self._seen = 0
        self._build()

    @property
    def seen(self) -> int:
        return self._seen

    def update(self, error: float) -> bool:
        value = self._check(error)
        detected = self._step(value)
        self._seen += 1
        return detected

    def reset(self) -> None:
        self._seen = 0
        self._build()

    def state(self) -> dict[str, Any]:
        return {
            "schema": STATE_SCHEMA,
            "detector": self.name,
            "params": dict(self._params),
            "seen": self._seen,
            "memory": self._memory(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        schema = state.get("schema") if isinstance(state, Mapping) else None
        if not isinstance(schema, int) or schema > STATE_SCHEMA:
            raise InvalidInput(
                f"detector state has schema {schema!r}; this modelyard reads schema "
                f"{STATE_SCHEMA} and older: upgrade modelyard or start without the state"
            )
        if state.get("detector") != cls.name:
            raise InvalidInput(
                f"detector state was saved by {state.get('detector')!r}, not {cls.name!r}: "
                f"restore it with detector={state.get('detector')!r}"
            )
        try:
            detector = cls(**state["params"])
            detector._seen = int(state["seen"])
            detector._restore(state["memory"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInput(
                f"malformed {cls.name} state ({type(exc).__name__}: {exc}); "
                "start without the state to rebuild it"
            ) from exc
        return detector

    def _check(self, error: float) -> float:
        try:
            value = float(error)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise InvalidInput(
                f"error at position {self._seen} is {error!r}, not a finite number: "
                "leave out predictions whose label or error is missing"
            )
        return value

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    # what each detector fills in
    def _build(self) -> None:
        raise NotImplementedError

    def _step(self, value: float) -> bool:
        raise NotImplementedError

    def _memory(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore(self, memory: Mapping[str, Any]) -> None:
        raise NotImplementedError


def _positive(name: str, value: float, *, upper: float | None = None) -> None:
    if not value > 0 or (upper is not None and not value < upper):
        bound = f" and below {upper}" if upper is not None else ""
        raise InvalidInput(f"{name} must be above 0{bound}, got {value!r}")


class Adwin(_RiverDetector):
    """ADWIN: adaptive window whose two halves differ in mean (any finite error).

    `replay` bounds the errors kept for persistence (see the module docstring).
    """

    name = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        *,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
        replay: int = 10_000,
    ) -> None:
        _positive("delta", delta, upper=1.0)
        for key, value in (
            ("clock", clock),
            ("max_buckets", max_buckets),
            ("min_window_length", min_window_length),
            ("grace_period", grace_period),
            ("replay", replay),
        ):
            _positive(key, value)
        super().__init__(
            delta=float(delta),
            clock=int(clock),
            max_buckets=int(max_buckets),
            min_window_length=int(min_window_length),
            grace_period=int(grace_period),
            replay=int(replay),
        )

    def _build(self) -> None:
        params = {k: v for k, v in self._params.items() if k != "replay"}
        self._river = _river_drift().ADWIN(**params)
        self._history: deque[float] = deque(maxlen=self._params["replay"])
        self._since_reset = 0

    def _step(self, value: float) -> bool:
        self._river.update(value)
        if self._river.drift_detected:
            # river's ADWIN starts afresh on the next update: nothing before counts
            self._history.clear()
            self._since_reset = 0
            return True
        self._history.append(value)
        self._since_reset += 1
        return False

    def _memory(self) -> dict[str, Any]:
        return {"errors": list(self._history), "since_reset": self._since_reset}

    def _restore(self, memory: Mapping[str, Any]) -> None:
        errors = [float(e) for e in memory["errors"]]
        since_reset = int(memory["since_reset"])
        for value in errors:
            # a cut window may detect during the replay: it then restarts from that point
            if self._step(value):
                since_reset = 0
        self._since_reset = max(since_reset, len(self._history))


class PageHinkley(_RiverDetector):
    """Page–Hinkley: cumulative deviation from the running mean (any finite error).

    `mode` "up" watches only for rising errors, "down" only for falling, "both" for either.
    """

    name = "page_hinkley"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        if mode not in ("up", "down", "both"):
            raise InvalidInput(f"mode must be 'up', 'down' or 'both', got {mode!r}")
        _positive("min_instances", min_instances)
        _positive("threshold", threshold)
        if not 0 < alpha <= 1:
            raise InvalidInput(f"alpha (the forgetting factor) must be in (0, 1], got {alpha!r}")
        if delta < 0:
            raise InvalidInput(f"delta must be 0 or above, got {delta!r}")
        super().__init__(
            min_instances=int(min_instances),
            delta=float(delta),
            threshold=float(threshold),
            alpha=float(alpha),
            mode=mode,
        )

    def _build(self) -> None:
        self._river = _river_drift().PageHinkley(**self._params)

    def _step(self, value: float) -> bool:
        self._river.update(value)
        return bool(self._river.drift_detected)

    def _memory(self) -> dict[str, Any]:
        ph = self._river
        return {
            "n": ph._x_mean.n,
            "mean": ph._x_mean._mean,
            "sum_increase": ph._sum_increase,
            "sum_decrease": ph._sum_decrease,
            "min_increase": _finite_or_none(ph._min_increase),
            "max_decrease": float(ph._max_decrease),
            "drift": bool(ph._drift_detected),
        }

    def _restore(self, memory: Mapping[str, Any]) -> None:
        ph = self._river
        ph._x_mean.n = float(memory["n"])
        ph._x_mean._mean = float(memory["mean"])
        ph._sum_increase = float(memory["sum_increase"])
        ph._sum_decrease = float(memory["sum_decrease"])
        ph._min_increase = _inf_if_none(memory["min_increase"])
        ph._max_decrease = float(memory["max_decrease"])
        ph._drift_detected = bool(memory["drift"])


class Kswin(_RiverDetector):
    """KSWIN: Kolmogorov–Smirnov test between the newest errors and a sample of older ones.

    `seed` fixes the sampling, so the same errors give the same change points.
    """

    name = "kswin"

    def __init__(
        self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30, seed: int = 0
    ) -> None:
        _positive("alpha", alpha, upper=1.0)
        _positive("stat_size", stat_size)
        if not window_size >= 2 * stat_size:
            raise InvalidInput(
                f"window_size ({window_size}) must be at least twice stat_size ({stat_size}) so "
                "the older part of the window can be sampled"
            )
        super().__init__(
            alpha=float(alpha), window_size=int(window_size), stat_size=int(stat_size), seed=seed
        )

    def _build(self) -> None:
        self._river = _river_drift().KSWIN(**self._params)

    def _step(self, value: float) -> bool:
        self._river.update(value)
        return bool(self._river.drift_detected)

    def _memory(self) -> dict[str, Any]:
        ks = self._river
        version, internal, gauss_next = ks._rng.getstate()
        return {
            "window": [float(v) for v in ks.window],
            "n": ks.n,
            "p_value": float(ks.p_value),
            "rng": [version, list(internal), gauss_next],
            "drift": bool(ks._drift_detected),
        }

    def _restore(self, memory: Mapping[str, Any]) -> None:
        ks = self._river
        ks.window = deque((float(v) for v in memory["window"]), maxlen=ks.window_size)
        ks.n = int(memory["n"])
        ks.p_value = float(memory["p_value"])
        version, internal, gauss_next = memory["rng"]
        rng = random.Random()
        rng.setstate((int(version), tuple(int(i) for i in internal), gauss_next))
        ks._rng = rng
        ks._drift_detected = bool(memory["drift"])


class Ddm(_RiverDetector):
    """DDM: the error rate rises above its best level by `drift_threshold` deviations.

    Takes 0/1 errors only (misclassified or not); `warning` is the earlier alarm level.
    """

    name = "ddm"

    def __init__(
        self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0
    ) -> None:
        _positive("warm_start", warm_start)
        _positive("warning_threshold", warning_threshold)
        if not drift_threshold > warning_threshold:
            raise InvalidInput(
                f"drift_threshold ({drift_threshold}) must exceed warning_threshold "
                f"({warning_threshold})"
            )
        super().__init__(
            warm_start=int(warm_start),
            warning_threshold=float(warning_threshold),
            drift_threshold=float(drift_threshold),
        )

    @property
    def warning(self) -> bool:
        """Whether the last error put the detector in its warning zone."""
        return bool(self._river.warning_detected)

    def _build(self) -> None:
        self._river = _river_drift().binary.DDM(**self._params)

    def _check(self, error: float) -> float:
        value = super()._check(error)
        if value not in (0.0, 1.0):
            raise InvalidInput(
                f"DDM takes 0/1 errors (misclassified or not), got {error!r} at position "
                f"{self._seen}: use Adwin, PageHinkley or Kswin for real-valued errors"
            )
        return value

    def _step(self, value: float) -> bool:
        self._river.update(value == 1.0)
        return bool(self._river.drift_detected)

    def _memory(self) -> dict[str, Any]:
        ddm = self._river
        return {
            "n": ddm._p.n,
            "mean": ddm._p._mean,
            "p_min": ddm._p_min,
            "s_min": ddm._s_min,
            "ps_min": _finite_or_none(ddm._ps_min),
            "warning": bool(ddm._warning_detected),
            "drift": bool(ddm._drift_detected),
        }

    def _restore(self, memory: Mapping[str, Any]) -> None:
        ddm = self._river
        ddm._p.n = float(memory["n"])
        ddm._p._mean = float(memory["mean"])
        ddm._p_min = None if memory["p_min"] is None else float(memory["p_min"])
        ddm._s_min = None if memory["s_min"] is None else float(memory["s_min"])
        ddm._ps_min = _inf_if_none(memory["ps_min"])
        ddm._warning_detected = bool(memory["warning"])
        ddm._drift_detected = bool(memory["drift"])


DETECTORS: dict[str, type[_RiverDetector]] = {
    cls.name: cls for cls in (Adwin, PageHinkley, Kswin, Ddm)
}


def _starting_detector(
    detector: DetectorName | ConceptDetector, state: Mapping[str, Any] | None
) -> ConceptDetector:
    """A fresh detector to run on: never the caller's, which stays as it was."""
    if isinstance(detector, str):
        cls = DETECTORS.get(detector)
        if cls is None:
            raise InvalidInput(
                f"unknown concept drift detector {detector!r}; known: {', '.join(DETECTORS)}"
            )
        return cls() if state is None else cls.from_state(state)
    if not isinstance(detector, ConceptDetector):
        raise InvalidInput(
            f"detector must be one of {', '.join(DETECTORS)} or a ConceptDetector, "
            f"got {type(detector).__name__}"
        )
    own = detector.state()
    if state is None:
        return type(detector).from_state(own)
    if own.get("params") != state.get("params"):
        raise InvalidInput(
            f"the state was saved with parameters {state.get('params')}, the detector has "
            f"{own.get('params')}: build the detector with the saved parameters or start "
            "without the state"
        )
    return type(detector).from_state(state)


def detect_changes(
    errors: Sequence[float],
    *,
    detector: DetectorName | ConceptDetector = "adwin",
    ids: Sequence[str] | None = None,
    times: Sequence[int] | None = None,
    state: Mapping[str, Any] | None = None,
) -> ConceptResult:
    """Run a detector over the next errors of a stream and return its change points.

    `state` is the `ConceptResult.state` of the previous run (None for the first); `ids` and
    `times` (epoch milliseconds) label each error's prediction. Neither `detector` nor `state`
    is changed.
    """
    for label, values in (("ids", ids), ("times", times)):
        if values is not None and len(values) != len(errors):
            raise InvalidInput(
                f"{label} has {len(values)} items but errors has {len(errors)}: give one per error"
            )
    running = _starting_detector(detector, state)
    offset = running.seen
    points = [
        ChangePoint(
            detector=running.name,
            position=offset + i,
            prediction_id=None if ids is None else ids[i],
            at_ms=None if times is None else int(times[i]),
        )
        for i, error in enumerate(errors)
        if running.update(error)
    ]
    return ConceptResult(
        detector=running.name,
        change_points=tuple(points),
        state=running.state(),
        n_errors=len(errors),
        seen=running.seen,
    )


__all__ = [
    "DETECTORS",
    "Adwin",
    "ChangePoint",
    "ConceptDetector",
    "ConceptResult",
    "Ddm",
    "Kswin",
    "PageHinkley",
    "detect_changes",
]
