"""LightGBM models, sklearn wrappers and raw boosters, stored in LightGBM's text format.

Only the booster is stored; a classifier's labels go in the options, and `predict`
and `predict_proba` are rebuilt from the booster's output exactly as the wrapper does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, comes_from

FILE = "model.txt"
KINDS = ("classifier", "regressor", "ranker", "booster")


class LightGBMModel:
    def __init__(self, booster: Any, classes: np.ndarray[Any, Any] | None) -> None:
        self._booster = booster
        self._classes = classes

    def predict(self, data: Any) -> Any:
        if self._classes is None:
            return self._booster.predict(data)
        return self._classes[np.argmax(self.predict_proba(data), axis=1)]

    def predict_proba(self, data: Any) -> Any:
        if self._classes is None:
            raise InvalidInput("lightgbm model is not a classifier and has no predict_proba")
        scores = self._booster.predict(data)
        if scores.ndim == 1:  # binary: the probability of the second class
            return np.vstack((1.0 - scores, scores)).transpose()
        return scores

    @property
    def has_proba(self) -> bool:
        return self._classes is not None

    @property
    def native(self) -> Any:
        return self._booster


def model_kind(model: Any) -> str:
    """Which of KINDS `model` is, refusing what the booster alone cannot reproduce."""
    import lightgbm

    if isinstance(model, lightgbm.Booster):
        return "booster"
    if isinstance(model, lightgbm.LGBMClassifier):
        if callable(model.objective):
            raise InvalidInput(
                "an LGBMClassifier with a custom objective function predicts raw scores "
                "and the function is code, which is not stored; train with a built-in objective"
            )
        return "classifier"
    if isinstance(model, lightgbm.LGBMRanker):
        return "ranker"
    if isinstance(model, lightgbm.LGBMRegressor):
        return "regressor"
    raise InvalidInput(
        f"cannot store a {type(model).__qualname__} with the lightgbm flavor; supported: "
        "LGBMClassifier, LGBMRegressor, LGBMRanker, lightgbm.Booster"
    )


class LightGBMFlavor:
    name = "lightgbm"
    packages = ("lightgbm", "numpy")

    def detect(self, model: Any) -> bool:
        return comes_from(model, ("lightgbm",))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        kind = model_kind(model)
        if kind != "booster" and not model.__sklearn_is_fitted__():
            raise InvalidInput(f"{type(model).__name__} is not fitted; fit it before logging")
        booster = model if kind == "booster" else model.booster_
        booster.save_model(str(folder / FILE))
        if kind == "classifier":
            return {"kind": kind, "classes": np.asarray(model.classes_).tolist()}
        return {"kind": kind}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> LightGBMModel:
        import lightgbm

        kind = options.get("kind")
        if kind not in KINDS:
            raise InvalidInput(f"lightgbm kind {kind!r} is unknown; expected one of {KINDS}")
        booster = lightgbm.Booster(model_file=str(folder / FILE))
        classes = np.asarray(options["classes"]) if kind == "classifier" else None
        return LightGBMModel(booster, classes)


FLAVOR = LightGBMFlavor()
