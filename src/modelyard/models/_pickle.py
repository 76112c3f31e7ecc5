"""The explicit escape hatch: any object, stored with pickle. Unsafe by nature.

Unpickling runs whatever code the file names, so this flavor is never detected: it
is chosen with `flavor="pickle"`, written only with `allow_pickle=True`, and read only
with `allow_pickle=True`, checked before the file is opened.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput, PermissionDenied
from modelyard.models._flavor import LoadOptions, SaveOptions

FILE = "model.pkl"


class PickledModel:
    def __init__(self, model: Any) -> None:
        self._model = model

    def predict(self, data: Any) -> Any:
        if not callable(getattr(self._model, "predict", None)):
            raise InvalidInput(f"pickled {type(self._model).__name__} has no predict")
        return self._model.predict(data)

    def predict_proba(self, data: Any) -> Any:
        if not self.has_proba:
            raise InvalidInput(
                f"pickled model {type(self._model).__name__} has no predict_proba; use predict"
            )
        return self._model.predict_proba(data)

    @property
    def has_proba(self) -> bool:
        return callable(getattr(self._model, "predict_proba", None))

    @property
    def native(self) -> Any:
        return self._model


class PickleFlavor:
    name = "pickle"
    packages: tuple[str, ...] = ()

    def detect(self, model: Any) -> bool:
        return False

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        if not options.allow_pickle:
            raise PermissionDenied(
                "pickle runs code when loaded; pass allow_pickle=True to store one"
            )
        try:
            data = pickle.dumps(model, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"cannot pickle the model: {exc}") from None
        (folder / FILE).write_bytes(data)
        cls = type(model)
        return {"model_class": f"{cls.__module__}:{cls.__qualname__}"}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> PickledModel:
        if not load.allow_pickle:
            raise PermissionDenied(
                f"this model ({options.get('model_class', 'unknown class')}) is a pickle, and "
                "loading a pickle can run arbitrary code; pass allow_pickle=True only if you "
                "trust whoever wrote it"
            )
        with (folder / FILE).open("rb") as file:
            return PickledModel(pickle.load(file))


FLAVOR = PickleFlavor()
