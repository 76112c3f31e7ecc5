"""The public surface of modelyard.stats, and what importing it costs."""

from __future__ import annotations

import inspect
import subprocess
import sys

import modelyard.stats

ROLLOUT_STATISTICS = {
    "Comparison", "two_proportion_test", "welch_t_test", "mann_whitney_test",
    "paired_t_test", "wilcoxon_test", "mcnemar_test", "paired_bootstrap_test",
    "SequentialResult", "sequential_mean_test", "sequential_proportion_test",
    "SampleRatioResult", "srm_test", "sample_size", "power",
    "ArmChoice", "thompson_beta", "thompson_gaussian",
}  # fmt: skip


def test_every_public_name_is_exported() -> None:
    assert sorted(modelyard.stats.__all__) == sorted(
        name for name in vars(modelyard.stats) if not name.startswith("_") and name != "annotations"
    )


def test_rollout_statistics_are_exported_and_documented() -> None:
    assert set(modelyard.stats.__all__) >= ROLLOUT_STATISTICS
    for name in modelyard.stats.__all__:
        assert inspect.getdoc(getattr(modelyard.stats, name)), f"{name} has no docstring"


def test_importing_stats_does_not_load_scipy() -> None:
    code = "import sys, modelyard.stats; print('scipy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
