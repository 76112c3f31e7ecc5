"""Models as files: flavors, safe serialization, manifests and signatures.

`my.log_model` and `my.load_model` store and rebuild models with these; this package
holds the values they exchange (`Manifest`, `Signature`, `LoadedModel`), the
`PythonModel` base class for custom code and the ONNX export.
"""

from __future__ import annotations

from typing import Any

from modelyard.models._load import LoadedModel, PackageVersionWarning
from modelyard.models._manifest import (
    DatasetRef,
    FileEntry,
    Manifest,
    OnnxExport,
    ReferenceFiles,
)
from modelyard.models._python import PythonModel
from modelyard.models._signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    TensorSpec,
    infer_signature,
)


def to_onnx(model: Any, sample: Any, *, tolerance: float = 1e-4) -> tuple[bytes, float]:
    """Export a scikit-learn model to ONNX; returns the bytes and the max abs difference
    between ONNX Runtime's and scikit-learn's outputs on `sample` (refused above `tolerance`)."""
    from modelyard.models._onnx import to_onnx as export

    return export(model, sample, tolerance=tolerance)


__all__ = [
    "ColumnSpec",
    "DatasetRef",
    "FileEntry",
    "LoadedModel",
    "Manifest",
    "OnnxExport",
    "OutputSpec",
    "PackageVersionWarning",
    "PythonModel",
    "ReferenceFiles",
    "Signature",
    "TensorSpec",
    "infer_signature",
    "to_onnx",
]
