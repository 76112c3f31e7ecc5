"""scikit-learn models (pipelines and ColumnTransformer included), stored with skops.

skops writes a zip of plain data and refuses, on load, any type not on its safe list
unless trusted by name: no code in the file runs. Beyond skops's list and the few
types reviewed here (`REVIEWED_TYPES`), types must be named by the user at log time
(`trusted=`), and only those are trusted again on load.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from modelyard.errors import IntegrityError, InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, comes_from

FILE = "model.skops"
# Types skops does not list as safe that are rebuilt from plain numbers and arrays,
# with nothing read later as an index. Tree structures (`sklearn.tree._tree.Tree`, the
# histogram-boosting `TreePredictor`) are deliberately absent: scikit-learn indexes
# their node arrays unchecked, so a crafted file can crash `predict`. Tree models need
# `trusted=` with those names, from whoever trained them.
REVIEWED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


_import_lock = threading.Lock()


def skops_io() -> ModuleType:
    """`skops.io`, imported without scikit-learn's estimator discovery walking every package.

    skops lists scikit-learn's estimators when imported, through `all_estimators`, whose
    package walk imports even the packages it then ignores (array-API shims that import
    PyTorch when it is installed): seconds of a cold start. During that import only,
    `all_estimators` is replaced by `estimator_classes`, which returns the same list
    without entering ignored packages.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn.utils

    with _import_lock:
        original = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = estimator_classes
        try:
            module = importlib.import_module("skops.io")
        finally:
            sklearn.utils.all_estimators = original
    return module


def estimator_classes(type_filter: Any = None) -> list[tuple[str, type]]:
    """What `sklearn.utils.all_estimators()` returns, found without importing ignored packages."""
    import sklearn
    from sklearn.base import BaseEstimator
    from sklearn.utils import discovery

    if type_filter is not None:
        return list(discovery.all_estimators(type_filter))
    classes = {
        (name, cls)
        for module in _public_modules(sklearn.__path__, "sklearn.", discovery._MODULE_TO_IGNORE)
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if not name.startswith("_")
    }
    return sorted(
        (
            (name, cls)
            for name, cls in classes
            if issubclass(cls, BaseEstimator)
            and name != "BaseEstimator"
            and not getattr(cls, "__abstractmethods__", None)
        ),
        key=lambda item: item[0],
    )


def _public_modules(path: Any, prefix: str, ignored: set[str]) -> Iterator[ModuleType]:
    for info in pkgutil.iter_modules(path, prefix):
        if "._" in info.name or any(part in ignored for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        yield module
        if info.ispkg:
            yield from _public_modules(module.__path__, f"{info.name}.", ignored)


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
        sio: Any = skops_io()

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
        sio: Any = skops_io()

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
