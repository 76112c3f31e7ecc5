"""The public surface of modelyard.stats, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import modelyard.stats


def test_every_public_name_is_exported() -> None:
    assert sorted(modelyard.stats.__all__) == sorted(
        name for name in vars(modelyard.stats) if not name.startswith("_") and name != "annotations"
    )


def test_importing_stats_does_not_load_scipy() -> None:
    code = "import sys, modelyard.stats; print('scipy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
