"""Search: features of scheduled programs and traces, and the cost models that rank them."""

from .cost_model import CostModel, GBDTModel, RandomModel, pairwise_accuracy, top_k_score
from .features import FEATURE_NAMES, N_FEATURES, extract
from .trace_features import extract_trace

__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "CostModel", "GBDTModel", "RandomModel", "extract",
    "extract_trace", "pairwise_accuracy", "top_k_score",
]
