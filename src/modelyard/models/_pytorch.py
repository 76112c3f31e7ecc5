"""PyTorch modules, stored as a state dict plus the class and constructor arguments.

The weights are read with `weights_only=True`, so the file cannot run code. The class
is imported by path and must be a `torch.nn.Module` subclass: its code is not stored
and must be importable where the model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.models._flavor import LoadOptions, SaveOptions, class_path, comes_from, import_class

FILE = "state_dict.pt"


class TorchModel:
    def __init__(self, module: Any) -> None:
        import torch

        self._module = module
        dtypes = [p.dtype for p in module.parameters() if p.dtype.is_floating_point]
        self._dtype = dtypes[0] if dtypes else torch.float32

    def predict(self, data: Any) -> Any:
        import torch

        array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        with torch.no_grad():
            output = self._module(torch.as_tensor(array, dtype=self._dtype))
        if not isinstance(output, torch.Tensor):
            raise InvalidInput(
                f"{type(self._module).__name__} returned a {type(output).__name__}; "
                "the pytorch flavor predicts with modules that return one tensor"
            )
        return output.cpu().numpy()

    def predict_proba(self, data: Any) -> Any:
        raise InvalidInput(
            f"pytorch model {type(self._module).__name__} has no predict_proba; use predict"
        )

    @property
    def has_proba(self) -> bool:
        return False

    @property
    def native(self) -> Any:
        return self._module


def json_init_args(init_args: dict[str, Any]) -> dict[str, Any]:
    """`init_args` as load will see them: after a JSON round trip."""
    try:
        args: dict[str, Any] = json.loads(json.dumps(init_args, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"init_args must be JSON values (str, numbers, lists, dicts): {exc}"
        ) from None
    return args


def rebuild(cls: type, init_args: dict[str, Any], state: Any) -> Any:
    """A fresh `cls(**init_args)` holding `state`, as the model will be loaded."""
    try:
        module = cls(**init_args)
    except TypeError as exc:
        raise InvalidInput(
            f"cannot rebuild {cls.__qualname__}(**{init_args!r}): {exc}; "
            "pass init_args={...} with the constructor arguments"
        ) from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InvalidInput(
            f"{cls.__qualname__}(**{init_args!r}) does not match the model's weights: {exc}; "
            "pass the init_args the model was built with"
        ) from None
    return module


class PyTorchFlavor:
    name = "pytorch"
    packages = ("torch", "numpy")

    def detect(self, model: Any) -> bool:
        if not comes_from(model, ("torch",)):
            return False
        import torch  # already imported: the model's class comes from it

        return isinstance(model, torch.nn.Module)

    def save(self, model: Any, folder: Path, options: SaveOptions) -> dict[str, Any]:
        import torch

        module_class = class_path(type(model))
        init_args = json_init_args(options.init_args)
        state = model.state_dict()
        rebuild(type(model), init_args, state)
        torch.save(state, folder / FILE)
        return {"module_class": module_class, "init_args": init_args}

    def load(self, folder: Path, options: dict[str, Any], load: LoadOptions) -> TorchModel:
        import torch

        cls = import_class(options["module_class"])
        if not issubclass(cls, torch.nn.Module):
            raise InvalidInput(
                f"{options['module_class']!r} is not a torch.nn.Module subclass; refusing to "
                "build it"
            )
        state = torch.load(folder / FILE, weights_only=True, map_location="cpu")
        module = rebuild(cls, options.get("init_args", {}), state)
        module.eval()
        return TorchModel(module)


FLAVOR = PyTorchFlavor()
