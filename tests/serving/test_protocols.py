"""The wire formats decode to the same rows and encode as their specifications say."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from modelyard.errors import InvalidInput
from modelyard.models import ColumnSpec, Signature, TensorSpec
from modelyard.serving import _protocols as wire
from modelyard.serving._inputs import Batch, Reader

TABLE = Reader(
    Signature(columns=[ColumnSpec(name="a", dtype="float64"), ColumnSpec(name="b", dtype="int64")])
)
TENSOR = Reader(Signature(tensor=TensorSpec(dtype="float32", shape=[-1, 2, 2])))


def rows_of(batch: Batch) -> list[list[float]]:
    frame = TABLE.model_input([batch])
    return frame.to_numpy(dtype=float).tolist()


EXPECTED = [[1.5, 2.0], [3.5, 4.0]]


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                     "data": [1.5, 2, 3.5, 4]}]},
        {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                     "data": [[1.5, 2], [3.5, 4]]}]},
        {"inputs": [
            {"name": "b", "shape": [2], "datatype": "INT64", "data": [2, 4]},
            {"name": "a", "shape": [2, 1], "datatype": "FP64", "data": [1.5, 3.5]},
        ]},
    ],
)  # fmt: skip
def test_oip_v2_takes_one_matrix_or_one_tensor_per_column(body: dict[str, object]) -> None:
    batch, outputs, request_id = wire.decode_v2(body, TABLE)
    assert rows_of(batch) == EXPECTED
    assert outputs is None and request_id is None


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1.5, 2], [3.5, 4]]},
        {"instances": [{"a": 1.5, "b": 2}, {"b": 4, "a": 3.5}]},
        {"inputs": {"a": [1.5, 3.5], "b": [2, 4]}},
    ],
)
def test_v1_takes_rows_records_or_columns(body: dict[str, object]) -> None:
    assert rows_of(wire.decode_v1(body, TABLE)) == EXPECTED


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2], [3.5, 4]]}},
        {"dataframe_split": {"columns": ["b", "a"], "data": [[2, 1.5], [4, 3.5]]}},
        {"dataframe_records": [{"a": 1.5, "b": 2}, {"a": 3.5, "b": 4}]},
        {"instances": [[1.5, 2], [3.5, 4]]},
        {"inputs": {"a": [1.5, 3.5], "b": [2, 4]}},
        {"inputs": [[1.5, 2], [3.5, 4]]},
    ],
)
def test_invocations_take_every_mlflow_format(body: dict[str, object]) -> None:
    assert rows_of(wire.decode_invocations(body, TABLE)) == EXPECTED


def test_invocations_take_csv() -> None:
    assert rows_of(wire.decode_csv(b"a,b\n1.5,2\n3.5,4\n", TABLE)) == EXPECTED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "JSON object with an 'inputs' list"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP99", "data": [1, 2]}]},
         "unknown datatype 'FP99'"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2]}]},
         r"shape \[1, 3\] holds 3 values but 'data' has 2"),
        ({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, "a"]}]},
         "declared FP64 but holds 'a'"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
         r"takes \[N, 2\]"),
        ({"inputs": [{"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]},
         r"a column tensor has shape \[N\] or \[N, 1\]"),
        ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]},
         r"missing column\(s\) 'b'"),
        ({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}],
          "outputs": "predict"}, "'outputs' must be a list"),
    ],
)  # fmt: skip
def test_oip_v2_bad_requests_say_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        wire.decode_v2(body, TABLE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": []}, "exactly one of dataframe_split"),
        ({"instances": [], "inputs": {}}, "exactly one of"),
        ({"instances": []}, "non-empty list"),
        ({"dataframe_records": [1, 2]}, "list of objects"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0]]}}, "row 0 has 1 values"),
        ({"dataframe_split": {"columns": ["b", "a"], "data": [[1.0]]}}, "list of 2 values"),
        ({"instances": [{"a": 1.0, "b": 1}, [1.0, 1]]}, "mixes objects and lists"),
        ({"instances": [[1.0, 1.5]]}, "column 'b' expects int64 but row 0 holds 1.5"),
    ],
)
def test_invocations_bad_requests_say_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        wire.decode_invocations(body, TABLE)


def test_tensor_models_take_one_tensor_of_their_shape() -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    batch, _, _ = wire.decode_v2(body, TENSOR)
    assert batch.data.shape == (1, 2, 2) and batch.data.dtype == np.float32
    with pytest.raises(InvalidInput, match=r"expected shape \(-1, 2, 2\), got \(1, 4\)"):
        wire.decode_v1({"instances": [[1, 2, 3, 4]]}, TENSOR)


def test_malformed_json_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        wire.parse_json(b'{"instances": [')
    with pytest.raises(InvalidInput, match="empty"):
        wire.parse_json(b"")


def test_oip_v2_response_follows_the_spec() -> None:
    outputs = {
        "predict": np.array([0, 1]),
        "predict_proba": np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32),
    }
    body = orjson.loads(wire.encode_v2("churn", 3, "req-1", outputs, ["id1", "id2"]))
    assert body["model_name"] == "churn" and body["model_version"] == "3"
    assert body["id"] == "req-1"
    assert body["parameters"] == {"prediction_ids": ["id1", "id2"]}
    assert body["outputs"][0] == {
        "name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 1]
    }  # fmt: skip
    proba = body["outputs"][1]
    assert proba["shape"] == [2, 2] and proba["datatype"] == "FP32"
    assert proba["data"] == pytest.approx([0.9, 0.1, 0.2, 0.8])


def test_text_labels_are_encoded_as_bytes_tensors() -> None:
    outputs = {"predict": np.array(["yes", "no"], dtype=object)}
    body = orjson.loads(wire.encode_v2("m", 1, "r", outputs, ["a", "b"]))
    assert body["outputs"][0]["datatype"] == "BYTES"
    assert body["outputs"][0]["data"] == ["yes", "no"]
    v1 = orjson.loads(wire.encode_predictions("m", 1, outputs, ["a", "b"]))
    assert v1 == {
        "predictions": ["yes", "no"], "prediction_ids": ["a", "b"], "model": "m",
        "model_version": 1,
    }  # fmt: skip
