"""The models a server serves: what each name points at, the version loaded, and the swap.

A served model is a name over a model reference (`churn@champion`, `churn/3`, `churn`). An
alias reference is re-resolved in the background; when it points at another version, that
version is loaded, warmed up and swapped in with one assignment. Requests already holding
the old version finish on it, so a swap fails no request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import InvalidInput
from modelyard.serving._inputs import Batch, Reader

if TYPE_CHECKING:
    from modelyard.models import LoadedModel

Runtime = Literal["auto", "native", "onnx"]
_REFERENCE = re.compile(
    r"^(?:(?P<served>[A-Za-z0-9_.\-]+)=)?(?:models:/)?(?P<model>[^@/=]+)"
    r"(?:@(?P<alias>[^@/]+)|/(?P<version>[0-9]+))?$"
)
_log = logging.getLogger("modelyard.serving")


@dataclass(frozen=True)
class ModelRef:
    """What `serve` was given: `[served_name=]model[@alias|/version]`; a bare name follows
    the latest version."""

    served_name: str
    model: str
    alias: str | None = None
    version: int | None = None

    @property
    def uri(self) -> str:
        if self.alias is not None:
            return f"models:/{self.model}@{self.alias}"
        return f"models:/{self.model}" + ("" if self.version is None else f"/{self.version}")

    @property
    def moves(self) -> bool:
        """Whether the reference can point at another version later (an alias, or latest)."""
        return self.version is None

    def __str__(self) -> str:
        return self.uri.removeprefix("models:/")

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        match = _REFERENCE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(
                f"not a model reference: {text!r}; use churn@champion, churn/3, churn (the "
                "latest version), or name=churn@challenger to serve it under another name"
            )
        version = match["version"]
        return cls(
            match["served"] or match["model"],
            match["model"],
            match["alias"],
            int(version) if version else None,
        )


class Loaded:
    """One version of a model, loaded and ready: its reader, outputs and personal columns."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.version: int | None = model.version.version if model.version else None
        self.reader = Reader(model.signature)
        signature = model.signature
        self.pii = frozenset(signature.pii_columns if signature is not None else ())

    @property
    def output_names(self) -> list[str]:
        return ["predict", "predict_proba"] if self.model.has_proba else ["predict"]

    def compute(self, batches: Sequence[Batch]) -> list[dict[str, Any]]:
        """Run the model once over several requests; one dict of outputs per request."""
        model_input = self.reader.model_input(batches, array=self.model.takes_array)
        outputs = self.model.outputs(model_input)
        results: list[dict[str, Any]] = []
        start = 0
        for batch in batches:
            end = start + batch.rows
            results.append({name: values[start:end] for name, values in outputs.items()})
            start = end
        return results

    def warm_up(self, batch: Batch | None) -> None:
        """Run one prediction so the first real request pays no first-call costs."""
        if batch is not None:
            self.compute([batch])


class ServedModel:
    """A name clients use, the reference behind it, and the version it serves right now."""

    def __init__(
        self,
        ref: ModelRef,
        load: Callable[[str], LoadedModel],
        resolve: Callable[[ModelRef], int],
    ) -> None:
        self.ref = ref
        self._load = load
        self._resolve = resolve
        self.current = self._load_version(resolve(ref))
        self.loaded_at = time.time()
        self.last_batch: Batch | None = None  # a real input, to warm up the next version

    @property
    def name(self) -> str:
        return self.ref.served_name

    def _load_version(self, version: int) -> Loaded:
        return Loaded(self._load(f"models:/{self.ref.model}/{version}"))

    def refresh(self) -> bool:
        """Re-resolve the reference; load, warm up and swap in a new version. True if swapped."""
        if not self.ref.moves:
            return False
        version = self._resolve(self.ref)
        if version == self.current.version:
            return False
        candidate = self._load_version(version)
        if candidate.model.signature == self.current.model.signature:
            candidate.warm_up(self.last_batch)
        previous, self.current = self.current.version, candidate
        self.loaded_at = time.time()
        _log.info("%s (%s) serves version %s, was %s", self.name, self.ref, version, previous)
        return True
