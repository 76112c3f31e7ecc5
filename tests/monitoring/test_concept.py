"""Concept drift detectors: one contract for every detector, then known change points.

The benchmark tests print a table of detection delay and false alarms per detector and
stream; run with `pytest -rA` (or `-s`) to see it.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from modelyard.errors import InvalidInput
from modelyard.monitoring._concept import (
    Adwin,
    ChangePoint,
    ConceptDetector,
    ConceptResult,
    Ddm,
    Kswin,
    PageHinkley,
    detect_changes,
)

DETECTORS: dict[str, Callable[[], ConceptDetector]] = {
    "adwin": Adwin,
    "page_hinkley": PageHinkley,
    "kswin": Kswin,
    "ddm": Ddm,
}


def bernoulli_errors(n: int, change_at: int, before: float, after: float, seed: int) -> list[float]:
    """0/1 errors whose rate jumps from `before` to `after` at `change_at`."""
    rng = np.random.default_rng(seed)
    rates = np.where(np.arange(n) < change_at, before, after)
    errors: list[float] = (rng.random(n) < rates).astype(float).tolist()
    return errors


def gaussian_errors(n: int, change_at: int, shift: float, seed: int) -> list[float]:
    """Absolute residuals of a Gaussian whose mean moves by `shift` at `change_at`."""
    rng = np.random.default_rng(seed)
    means = np.where(np.arange(n) < change_at, 0.0, shift)
    errors: list[float] = np.abs(rng.normal(means, 1.0)).tolist()
    return errors


def agrawal_errors(n: int, change_at: int, width: int) -> list[float]:
    """0/1 errors of a frozen tree on river's Agrawal stream, function 0 drifting to 2."""
    from river import tree
    from river.datasets import synth

    model = tree.HoeffdingTreeClassifier()
    for x, y in synth.Agrawal(classification_function=0, seed=11).take(3000):
        model.learn_one(x, y)  # type: ignore[no-untyped-call]
    stream = synth.ConceptDriftStream(
        stream=synth.Agrawal(classification_function=0, seed=1),
        drift_stream=synth.Agrawal(classification_function=2, seed=2),
        position=change_at,
        width=width,
        seed=3,
    )
    return [float(model.predict_one(x) != y) for x, y in stream.take(n)]


# one short stream with a change that every detector (DDM included) finds
STREAM = bernoulli_errors(3000, 1200, 0.1, 0.5, seed=5)


def positions(errors: list[float], detector: ConceptDetector) -> list[int]:
    return [c.position for c in detect_changes(errors, detector=detector).change_points]


# ---------------------------------------------------------------- the shared contract


@pytest.fixture(params=list(DETECTORS))
def make(request: pytest.FixtureRequest) -> Callable[[], ConceptDetector]:
    return DETECTORS[request.param]


def test_detector_follows_the_protocol(make: Callable[[], ConceptDetector]) -> None:
    detector = make()
    assert isinstance(detector, ConceptDetector)
    assert detector.name in DETECTORS
    assert detector.seen == 0
    assert isinstance(detector.update(0.0), bool)
    assert detector.seen == 1


@functools.cache
def one_run(name: str) -> ConceptResult:
    return detect_changes(STREAM, detector=DETECTORS[name]())


@pytest.mark.parametrize("splits", [(700,), (1200, 1201, 2100)])
def test_split_runs_with_stored_state_find_the_same_change_points(
    make: Callable[[], ConceptDetector], splits: tuple[int, ...]
) -> None:
    whole = one_run(make().name)
    assert whole.change_points, "the stream has a change every detector should find"
    found: list[ChangePoint] = []
    state = None
    bounds = [0, *splits, len(STREAM)]
    for start, stop in itertools.pairwise(bounds):
        result = detect_changes(STREAM[start:stop], detector=make().name, state=state)  # type: ignore[arg-type]
        # what the store would do: JSON out, JSON in
        state = json.loads(json.dumps(result.state, allow_nan=False))
        found.extend(result.change_points)
    assert found == list(whole.change_points)
    assert state == json.loads(json.dumps(whole.state))


def test_state_saved_right_after_a_change_point_resumes_exactly(
    make: Callable[[], ConceptDetector],
) -> None:
    whole = one_run(make().name)
    cut = whole.change_points[0].position + 1
    first = detect_changes(STREAM[:cut], detector=make())
    assert first.change_points[-1].position == cut - 1
    state = json.loads(json.dumps(first.state, allow_nan=False))
    rest = detect_changes(STREAM[cut:], detector=make(), state=state)
    assert [*first.change_points, *rest.change_points] == list(whole.change_points)


def test_restored_detector_reports_the_state_it_was_saved_with(
    make: Callable[[], ConceptDetector],
) -> None:
    detector = make()
    for error in STREAM[:1234]:
        detector.update(error)
    saved = json.loads(json.dumps(detector.state(), allow_nan=False))
    restored = type(detector).from_state(saved)
    assert restored.state() == saved
    assert restored.seen == 1234


def test_reset_forgets_everything_seen(make: Callable[[], ConceptDetector]) -> None:
    fresh = make()
    used = make()
    for error in STREAM[1200:2200]:
        used.update(error)
    used.reset()
    assert used.seen == 0
    assert used.state() == fresh.state()
    tail = STREAM[:1600]
    assert [used.update(e) for e in tail] == [fresh.update(e) for e in tail]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "high", None])
def test_non_finite_or_non_numeric_error_is_rejected_and_changes_nothing(
    make: Callable[[], ConceptDetector], bad: object
) -> None:
    detector = make()
    detector.update(1.0)
    before = detector.state()
    with pytest.raises(InvalidInput, match=r"position 1 .*finite number"):
        detector.update(bad)  # type: ignore[arg-type]
    assert detector.state() == before


def test_state_of_another_detector_is_rejected(make: Callable[[], ConceptDetector]) -> None:
    other = next(name for name in DETECTORS if name != make().name)
    with pytest.raises(InvalidInput, match=f"saved by '{other}'"):
        type(make()).from_state(DETECTORS[other]().state())


def test_state_from_a_newer_or_broken_writer_is_rejected(
    make: Callable[[], ConceptDetector],
) -> None:
    state = make().state()
    with pytest.raises(InvalidInput, match="schema 99"):
        type(make()).from_state({**state, "schema": 99})
    with pytest.raises(InvalidInput, match="malformed"):
        type(make()).from_state({**state, "memory": {}})


def test_detect_changes_leaves_the_callers_detector_alone(
    make: Callable[[], ConceptDetector],
) -> None:
    detector = make()
    before = detector.state()
    result = detect_changes(STREAM[:2000], detector=detector)
    assert detector.state() == before
    assert result.seen == 2000


# ---------------------------------------------------------------- detector specifics


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_ddm_takes_only_zero_one_errors(bad: float) -> None:
    with pytest.raises(InvalidInput, match="DDM takes 0/1 errors"):
        Ddm().update(bad)


def test_ddm_takes_booleans() -> None:
    detector = Ddm()
    assert detector.update(True) is False
    assert detector.update(False) is False


def test_adwin_beyond_its_replay_keeps_the_last_errors_and_still_detects() -> None:
    stream = bernoulli_errors(6000, 4000, 0.1, 0.5, seed=9)
    first = detect_changes(stream[:3000], detector=Adwin(replay=500))
    memory = first.state["memory"]
    assert memory["since_reset"] == 3000  # no change yet: the window is cut
    assert memory["errors"] == stream[2500:3000]
    rest = detect_changes(stream[3000:], detector="adwin", state=first.state)
    assert 4000 <= rest.change_points[0].position < 4500


def test_parameters_are_checked_when_built() -> None:
    with pytest.raises(InvalidInput, match="delta"):
        Adwin(delta=1.5)
    with pytest.raises(InvalidInput, match="mode"):
        PageHinkley(mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="stat_size"):
        Kswin(window_size=50, stat_size=30)
    with pytest.raises(InvalidInput, match="drift_threshold"):
        Ddm(warning_threshold=3.0, drift_threshold=2.0)


# ---------------------------------------------------------------- detect_changes


def test_change_points_carry_prediction_ids_and_times() -> None:
    ids = [f"p{i}" for i in range(len(STREAM))]
    times = [1_700_000_000_000 + 1000 * i for i in range(len(STREAM))]
    result = detect_changes(STREAM, detector="adwin", ids=ids, times=times)
    assert result.n_changes >= 1
    for point in result.change_points:
        assert point.detector == "adwin"
        assert point.prediction_id == f"p{point.position}"
        assert point.at_ms == times[point.position]
    json.dumps(result.to_dict(), allow_nan=False)


def test_positions_continue_across_runs() -> None:
    first = detect_changes(STREAM[:1000], detector="page_hinkley")
    second = detect_changes(STREAM[1000:], detector="page_hinkley", state=first.state)
    assert second.seen == len(STREAM)
    assert all(p.position >= 1000 for p in second.change_points)


def test_ids_of_another_length_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="ids has 2 items but errors has 3"):
        detect_changes([0.0, 1.0, 0.0], ids=["a", "b"])


def test_unknown_detector_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="known: adwin, page_hinkley, kswin, ddm"):
        detect_changes([0.0], detector="cusum")  # type: ignore[arg-type]


def test_state_saved_with_other_parameters_is_rejected() -> None:
    state = detect_changes(STREAM[:100], detector=PageHinkley(threshold=20)).state
    with pytest.raises(InvalidInput, match="saved parameters"):
        detect_changes(STREAM[100:200], detector=PageHinkley(), state=state)
    resumed = detect_changes(STREAM[100:200], detector=PageHinkley(threshold=20), state=state)
    assert resumed.seen == 200


# ---------------------------------------------------------------- known change points


@dataclass(frozen=True)
class Expect:
    """Bounds a detector must meet on a stream: found within `max_delay`, few false alarms."""

    max_delay: int = 1000
    max_false_alarms: int = 1


# KSWIN tests every point: river's default alpha (0.005) raises false alarms on long streams
def tuned_kswin() -> Kswin:
    return Kswin(alpha=1e-4, window_size=300, stat_size=100)


BENCHMARKS: dict[str, tuple[Callable[[], list[float]], int, int, dict[str, Expect]]] = {
    "bernoulli 0.1→0.4 @5000": (
        lambda: bernoulli_errors(10_000, 5000, 0.1, 0.4, seed=7),
        5000,
        0,
        {"adwin": Expect(), "page_hinkley": Expect(), "kswin": Expect(), "ddm": Expect()},
    ),
    "|gaussian| mean 0→1 @5000": (
        lambda: gaussian_errors(10_000, 5000, 1.0, seed=7),
        5000,
        0,
        # Page–Hinkley in mode "both" also reacts to dips of the running mean
        {"adwin": Expect(), "page_hinkley": Expect(max_false_alarms=3), "kswin": Expect()},
    ),
    "river Agrawal f0→f2 @5000 (width 50)": (
        lambda: agrawal_errors(10_000, 5000, width=50),
        5000,
        25,
        # the error rate before the drift is ~1.4%: DDM's estimate of it is noisy until
        # thousands of errors are in, and it restarts after each alarm
        {
            "adwin": Expect(),
            "page_hinkley": Expect(),
            "kswin": Expect(),
            "ddm": Expect(max_false_alarms=12),
        },
    ),
}


@pytest.mark.parametrize("stream", list(BENCHMARKS))
def test_detectors_find_known_change_points(stream: str) -> None:
    make_errors, change_at, half_width, expectations = BENCHMARKS[stream]
    errors = make_errors()
    rows = []
    for name in expectations:
        detector = tuned_kswin() if name == "kswin" else DETECTORS[name]()
        found = positions(errors, detector)
        false_alarms = sum(p < change_at - half_width for p in found)
        after = [p for p in found if p >= change_at - half_width]
        delay = after[0] - change_at if after else None
        rows.append((name, delay, false_alarms, len(after)))
    print(f"\n{stream}: {len(errors)} errors, change at {change_at}")
    print(f"  {'detector':<13}{'delay':>7}{'false alarms':>14}{'alarms after':>14}")
    for name, delay, false_alarms, n_after in rows:
        print(f"  {name:<13}{delay!s:>7}{false_alarms:>14}{n_after:>14}")
    for name, delay, false_alarms, _ in rows:
        expect = expectations[name]
        assert delay is not None, f"{name} missed the change in {stream}"
        assert delay <= expect.max_delay, f"{name} took {delay} errors in {stream}"
        assert false_alarms <= expect.max_false_alarms, f"{name}: {false_alarms} in {stream}"
