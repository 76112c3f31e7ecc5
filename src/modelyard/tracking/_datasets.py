"""Dataset identity for lineage: a content hash and a schema, without storing the data."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.tracking._entities import DatasetInput


def describe_dataset(data: Any, *, name: str, role: str, source: str | None = None) -> DatasetInput:
    """Hash and describe a DataFrame, Series, NumPy array or file for `log_dataset`.

    Two datasets with the same columns, dtypes, index and values get the same digest.
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, str | os.PathLike):
        return _describe_file(Path(data), name=name, role=role, source=source)
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        schema = {str(col): str(dtype) for col, dtype in data.dtypes.items()}
        digest = hashlib.sha256()
        digest.update(repr(sorted(schema.items())).encode())
        digest.update(repr([str(c) for c in data.columns]).encode())
        digest.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
        rows, cols = data.shape
        return DatasetInput(name, role, digest.hexdigest(), schema, rows, cols, source)
    if isinstance(data, np.ndarray):
        array = np.ascontiguousarray(data)
        if array.dtype.hasobject:
            raise InvalidInput("log_dataset: object arrays cannot be hashed; use a DataFrame")
        digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
        schema = {"dtype": str(array.dtype), "shape": str(array.shape)}
        cols = array.shape[1] if array.ndim > 1 else 1
        return DatasetInput(name, role, digest.hexdigest(), schema, array.shape[0], cols, source)
    raise InvalidInput(
        f"log_dataset takes a pandas DataFrame or Series, a NumPy array or a file path, "
        f"not {type(data).__name__}"
    )


def _describe_file(path: Path, *, name: str, role: str, source: str | None) -> DatasetInput:
    if not path.is_file():
        raise InvalidInput(f"log_dataset: {str(path)!r} is not a file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    schema = {"format": path.suffix.lstrip(".") or "unknown", "bytes": str(path.stat().st_size)}
    return DatasetInput(name, role, digest.hexdigest(), schema, None, None, source or str(path))
