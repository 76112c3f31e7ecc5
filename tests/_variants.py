"""Small model versions for deployment tests: they must live in an importable module.

Each answers something that tells it apart, or fails on purpose: a constant, a model that
raises, one slower than any candidate timeout. The failing ones fail only on rows whose `x`
is positive, so that logging them (which predicts on the example, `x` <= 0) succeeds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Self

import numpy as np

from modelyard.models import PythonModel


class Constant(PythonModel):
    """Predicts `value` for every row."""

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def predict(self, data: Any) -> Any:
        return np.full(len(data), self.value)

    def save(self, folder: Path) -> None:
        (folder / "value.json").write_text(json.dumps(self.value))

    @classmethod
    def load(cls, folder: Path) -> Self:
        return cls(json.loads((folder / "value.json").read_text()))


class Broken(PythonModel):
    """Raises on rows with a positive `x`, as a bad candidate would."""

    def predict(self, data: Any) -> Any:
        if (np.asarray(data["x"]) > 0).any():
            raise RuntimeError("this version is broken")
        return np.zeros(len(data))


class Slow(PythonModel):
    """Takes half a second over rows with a positive `x`: longer than a short timeout."""

    def predict(self, data: Any) -> Any:
        if (np.asarray(data["x"]) > 0).any():
            time.sleep(0.5)
        return np.full(len(data), 9)
