"""What a flavor is: how one kind of model is written to files and read back, safely.

Each flavor lives in its own module and is imported only when used, so a user without
PyTorch never imports it. A flavor writes native, non-executable formats; only the
`pickle` flavor runs code on load, and only with `allow_pickle=True`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelyard.errors import InvalidInput


@dataclass(frozen=True)
class SaveOptions:
    """What `log_model` passes to a flavor's `save`, beyond the model."""

    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()  # skops: type names the user trusts beyond the defaults
    init_args: dict[str, Any] = field(default_factory=dict)  # PyTorch module constructor


@dataclass(frozen=True)
class LoadOptions:
    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()


class Predictor(Protocol):
    """A loaded native model; inputs arrive already checked against the signature."""

    def predict(self, data: Any) -> Any: ...

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities; raises InvalidInput where the model has none."""
        ...

    @property
    def has_proba(self) -> bool: ...

    @property
    def native(self) -> Any:
        """The underlying library object (estimator, booster, module, session)."""
        ...


class Flavor(Protocol):
    name: str
    packages: tuple[str, ...]  # distributions whose exact versions the manifest records

    def detect(self, model: Any) -> bool: ...

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        """Write `model` into `folder`; return JSON-able options `load` needs back."""
        ...

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> Predictor: ...


# Detection order matters: a PythonModel or a torch module may also have `predict`.
FLAVOR_MODULES: dict[str, str] = {
    "python": "modelyard.models._python",
    "pytorch": "modelyard.models._pytorch",
    "xgboost": "modelyard.models._xgboost",
    "lightgbm": "modelyard.models._lightgbm",
    "onnx": "modelyard.models._onnx",
    "sklearn": "modelyard.models._sklearn",
    "pickle": "modelyard.models._pickle",
}


def get_flavor(name: str) -> Flavor:
    if name not in FLAVOR_MODULES:
        raise InvalidInput(f"unknown flavor {name!r}; flavors: {', '.join(FLAVOR_MODULES)}")
    flavor: Flavor = importlib.import_module(FLAVOR_MODULES[name]).FLAVOR
    return flavor


def detect_flavor(model: Any) -> Flavor:
    """The flavor of `model`, from the libraries its class comes from (none is imported)."""
    for name in FLAVOR_MODULES:
        if name == "pickle":
            continue
        flavor = get_flavor(name)
        if flavor.detect(model):
            return flavor
    raise InvalidInput(
        f"cannot tell the flavor of a {type(model).__module__}.{type(model).__qualname__}; "
        f"pass flavor= (one of {', '.join(FLAVOR_MODULES)}), or subclass "
        "modelyard.models.PythonModel"
    )


def comes_from(model: Any, packages: Sequence[str]) -> bool:
    """Whether the class of `model` or one of its bases is defined in one of `packages`."""
    roots = set(packages)
    return any(cls.__module__.split(".")[0] in roots for cls in type(model).__mro__)


def import_class(path: str) -> type:
    """The class `package.module:Name` (or `package.module.Name`) names."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attr:
        raise InvalidInput(f"not a class import path: {path!r}; use package.module:ClassName")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {module_name!r} for {path!r}: {exc}") from None
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise InvalidInput(f"{module_name!r} has no {attr!r}")
    if not isinstance(target, type):
        raise InvalidInput(f"{path!r} is not a class")
    return target


def class_path(cls: type) -> str:
    """The import path of `cls`; refused for classes that cannot be imported again."""
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        where = "__main__" if cls.__module__ == "__main__" else "a function"
        raise InvalidInput(
            f"class {cls.__qualname__} is defined in {where}; move it into an importable "
            "module so the model can be loaded elsewhere"
        )
    return f"{cls.__module__}:{cls.__qualname__}"
