"""ONNX graphs, run by onnxruntime on the CPU, and `to_onnx` to export scikit-learn models.

An ONNX file is a graph of standard operators: loading it runs no Python code. The
first output is `predict`; a second 2-D float output (a classifier's probabilities)
is `predict_proba`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, comes_from

FILE = "model.onnx"
PROVIDERS = ["CPUExecutionProvider"]
DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def as_input(values: Any, node: Any) -> Any:
    """`values` (a table, column or array) as the array the graph input `node` takes."""
    dtype = DTYPES.get(node.type)
    if dtype is None:
        raise InvalidInput(f"ONNX input {node.name!r} takes {node.type}, which cannot be fed")
    try:
        array = values.to_numpy(dtype=dtype) if hasattr(values, "to_numpy") else values
        return np.asarray(array, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot feed ONNX input {node.name!r} ({node.type}): {exc}") from None


def is_proba(node: Any) -> bool:
    """Whether the graph output `node` looks like class probabilities: a 2-D float tensor."""
    return node.type in ("tensor(float)", "tensor(double)") and len(node.shape) == 2


class OnnxModel:
    def __init__(self, session: Any) -> None:
        self._session = session
        self._inputs: list[Any] = session.get_inputs()
        outputs: list[Any] = session.get_outputs()
        self._label: str = outputs[0].name
        self._proba: str | None = None
        if len(outputs) > 1 and is_proba(outputs[1]):
            self._proba = outputs[1].name

    def feed(self, data: Any) -> dict[str, Any]:
        """The graph's inputs from `data`: one tensor, or one table column per input."""
        if len(self._inputs) == 1:
            return {self._inputs[0].name: as_input(data, self._inputs[0])}
        names = [node.name for node in self._inputs]
        columns = set(getattr(data, "columns", ()))
        if not set(names) <= columns:
            raise InvalidInput(
                f"the ONNX model has {len(names)} inputs ({', '.join(names)}); "
                "give a table with one column of each name"
            )
        return {
            node.name: as_input(data[node.name], node).reshape(-1, *([1] * (len(node.shape) - 1)))
            for node in self._inputs
        }

    def predict(self, data: Any) -> Any:
        return self._session.run([self._label], self.feed(data))[0]

    def predict_proba(self, data: Any) -> Any:
        if self._proba is None:
            raise InvalidInput(
                "onnx model has no predict_proba: its second output is not a 2-D float tensor"
            )
        return self._session.run([self._proba], self.feed(data))[0]

    def outputs(self, data: Any) -> dict[str, Any]:
        """`predict` and, where the graph has it, `predict_proba`, in one run of the graph."""
        names = [self._label] if self._proba is None else [self._label, self._proba]
        values = self._session.run(names, self.feed(data))
        return dict(zip(("predict", "predict_proba"), values, strict=False))

    @property
    def has_proba(self) -> bool:
        return self._proba is not None

    @property
    def takes_array(self) -> bool:
        """Whether a table's rows go in as one 2-D array (one tensor input): then they can
        be fed as an array in the signature's column order, with no DataFrame between."""
        return len(self._inputs) == 1

    @property
    def native(self) -> Any:
        return self._session


def open_session(source: str | bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Idle pool threads would otherwise spin for a while after each run, taking the CPU
    # that a server's event loop needs: a long latency tail under load.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(source, options, providers=PROVIDERS)


class OnnxFlavor:
    name = "onnx"
    packages = ("onnx", "onnxruntime", "numpy")

    def detect(self, model: Any) -> bool:
        if not comes_from(model, ("onnx",)):
            return False
        import onnx  # already imported: the model's class comes from it

        return isinstance(model, onnx.ModelProto)

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        try:
            data = model.SerializeToString()
        except ValueError as exc:  # protobuf's 2 GB limit
            raise InvalidInput(f"cannot serialize the ONNX model: {exc}") from None
        try:
            open_session(data)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInput(f"onnxruntime cannot run this ONNX model: {exc}") from None
        (folder / FILE).write_bytes(data)
        return {}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> OnnxModel:
        return OnnxModel(open_session(str(folder / FILE)))


def to_onnx(model: Any, sample: Any, *, tolerance: float = 1e-4) -> tuple[bytes, float]:
    """Export a fitted scikit-learn model to ONNX, checked against it on `sample`.

    Returns the ONNX bytes and the largest absolute difference from scikit-learn on
    `sample` (probabilities for classifiers, predictions otherwise; class labels must
    match exactly). The graph takes one float32 tensor, so `sample` must be numeric.
    """
    import skl2onnx
    from sklearn.base import is_classifier

    try:
        features = np.asarray(sample, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"to_onnx needs an all-numeric sample: {exc}") from None
    if features.ndim != 2 or len(features) == 0:
        raise InvalidInput(f"to_onnx needs a non-empty 2-D sample, not shape {features.shape}")
    classifier = is_classifier(model)
    options = {id(model): {"zipmap": False}} if classifier else None
    try:
        proto = skl2onnx.to_onnx(model, features, options=options)
    except Exception as exc:  # skl2onnx raises many types for an unsupported piece
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"skl2onnx cannot convert {type(model).__name__}: {reason}") from None
    data: bytes = proto.SerializeToString()
    session = open_session(data)
    outputs = session.run(None, {session.get_inputs()[0].name: features})
    if classifier:
        check_labels(np.asarray(model.predict(sample)), outputs[0])
    if classifier and hasattr(model, "predict_proba"):
        diff = max_difference(model.predict_proba(sample), outputs[1])
    elif classifier:
        diff = 0.0  # labels only, and they matched exactly
    else:
        diff = max_difference(model.predict(sample), outputs[0])
    if not diff <= tolerance:
        raise InvalidInput(
            f"the ONNX export differs from scikit-learn by up to {diff:.6g} on the sample, "
            f"more than tolerance={tolerance:g}; raise the tolerance or keep the sklearn flavor"
        )
    return data, diff


def check_labels(expected: Any, got: Any) -> None:
    if expected.shape != got.shape or not np.array_equal(expected, got):
        wrong = int(np.sum(expected != got)) if expected.shape == got.shape else len(expected)
        raise InvalidInput(
            f"the ONNX export predicts other class labels than scikit-learn on {wrong} of "
            f"{len(expected)} sample rows; keep the sklearn flavor for this model"
        )


def max_difference(expected: Any, got: Any) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if got.size != expected.size:
        raise InvalidInput(
            f"the ONNX export outputs shape {got.shape} where scikit-learn gives {expected.shape}"
        )
    got = got.reshape(expected.shape)
    return float(np.max(np.abs(expected - got))) if expected.size else 0.0


FLAVOR = OnnxFlavor()
