"""The wire formats: Open Inference Protocol v2, the plain /v1 JSON, and MLflow's /invocations.

Each `decode_*` turns a parsed JSON body into a `Batch` through the model's `Reader`, or
raises `InvalidInput` naming what is wrong; each `encode_*` builds the response body.
Pure functions over values: the app does the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.serving._inputs import Batch, Reader

# Open Inference Protocol tensor datatypes and the NumPy dtypes they carry.
OIP_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse_json(body: bytes) -> Any:
    if not body:
        raise InvalidInput("the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None


def oip_datatype(dtype: Any) -> str:
    """The Open Inference Protocol datatype of a NumPy dtype or a signature's dtype name."""
    if isinstance(dtype, str) and dtype not in _NUMBERS:
        return "BYTES"  # text, categories, dates
    kind = np.dtype(dtype)
    if kind.kind == "b":
        return "BOOL"
    prefix = {"i": "INT", "u": "UINT", "f": "FP"}.get(kind.kind)
    return "BYTES" if prefix is None else f"{prefix}{kind.itemsize * 8}"


_NUMBERS = frozenset(
    {"bool", "float16", "float32", "float64"}
    | {f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)}
)


# -- Open Inference Protocol v2 ----------------------------------------------------------


def decode_v2(body: Any, reader: Reader) -> tuple[Batch, list[str] | None, str | None]:
    """An inference request: the input batch, the outputs asked for, the request id."""
    if not isinstance(body, dict):
        raise InvalidInput("an inference request is a JSON object with an 'inputs' list")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    tensors = [_tensor(t, i) for i, t in enumerate(inputs)]
    names = [name for name, *_ in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput("input tensor names must be unique")
    return _v2_batch(tensors, reader), _requested_outputs(body.get("outputs")), request_id


def _tensor(tensor: Any, position: int) -> tuple[str, list[int], str, list[Any]]:
    if not isinstance(tensor, dict):
        raise InvalidInput(f"inputs[{position}] must be an object with name, shape, datatype, data")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{position}] needs a 'name'")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(f"input {name!r}: 'shape' must be a list of non-negative integers")
    datatype = tensor.get("datatype")
    if datatype not in OIP_DTYPES:
        raise InvalidInput(
            f"input {name!r}: unknown datatype {datatype!r}; one of {', '.join(OIP_DTYPES)}"
        )
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidInput(f"input {name!r}: 'data' must be a list")
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise InvalidInput(
            f"input {name!r}: shape {shape} holds {math.prod(shape)} values but 'data' has "
            f"{len(flat)}"
        )
    _check_datatype(name, datatype, flat)
    return name, shape, datatype, flat


def _flatten(data: list[Any]) -> list[Any]:
    if not any(type(v) is list for v in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _check_datatype(name: str, datatype: str, flat: list[Any]) -> None:
    if datatype == "BYTES":
        wanted: tuple[type, ...] = (str,)
    elif datatype == "BOOL":
        wanted = (bool,)
    else:
        wanted = (int, float)
    numeric = datatype not in ("BYTES", "BOOL")
    for value in flat:
        if value is None or (isinstance(value, wanted) and not (numeric and type(value) is bool)):
            continue
        raise InvalidInput(f"input {name!r} is declared {datatype} but holds {value!r}")


def _v2_batch(tensors: list[tuple[str, list[int], str, list[Any]]], reader: Reader) -> Batch:
    if reader.is_table:
        columns = set(reader.names)
        if len(tensors) == 1 and tensors[0][0] not in columns:
            name, shape, _, flat = tensors[0]
            width = len(reader.names)
            if len(shape) != 2 or shape[1] != width:
                raise InvalidInput(
                    f"input {name!r} has shape {shape}; the model takes [N, {width}] (one "
                    f"column each: {', '.join(reader.names)}) or one tensor per column"
                )
            return reader.rows([flat[i * width : (i + 1) * width] for i in range(shape[0])])
        for name, shape, _, _ in tensors:
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise InvalidInput(
                    f"input {name!r} has shape {shape}; a column tensor has shape [N] or [N, 1]"
                )
        return reader.columnar({name: flat for name, _, _, flat in tensors})
    if len(tensors) != 1:
        raise InvalidInput(f"the model takes one input tensor, got {len(tensors)}")
    name, shape, datatype, flat = tensors[0]
    try:
        array = np.array(flat, dtype=OIP_DTYPES[datatype]).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"input {name!r} cannot be read as {datatype}: {exc}") from None
    return reader.rows(array)


def _requested_outputs(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    return [o["name"] for o in outputs]


def encode_v2(
    name: str,
    version: int | None,
    request_id: str,
    outputs: Mapping[str, Any],
    ids: Sequence[str],
    variant: str | None = None,
) -> bytes:
    """An inference response; a deployment's names the `variant` that answered in
    `parameters`."""
    parameters: dict[str, Any] = {"prediction_ids": ids}
    if variant is not None:
        parameters["variant"] = variant
    return dumps(
        {
            "model_name": name,
            "model_version": "" if version is None else str(version),
            "id": request_id,
            "parameters": parameters,
            "outputs": [
                {
                    "name": output,
                    "shape": list(values.shape),
                    "datatype": oip_datatype(values.dtype),
                    "data": values.ravel(),
                }
                for output, values in outputs.items()
            ],
        }
    )


# -- /v1 and /invocations ----------------------------------------------------------------


def decode_v1(body: Any, reader: Reader) -> Batch:
    """`{"instances": [...]}` (rows as lists or objects) or `{"inputs": {column: [...]}}`."""
    if not isinstance(body, dict) or not ({"instances", "inputs"} & body.keys()):
        raise InvalidInput(
            'a predict request is a JSON object with "instances": a list of rows, each a list '
            'of values or an object keyed by column (or "inputs": an object of columns)'
        )
    if "instances" in body:
        return instances(body["instances"], reader)
    return _inputs(body["inputs"], reader)


def decode_invocations(body: Any, reader: Reader) -> Batch:
    """MLflow's scoring formats: one of dataframe_split, dataframe_records, instances, inputs."""
    keys = [k for k in MLFLOW_FORMATS if isinstance(body, dict) and k in body]
    if len(keys) != 1:
        raise InvalidInput(
            f"the body must be a JSON object with exactly one of {', '.join(MLFLOW_FORMATS)}"
        )
    payload = body[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise InvalidInput("'dataframe_split' needs 'columns' and 'data' (a list of rows)")
        columns = payload.get("columns")
        if columns is None:
            return reader.rows(payload["data"])
        return reader.split(columns, payload["data"])
    if keys[0] == "dataframe_records":
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise InvalidInput("'dataframe_records' must be a list of objects keyed by column")
        return _nonempty(reader.records(payload))
    if keys[0] == "instances":
        return instances(payload, reader)
    return _inputs(payload, reader)


def decode_csv(body: bytes, reader: Reader) -> Batch:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise InvalidInput(f"the body is not readable CSV: {exc}") from None
    return _nonempty(reader.split(list(map(str, frame.columns)), frame.to_numpy().tolist()))


def instances(rows: Any, reader: Reader) -> Batch:
    if not isinstance(rows, list) or not rows:
        raise InvalidInput("'instances' must be a non-empty list of rows")
    if all(isinstance(r, dict) for r in rows):
        return reader.records(rows)
    if any(isinstance(r, dict) for r in rows):
        raise InvalidInput("'instances' mixes objects and lists; use one form for every row")
    if reader.is_table and len(reader.names) == 1 and not isinstance(rows[0], list):
        rows = [[value] for value in rows]  # one column: a list of scalars
    return reader.rows(rows)


def _inputs(payload: Any, reader: Reader) -> Batch:
    if isinstance(payload, dict):
        if not payload:
            raise InvalidInput("'inputs' holds no columns")
        return _nonempty(reader.columnar(payload))
    return instances(payload, reader)


def _nonempty(batch: Batch) -> Batch:
    if batch.rows == 0:
        raise InvalidInput("the request holds no rows")
    return batch


def encode_predictions(
    name: str,
    version: int | None,
    outputs: Mapping[str, Any],
    ids: Sequence[str],
    *,
    mlflow: bool = False,
    variant: str | None = None,
) -> bytes:
    """The /v1 (and, with `mlflow`, /invocations) answer: predictions first, then the ids;
    a deployment's also names the `variant` that answered."""
    body: dict[str, Any] = {"predictions": outputs["predict"]}
    if not mlflow and "predict_proba" in outputs:
        body["probabilities"] = outputs["predict_proba"]
    body.update({"prediction_ids": ids, "model": name, "model_version": version})
    if variant is not None:
        body["variant"] = variant
    return dumps(body)


def dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body, option=_JSON_OPTIONS)
    except TypeError:  # object arrays (text labels): orjson serializes only numeric ones
        return orjson.dumps(body, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
