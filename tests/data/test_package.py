"""The public surface of modelyard.data, what importing it costs, and the names
modelyard.monitoring re-exports from it."""

from __future__ import annotations

import subprocess
import sys

import modelyard.data
import modelyard.monitoring


def test_every_public_name_loads() -> None:
    for name in modelyard.data.__all__:
        assert getattr(modelyard.data, name) is not None


def test_importing_data_loads_neither_numpy_nor_pandas() -> None:
    code = (
        "import sys, modelyard.data; "
        "print(sorted(m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_monitoring_exports_the_same_profile_names() -> None:
    for name in ("ColumnProfile", "Profile", "profile", "profile_parquet"):
        assert name in modelyard.data.__all__
        assert name in modelyard.monitoring.__all__
        assert getattr(modelyard.monitoring, name) is getattr(modelyard.data, name)
