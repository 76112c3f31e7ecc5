"""Objects that create a marker file when deserialized: proof that loading ran code."""

from __future__ import annotations

import pathlib
from typing import Any


class PickleBomb:
    """Unpickling this calls `Path.touch(marker)`."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class TouchOnSetstate:
    """Rebuilding this from its state (as skops would, if trusted) touches `marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def predict(self, data: Any) -> Any:
        return data

    def __setstate__(self, state: dict[str, Any]) -> None:
        pathlib.Path(state["marker"]).touch()
        self.__dict__.update(state)
