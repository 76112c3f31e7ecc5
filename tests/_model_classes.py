"""Model classes the flavor tests store and load back: they must live in an importable module."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from modelyard.models import PythonModel


class TinyNet(nn.Module):
    """A small regression network whose shape comes from its constructor."""

    def __init__(self, n_in: int, hidden: list[int]) -> None:
        super().__init__()
        sizes = [n_in, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.layers = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)


class NotAModule:
    """Has a module's shape but is no torch.nn.Module: loading must refuse it."""

    def __init__(self) -> None:
        raise AssertionError("NotAModule must never be instantiated by a load")


class CentroidModel(PythonModel):
    """Nearest class centroid, with probabilities; its state is one .npz file."""

    def __init__(self, centroids: Any = None, classes: Any = None) -> None:
        self.centroids = centroids
        self.classes = classes

    def fit(self, data: Any, labels: Any) -> Self:
        x, y = np.asarray(data, dtype=np.float64), np.asarray(labels)
        self.classes = np.unique(y)
        self.centroids = np.stack([x[y == c].mean(axis=0) for c in self.classes])
        return self

    def predict_proba(self, data: Any) -> Any:
        x = np.asarray(data, dtype=np.float64)
        distances = np.linalg.norm(x[:, None, :] - self.centroids[None, :, :], axis=2)
        weights = np.exp(-(distances - distances.min(axis=1, keepdims=True)))
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, data: Any) -> Any:
        return self.classes[np.argmax(self.predict_proba(data), axis=1)]

    def save(self, folder: Path) -> None:
        np.savez(folder / "centroids.npz", centroids=self.centroids, classes=self.classes)

    @classmethod
    def load(cls, folder: Path) -> Self:
        with np.load(folder / "centroids.npz") as stored:
            return cls(stored["centroids"], stored["classes"])


class ScaleModel(PythonModel):
    """A stateless regressor: twice the row sum."""

    def predict(self, data: Any) -> Any:
        return 2.0 * np.asarray(data, dtype=np.float64).sum(axis=1)


class MeanRegressor:
    """A plain object with `predict`, for the pickle flavor."""

    def __init__(self, mean: float) -> None:
        self.mean = mean

    def predict(self, data: Any) -> Any:
        return np.full(len(data), self.mean)
