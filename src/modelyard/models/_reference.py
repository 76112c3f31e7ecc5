"""The training reference a version keeps for monitoring: what its training data looked like.

Written by `log_model` from tabular `training_data` into the model's folder, so the files
are listed and hashed in the manifest like any other: the profile of every training row,
a uniform sample of at most `SAMPLE_ROWS` rows, and the model's outputs on that sample in
the columns `modelyard.monitoring.join_feedback` gives served predictions (`prediction`,
`score`, and `label` when the labels were given).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.models._conform import as_array
from modelyard.models._manifest import ReferenceFiles

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

    from modelyard.models._flavor import Predictor
    from modelyard.models._signature import Signature

FOLDER = "reference"
PROFILE_FILE = f"{FOLDER}/profile.json"
SAMPLE_FILE = f"{FOLDER}/sample.parquet"
OUTPUTS_FILE = f"{FOLDER}/outputs.parquet"
SAMPLE_ROWS = 10_000
SEED = 0


def write_reference(
    folder: Path, features: Any, labels: Any, signature: Signature, predictor: Predictor
) -> ReferenceFiles | None:
    """Write the reference files into `folder`; None (nothing written) for non-tabular data.

    `features` is X, a DataFrame or a 2-D array (None or other data, e.g. image tensors,
    have no reference); `labels` is y or None, refused unless one per row of X. Data the
    signature refuses or Parquet cannot hold gives a warning and no reference rather than
    failing `log_model`.
    """
    import pandas as pd
    import pyarrow as pa

    from modelyard.data import profile

    frame = _table(features, signature)
    if frame is None:
        return None
    target = None if labels is None else _labels(labels, len(frame))
    positions = sample_positions(len(frame), SAMPLE_ROWS, SEED)
    chosen = features.iloc[positions] if isinstance(features, pd.DataFrame) else features[positions]
    try:
        checked = signature.validate_input(chosen)
        outputs = _outputs(predictor, checked)
        if target is not None:
            outputs["label"] = _column(target[positions])
        (folder / FOLDER).mkdir()
        (folder / PROFILE_FILE).write_text(profile(frame, seed=SEED).to_json(), encoding="utf-8")
        frame.iloc[positions].reset_index(drop=True).to_parquet(folder / SAMPLE_FILE, index=False)
        pd.DataFrame(outputs).to_parquet(folder / OUTPUTS_FILE, index=False)
    except (InvalidInput, pa.ArrowException) as exc:
        shutil.rmtree(folder / FOLDER, ignore_errors=True)
        warnings.warn(
            f"no training reference stored for monitoring: {exc}", UserWarning, stacklevel=4
        )
        return None
    return ReferenceFiles(
        profile=PROFILE_FILE,
        sample=SAMPLE_FILE,
        outputs=OUTPUTS_FILE,
        rows=len(frame),
        sample_rows=len(positions),
    )


def sample_positions(rows: int, size: int, seed: int) -> npt.NDArray[np.int64]:
    """Positions of a uniform sample of `size` of `rows` rows (all when fewer), in order."""
    if rows <= size:
        return np.arange(rows, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(rows, size=size, replace=False)
    return np.sort(chosen).astype(np.int64)


def _table(features: Any, signature: Signature) -> pd.DataFrame | None:
    """`features` as a frame with the signature's column names; None when not tabular.

    A 2-D array takes the names of a table signature; under a tensor signature, which names
    no columns, its columns are "0", "1", ... by position.
    """
    import pandas as pd

    if isinstance(features, pd.DataFrame):
        return features.set_axis([str(c) for c in features.columns], axis=1)
    if not isinstance(features, np.ndarray) or features.ndim != 2:
        return None
    width = features.shape[1]
    names = [c.name for c in signature.columns or []]
    if len(names) != width:
        names = [str(i) for i in range(width)]
    return pd.DataFrame(features, columns=names)


def _labels(labels: Any, rows: int) -> npt.NDArray[Any]:
    values = as_array(labels)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 0 or len(values) != rows:
        given = "one value" if values.ndim == 0 else f"{len(values)} rows"
        raise InvalidInput(
            f"training_data=(X, y): X has {rows} rows but y has {given}; pass one label per row"
        )
    return values


def _outputs(predictor: Predictor, checked: Any) -> dict[str, Any]:
    """`prediction` and `score` as `join_feedback` defines them, one per row."""
    predicted = np.asarray(predictor.predict(checked))
    score = np.full(len(predicted), np.nan)
    if predictor.has_proba:
        proba = np.asarray(predictor.predict_proba(checked))
        if proba.ndim == 2 and proba.shape[1] == 2:
            score = proba[:, 1].astype(np.float64)
    return {"prediction": _column(predicted), "score": score}


def _column(values: npt.NDArray[Any]) -> Any:
    """One value per row: the array itself, or a list per row for multi-output arrays."""
    if values.ndim == 1:
        return values
    return [row.tolist() for row in values]
