"""Serving: models as HTTP services (OIP v2, /v1 JSON, MLflow /invocations), the prediction
log and feedback, and batch scoring of files in-process or on a Dask cluster."""

from __future__ import annotations

from modelyard.serving._app import create_app
from modelyard.serving._default import read_feedback, read_predictions, record_feedback
from modelyard.serving._feedback import (
    Feedback,
    FeedbackStore,
    RestFeedback,
    SqlFeedback,
    open_feedback,
)
from modelyard.serving._ids import new_ids
from modelyard.serving._log import (
    PredictionLog,
    RestPredictionLog,
    SqlPredictionLog,
    open_prediction_log,
)
from modelyard.serving._parquet_log import ParquetPredictionLog
from modelyard.serving._records import LoggedBatch, PredictionRow
from modelyard.serving._run import serve
from modelyard.serving._scoring import ScoreReport, score
from modelyard.serving._served import ModelRef
from modelyard.serving._server import ServeOptions
from modelyard.serving._writer import LogWriter

__all__ = [
    "Feedback",
    "FeedbackStore",
    "LogWriter",
    "LoggedBatch",
    "ModelRef",
    "ParquetPredictionLog",
    "PredictionLog",
    "PredictionRow",
    "RestFeedback",
    "RestPredictionLog",
    "ScoreReport",
    "ServeOptions",
    "SqlFeedback",
    "SqlPredictionLog",
    "create_app",
    "new_ids",
    "open_feedback",
    "open_prediction_log",
    "read_feedback",
    "read_predictions",
    "record_feedback",
    "score",
    "serve",
]
