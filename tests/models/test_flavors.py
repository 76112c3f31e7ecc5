"""One contract for every flavor: what is saved loads back and predicts the same.

Each case fits a small real model on a scikit-learn data set, saves it with its flavor
into an empty folder, loads it with the options after a JSON round trip (as the
manifest stores them) and compares predictions. Flavor-specific refusals follow.
"""

from __future__ import annotations

import pathlib
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnx
import onnxruntime
import orjson
import pandas as pd
import pytest
import torch
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.semi_supervised import LabelSpreading

import modelyard as my
from _model_classes import CentroidModel, MeanRegressor, ScaleModel, TinyNet
from modelyard.errors import InvalidInput, PermissionDenied
from modelyard.models._flavor import (
    Flavor,
    LoadOptions,
    Predictor,
    SaveOptions,
    detect_flavor,
    get_flavor,
)
from modelyard.models._onnx import to_onnx

TREE = "sklearn.tree._tree.Tree"
MY_FLAVORS = ("python", "pytorch", "xgboost", "lightgbm", "onnx", "pickle")


@dataclass(frozen=True)
class Built:
    """A fitted model, data to predict on, and what the original model predicts there."""

    model: Any
    data: Any
    predict: Any
    proba: Any | None  # None: the loaded model must have no predict_proba
    native: type
    exact: bool = True  # assert_array_equal, else allclose(rtol=1e-6) for float outputs
    save: SaveOptions = field(default_factory=SaveOptions)
    load: LoadOptions = field(default_factory=LoadOptions)


@cache
def breast_cancer() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x, y


@cache
def iris() -> tuple[np.ndarray, np.ndarray]:
    data = load_iris()
    return data.data, np.asarray(data.target_names)[data.target]  # string labels


@cache
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    return x, y


def xgboost_classifier() -> Built:
    x, y = breast_cancer()
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)
    return Built(model, x, model.predict(x), model.predict_proba(x), xgboost.XGBClassifier)


def xgboost_rf_multiclass() -> Built:
    x, labels = iris()
    y = np.unique(labels, return_inverse=True)[1]
    model = xgboost.XGBRFClassifier(n_estimators=10, max_depth=3).fit(x, y)
    return Built(model, x, model.predict(x), model.predict_proba(x), xgboost.XGBRFClassifier)


def xgboost_regressor() -> Built:
    x, y = diabetes()
    model = xgboost.XGBRegressor(n_estimators=20, max_depth=3).fit(x, y)
    return Built(model, x, model.predict(x), None, xgboost.XGBRegressor)


def xgboost_ranker() -> Built:
    x, y = diabetes()
    relevance = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
    model = xgboost.XGBRanker(n_estimators=10, max_depth=3)
    model.fit(x, relevance, qid=np.arange(len(x)) // 20)
    return Built(model, x, model.predict(x), None, xgboost.XGBRanker)


def xgboost_booster() -> Built:
    x, y = diabetes()
    params = {"objective": "reg:squarederror", "max_depth": 3}
    booster = xgboost.train(params, xgboost.DMatrix(x, y), num_boost_round=10)
    return Built(booster, x, booster.predict(xgboost.DMatrix(x)), None, xgboost.Booster)


def lightgbm_binary() -> Built:
    x, y = breast_cancer()
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
    return Built(model, x, model.predict(x), model.predict_proba(x), lightgbm.Booster)


def lightgbm_multiclass() -> Built:
    x, y = iris()
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
    return Built(model, x, model.predict(x), model.predict_proba(x), lightgbm.Booster)


def lightgbm_regressor() -> Built:
    x, y = diabetes()
    model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(x, y)
    return Built(model, x, model.predict(x), None, lightgbm.Booster)


def lightgbm_booster() -> Built:
    x, y = diabetes()
    params = {"objective": "regression", "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=10)
    return Built(booster, x, booster.predict(x), None, lightgbm.Booster)


def pytorch_net() -> Built:
    x, y = diabetes()
    torch.manual_seed(0)
    init_args = {"n_in": x.shape[1], "hidden": [16, 8]}
    net = TinyNet(**init_args)
    inputs, targets = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y / 100)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(inputs), targets.float()).backward()
        optimizer.step()
    with torch.no_grad():
        expected = net.eval()(inputs).numpy()
    return Built(
        net, x, expected, None, TinyNet, exact=False, save=SaveOptions(init_args=init_args)
    )


def onnx_classifier() -> Built:
    x, y = iris()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    data, _ = to_onnx(pipe, x)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"X": x.astype(np.float32)})
    np.testing.assert_array_equal(label, pipe.predict(x))
    model = onnx.load_from_string(data)
    return Built(model, x, label, proba, onnxruntime.InferenceSession, exact=False)


def python_classifier() -> Built:
    x, y = iris()
    frame = pd.DataFrame(x, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    model = CentroidModel().fit(frame, y)
    return Built(model, frame, model.predict(frame), model.predict_proba(frame), CentroidModel)


def python_regressor() -> Built:
    x, _ = diabetes()
    model = ScaleModel()
    return Built(model, x, model.predict(x), None, ScaleModel)


def sklearn_pipeline() -> Built:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, 300),
            "monthly": rng.normal(60, 15, 300),
            "plan": rng.choice(["basic", "pro", "team"], 300),
        }
    )
    y = (frame["monthly"] > 60).to_numpy().astype(int)
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["tenure", "monthly"]), ("cat", OneHotEncoder(), ["plan"])]
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, y)
    return Built(model, frame, model.predict(frame), model.predict_proba(frame), Pipeline)


def sklearn_forest() -> Built:
    x, y = diabetes()
    model = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    trust = SaveOptions(trusted=(TREE,))
    return Built(model, x, model.predict(x), None, RandomForestRegressor, save=trust)


def pickled_object() -> Built:
    x, y = diabetes()
    model = MeanRegressor(float(y.mean()))
    allow = SaveOptions(allow_pickle=True)
    return Built(
        model, x, model.predict(x), None, MeanRegressor, save=allow, load=LoadOptions(True)
    )


CASES: dict[str, tuple[str, Callable[[], Built]]] = {
    "xgboost-classifier": ("xgboost", xgboost_classifier),
    "xgboost-rf-multiclass": ("xgboost", xgboost_rf_multiclass),
    "xgboost-regressor": ("xgboost", xgboost_regressor),
    "xgboost-ranker": ("xgboost", xgboost_ranker),
    "xgboost-booster": ("xgboost", xgboost_booster),
    "lightgbm-binary": ("lightgbm", lightgbm_binary),
    "lightgbm-multiclass": ("lightgbm", lightgbm_multiclass),
    "lightgbm-regressor": ("lightgbm", lightgbm_regressor),
    "lightgbm-booster": ("lightgbm", lightgbm_booster),
    "pytorch": ("pytorch", pytorch_net),
    "onnx-classifier": ("onnx", onnx_classifier),
    "python-classifier": ("python", python_classifier),
    "python-regressor": ("python", python_regressor),
    "pickle": ("pickle", pickled_object),
    "sklearn-pipeline": ("sklearn", sklearn_pipeline),
    "sklearn-forest": ("sklearn", sklearn_forest),
}


@cache
def built(case: str) -> Built:
    return CASES[case][1]()


def save_and_load(case: str, folder: Path) -> tuple[Predictor, dict[str, Any]]:
    """Save the case's model with its flavor and load it back as `load_model` would."""
    flavor = get_flavor(CASES[case][0])
    model = built(case)
    folder.mkdir()
    options = flavor.save(model.model, folder, model.save)
    stored = orjson.loads(orjson.dumps(options))
    return flavor.load(folder, stored, model.load), options


def assert_same(got: Any, expected: Any, *, exact: bool) -> None:
    assert isinstance(got, np.ndarray)
    if exact or got.dtype.kind not in "fc":  # labels are always exact
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_loaded_model_predicts_like_the_original(case: str, tmp_path: Path) -> None:
    loaded, _ = save_and_load(case, tmp_path / "model")
    expected = built(case)
    assert_same(loaded.predict(expected.data), expected.predict, exact=expected.exact)


@pytest.mark.parametrize("case", CASES)
def test_predict_proba_matches_the_original_or_is_refused(case: str, tmp_path: Path) -> None:
    loaded, _ = save_and_load(case, tmp_path / "model")
    expected = built(case)
    assert loaded.has_proba is (expected.proba is not None)
    if expected.proba is None:
        with pytest.raises(InvalidInput, match="no predict_proba"):
            loaded.predict_proba(expected.data)
    else:
        assert_same(loaded.predict_proba(expected.data), expected.proba, exact=expected.exact)


@pytest.mark.parametrize("case", CASES)
def test_options_are_json_and_native_is_the_library_object(case: str, tmp_path: Path) -> None:
    loaded, options = save_and_load(case, tmp_path / "model")
    assert orjson.loads(orjson.dumps(options)) == options
    assert isinstance(loaded.native, built(case).native)


@pytest.mark.parametrize("case", CASES)
def test_every_flavor_round_trips_through_log_model_and_load_model(
    case: str, tmp_path: Path
) -> None:
    expected = built(case)
    my.configure(home=tmp_path / "home")
    try:
        with my.start_run():
            version = my.log_model(
                expected.model,
                "model",
                input_example=expected.data[:5],
                flavor="pickle" if case == "pickle" else None,
                allow_pickle=expected.save.allow_pickle,
                init_args=expected.save.init_args,
                trusted=expected.save.trusted,
            )
        assert version.flavor == CASES[case][0]
        loaded = my.load_model("models:/model/1", allow_pickle=expected.load.allow_pickle)
        assert_same(loaded.predict(expected.data), expected.predict, exact=expected.exact)
        if expected.proba is not None:
            assert_same(loaded.predict_proba(expected.data), expected.proba, exact=expected.exact)
    finally:
        my.configure(home=tmp_path / "unused")


@pytest.mark.parametrize("case", CASES)
def test_each_flavor_detects_only_its_own_models(case: str) -> None:
    model, own = built(case).model, CASES[case][0]
    claimed = [name for name in MY_FLAVORS if get_flavor(name).detect(model)]
    assert claimed == ([] if own in ("pickle", "sklearn") else [own])
    if own != "pickle":
        assert detect_flavor(model).name == own


def test_no_flavor_here_claims_a_scikit_learn_model() -> None:
    x, y = iris()
    model = LogisticRegression(max_iter=500).fit(x, y)
    assert not [name for name in MY_FLAVORS if get_flavor(name).detect(model)]
    assert detect_flavor(model).name == "sklearn"


# --- pytorch ---------------------------------------------------------------------------


def pytorch() -> Flavor:
    return get_flavor("pytorch")


def test_pytorch_refuses_a_class_defined_in_a_function(tmp_path: Path) -> None:
    class Local(torch.nn.Module):
        pass

    with pytest.raises(InvalidInput, match="defined in a function"):
        pytorch().save(Local(), tmp_path, SaveOptions())


def test_pytorch_refuses_a_class_defined_in_main(tmp_path: Path) -> None:
    main_class = type("Script", (torch.nn.Module,), {"__module__": "__main__"})
    with pytest.raises(InvalidInput, match="__main__"):
        pytorch().save(main_class(), tmp_path, SaveOptions())


def test_pytorch_needs_init_args_for_a_constructor_with_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"pass init_args=\{\.\.\.\}"):
        pytorch().save(TinyNet(3, [4]), tmp_path, SaveOptions())
    assert not list(tmp_path.iterdir())


def test_pytorch_refuses_init_args_that_build_another_shape(tmp_path: Path) -> None:
    wrong = SaveOptions(init_args={"n_in": 3, "hidden": [5]})
    with pytest.raises(InvalidInput, match="does not match the model's weights"):
        pytorch().save(TinyNet(3, [4]), tmp_path, wrong)


def test_pytorch_refuses_init_args_that_are_not_json(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="JSON"):
        pytorch().save(TinyNet(3, [4]), tmp_path, SaveOptions(init_args={"n_in": object()}))


@pytest.mark.parametrize(
    "module_class", ["builtins:dict", "os:PathLike", "_model_classes:NotAModule"]
)
def test_pytorch_load_refuses_a_class_that_is_not_a_module(
    module_class: str, tmp_path: Path
) -> None:
    # the folder is empty: the refusal must come before any file is read
    with pytest.raises(InvalidInput, match=r"not a torch\.nn\.Module subclass"):
        pytorch().load(tmp_path, {"module_class": module_class, "init_args": {}}, LoadOptions())


# --- python, xgboost, lightgbm ----------------------------------------------------------


def test_python_load_refuses_a_class_that_is_not_a_python_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a modelyard PythonModel subclass"):
        get_flavor("python").load(
            tmp_path, {"model_class": "_model_classes:NotAModule"}, LoadOptions()
        )


def test_xgboost_load_refuses_a_wrapper_off_the_allow_list(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="'DMatrix' is not one modelyard rebuilds"):
        get_flavor("xgboost").load(tmp_path, {"wrapper": "DMatrix"}, LoadOptions())


@pytest.mark.parametrize(
    ("flavor", "model"),
    [("xgboost", xgboost.XGBClassifier()), ("lightgbm", lightgbm.LGBMRegressor())],
    ids=["xgboost", "lightgbm"],
)
def test_boosting_wrappers_must_be_fitted(flavor: str, model: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not fitted; fit it before logging"):
        get_flavor(flavor).save(model, tmp_path, SaveOptions())


def test_lightgbm_classifier_keeps_its_labels_on_a_table(tmp_path: Path) -> None:
    loaded, options = save_and_load("lightgbm-multiclass", tmp_path / "model")
    assert options["classes"] == ["setosa", "versicolor", "virginica"]
    x, _ = iris()
    frame = pd.DataFrame(x, columns=[f"Column_{i}" for i in range(4)])
    np.testing.assert_array_equal(loaded.predict(frame), built("lightgbm-multiclass").predict)


# --- pickle -----------------------------------------------------------------------------


class TouchOnLoad:
    """Unpickling this creates `marker`: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickle_save_needs_allow_pickle(tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied, match="allow_pickle=True"):
        get_flavor("pickle").save(MeanRegressor(1.0), tmp_path, SaveOptions())
    assert not list(tmp_path.iterdir())


def test_pickle_load_is_refused_before_the_file_is_read(tmp_path: Path) -> None:
    flavor, marker, folder = get_flavor("pickle"), tmp_path / "ran", tmp_path / "model"
    folder.mkdir()
    options = flavor.save(TouchOnLoad(marker), folder, SaveOptions(allow_pickle=True))
    assert pickle.loads((folder / "model.pkl").read_bytes()) is None  # the payload works
    marker.unlink()

    with pytest.raises(PermissionDenied, match=r"arbitrary code.*allow_pickle=True"):
        flavor.load(folder, options, LoadOptions())
    assert not marker.exists()

    flavor.load(folder, options, LoadOptions(allow_pickle=True))
    assert marker.exists()


# --- onnx -------------------------------------------------------------------------------


def test_to_onnx_reports_a_small_difference_for_a_classifier() -> None:
    x, y = iris()
    model = LogisticRegression(max_iter=500).fit(x, y)
    data, diff = to_onnx(model, x)
    assert 0.0 <= diff < 1e-4
    assert onnx.load_from_string(data).graph.output[1].name == "probabilities"


def test_to_onnx_refuses_a_difference_above_the_tolerance() -> None:
    x, y = diabetes()
    model = LinearRegression().fit(x, y)
    _, diff = to_onnx(model, x, tolerance=1.0)
    assert diff > 0.0  # float32 rounding: the test below can fail
    with pytest.raises(InvalidInput, match=rf"by up to {diff:.6g} .*tolerance=0\b"):
        to_onnx(model, x, tolerance=0.0)


def test_to_onnx_names_the_model_skl2onnx_cannot_convert() -> None:
    x, y = iris()
    with pytest.raises(InvalidInput, match=r"cannot convert LabelSpreading.*LabelSpreading"):
        to_onnx(LabelSpreading().fit(x, y), x)


def test_to_onnx_needs_a_numeric_sample() -> None:
    x, y = iris()
    model = LogisticRegression(max_iter=500).fit(x, y)
    with pytest.raises(InvalidInput, match="all-numeric sample"):
        to_onnx(model, pd.DataFrame({"a": ["x", "y"]}))


def test_to_onnx_regressor_loads_without_predict_proba(tmp_path: Path) -> None:
    x, y = diabetes()
    model = LinearRegression().fit(x, y)
    data, _ = to_onnx(model, x, tolerance=1e-3)
    flavor = get_flavor("onnx")
    flavor.save(onnx.load_from_string(data), tmp_path, SaveOptions())
    loaded = flavor.load(tmp_path, {}, LoadOptions())
    assert not loaded.has_proba
    np.testing.assert_allclose(loaded.predict(x).ravel(), model.predict(x), rtol=1e-4)


def two_input_graph() -> onnx.ModelProto:
    """total = a + b, with one float input per column."""
    tensor = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["a", "b"], ["total"])],
        "sum",
        [onnx.helper.make_tensor_value_info(n, tensor, [None, 1]) for n in ("a", "b")],
        [onnx.helper.make_tensor_value_info("total", tensor, [None, 1])],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])


def test_onnx_feeds_one_column_per_input_and_refuses_other_data(tmp_path: Path) -> None:
    flavor = get_flavor("onnx")
    flavor.save(two_input_graph(), tmp_path, SaveOptions())
    loaded = flavor.load(tmp_path, {}, LoadOptions())
    table = pd.DataFrame({"b": [1.0, 2.0], "a": [10.0, 20.0]})
    np.testing.assert_array_equal(loaded.predict(table), [[11.0], [22.0]])
    with pytest.raises(InvalidInput, match=r"2 inputs \(a, b\)"):
        loaded.predict(np.ones((2, 2)))
    with pytest.raises(InvalidInput, match="cannot feed ONNX input 'a'"):
        loaded.predict(pd.DataFrame({"a": ["ten"], "b": [1.0]}))


def test_skops_is_imported_with_the_same_estimator_list_scikit_learn_gives() -> None:
    from sklearn.utils import all_estimators

    from modelyard.models._sklearn import estimator_classes

    assert estimator_classes() == sorted(all_estimators(), key=lambda item: item[0])


def test_skops_imported_fast_trusts_what_a_plain_import_trusts_without_torch() -> None:
    import subprocess
    import sys

    show = (
        "from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as names; "
        "print(sorted(names)); print('torch' in sys.modules)"
    )
    fast = f"import sys; from modelyard.models._sklearn import skops_io; skops_io(); {show}"
    plain = f"import sys; {show}"
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        for code in (fast, plain)
    ]
    assert outputs[0][0] == outputs[1][0] and "sklearn.pipeline.Pipeline" in outputs[0][0]
    assert outputs[0][1] == "False"


def test_tree_models_are_stored_only_when_their_tree_type_is_trusted(tmp_path: Path) -> None:
    """skops flags tree node storage: a crafted file can crash `predict`, so trust is explicit."""
    x, y = diabetes()
    model = RandomForestRegressor(n_estimators=3, max_depth=2, random_state=0).fit(x, y)
    with pytest.raises(InvalidInput, match=re.escape(TREE)):
        get_flavor("sklearn").save(model, tmp_path, SaveOptions())
    assert not list(tmp_path.iterdir())
    options = get_flavor("sklearn").save(model, tmp_path, SaveOptions(trusted=(TREE,)))
    assert options == {"trusted": [TREE]}
