"""The drift scenario of the monitoring benchmark: 20 numeric columns of mixed shapes and 5
categorical ones, unchanged or with 6 known changes.

It mirrors `tests/_drift_data.py` column for column (the tests must not import from
`bench/`, and the benchmark does not import from `tests/`): change one, change the other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHANGED = ["normal_a", "normal_b", "normal_c", "lognormal_a", "plan", "channel"]
CATEGORICAL = ["plan", "channel", "city", "segment", "device"]
CITIES = ["oslo", "rome", "lima", "kyiv", "pune", "nagoya"]


def frame(rows: int, *, seed: int, changed: bool = False) -> pd.DataFrame:
    """One sample; with `changed`, the 6 columns in `CHANGED` are shifted:
    a mean by 0.25 and one by 0.5 standard deviations, a variance ×1.5, a lognormal's scale
    ×1.3, a category's share moved by 10 points, a new category at 5 %."""
    rng = np.random.default_rng(seed)
    shift = 1.0 if changed else 0.0
    data: dict[str, object] = {
        "normal_a": rng.normal(10 + 0.25 * 2 * shift, 2, rows),
        "normal_b": rng.normal(0 + 0.5 * shift, 1, rows),
        "normal_c": rng.normal(5, np.sqrt(1.5) if changed else 1.0, rows),
        "lognormal_a": rng.lognormal(0, 0.75, rows) * (1.3 if changed else 1.0),
        "normal_d": rng.normal(-3, 0.5, rows),
        "normal_e": rng.normal(100, 15, rows),
        "lognormal_b": rng.lognormal(1, 0.5, rows),
        "exponential_a": rng.exponential(2.0, rows),
        "exponential_b": rng.exponential(0.3, rows),
        "uniform_a": rng.uniform(0, 1, rows),
        "uniform_b": rng.uniform(-50, 50, rows),
        "gamma_a": rng.gamma(2.0, 2.0, rows),
        "beta_a": rng.beta(2, 5, rows),
        "bimodal_a": np.where(
            rng.random(rows) < 0.4, rng.normal(-2, 0.5, rows), rng.normal(2, 0.7, rows)
        ),
        "student_t": rng.standard_t(4, rows),
        "poisson_a": rng.poisson(3, rows),
        "poisson_b": rng.poisson(12, rows),
        "binomial_a": rng.binomial(20, 0.3, rows),
        "integer_a": rng.integers(0, 1000, rows),
        "skewed_a": rng.pareto(3.0, rows),
    }
    plan = ["basic", "plus", "pro"]
    plan_p = [0.6, 0.3, 0.1] if not changed else [0.5, 0.4, 0.1]  # 10 points moved
    data["plan"] = rng.choice(plan, rows, p=plan_p)
    channel = ["web", "app", "store", "phone"]
    channel_p = np.array([0.5, 0.3, 0.15, 0.05])
    if changed:  # a new category at 5 %, the others scaled down
        data["channel"] = rng.choice([*channel, "partner"], rows, p=[*(channel_p * 0.95), 0.05])
    else:
        data["channel"] = rng.choice(channel, rows, p=channel_p)
    data["city"] = rng.choice(CITIES, rows)
    data["segment"] = rng.choice(["a", "b"], rows, p=[0.7, 0.3])
    data["device"] = rng.choice(["ios", "android", "desktop"], rows, p=[0.3, 0.4, 0.3])
    return pd.DataFrame(data)
