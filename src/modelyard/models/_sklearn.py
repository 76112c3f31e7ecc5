"""scikit-learn models (pipelines and ColumnTransformer included), stored with skops.

skops writes a zip of plain data and refuses, on load, any type not on its safe list
unless trusted by name: no code in the file runs. Beyond skops's list and the few
scikit-learn types reviewed here, types must be named by the user at log time
(`trusted=`), and only those are trusted again on load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import IntegrityError, InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, comes_from

FILE = "model.skops"
# scikit-learn's own state holders that skops does not list as safe: each is rebuilt
# from arrays and numbers (`__setstate__`), never by calling a stored callable.
REVIEWED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


class SklearnModel:
    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator

    def predict(self, data: Any) -> Any:
        return self._estimator.predict(data)

    def predict_proba(self, data: Any) -> Any:
        if not self.has_proba:
            raise InvalidInput(
                f"{type(self._estimator).__name__} has no predict_proba; use predict"
            )
        return self._estimator.predict_proba(data)

    @property
    def has_proba(self) -> bool:
        return hasattr(self._estimator, "predict_proba")

    @property
    def native(self) -> Any:
        return self._estimator


class SklearnFlavor:
    name = "sklearn"
    packages = ("scikit-learn", "skops", "numpy", "scipy")

    def detect(self, model: Any) -> bool:
        return comes_from(model, ("sklearn",))

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        import skops.io as sio

        path = folder / FILE
        try:
            sio.dump(model, path)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"skops cannot store this model: {exc}") from None
        untrusted = sorted(
            set(sio.get_untrusted_types(file=path)) - REVIEWED_TYPES - set(options.trusted)
        )
        if untrusted:
            path.unlink()
            raise InvalidInput(
                "the model holds types skops does not trust by default: "
                f"{', '.join(untrusted)}; if you trust them, pass trusted=[...] with these names"
            )
        return {"trusted": sorted(options.trusted)}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> SklearnModel:
        import skops.io as sio

        path = folder / FILE
        trusted = sorted(REVIEWED_TYPES | set(options.get("trusted", [])) | set(load.trusted))
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
        if untrusted:
            raise IntegrityError(
                f"the stored model holds types nobody trusted: {', '.join(untrusted)}; "
                "it was not written by log_model as recorded. If you trust these types, "
                "pass trusted=[...] to load_model"
            )
        return SklearnModel(sio.load(path, trusted=trusted))


FLAVOR = SklearnFlavor()
