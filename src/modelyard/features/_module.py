"""Definitions from a Python file: what `modelyard features apply FILE` reads.

The file is run as a module of its own (its folder first on `sys.path`, so it can import its
neighbours); every Entity, FeatureView and FeatureService at its top level is a definition.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from modelyard.errors import InvalidInput
from modelyard.features._definitions import Entity, FeatureService, FeatureView
from modelyard.features._registry import Definable


def load_definitions(path: str | Path) -> list[Definable]:
    """The definitions at the top level of the Python file at `path`, in file order."""
    file = Path(path)
    if file.suffix != ".py" or not file.is_file():
        raise InvalidInput(f"{str(file)!r} is not a Python file of feature definitions")
    name = f"modelyard_features_{abs(hash(file.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"cannot load {str(file)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module  # a transform's module must be importable by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise InvalidInput(f"{str(file)!r} failed to run: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(folder)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, Entity | FeatureView | FeatureService)
    ]
    if not found:
        raise InvalidInput(f"{str(file)!r} defines no Entity, FeatureView or FeatureService")
    return found
