"""The two bare FastAPI apps `bench/serving.py` measures the model servers against.

    python -m uvicorn --app-dir bench _serving_apps:constant   # (1) the HTTP floor
    python -m uvicorn --app-dir bench _serving_apps:naive      # (2) the naive floor

`constant` answers every request with the same prediction and does no work: what FastAPI
and uvicorn cost on their own. `naive` is what a user writing their own endpoint would do:
parse the MLflow-style JSON with FastAPI, build a DataFrame (to keep the feature names)
and call `predict_proba`. Both run with uvicorn's defaults, as a user would start them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from _serving_worker import fitted_model, request_row
from fastapi import FastAPI, Request

MODEL, FEATURES, _ = fitted_model()
ROW = request_row(MODEL, FEATURES)
# What `naive` answers to the benchmark's request, so the answer check holds for both.
ANSWER = {"predictions": MODEL.predict_proba(FEATURES.iloc[ROW : ROW + 1]).tolist()}

constant = FastAPI()
naive = FastAPI()


@constant.get("/health")
@naive.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@constant.post("/invocations")
async def predict_constant() -> dict[str, Any]:
    return ANSWER


@naive.post("/invocations")
async def predict_naive(request: Request) -> dict[str, Any]:
    split = (await request.json())["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    return {"predictions": MODEL.predict_proba(frame).tolist()}
