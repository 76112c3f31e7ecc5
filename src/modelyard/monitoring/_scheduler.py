"""Running monitors on their schedules: from `modelyard monitor schedule`, or on a background
thread of `modelyard serve --monitors` (never on the request path)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelyard._periodic import PeriodicThread
from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    from modelyard.monitoring._monitors import Monitors

logger = logging.getLogger("modelyard.monitoring")


def run_due(monitors: Monitors, *, now: int | None = None) -> list[tuple[str, str]]:
    """Run every due monitor once; a failing monitor is reported, the others still run."""
    outcomes = []
    for name in monitors.due(now=now):
        try:
            result = monitors.run(name, now=now)
        except ModelyardError as exc:  # a model or alias gone: said, and tried again next time
            logger.warning("monitor %s failed: %s", name, exc)
            outcomes.append((name, f"failed: {exc}"))
            continue
        except Exception as exc:  # a bug in one monitor must not starve the ones after it
            logger.exception("monitor %s failed", name)
            outcomes.append((name, f"failed: {type(exc).__name__}: {exc}"))
            continue
        flagged = sum(1 for w in result.windows if w.flagged)
        windows, events = len(result.windows), len(result.events)
        outcomes.append((name, f"{windows} window(s), {flagged} flagged, {events} alert(s)"))
    return outcomes


class MonitorThread(PeriodicThread):
    """A daemon thread running due monitors every `tick` seconds until `stop()`."""

    def __init__(self, monitors: Monitors, *, tick: float = 10.0) -> None:
        super().__init__(
            tick=tick,
            name="modelyard-monitors",
            logger=logger,
            failure="running the due monitors failed",
        )
        self.monitors = monitors

    def look(self) -> None:
        for name, outcome in run_due(self.monitors):
            logger.info("monitor %s: %s", name, outcome)
