"""Custom Python code as a model: subclass `PythonModel`, implement `predict`.

Only the class's import path and the state its `save` writes are stored, never the
code: the class must be importable (same module and name) where the model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from modelyard.errors import InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, class_path, import_class

DATA = "data"


class PythonModel:
    """Custom code as a model: subclass it, implement `predict`; state goes to files in `save`.

    Define `predict_proba` too for a model with class probabilities. The subclass must
    live in an importable module: its code is not stored with the model.
    """

    def predict(self, data: Any) -> Any:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        """Write any state the model needs into `folder` (default: none)."""

    @classmethod
    def load(cls, folder: Path) -> Self:
        """The model back from the files `save` wrote into `folder`."""
        return cls()


class PythonPredictor:
    def __init__(self, model: PythonModel) -> None:
        self._model = model

    def predict(self, data: Any) -> Any:
        return self._model.predict(data)

    def predict_proba(self, data: Any) -> Any:
        method = getattr(self._model, "predict_proba", None)
        if not callable(method):
            raise InvalidInput(
                f"python model {type(self._model).__name__} has no predict_proba; use predict"
            )
        return method(data)

    @property
    def has_proba(self) -> bool:
        return callable(getattr(self._model, "predict_proba", None))

    @property
    def native(self) -> PythonModel:
        return self._model


class PythonFlavor:
    name = "python"
    packages: tuple[str, ...] = ()

    def detect(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        model_class = class_path(type(model))
        (folder / DATA).mkdir()
        model.save(folder / DATA)
        return {"model_class": model_class}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> PythonPredictor:
        cls = import_class(options["model_class"])
        if not issubclass(cls, PythonModel):
            raise InvalidInput(
                f"{options['model_class']!r} is not a modelyard PythonModel subclass; "
                "refusing to build it"
            )
        return PythonPredictor(cls.load(folder / DATA))


FLAVOR = PythonFlavor()
