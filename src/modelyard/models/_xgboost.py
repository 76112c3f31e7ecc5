"""XGBoost models, sklearn wrappers and raw boosters, stored in XGBoost's native UBJSON.

The file holds trees and parameters only. The wrapper class is recorded by name and
rebuilt from an allow-list, so the stored options cannot name arbitrary code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, comes_from

FILE = "model.ubj"
WRAPPERS = (
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
    "Booster",
)


class XGBoostModel:
    def __init__(self, model: Any) -> None:
        self._model = model

    def predict(self, data: Any) -> Any:
        import xgboost

        if isinstance(self._model, xgboost.Booster):
            return self._model.predict(xgboost.DMatrix(data))
        return self._model.predict(data)

    def predict_proba(self, data: Any) -> Any:
        if not self.has_proba:
            raise InvalidInput(
                f"xgboost model {type(self._model).__name__} has no predict_proba; use predict"
            )
        return self._model.predict_proba(data)

    @property
    def has_proba(self) -> bool:
        return hasattr(self._model, "predict_proba")

    @property
    def native(self) -> Any:
        return self._model


def wrapper_name(model: Any) -> str:
    """The allowed xgboost class `model` is (or subclasses): what load rebuilds."""
    for cls in type(model).__mro__:
        if cls.__module__.startswith("xgboost") and cls.__name__ in WRAPPERS:
            return cls.__name__
    raise InvalidInput(
        f"cannot store a {type(model).__qualname__} with the xgboost flavor; "
        f"supported: {', '.join(WRAPPERS)}"
    )


class XGBoostFlavor:
    name = "xgboost"
    packages = ("xgboost", "numpy")

    def detect(self, model: Any) -> bool:
        return comes_from(model, ("xgboost",))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        wrapper = wrapper_name(model)
        if wrapper != "Booster" and not model.__sklearn_is_fitted__():
            raise InvalidInput(f"{wrapper} is not fitted; fit it before logging")
        model.save_model(folder / FILE)
        return {"wrapper": wrapper}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> XGBoostModel:
        import xgboost

        wrapper = options.get("wrapper")
        if wrapper not in WRAPPERS:
            raise InvalidInput(
                f"xgboost wrapper {wrapper!r} is not one modelyard rebuilds; "
                f"expected one of {', '.join(WRAPPERS)}"
            )
        model: Any = getattr(xgboost, wrapper)()
        model.load_model(folder / FILE)
        return XGBoostModel(model)


FLAVOR = XGBoostFlavor()
