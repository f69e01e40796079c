"""TEMP"""

from suite.models.base import (
    DTYPES,
    LOSS_KINDS,
    MODELS,
    Model,
    OnlineState,
    make_model,
    model_names,
    model_options,
    register_model,
)
from suite.models.cliff import Cliff
from suite.models.elman import Elman
from suite.models.tdnn import TDNN, matched_tdnn_hidden

__all__ = [
    "DTYPES",
    "LOSS_KINDS",
    "MODELS",
    "Cliff",
    "Elman",
    "Model",
    "OnlineState",
    "TDNN",
    "make_model",
    "matched_tdnn_hidden",
    "model_names",
    "model_options",
    "register_model",
]
